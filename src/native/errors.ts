// Typed errors thrown by olmo-ts's tensor layer. The native addon throws instances of these
// classes (they are handed to it at load time), so `instanceof` and `code` work across the boundary.

/** Base class of every error raised by libtorch through olmo-ts. */
export class TorchError extends Error {
  readonly code: string = 'ERR_TORCH';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** Tensor shapes do not fit the op (size mismatch, bad reshape, wrong rank). */
export class ShapeError extends TorchError {
  override readonly code = 'ERR_SHAPE';
}
/** A dtype the op does not accept, or two dtypes that do not combine. */
export class DTypeError extends TorchError {
  override readonly code = 'ERR_DTYPE';
}
/** An index or dimension out of range. */
export class IndexError extends TorchError {
  override readonly code = 'ERR_INDEX';
}
/** The host or device allocator could not satisfy a request. */
export class OutOfMemoryError extends TorchError {
  override readonly code = 'ERR_OUT_OF_MEMORY';
}
/** A tensor (or generator) was used after dispose(). */
export class DisposedError extends TorchError {
  override readonly code = 'ERR_DISPOSED';
}
/** A call received an argument of the wrong kind (not a tensor, not an integer, unknown option). */
export class ArgumentError extends TorchError {
  override readonly code = 'ERR_ARGUMENT';
}

/**
 * A collective, rendezvous or process group failed: a peer died or closed its connection, or the
 * group could not be formed. The message names the collective, the rank and the group size.
 */
export class DistributedError extends TorchError {
  override readonly code: string = 'ERR_DISTRIBUTED';
}
/** A collective or rendezvous did not complete within the process group's timeout. */
export class DistributedTimeoutError extends DistributedError {
  override readonly code = 'ERR_DISTRIBUTED_TIMEOUT';
}

export const errorClasses = {
  TorchError,
  ShapeError,
  DTypeError,
  IndexError,
  OutOfMemoryError,
  DisposedError,
  ArgumentError,
  DistributedError,
  DistributedTimeoutError,
};
