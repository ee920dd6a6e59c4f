// numpy's SeedSequence, PCG64 and Generator.shuffle, bit for bit, so that a seed gives the same
// data order here as `np.random.Generator(np.random.PCG64(seed)).shuffle(x)` gives OLMo's trainer.
// The 128-bit LCG runs on eight 16-bit limbs held in doubles (exact: every partial sum < 2^53).

const MASK32 = 0xffffffff;
// SeedSequence constants (numpy/random/bit_generator.pyx, after Melissa O'Neill's seed_seq).
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;
const POOL_SIZE = 4;

/** Splits a non-negative integer into little-endian 32-bit words, as numpy's `_int_to_uint32_array`. */
function intToUint32Words(n: bigint): number[] {
  if (n < 0n) throw new RangeError(`SeedSequence expects a non-negative integer seed, got ${n}`);
  if (n === 0n) return [0];
  const out: number[] = [];
  while (n > 0n) {
    out.push(Number(n & 0xffffffffn));
    n >>= 32n;
  }
  return out;
}

function toBigIntSeed(seed: number | bigint): bigint {
  if (typeof seed === 'bigint') return seed;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer or a bigint, got ${seed}`);
  return BigInt(seed);
}

/**
 * numpy.random.SeedSequence for an integer entropy (no spawn key): the pool mixes the seed's 32-bit
 * words; `generateState` hashes the pool out into as many words as asked.
 */
export class SeedSequence {
  /** The mixed entropy pool (4 uint32 words). */
  readonly pool: Uint32Array;
  /** The seed this sequence was built from. */
  readonly entropy: bigint;

  constructor(seed: number | bigint) {
    this.entropy = toBigIntSeed(seed);
    const entropy = intToUint32Words(this.entropy);
    const pool = new Uint32Array(POOL_SIZE);
    let hashConst = INIT_A;
    const hashmix = (value: number): number => {
      value = (value ^ hashConst) >>> 0;
      hashConst = Math.imul(hashConst, MULT_A) >>> 0;
      value = Math.imul(value, hashConst) >>> 0;
      return (value ^ (value >>> XSHIFT)) >>> 0;
    };
    const mix = (x: number, y: number): number => {
      const r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
      return (r ^ (r >>> XSHIFT)) >>> 0;
    };
    for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < entropy.length ? entropy[i]! : 0);
    for (let src = 0; src < POOL_SIZE; src++) {
      for (let dst = 0; dst < POOL_SIZE; dst++) {
        if (src !== dst) pool[dst] = mix(pool[dst]!, hashmix(pool[src]!));
      }
    }
    for (let src = POOL_SIZE; src < entropy.length; src++) {
      for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst]!, hashmix(entropy[src]!));
    }
    this.pool = pool;
  }

  /** `generate_state(nWords, np.uint32)`. */
  generateState32(nWords: number): Uint32Array {
    const out = new Uint32Array(nWords);
    let hashConst = INIT_B;
    for (let i = 0; i < nWords; i++) {
      let v = (this.pool[i % POOL_SIZE]! ^ hashConst) >>> 0;
      hashConst = Math.imul(hashConst, MULT_B) >>> 0;
      v = Math.imul(v, hashConst) >>> 0;
      out[i] = (v ^ (v >>> XSHIFT)) >>> 0;
    }
    return out;
  }

  /** `generate_state(nWords, np.uint64)`: pairs of 32-bit words read little-endian. */
  generateState64(nWords: number): bigint[] {
    const w = this.generateState32(2 * nWords);
    const out: bigint[] = [];
    for (let i = 0; i < nWords; i++) out.push((BigInt(w[2 * i + 1]!) << 32n) | BigInt(w[2 * i]!));
    return out;
  }
}

// PCG's default 128-bit multiplier 0x2360ED051FC65DA44385DF649FCCF645 as 16-bit limbs, low first.
const MULT_LIMBS = limbsOf((0x2360ed051fc65da4n << 64n) | 0x4385df649fccf645n);
const MASK128 = (1n << 128n) - 1n;

function limbsOf(x: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push(Number((x >> BigInt(16 * i)) & 0xffffn));
  return out;
}
function bigOf(limbs: ArrayLike<number>): bigint {
  let x = 0n;
  for (let i = 7; i >= 0; i--) x = (x << 16n) | BigInt(limbs[i]!);
  return x;
}

/**
 * numpy.random.PCG64 (PCG XSL-RR 128/64): `new PCG64(seed)` seeds through SeedSequence exactly as
 * `np.random.PCG64(seed)` does. `nextUint32` buffers the high half of a 64-bit draw, like numpy.
 */
export class PCG64 {
  private readonly s = new Float64Array(8); // state, 16-bit limbs, low first
  private readonly inc = new Float64Array(8); // odd increment, 16-bit limbs
  private hasUint32 = false;
  private uinteger = 0;
  private outHi = 0;
  private outLo = 0;

  constructor(seed: number | bigint | SeedSequence) {
    const seq = seed instanceof SeedSequence ? seed : new SeedSequence(seed);
    const [s0, s1, i0, i1] = seq.generateState64(4) as [bigint, bigint, bigint, bigint];
    const initState = (s0 << 64n) | s1;
    const initSeq = (i0 << 64n) | i1;
    // pcg_setseq_128_srandom_r: state = 0; inc = seq<<1|1; step; state += initstate; step.
    this.inc.set(limbsOf(((initSeq << 1n) | 1n) & MASK128));
    this.s.fill(0);
    this.step();
    this.s.set(limbsOf((bigOf(this.s) + initState) & MASK128));
    this.step();
  }

  /** The 128-bit state and increment, as numpy's `bit_generator.state['state']` shows them. */
  get state(): { state: bigint; inc: bigint; hasUint32: boolean; uinteger: number } {
    return { state: bigOf(this.s), inc: bigOf(this.inc), hasUint32: this.hasUint32, uinteger: this.uinteger };
  }

  /** state = state * MULT + inc (mod 2^128). */
  private step(): void {
    const s = this.s, m = MULT_LIMBS, inc = this.inc;
    const a0 = s[0]!, a1 = s[1]!, a2 = s[2]!, a3 = s[3]!, a4 = s[4]!, a5 = s[5]!, a6 = s[6]!, a7 = s[7]!;
    const m0 = m[0]!, m1 = m[1]!, m2 = m[2]!, m3 = m[3]!, m4 = m[4]!, m5 = m[5]!, m6 = m[6]!, m7 = m[7]!;
    let acc: number, c: number;
    acc = inc[0]! + a0 * m0;
    c = Math.floor(acc / 65536); s[0] = acc - c * 65536;
    acc = c + inc[1]! + a0 * m1 + a1 * m0;
    c = Math.floor(acc / 65536); s[1] = acc - c * 65536;
    acc = c + inc[2]! + a0 * m2 + a1 * m1 + a2 * m0;
    c = Math.floor(acc / 65536); s[2] = acc - c * 65536;
    acc = c + inc[3]! + a0 * m3 + a1 * m2 + a2 * m1 + a3 * m0;
    c = Math.floor(acc / 65536); s[3] = acc - c * 65536;
    acc = c + inc[4]! + a0 * m4 + a1 * m3 + a2 * m2 + a3 * m1 + a4 * m0;
    c = Math.floor(acc / 65536); s[4] = acc - c * 65536;
    acc = c + inc[5]! + a0 * m5 + a1 * m4 + a2 * m3 + a3 * m2 + a4 * m1 + a5 * m0;
    c = Math.floor(acc / 65536); s[5] = acc - c * 65536;
    acc = c + inc[6]! + a0 * m6 + a1 * m5 + a2 * m4 + a3 * m3 + a4 * m2 + a5 * m1 + a6 * m0;
    c = Math.floor(acc / 65536); s[6] = acc - c * 65536;
    acc = c + inc[7]! + a0 * m7 + a1 * m6 + a2 * m5 + a3 * m4 + a4 * m3 + a5 * m2 + a6 * m1 + a7 * m0;
    c = Math.floor(acc / 65536); s[7] = acc - c * 65536;
  }

  /** Advances and leaves the XSL-RR output of the new state in outHi/outLo. */
  private next(): void {
    this.step();
    const s = this.s;
    const hi = ((s[7]! << 16) | s[6]!) ^ ((s[3]! << 16) | s[2]!);
    const lo = ((s[5]! << 16) | s[4]!) ^ ((s[1]! << 16) | s[0]!);
    const rot = s[7]! >>> 10; // top 6 bits of the state
    if (rot === 0) {
      this.outHi = hi >>> 0; this.outLo = lo >>> 0;
    } else if (rot < 32) {
      this.outLo = ((lo >>> rot) | (hi << (32 - rot))) >>> 0;
      this.outHi = ((hi >>> rot) | (lo << (32 - rot))) >>> 0;
    } else if (rot === 32) {
      this.outLo = hi >>> 0; this.outHi = lo >>> 0;
    } else {
      const r = rot - 32;
      this.outLo = ((hi >>> r) | (lo << (32 - r))) >>> 0;
      this.outHi = ((lo >>> r) | (hi << (32 - r))) >>> 0;
    }
  }

  /** A raw 64-bit draw (`bit_generator.random_raw()`). */
  nextUint64(): bigint {
    this.next();
    return (BigInt(this.outHi) << 32n) | BigInt(this.outLo);
  }

  /** A 32-bit draw: the low half of a fresh 64-bit draw, then its buffered high half. */
  nextUint32(): number {
    if (this.hasUint32) {
      this.hasUint32 = false;
      return this.uinteger;
    }
    this.next();
    this.hasUint32 = true;
    this.uinteger = this.outHi;
    return this.outLo;
  }
}

/**
 * numpy's `random_interval(max)`: a uniform integer in [0, max] by masked rejection sampling.
 * Only the 32-bit branch is implemented (max < 2^32), which covers every uint32 index array.
 */
export function randomInterval(rng: PCG64, max: number): number {
  if (max === 0) return 0;
  if (max > MASK32) throw new RangeError(`randomInterval: max ${max} needs the 64-bit branch, which is not implemented`);
  let mask = max;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  mask >>>= 0;
  let value: number;
  do value = (rng.nextUint32() & mask) >>> 0;
  while (value > max);
  return value;
}

/** Anything indexable in place, such as a typed array. */
export interface Shuffleable {
  length: number;
  [i: number]: number;
}

/**
 * `Generator.shuffle(x)` for a 1-D array: Fisher-Yates from the last element down, swapping
 * element i with `randomInterval(i)`, exactly the draws numpy makes.
 */
export function shuffleInPlace<T extends Shuffleable>(rng: PCG64, x: T): T {
  for (let i = x.length - 1; i > 0; i--) {
    const j = randomInterval(rng, i);
    const t = x[i]!;
    x[i] = x[j]!;
    x[j] = t;
  }
  return x;
}
