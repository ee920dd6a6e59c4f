// Where a run trains: OLMo's choice of device. Each rank takes one GPU, cuda:LOCAL_RANK, when
// CUDA is there (OLMo's get_default_device); otherwise the CPU. `model.init_device` decides:
//   cpu            the CPU, even on a GPU machine
//   cuda, cuda:N   a GPU (cuda:LOCAL_RANK: one rank per device, as torchrun/srun start them; cuda:0
//                  where the scheduler made one GPU per task visible); an error naming the key
//                  when this build or machine has no CUDA device
//   meta, null     a GPU when there is one, else the CPU
import type { TrainConfig } from '../config';
import { ConfigError } from '../config/errors';
import type { Device } from '../tensor/dtype';
import { buildInfo, cuda } from '../tensor/runtime';

/** The device this rank trains on (see the file comment). */
export function trainingDevice(cfg: TrainConfig, localRank: number): Device {
  const want = cfg.model.init_device;
  if (want === 'cpu') return 'cpu';
  const devices = cuda.isAvailable() ? cuda.deviceCount() : 0;
  if (typeof want === 'string' && /^cuda(:\d+)?$/.test(want)) {
    if (devices === 0) {
      const why = buildInfo().cudaBuild ? 'no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)' : 'this olmo-ts addon was built against a CPU-only libtorch (rebuild it against a CUDA libtorch: README, "Building on a GPU cluster")';
      throw new ConfigError('model.init_device', `got ${JSON.stringify(want)} but ${why}; set model.init_device: cpu to train on the CPU`);
    }
  } else if (want !== null && want !== undefined && want !== 'meta') {
    throw new ConfigError('model.init_device', `got ${JSON.stringify(want)}; expected cpu, cuda, cuda:N, meta or null`);
  }
  if (devices === 0) return 'cpu';
  // A scheduler that binds one GPU to each task (srun --gpus-per-task=1, --gpu-bind) leaves this
  // rank its own device as the only visible one: cuda:0.
  const bound = ['CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES'].some((k) => (process.env[k] ?? '').split(',').filter(Boolean).length === 1);
  if (devices === 1 && bound) return 'cuda:0';
  if (localRank >= devices) {
    throw new ConfigError('model.init_device', `local rank ${localRank} needs cuda:${localRank} but this node has ${devices} CUDA device${devices === 1 ? '' : 's'}: start at most ${devices} ranks per node (--nproc-per-node / --ntasks-per-node)`);
  }
  return `cuda:${localRank}`;
}

/** The device's index for cuda.* queries (0 for the CPU, which has none). */
export function deviceIndex(d: Device): number {
  return d === 'cpu' ? 0 : d === 'cuda' ? 0 : Number(d.slice(5));
}

/**
 * The dense bf16/fp16 peak of known GPUs in FLOP/s (vendors' datasheets, without sparsity), for MFU
 * when speed_monitor.gpu_flops_available is not set, as OLMo's speed monitor looks the device up by
 * name; undefined for an unknown device or fp32 (then no MFU is logged).
 */
export function knownPeakFlops(deviceName: string, precision: string | null | undefined): number | undefined {
  if (precision !== 'amp_bf16' && precision !== 'amp_fp16') return undefined;
  const table: Array<[RegExp, number]> = [
    [/H100.*PCIe/i, 756e12],
    [/H100|H200|GH200/i, 989e12], // SXM
    [/A100/i, 312e12],
    [/A10G/i, 125e12],
    [/L40S/i, 362e12],
    [/MI300X/i, 1307e12],
    [/MI250X?/i, 383e12], // both dies of a card; one LUMI rank sees one die: half
  ];
  for (const [re, flops] of table) if (re.test(deviceName)) return /MI250/i.test(deviceName) ? flops / 2 : flops;
  return undefined;
}
