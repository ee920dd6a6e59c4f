// TensorBoard event-file sink written in TypeScript (no npm package writes the format well): a
// file_version event, then one Event with a Summary of simple_value scalars per logged step, each
// framed as a TFRecord and written with one write(2) so TensorBoard can read the file while it grows.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fsyncAndClose, writeFully } from './jsonl';
import { type Metrics, type MetricsSink, assertStep } from './metrics';
import { ProtoWriter, frameRecord } from './tfrecord';

// Field numbers from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.
const EVENT_WALL_TIME = 1; // double
const EVENT_STEP = 2; // int64
const EVENT_FILE_VERSION = 3; // string
const EVENT_SUMMARY = 5; // Summary
const SUMMARY_VALUE = 1; // repeated Summary.Value
const VALUE_TAG = 1; // string
const VALUE_SIMPLE_VALUE = 2; // float

/** The version string TensorBoard expects in the first event. */
export const FILE_VERSION = 'brain.Event:2';

/** Encodes an Event carrying `file_version`. */
export function encodeFileVersionEvent(wallTime: number): Buffer {
  return new ProtoWriter().double(EVENT_WALL_TIME, wallTime).bytes(EVENT_FILE_VERSION, FILE_VERSION).finish();
}

/** Encodes an Event with a Summary holding one simple_value per metric, in the given order. */
export function encodeScalarsEvent(wallTime: number, step: number, metrics: Metrics): Buffer {
  const summary = new ProtoWriter();
  for (const [tag, v] of Object.entries(metrics)) {
    summary.bytes(SUMMARY_VALUE, new ProtoWriter().bytes(VALUE_TAG, tag).float(VALUE_SIMPLE_VALUE, v));
  }
  return new ProtoWriter()
    .double(EVENT_WALL_TIME, wallTime).int64(EVENT_STEP, step).bytes(EVENT_SUMMARY, summary).finish();
}

/**
 * `events.out.tfevents.<unix seconds>.<host>.<pid>.<n>`. TensorBoard matches any name containing
 * "tfevents"; the pid and counter (as PyTorch's SummaryWriter adds) keep two writers started in the
 * same second, e.g. a quick restart, from overwriting each other.
 */
export function eventFileName(unixSeconds: number, hostname = os.hostname(), pid = process.pid, n = 0): string {
  return `events.out.tfevents.${String(Math.floor(unixSeconds)).padStart(10, '0')}.${hostname}.${pid}.${n}`;
}

/** Options of {@link TensorBoardWriter}. */
export interface TensorBoardWriterOptions {
  /** Clock in milliseconds; tests inject one. */
  now?: () => number;
  /** Host name in the file name; default `os.hostname()`. */
  hostname?: string;
}

let filesOpened = 0;

/** Writes one new event file under `logDir`; point `tensorboard --logdir` at it or at a parent. */
export class TensorBoardWriter implements MetricsSink {
  /** The event file being written. */
  readonly path: string;
  private fd: number | undefined;
  private readonly now: () => number;

  constructor(logDir: string, opts: TensorBoardWriterOptions = {}) {
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(logDir, { recursive: true });
    const t = this.now() / 1000;
    this.path = path.join(logDir, eventFileName(t, opts.hostname, process.pid, filesOpened++));
    this.fd = fs.openSync(this.path, 'wx'); // never append to or clobber another writer's file
    writeFully(this.fd, frameRecord(encodeFileVersionEvent(t)));
  }

  log(step: number, metrics: Metrics): void {
    assertStep(step);
    if (this.fd === undefined || Object.keys(metrics).length === 0) return;
    writeFully(this.fd, frameRecord(encodeScalarsEvent(this.now() / 1000, step, metrics)));
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fsyncAndClose(fd);
  }
}
