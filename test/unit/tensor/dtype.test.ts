// Host transfer and dtypes: every dtype round-trips through its typed array; bf16/fp16 bits pass
// unchanged through Uint16Array; conversions and factories honour dtype and device options.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DTYPES, arange, full, ones, tensor, tidy, zeros } from '../../../src';

test('every dtype round-trips through its natural typed array', () => {
  tidy(() => {
    for (const dtype of DTYPES) {
      const t = tensor([0, 1, 1, 0, 3, 2].map((v) => (dtype === 'bool' ? Math.min(v, 1) : v)), { dtype, shape: [2, 3] });
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [2, 3]);
      const arr = t.toArray();
      const back = tensor(arr as Float32Array, { dtype, shape: [2, 3] });
      assert.deepEqual(back.toList(), t.toList(), dtype);
    }
  });
});

test('bfloat16 and float16 bits pass through Uint16Array unchanged', () => {
  tidy(() => {
    // 1.0 = 0x3f80 in bf16, 0x3c00 in fp16; -2.5 = 0xc020 / 0xc100
    const bf = tensor(new Uint16Array([0x3f80, 0xc020]), { dtype: 'bfloat16' });
    assert.deepEqual(bf.toList(), [1, -2.5]);
    assert.deepEqual(Array.from(bf.toArray() as Uint16Array), [0x3f80, 0xc020]);
    const h = tensor(new Uint16Array([0x3c00, 0xc100]), { dtype: 'float16' });
    assert.deepEqual(h.toList(), [1, -2.5]);
    assert.deepEqual(Array.from(ones([2]).half().toArray() as Uint16Array), [0x3c00, 0x3c00]);
  });
});

test('int64 comes back as BigInt64Array; uint32 data widens to int64', () => {
  tidy(() => {
    const t = tensor(new Uint32Array([4_000_000_000, 7]));
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(Array.from(t.toArray() as BigInt64Array), [4_000_000_000n, 7n]);
    assert.deepEqual(tensor(new Uint16Array([65535, 1])).toList(), [65535, 1]);
  });
});

test('factories honour dtype; arange infers int64; conversions', () => {
  tidy(() => {
    assert.equal(zeros([2], { dtype: 'bfloat16' }).dtype, 'bfloat16');
    assert.equal(full([2], 7, { dtype: 'int32' }).toList()[1], 7);
    const r = arange(5);
    assert.equal(r.dtype, 'int64');
    assert.deepEqual(r.toList(), [0, 1, 2, 3, 4]);
    assert.deepEqual(arange(0, 1, 0.25).toList(), [0, 0.25, 0.5, 0.75]);
    assert.equal(ones([2]).to('float64').dtype, 'float64');
    assert.equal(ones([2]).device, 'cpu');
    assert.equal(ones([3, 4]).size(-1), 4);
    assert.equal(tensor(3.5).item(), 3.5);
    assert.equal(ones([2]).to('float32').dtype, 'float32');
  });
});
