// Misuse table: each bad call gets its specific typed error with a short message (no C++
// backtrace), and the process survives. Plus a fuzz pass over every raw native entry point.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ArgumentError, DTypeError, DisposedError, IndexError, OutOfMemoryError, ShapeError, Tensor, TorchError,
  F, autocast, cat, cuda, ones, setNumThreads, tensor, tidy, zeros, randn,
} from '../../../src';
import { native } from '../../../src/native';

type ErrClass = new (...a: never[]) => Error;
const CASES: [string, () => unknown, ErrClass, RegExp][] = [
  ['matmul with mismatched inner dims', () => ones([2, 3]).matmul(ones([4, 5])), ShapeError, /cannot be multiplied \(2x3 and 4x5\)/],
  ['view to an incompatible size', () => ones([2, 3]).view(7), ShapeError, /invalid for input of size 6/],
  ['add with non-broadcastable shapes', () => ones([2, 3]).add(ones([4])), ShapeError, /must match the size/],
  ['cat of different widths', () => cat([ones([2, 3]), ones([2, 4])]), ShapeError, /Sizes of tensors must match/],
  ['dim out of range', () => ones([2, 3]).sum(5), IndexError, /Dimension out of range/],
  ['index out of range', () => ones([3, 2]).indexSelect(0, tensor([5], { dtype: 'int64' })), IndexError, /out of range/],
  ['embedding id beyond the vocabulary', () => F.embedding(tensor([10], { dtype: 'int64' }), ones([4, 2])), IndexError, /out of range/],
  ['non-tensor operand', () => ones([2]).add('3' as unknown as Tensor), ArgumentError, /add\(other\) must be a Tensor, got string/],
  ['null operand', () => ones([2]).matmul(null as unknown as Tensor), ArgumentError, /must be a Tensor, got null/],
  ['operand disposed', () => { const t = ones([2]); t.dispose(); return ones([2]).mul(t); }, DisposedError, /mul\(other\) was disposed/],
  ['method on a disposed tensor', () => { const t = ones([2]); t.dispose(); return t.exp(); }, DisposedError, /tensor was disposed/],
  ['cross-entropy with float targets', () => F.crossEntropy(ones([2, 3]), ones([2])), DTypeError, /scalar type Long/],
  ['requiresGrad on an integer tensor', () => zeros([2], { dtype: 'int64' }).requiresGrad_(), DTypeError, /floating point/],
  ['unknown dtype', () => zeros([2], { dtype: 'float8' as never }), ArgumentError, /unknown dtype 'float8'/],
  ['unknown device', () => zeros([2], { device: 'tpu' as never }), ArgumentError, /unknown device 'tpu'/],
  ['ragged nested data', () => tensor([[1, 2], [3]]), ArgumentError, /ragged or mis-shaped data/],
  ['typed array / shape mismatch', () => tensor(new Float32Array(5), { shape: [2, 3] }), ShapeError, /5 elements but shape needs 6/],
  ['non-integer shape', () => zeros([2.5]), ArgumentError, /array of integers/],
  ['backward from a non-scalar', () => ones([3], { requiresGrad: true }).mul(2).backward(), ShapeError, /needs a scalar/],
  ['backward twice through a freed graph', () => { const x = ones([2], { requiresGrad: true }); const y = x.exp().sum(); y.backward(); y.backward(); }, TorchError, /second time/],
  ['item() of several elements', () => ones([3]).item(), ShapeError, /one element/],
  ['autocast to float32', () => autocast(() => 0, { dtype: 'float32' }), ArgumentError, /bfloat16 or float16/],
  ['CUDA tensor on a CPU-only build', () => zeros([2], { device: 'cuda' }), ArgumentError, /device 'cuda': CUDA is not available/],
  ['a tensor moved to CUDA on a CPU-only build', () => ones([2]).to('cuda:1'), ArgumentError, /CUDA is not available/],
  ['allocation far beyond memory', () => zeros([1_000_000, 1_000_000]), OutOfMemoryError, /allocate/],
  ['zero threads', () => setNumThreads(0), ArgumentError, /positive integer/],
  ['cat of an empty list', () => cat([]), TorchError, /non-empty/],
  ['dropout probability above 1', () => F.dropout(ones([2]), 1.5), ArgumentError, /\[0, 1\]/],
];

const HAS_CUDA = cuda.isAvailable();
for (const [what, fn, cls, msg] of CASES) {
  test(`misuse: ${what} -> ${cls.name}`, { skip: HAS_CUDA && /CPU-only build/.test(what) ? 'this machine has CUDA' : false }, () => {
    tidy(() => {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
        assert.ok(e instanceof Error);
        assert.match(e.message, msg);
        assert.doesNotMatch(e.message, /Exception raised from|frame #\d/, 'no C++ backtrace in the message');
        assert.ok(typeof (e as TorchError).code === 'string' || e instanceof TypeError);
        return true;
      });
    });
  });
}

test('every error class carries its code and extends TorchError', () => {
  const codes = new Map<ErrClass, string>([[ShapeError, 'ERR_SHAPE'], [DTypeError, 'ERR_DTYPE'], [IndexError, 'ERR_INDEX'], [OutOfMemoryError, 'ERR_OUT_OF_MEMORY'], [DisposedError, 'ERR_DISPOSED'], [ArgumentError, 'ERR_ARGUMENT']]);
  for (const [cls, code] of codes) {
    const e = new (cls as unknown as new (m: string) => TorchError)('x');
    assert.equal(e.code, code);
    assert.ok(e instanceof TorchError);
    assert.equal(e.name, cls.name);
  }
});

test('tidy refuses async functions and frees what they created', () => {
  assert.throws(() => tidy((async () => ones([1])) as never), /must be synchronous/);
});

// Every raw entry point, called with garbage, must throw a JS error and never crash the process.
test('fuzz: raw native functions with bad arguments throw instead of crashing', () => {
  const live = tidy(() => randn([2, 3]));
  const garbage: unknown[][] = [[], [undefined], ['x'], [-5], [1e9], [live.id, 'x'], [live.id, [1.5]], [live.id, -3, -3, -3], [{}, {}, {}], [live.id, live.id, live.id, live.id, live.id]];
  const skip = new Set(['setErrorClasses', 'manualSeed', 'setNumThreads', 'setGradEnabled', 'dispose']);
  let calls = 0;
  for (const [name, fn] of Object.entries(native)) {
    if (typeof fn !== 'function' || skip.has(name)) continue;
    for (const args of garbage) {
      calls++;
      try {
        const r = (fn as (...a: unknown[]) => unknown)(...args);
        if (typeof r === 'number' && r >= 0 && !['liveCount', 'getNumThreads', 'blasNumThreads', 'cudaDeviceCount', 'numel', 'ndim', 'dtype', 'device', 'item', 'generatorNew'].includes(name)) native.dispose(r);
      } catch (e) {
        assert.ok(e instanceof Error, `${name}(${args.map(String)}) threw a non-Error`);
      }
    }
  }
  assert.ok(calls > 500);
  assert.deepEqual(live.shape, [2, 3], 'state intact after the fuzz');
  live.dispose();
  native.setGradEnabled(true);
});
