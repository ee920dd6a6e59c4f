// compat.h — the one place where differences between libtorch versions (Debian's 1.13 on CPU,
// PyTorch 2.x with CUDA on GPU clusters) are handled. Everything else calls these helpers.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#define OLMO_TORCH_AT_LEAST(maj, min) \
  (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

namespace olmo {
namespace compat {

// Causal/masked scaled-dot-product attention. q, k, v: (B, H, T, D).
// 2.x has the public fused entry point (flash / memory-efficient kernels on CUDA, a fused CPU
// kernel from 2.1); 1.13 has only `_scaled_dot_product_attention`, which returns (out, weights).
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k,
                                               const at::Tensor& v,
                                               const c10::optional<at::Tensor>& mask,
                                               double dropout_p, bool is_causal) {
#if OLMO_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, dropout_p,
                                                       /*need_attn_weights=*/false, is_causal));
#endif
}

// Autocast state for one device type ("cpu" or "cuda"). 2.4 replaced the per-device setters with
// device-type-generic ones; the old ones still exist there but are deprecated.
inline bool autocast_enabled(bool cuda) {
#if OLMO_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(bool cuda, bool on) {
#if OLMO_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
#else
  if (cuda) at::autocast::set_enabled(on); else at::autocast::set_cpu_enabled(on);
#endif
}

inline at::ScalarType autocast_dtype(bool cuda) {
#if OLMO_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(bool cuda, at::ScalarType dt) {
#if OLMO_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dt);
#else
  if (cuda) at::autocast::set_autocast_gpu_dtype(dt); else at::autocast::set_autocast_cpu_dtype(dt);
#endif
}

}  // namespace compat
}  // namespace olmo

// ---- c10d (native/dist.cc defines OLMO_COMPAT_DIST before including this, after the c10d headers) ----
#ifdef OLMO_COMPAT_DIST
namespace olmo {
namespace compat {

// The class the Gloo/NCCL process groups derive from, whose collectives we call directly: in 1.13
// they are ProcessGroups; 2.0 split the backend out of the ProcessGroup (c10d::Backend).
#if OLMO_TORCH_AT_LEAST(2, 0)
using PGBackend = c10d::Backend;
#else
using PGBackend = c10d::ProcessGroup;
#endif

// TCPStore options. From 2.4 the store defaults to a libuv server, which builds without libuv
// (Debian 13's libtorch) reject: "use_libuv was requested but PyTorch was build without libuv".
inline c10d::TCPStoreOptions tcp_store_options() {
  c10d::TCPStoreOptions o;
#if OLMO_TORCH_AT_LEAST(2, 4)
  o.useLibUV = false;
#endif
  return o;
}

}  // namespace compat
}  // namespace olmo
#endif  // OLMO_COMPAT_DIST
