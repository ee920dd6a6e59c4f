// The folder lock with real processes: a live holder is refused by name, a killed holder's lock is
// taken over, a lock from another host is never broken, a same-process second lock is refused,
// and many processes racing for one stale lock end with exactly one winner.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { FolderLock, FolderLockedError, LOCK_FILE, readLockHolder } from '../../../src/util/folder-lock';

const SRC = path.resolve(__dirname, '../../../src/util/folder-lock.ts');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-lock-'));

/** A node process that takes the lock and holds it until killed (prints "locked" once it has it). */
function holder(dir: string) {
  const code = `const { FolderLock } = require(${JSON.stringify(SRC)}); FolderLock.acquire(${JSON.stringify(dir)}, { command: 'test holder' }); console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('locked')) resolve(); });
    child.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  return { child, ready };
}

test('a live holder is refused by name; once it is killed (-9) its stale lock is taken over', async () => {
  const dir = tmp();
  const h = holder(dir);
  await h.ready;
  assert.throws(() => FolderLock.acquire(dir, { purpose: 'tests' }), (e: unknown) => {
    assert.ok(e instanceof FolderLockedError);
    assert.equal(e.holder.pid, h.child.pid);
    assert.match(e.message, new RegExp(`is in use by another process: test holder \\(pid ${h.child.pid} on ${os.hostname()}, since .*\\); tests one at a time per folder\\. Wait for it to finish`));
    return true;
  });
  const gone = new Promise((r) => h.child.on('exit', r));
  h.child.kill('SIGKILL');
  await gone;
  assert.equal(readLockHolder(dir)?.pid, h.child.pid, 'a killed process leaves its lock file');
  const lock = FolderLock.acquire(dir);
  assert.equal(lock.replacedStale?.pid, h.child.pid);
  assert.equal(readLockHolder(dir)?.pid, process.pid);
  lock.release();
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'release deletes the lock file');
  lock.release(); // idempotent
});

test('one process cannot lock a folder twice; a lock from another host is never broken', () => {
  const dir = tmp();
  const a = FolderLock.acquire(dir);
  assert.throws(() => FolderLock.acquire(dir), FolderLockedError);
  a.release();
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'some-other-node', since: '2024-01-01T00:00:00Z', command: 'olmo-ts train x.yaml', proc_start: null, token: 'x' }));
  assert.throws(() => FolderLock.acquire(dir), /olmo-ts train x\.yaml \(pid 1 on some-other-node.*It runs on another host, so olmo-ts cannot check it is alive: if it is gone, delete .*\.olmo-ts\.lock/);
});

test('a reused pid does not keep a dead holder\'s lock alive (start time differs); garbage lock files are stale', () => {
  const dir = tmp();
  // pid 1 is alive, but its start time is not the recorded one: the recorded process is gone.
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), since: 'x', command: 'old run', proc_start: 'not-its-start-time', token: 'y' }));
  const l = FolderLock.acquire(dir);
  assert.equal(l.replacedStale?.command, 'old run');
  l.release();
  fs.writeFileSync(path.join(dir, LOCK_FILE), '{"pid": 12');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, LOCK_FILE), old, old);
  FolderLock.acquire(dir).release();
});

test('eight processes racing for one stale lock: exactly one wins', () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 7, host: os.hostname(), since: 'x', command: 'dead', proc_start: null, token: 'z' }));
  // The winner holds the lock until the seven others have tried (they count themselves in a file).
  const count = path.join(os.tmpdir(), `olmo-lock-count-${process.pid}-${Date.now()}`);
  const code = `const fs = require('fs'); const { FolderLock } = require(${JSON.stringify(SRC)});
    try { FolderLock.acquire(${JSON.stringify(dir)}); console.log('won');
      const t0 = Date.now(); while (Date.now() - t0 < 60000 && (fs.existsSync(${JSON.stringify(count)}) ? fs.readFileSync(${JSON.stringify(count)}, 'utf8').length : 0) < 7) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); }
    catch (e) { console.log(e.code === 'ERR_FOLDER_LOCKED' ? 'lost' : 'error ' + e.message); fs.appendFileSync(${JSON.stringify(count)}, 'x'); }`;
  const script = Array.from({ length: 8 }, () => `"${process.execPath}" --import tsx -e '${code.replace(/'/g, `'"'"'`)}' &`).join('\n') + '\nwait';
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 90_000 });
  fs.rmSync(count, { force: true });
  const lines = r.stdout.trim().split('\n').sort();
  assert.deepEqual(lines, ['lost', 'lost', 'lost', 'lost', 'lost', 'lost', 'lost', 'won'], r.stderr);
});
