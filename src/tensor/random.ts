// Random number state: the global seed, the default generators' full state (for exact resume),
// and explicit Generator objects for reproducible streams independent of the global one.
import { native } from '../native';
import { DisposedError } from '../native/errors';
import { Device, deviceCode } from './dtype';

/** Seeds the default CPU generator and every CUDA generator (torch.manual_seed). */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}
/** The full state of a device's default generator, as bytes (torch.get_rng_state). */
export function getRngState(device: Device = 'cpu'): Uint8Array {
  return native.getRngState(deviceCode(device));
}
/** Restores a state from getRngState(). */
export function setRngState(state: Uint8Array, device: Device = 'cpu'): void {
  native.setRngState(deviceCode(device), state);
}

/** A CPU random generator with its own seed and state (torch.Generator). Pass it as `generator`. */
export class Generator {
  /** Native handle; -1 once closed. */
  id: number;
  constructor(seed: number | bigint) {
    this.id = native.generatorNew(seed);
  }
  private check(): number {
    if (this.id < 0) throw new DisposedError('generator was closed');
    return this.id;
  }
  getState(): Uint8Array {
    return native.generatorGetState(this.check());
  }
  setState(state: Uint8Array): void {
    native.generatorSetState(this.check(), state);
  }
  /** Frees the generator. Idempotent. */
  close(): void {
    if (this.id >= 0) native.generatorFree(this.id);
    this.id = -1;
  }
}
