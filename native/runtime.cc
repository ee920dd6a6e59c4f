// runtime.cc — process-wide state behind the tensor API: autograd (backward, grads, grad mode),
// autocast scopes, random generators and their state, thread counts, CUDA queries, build info.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <dlfcn.h>

#include <cstring>

#include "compat.h"
#include "registry.h"

#ifdef OLMO_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif
#include <torch/cuda.h>

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

// ---------------------------------------------------------------- autograd
Napi::Value set_requires_grad(Info info) {
  arg_tensor(info, 0).requires_grad_(arg_bool(info, 1));
  return info.Env().Undefined();
}
Napi::Value requires_grad(Info info) { return Napi::Boolean::New(info.Env(), arg_tensor(info, 0).requires_grad()); }
Napi::Value is_leaf(Info info) { return Napi::Boolean::New(info.Env(), arg_tensor(info, 0).is_leaf()); }
Napi::Value retain_grad(Info info) {
  arg_tensor(info, 0).retain_grad();
  return info.Env().Undefined();
}
// backward(id, grad|-1, retainGraph)
Napi::Value backward(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  const auto g = arg_opt_tensor(info, 1);
  const bool retain = arg_bool(info, 2);
  if (!g && t.numel() != 1)
    throw_js(info.Env(), kShape, "backward() without a gradient needs a scalar, got " + std::to_string(t.numel()) + " elements");
  torch::autograd::backward({t}, g ? torch::autograd::variable_list{*g} : torch::autograd::variable_list{}, retain);
  return info.Env().Undefined();
}
// grad(id) -> id of the accumulated gradient, or -1 when it is None
Napi::Value grad(Info info) {
  const at::Tensor& g = arg_tensor(info, 0).grad();
  if (!g.defined()) return Napi::Number::New(info.Env(), -1);
  return put(info, g);
}
// setGrad(id, grad|-1)
Napi::Value set_grad(Info info) {
  at::Tensor& t = arg_tensor(info, 0);
  const auto g = arg_opt_tensor(info, 1);
  t.mutable_grad() = g ? g->detach() : at::Tensor();
  return info.Env().Undefined();
}
// zeroGrad(ids, setToNone) over a whole parameter list in one call
Napi::Value zero_grad(Info info) {
  std::vector<at::Tensor> ts = arg_tensors(info, 0);
  const bool to_none = arg_bool(info, 1);
  for (at::Tensor& t : ts) {
    at::Tensor& g = t.mutable_grad();
    if (!g.defined()) continue;
    if (to_none) g.reset(); else g.detach_().zero_();
  }
  return info.Env().Undefined();
}
Napi::Value grad_fn_name(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  if (!t.grad_fn()) return info.Env().Null();
  return Napi::String::New(info.Env(), t.grad_fn()->name());
}
// setGradEnabled(bool) -> previous
Napi::Value set_grad_enabled(Info info) {
  const bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(arg_bool(info, 0));
  return Napi::Boolean::New(info.Env(), prev);
}
Napi::Value is_grad_enabled(Info info) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

// ---------------------------------------------------------------- autocast
// autocastEnter(isCuda, dtype, enabled) -> [prevEnabled, prevDtype]; mirrors torch.autocast.__enter__
Napi::Value autocast_enter(Info info) {
  const bool cuda = arg_bool(info, 0);
  const at::ScalarType dt = arg_dtype(info, 1);
  const bool enabled = arg_bool(info, 2);
  if (enabled && cuda && dt != at::kBFloat16 && dt != at::kHalf) bad_arg(info.Env(), 1, "bfloat16 or float16 for CUDA autocast");
  if (enabled && !cuda && dt != at::kBFloat16) bad_arg(info.Env(), 1, "bfloat16 (the only CPU autocast dtype)");
  Napi::Env env = info.Env();
  Napi::Array prev = Napi::Array::New(env, 2);
  prev.Set(0u, Napi::Boolean::New(env, compat::autocast_enabled(cuda)));
  prev.Set(1u, Napi::Number::New(env, dtype_code(compat::autocast_dtype(cuda))));
  compat::set_autocast_enabled(cuda, enabled);
  if (enabled) compat::set_autocast_dtype(cuda, dt);
  at::autocast::increment_nesting();
  ++reg(env).autocast_depth[cuda ? 1 : 0];
  return prev;
}
// autocastExit(isCuda, prevEnabled, prevDtype); mirrors torch.autocast.__exit__
Napi::Value autocast_exit(Info info) {
  const bool cuda = arg_bool(info, 0);
  Registry& r = reg(info.Env());
  if (r.autocast_depth[cuda ? 1 : 0] <= 0) throw_js(info.Env(), kArgument, "autocastExit without a matching enter");
  --r.autocast_depth[cuda ? 1 : 0];
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast_enabled(cuda, arg_bool(info, 1));
  compat::set_autocast_dtype(cuda, arg_dtype(info, 2));
  return info.Env().Undefined();
}
Napi::Value autocast_state(Info info) {
  const bool cuda = arg_bool(info, 0);
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Boolean::New(env, compat::autocast_enabled(cuda)));
  a.Set(1u, Napi::Number::New(env, dtype_code(compat::autocast_dtype(cuda))));
  return a;
}

// ---------------------------------------------------------------- random state
uint64_t arg_seed(Info info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsBigInt()) {
    bool lossless = false;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  const double d = arg_num(info, i);
  if (d < 0 || d != static_cast<double>(static_cast<uint64_t>(d))) bad_arg(info.Env(), i, "a non-negative integer seed");
  return static_cast<uint64_t>(d);
}

Napi::Value manual_seed(Info info) {
  at::manual_seed(arg_seed(info, 0));
  return info.Env().Undefined();
}

at::Generator default_gen(Info info, size_t i) {
  const at::Device d = arg_device(info, i);
  if (d.is_cuda() && !at::hasCUDA()) throw_js(info.Env(), kArgument, "this libtorch has no CUDA");
  return at::globalContext().defaultGenerator(d);
}

at::Generator handle_gen(Info info, size_t i) {
  Registry& r = reg(info.Env());
  const int64_t id = arg_int(info, i);
  if (id < 0 || id >= static_cast<int64_t>(r.gens.size()) || !r.gens[id].defined())
    throw_js(info.Env(), kDisposed, "generator was disposed");
  return r.gens[id];
}

Napi::Value gen_state(Info info, at::Generator gen) {
  at::Tensor st;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    st = gen.get_state();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(info.Env(), st.data_ptr<uint8_t>(), st.numel());
  return out;
}
void set_gen_state(Info info, size_t i, at::Generator gen) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    bad_arg(info.Env(), i, "a Uint8Array of generator state");
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  at::Tensor st = at::empty({static_cast<int64_t>(a.ElementLength())}, at::kByte);
  std::memcpy(st.data_ptr(), a.Data(), a.ElementLength());
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(st);
}

// getRngState(device) -> Uint8Array; setRngState(device, bytes)
Napi::Value get_rng_state(Info info) { return gen_state(info, default_gen(info, 0)); }
Napi::Value set_rng_state(Info info) {
  set_gen_state(info, 1, default_gen(info, 0));
  return info.Env().Undefined();
}
// generatorNew(seed) -> id (CPU generator)
Napi::Value generator_new(Info info) {
  Registry& r = reg(info.Env());
  r.gens.push_back(at::make_generator<at::CPUGeneratorImpl>(arg_seed(info, 0)));
  return Napi::Number::New(info.Env(), static_cast<double>(r.gens.size() - 1));
}
Napi::Value generator_free(Info info) {
  Registry& r = reg(info.Env());
  const int64_t id = arg_int(info, 0);
  if (id >= 0 && id < static_cast<int64_t>(r.gens.size())) r.gens[id] = at::Generator();
  return info.Env().Undefined();
}
Napi::Value generator_get_state(Info info) { return gen_state(info, handle_gen(info, 0)); }
Napi::Value generator_set_state(Info info) {
  set_gen_state(info, 1, handle_gen(info, 0));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- threads
// OpenBLAS's pthread build (Debian's libblas.so.3) keeps its own pool of one thread per core, which
// at::set_num_threads does not touch (it sets OpenMP's and MKL's). Its idle workers spin: with one
// intra-op thread a second core stayed busy, and under load a training step slowed several fold
// (measured on libtorch 2.6 / OpenBLAS 0.3.29: 1.2-1.6 s of CPU for 150 tiny steps, 0.63 s with
// one BLAS thread). So the BLAS pool follows the intra-op count, as MKL's does in libtorch.
// Looked up in the already loaded library (no new dependency); absent BLAS functions are no-ops.
using BlasThreadsFn = void (*)(int);
using BlasGetThreadsFn = int (*)();
void* openblas_handle() {
  static void* h = [] {
    for (const char* lib : {"libopenblas.so.0", "libblas.so.3"})
      if (void* p = dlopen(lib, RTLD_NOLOAD | RTLD_LAZY)) return p;
    return static_cast<void*>(nullptr);
  }();
  return h;
}
template <typename Fn>
Fn openblas_fn(const char* name) {
  void* h = openblas_handle();
  return h ? reinterpret_cast<Fn>(dlsym(h, name)) : nullptr;
}

Napi::Value set_num_threads(Info info) {
  const int64_t n = arg_int(info, 0);
  if (n < 1) bad_arg(info.Env(), 0, "a positive thread count");
  at::set_num_threads(static_cast<int>(n));
  if (auto f = openblas_fn<BlasThreadsFn>("openblas_set_num_threads")) f(static_cast<int>(n));
  return info.Env().Undefined();
}
Napi::Value get_num_threads(Info info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }
// blasNumThreads() -> OpenBLAS's thread count, or -1 when the BLAS in use is not OpenBLAS
Napi::Value blas_num_threads(Info info) {
  auto f = openblas_fn<BlasGetThreadsFn>("openblas_get_num_threads");
  return Napi::Number::New(info.Env(), f ? f() : -1);
}

// ---------------------------------------------------------------- CUDA
Napi::Value cuda_available(Info info) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }
Napi::Value cuda_device_count(Info info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}
Napi::Value cuda_synchronize(Info info) {  // SYNC
  if (!torch::cuda::is_available()) throw_js(info.Env(), kArgument, "CUDA is not available");
  torch::cuda::synchronize(arg_int(info, 0));
  return info.Env().Undefined();
}
// cudaMemoryStats(device) -> {allocated, reserved, peakAllocated, peakReserved} in bytes
Napi::Value cuda_memory_stats(Info info) {
#ifdef OLMO_TORCH_CUDA
  if (!torch::cuda::is_available()) throw_js(info.Env(), kArgument, "CUDA is not available");
  const int dev = static_cast<int>(arg_int(info, 0));
  const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
  const size_t agg = compat::kCudaAggregateStat;
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocated", Napi::Number::New(env, static_cast<double>(s.allocated_bytes[agg].current)));
  o.Set("reserved", Napi::Number::New(env, static_cast<double>(s.reserved_bytes[agg].current)));
  o.Set("peakAllocated", Napi::Number::New(env, static_cast<double>(s.allocated_bytes[agg].peak)));
  o.Set("peakReserved", Napi::Number::New(env, static_cast<double>(s.reserved_bytes[agg].peak)));
  return o;
#else
  throw_js(info.Env(), kArgument, "this build of olmo-ts has no CUDA support");
#endif
}
Napi::Value cuda_reset_peak(Info info) {
#ifdef OLMO_TORCH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<int>(arg_int(info, 0)));
  return info.Env().Undefined();
#else
  throw_js(info.Env(), kArgument, "this build of olmo-ts has no CUDA support");
#endif
}
// cudaMemInfo(device) -> {free, total, name}: the device's memory as the driver reports it (cudaMemGetInfo).
Napi::Value cuda_mem_info(Info info) {
#ifdef OLMO_TORCH_CUDA
  if (!torch::cuda::is_available()) throw_js(info.Env(), kArgument, "CUDA is not available");
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(arg_int(info, 0)));
  size_t free_b = 0, total_b = 0;
  const cudaError_t err = cudaMemGetInfo(&free_b, &total_b);
  if (err != cudaSuccess) throw_js(info.Env(), kArgument, std::string("cudaMemGetInfo: ") + cudaGetErrorString(err));
  cudaDeviceProp prop{};
  const cudaError_t perr = cudaGetDeviceProperties(&prop, static_cast<int>(arg_int(info, 0)));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("free", Napi::Number::New(info.Env(), static_cast<double>(free_b)));
  o.Set("total", Napi::Number::New(info.Env(), static_cast<double>(total_b)));
  o.Set("name", Napi::String::New(info.Env(), perr == cudaSuccess ? std::string(prop.name) : std::string("CUDA device")));
  return o;
#else
  throw_js(info.Env(), kArgument, "this build of olmo-ts has no CUDA support");
#endif
}
// cudaSetDevice(device): the device that un-indexed 'cuda' tensors and NCCL's streams use in this process.
Napi::Value cuda_set_device(Info info) {
#ifdef OLMO_TORCH_CUDA
  if (!torch::cuda::is_available()) throw_js(info.Env(), kArgument, "CUDA is not available");
  const auto dev = arg_int(info, 0);
  if (dev < 0 || dev >= static_cast<int64_t>(torch::cuda::device_count())) throw_js(info.Env(), kArgument, "no CUDA device " + std::to_string(dev));
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(dev));
  return info.Env().Undefined();
#else
  throw_js(info.Env(), kArgument, "this build of olmo-ts has no CUDA support");
#endif
}
Napi::Value cuda_empty_cache(Info info) {
#ifdef OLMO_TORCH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return info.Env().Undefined();
}

// buildInfo() -> {torchVersion, cudaBuild, parallel}
Napi::Value build_info(Info info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, std::to_string(TORCH_VERSION_MAJOR) + "." +
                                                   std::to_string(TORCH_VERSION_MINOR) + "." +
                                                   std::to_string(TORCH_VERSION_PATCH)));
#ifdef OLMO_TORCH_CUDA
  o.Set("cudaBuild", Napi::Boolean::New(env, true));
#else
  o.Set("cudaBuild", Napi::Boolean::New(env, false));
#endif
  o.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  return o;
}

}  // namespace

void init_runtime(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("setRequiresGrad", set_requires_grad);
  OLMO_EXPORT("requiresGrad", requires_grad);
  OLMO_EXPORT("isLeaf", is_leaf);
  OLMO_EXPORT("retainGrad", retain_grad);
  OLMO_EXPORT("backward", backward);
  OLMO_EXPORT("grad", grad);
  OLMO_EXPORT("setGrad", set_grad);
  OLMO_EXPORT("zeroGrad", zero_grad);
  OLMO_EXPORT("gradFnName", grad_fn_name);
  OLMO_EXPORT("setGradEnabled", set_grad_enabled);
  OLMO_EXPORT("isGradEnabled", is_grad_enabled);
  OLMO_EXPORT("autocastEnter", autocast_enter);
  OLMO_EXPORT("autocastExit", autocast_exit);
  OLMO_EXPORT("autocastState", autocast_state);
  OLMO_EXPORT("manualSeed", manual_seed);
  OLMO_EXPORT("getRngState", get_rng_state);
  OLMO_EXPORT("setRngState", set_rng_state);
  OLMO_EXPORT("generatorNew", generator_new);
  OLMO_EXPORT("generatorFree", generator_free);
  OLMO_EXPORT("generatorGetState", generator_get_state);
  OLMO_EXPORT("generatorSetState", generator_set_state);
  OLMO_EXPORT("setNumThreads", set_num_threads);
  OLMO_EXPORT("getNumThreads", get_num_threads);
  OLMO_EXPORT("blasNumThreads", blas_num_threads);
  OLMO_EXPORT("cudaIsAvailable", cuda_available);
  OLMO_EXPORT("cudaDeviceCount", cuda_device_count);
  OLMO_EXPORT("cudaSynchronize", cuda_synchronize);
  OLMO_EXPORT("cudaMemoryStats", cuda_memory_stats);
  OLMO_EXPORT("cudaResetPeakStats", cuda_reset_peak);
  OLMO_EXPORT("cudaEmptyCache", cuda_empty_cache);
  OLMO_EXPORT("cudaMemInfo", cuda_mem_info);
  OLMO_EXPORT("cudaSetDevice", cuda_set_device);
  OLMO_EXPORT("buildInfo", build_info);
}

}  // namespace olmo
