// Activation checkpointing as a tape of forward segments (torch.utils.checkpoint's job, done as a
// forward/backward split so JavaScript never runs inside an autograd hook). The forward marks cut
// points and runs some segments without saving activations; backward(loss) then walks the tape in
// reverse: one engine call per segment, recomputing a segment (same random stream, same autocast
// state) just before its backward. The mechanism is native/checkpoint_fn.cc; which parts of a
// model to recompute is the model's policy (src/model/activation-checkpointing.ts).
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { noGrad } from './autograd';
import { deviceCode } from './dtype';
import { keep, tidy } from './scope';
import { Tensor, tid, wrap } from './tensor';

/**
 * A recomputable segment: tensors in, tensors out. `inputs` are what was passed to recompute();
 * `extras` are constants it also reads (an attention bias), handed back on the recompute because the
 * caller's handles are gone by then. It must be deterministic given its inputs and the random stream.
 */
export type SegmentFn = (inputs: Tensor[], extras: (Tensor | null)[]) => Tensor[];

/** A graph segment ending at a cut: its outputs (with history) and the cut points' mailbox. */
interface CutRecord {
  kind: 'cut';
  outputs: Tensor[];
  /** Native handle of the mailbox the cut points' gradients go to. */
  box: number;
}
/** A segment run without saving activations, re-run in backward. */
interface RecomputeRecord {
  kind: 'recompute';
  fn: SegmentFn;
  inputs: Tensor[];
  extras: (Tensor | null)[];
  /** Mailbox of the outputs (the tape keeps no output data: unused outputs are freed). */
  box: number;
  outputs: number;
  /** Native handle of the generator/autocast state at the first pass. */
  state: number;
}

/**
 * One forward pass's checkpointing record. Use:
 * ```ts
 * const tape = new CheckpointTape();
 * const [y] = tape.recompute(([x]) => [block(x)], [x]);   // block's activations are not saved
 * const loss = head(y);
 * tape.backward(loss);                                     // instead of loss.backward()
 * ```
 * Tensors consumed after a cut must be the ones cut() or recompute() returned, so every gradient
 * of a boundary meets in one place before the segment behind it runs backward. backward() (or
 * dispose()) must be called once; gradients then equal those without checkpointing, bitwise.
 */
export class CheckpointTape {
  private records: Array<CutRecord | RecomputeRecord> = [];
  /** Cut points handed to the caller (their gradients go to a mailbox of this tape). */
  private points = new Set<Tensor>();
  private owned: Tensor[] = [];
  private done = false;

  /** Number of recorded segments (cuts and recomputes). */
  get size(): number {
    return this.records.length;
  }

  private own(ids: number[]): Tensor[] {
    const ts = ids.map((id) => keep(wrap(id)));
    this.owned.push(...ts);
    return ts;
  }

  private check(): void {
    if (this.done) throw new ArgumentError('this checkpoint tape was already back-propagated or disposed');
  }

  /** Cut points for `ids` (caller handles in the current scope) and their mailbox's handle. */
  private cutPoints(ids: number[]): { box: number; points: Tensor[] } {
    const [box, ...pts] = native.ckptCut(ids);
    const points = pts.map((id) => wrap(id));
    for (const p of points) this.points.add(p);
    return { box: box!, points };
  }

  /**
   * Cuts the graph after `ts` (one record for all of them, so tensors that share history, like the
   * q, k, v of one projection, go backward together). Returns the tensors to use from here on:
   * cut points that require grad, or the inputs themselves when they need no cut.
   */
  cut(ts: Tensor[]): Tensor[] {
    this.check();
    const need: number[] = [];
    ts.forEach((t, i) => {
      if (!this.points.has(t) && t.requiresGrad) need.push(i);
    });
    if (need.length === 0) return ts.slice();
    const ids = need.map((i) => tid(ts[i]!, `cut input ${i}`));
    const outputs = this.own(native.ckptShare(ids));
    const { box, points } = this.cutPoints(ids);
    this.records.push({ kind: 'cut', outputs, box });
    const out = ts.slice();
    need.forEach((i, k) => { out[i] = points[k]!; });
    return out;
  }

  /**
   * Runs `fn(inputs, extras)` without saving its activations and returns its outputs as cut points
   * (tensors that require grad). Inputs that still carry history are cut first. In backward, fn
   * runs again from the same inputs with the random generators and autocast state of this first
   * pass, and the generators are put back afterwards.
   */
  recompute(fn: SegmentFn, inputs: Tensor[], extras: (Tensor | null)[] = []): Tensor[] {
    this.check();
    const cutIn = this.cut(inputs);
    const mine = this.own(native.ckptShare(cutIn.map((t, i) => tid(t, `recompute input ${i}`))));
    const ex = extras.map((t, i) => (t ? this.own(native.ckptShare([tid(t, `recompute extra ${i}`)]))[0]! : null));
    const cuda = new Set<number>();
    for (const t of [...mine, ...ex]) if (t && t.device !== 'cpu') cuda.add(deviceCode(t.device));
    const state = native.ckptCapture([...cuda]);
    let cut: { box: number; points: Tensor[] };
    try {
      cut = noGrad(() => {
        const outs = tidy(() => fn(mine, ex));
        if (!Array.isArray(outs) || outs.length === 0) throw new ArgumentError('a recomputed segment must return a non-empty array of tensors');
        const c = this.cutPoints(outs.map((o, i) => tid(o, `segment output ${i}`)));
        for (const o of outs) o.dispose(); // the cut points alias them
        return c;
      });
    } catch (e) {
      native.ckptRelease(state);
      throw e;
    }
    this.records.push({ kind: 'recompute', fn, inputs: mine, extras: ex, box: cut.box, outputs: cut.points.length, state });
    return cut.points;
  }

  /**
   * Back-propagates `loss` (when given) and then every recorded segment, last first: gradients
   * accumulate in the parameters' .grad exactly as loss.backward() would without the tape. Frees
   * the tape.
   */
  backward(loss?: Tensor): void {
    this.check();
    try {
      loss?.backward();
      for (let r = this.records.length - 1; r >= 0; r--) {
        const rec = this.records[r]!;
        if (rec.kind === 'cut') {
          native.ckptBackward(rec.outputs.map((t) => t.id), rec.box);
          continue;
        }
        if (!native.ckptBoxHasGrad(rec.box)) continue; // nothing downstream used it
        tidy(() => {
          native.ckptEnter(rec.state);
          let outs: Tensor[];
          try {
            // Only the outputs leave this scope: intermediates autograd does not keep are freed
            // before the segment's backward, as in the first pass.
            outs = tidy(() => rec.fn(rec.inputs, rec.extras));
          } finally {
            native.ckptExit();
          }
          if (outs.length !== rec.outputs) throw new ArgumentError(`a recomputed segment returned ${outs.length} tensors, ${rec.outputs} the first time`);
          native.ckptBackward(outs.map((o, i) => tid(o, `recomputed output ${i}`)), rec.box);
        });
      }
    } finally {
      this.dispose();
    }
  }

  /** Frees everything the tape holds without back-propagating. Idempotent. */
  dispose(): void {
    if (this.done) return;
    this.done = true;
    for (const rec of this.records) {
      native.ckptBoxRelease(rec.box);
      if (rec.kind === 'recompute') native.ckptRelease(rec.state);
    }
    for (const t of this.owned) t.dispose();
    this.owned = [];
    this.records = [];
    this.points.clear();
  }
}
