// PyTorch reference files for the libtorch the addon is built against. The committed fixtures under
// test/fixtures/{ops,optim,model} were written by Debian 12's python3-torch (1.13); against another
// libtorch (2.x on Debian 13 or a GPU cluster) the same generator scripts run now, with the Python
// whose torch has that version, so references never carry another version's rounding.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildInfo } from '../../src';

/** The torch major.minor the committed fixtures were generated with. */
export const COMMITTED_TORCH = '1.13';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures');
const GENERATORS = { ops: 'ops/gen_ops.py', optim: 'optim/gen_optim.py', model: 'model/reference.py' } as const;
export type ReferenceKind = keyof typeof GENERATORS;

const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');

/** The Python whose torch gives the references: OLMO_TS_PYTHON, else Debian's /usr/bin/python3. */
function python(): string {
  if (process.env.OLMO_TS_PYTHON) return process.env.OLMO_TS_PYTHON;
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/**
 * Folder with the reference files of `kind` for this addon's libtorch: the committed fixtures when
 * their torch version matches (unless OLMO_TS_REGEN_REFERENCES=1), else files generated now into a
 * cache under the temp folder, keyed by torch version and generator source. Throws a readable error when no
 * Python with the same torch version is at hand.
 */
export function referenceDir(kind: ReferenceKind): string {
  const torch = majorMinor(buildInfo().torchVersion);
  if (torch === COMMITTED_TORCH && !process.env.OLMO_TS_REGEN_REFERENCES) return path.join(FIXTURES, kind);
  const script = path.join(FIXTURES, GENERATORS[kind]);
  const py = python();
  const probe = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  const pyTorch = probe.status === 0 ? probe.stdout.trim() : null;
  if (!pyTorch || majorMinor(pyTorch) !== torch) {
    throw new Error(
      `PyTorch references for libtorch ${torch} need a Python with torch ${torch} ` +
        `(${py} has ${pyTorch ?? `no torch: ${(probe.stderr || String(probe.error)).trim().split('\n').pop()}`}); ` +
        'set OLMO_TS_PYTHON to one (on Debian 13: apt-get install python3-torch)',
    );
  }
  const hash = createHash('sha256').update(fs.readFileSync(script)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), 'olmo-ts-references', `${kind}-torch${pyTorch}-${hash}`);
  if (fs.existsSync(path.join(dir, '.done'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const r = spawnSync(py, [script, '--out', tmp], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`${GENERATORS[kind]} failed under ${py} (torch ${pyTorch}):\n${r.stderr || r.error}`);
  }
  fs.writeFileSync(path.join(tmp, '.done'), `${pyTorch}\n`);
  try {
    fs.renameSync(tmp, dir);
  } catch {
    // another test process finished the same references first: use theirs
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, '.done'))) throw new Error(`could not store references in ${dir}`);
  }
  return dir;
}
