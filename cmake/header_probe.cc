// header_probe.cc — compiles the libtorch headers the addon's distributed and CUDA code uses (c10d
// stores and process groups; on CUDA builds also streams, events and the caching allocator) with the
// addon's flags, so a libtorch whose headers need other defines or headers (NCCL on CUDA, Gloo on
// CPU) fails here, in the build checks, and not in the middle of someone's feature.
// Not linked into the addon. Built by: cmake --build <build dir> --target olmo_header_probe
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#if OLMO_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if OLMO_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#ifdef OLMO_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "compat.h"
#endif

namespace olmo_probe {

// Each function names the types and factory calls process-group code needs, so their inline parts
// are instantiated.
c10d::TCPStoreOptions tcp_store_options() {
  c10d::TCPStoreOptions o;
  o.port = 0;
  o.isServer = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  o.useLibUV = false;  // Debian's 2.x is built without libuv (see ../shared/NATIVE-NOTES.md)
#endif
  return o;
}

#if OLMO_C10D_GLOO
c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> gloo_options() {
  auto o = c10d::ProcessGroupGloo::Options::create();
  o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return o;
}
#endif

#if OLMO_C10D_NCCL
c10::intrusive_ptr<c10d::ProcessGroupNCCL::Options> nccl_options() {
  return c10d::ProcessGroupNCCL::Options::create();
}
#endif

#ifdef OLMO_TORCH_CUDA
// A side stream for communication, an event to order it after compute, and the allocator's stats.
void cuda_streams(int device) {
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device);
  at::cuda::CUDAEvent ready;
  ready.record(c10::cuda::getCurrentCUDAStream(device));
  {
    c10::cuda::CUDAStreamGuard guard(side);
    ready.block(side);
  }
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  (void)stats.allocated_bytes[olmo::compat::kCudaAggregateStat].current;
}
#endif

}  // namespace olmo_probe
