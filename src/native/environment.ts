// Process environment the native libraries read while they load, set before the addon is loaded.
//
// Debian 13's libtorch 2.x links Open MPI, which pulls in UCX. While libtorch loads, UCX installs
// "bistro" memory hooks: it rewrites the machine code of glibc's mmap, munmap, mremap, brk, sbrk,
// shmat, shmdt and madvise in place, while Node's other threads (GC, workers, the module loader)
// may be running those very functions. Measured on Debian 13: 4 of 35 loads of the addon next to
// threads that map and unmap memory crashed (SIGSEGV in malloc or in V8's allocator) or hung;
// 0 of 40 with the settings below. UCX also takes over SIGILL/SIGBUS/SIGFPE/SIGSEGV and calls
// malloc inside its handler (one of the hangs). olmo-ts never uses UCX or MPI, so it tells UCX to
// hook nothing and to leave signals to Node. A value the user has set is kept.
const NATIVE_ENV_DEFAULTS: Record<string, string> = {
  UCX_MEM_EVENTS: 'no', // no memory-event hooks at all (what is requested at load time)
  UCX_MEM_MMAP_HOOK_MODE: 'none', // and no patching of mmap & co., whoever asks later
  UCX_ERROR_SIGNALS: '', // Node (and V8's WebAssembly trap handler) keep their signal handlers
  UCX_VFS_ENABLE: 'n', // no FUSE monitoring thread
};

/** Sets the native libraries' environment defaults (only where unset). Call before loading the addon. */
export function prepareNativeEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(NATIVE_ENV_DEFAULTS)) if (env[k] === undefined) env[k] = v;
}
