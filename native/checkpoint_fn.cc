// checkpoint_fn.cc — the mechanism behind activation checkpointing (src/tensor/checkpoint.ts).
// TypeScript splits the forward into segments and drives the backward segment by segment (the
// forward/backward split); no JavaScript ever runs inside an autograd hook. What lives here:
//   - cut points: detached aliases that require grad, so the engine stops at a segment boundary
//     and accumulates the boundary's gradient into the alias's .grad (the segment's "mailbox");
//   - one engine call per segment: backward(segment outputs, their mailbox gradients);
//   - the state a recompute must reproduce: the default generators (CPU and each CUDA device used)
//     and the autocast settings at the first pass, applied around the recompute and then restored
//     (torch.utils.checkpoint's preserve_rng_state / autocast handling).
#include <torch/csrc/autograd/autograd.h>

#include <memory>
#include <mutex>
#include <vector>

#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

// The generator and autocast state at one point of the forward.
struct SavedState {
  at::Tensor cpu_rng;
  std::vector<std::pair<c10::DeviceIndex, at::Tensor>> cuda_rng;
  bool autocast_on[2] = {false, false};  // cpu, cuda
  at::ScalarType autocast_dtype[2] = {at::kBFloat16, at::kHalf};
  bool grad_enabled = false;
};

// Per-environment checkpoint state: captured states by handle, and the stack of states that a
// recompute replaced (restored on exit, innermost first).
struct CheckpointState {
  std::vector<std::unique_ptr<SavedState>> captured;  // handle -> state (null = free)
  std::vector<int32_t> free_handles;
  std::vector<SavedState> entered;
};

CheckpointState& ck(Napi::Env env) {
  Registry& r = reg(env);
  if (!r.checkpoint) r.checkpoint = std::make_shared<CheckpointState>();
  return *std::static_pointer_cast<CheckpointState>(r.checkpoint);
}

at::Tensor gen_get(const at::Device& d) {
  at::Generator g = at::globalContext().defaultGenerator(d);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}
void gen_set(const at::Device& d, const at::Tensor& st) {
  at::Generator g = at::globalContext().defaultGenerator(d);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(st);
}

// The current state, with the generators of the CUDA devices in `cuda`.
SavedState snapshot(const std::vector<c10::DeviceIndex>& cuda) {
  SavedState s;
  s.cpu_rng = gen_get(at::Device(at::kCPU));
  for (c10::DeviceIndex i : cuda) s.cuda_rng.emplace_back(i, gen_get(at::Device(at::kCUDA, i)));
  for (int k = 0; k < 2; ++k) {
    s.autocast_on[k] = compat::autocast_enabled(k == 1);
    s.autocast_dtype[k] = compat::autocast_dtype(k == 1);
  }
  s.grad_enabled = c10::GradMode::is_enabled();
  return s;
}

void apply(const SavedState& s, bool grad_enabled) {
  gen_set(at::Device(at::kCPU), s.cpu_rng);
  for (const auto& kv : s.cuda_rng) gen_set(at::Device(at::kCUDA, kv.first), kv.second);
  for (int k = 0; k < 2; ++k) {
    compat::set_autocast_enabled(k == 1, s.autocast_on[k]);
    compat::set_autocast_dtype(k == 1, s.autocast_dtype[k]);
  }
  c10::GradMode::set_enabled(grad_enabled);
}

std::vector<c10::DeviceIndex> arg_cuda_devices(Info info, size_t i) {
  std::vector<c10::DeviceIndex> out;
  for (int64_t d : arg_ints(info, i)) {
    if (d < 0) bad_arg(info.Env(), i, "CUDA device indexes (>= 0)");
    if (!at::hasCUDA()) throw_js(info.Env(), kArgument, "this libtorch has no CUDA");
    out.push_back(static_cast<c10::DeviceIndex>(d));
  }
  return out;
}

SavedState& arg_state(Info info, size_t i) {
  CheckpointState& c = ck(info.Env());
  const int64_t h = arg_int(info, i);
  if (h < 0 || h >= static_cast<int64_t>(c.captured.size()) || !c.captured[h])
    throw_js(info.Env(), kDisposed, "checkpoint state was released");
  return *c.captured[h];
}

// ckptShare(ids) -> ids: new handles to the same tensors (autograd history included), so the
// checkpoint tape owns what it needs independently of the caller's scopes.
Napi::Value share(Info info) { return put_all(info, arg_tensors(info, 0)); }

// ckptLeaves(ids, force) -> ids: one cut point per tensor. A tensor that requires grad (or, with
// force, any floating-point tensor) becomes a detached alias that requires grad: the engine stops
// there and accumulates the gradient into its .grad. Others are shared as they are.
Napi::Value leaves(Info info) {
  std::vector<at::Tensor> ts = arg_tensors(info, 0);
  const bool force = arg_bool(info, 1);
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const at::Tensor& t : ts) {
    if (t.requires_grad() || (force && at::isFloatingType(t.scalar_type()))) {
      at::Tensor d = t.detach();
      d.requires_grad_(true);
      out.push_back(std::move(d));
    } else {
      out.push_back(t);
    }
  }
  return put_all(info, out);
}

// ckptCapture(cudaDevices) -> handle: the generators (CPU + those CUDA devices) and autocast now.
Napi::Value capture(Info info) {
  CheckpointState& c = ck(info.Env());
  auto s = std::make_unique<SavedState>(snapshot(arg_cuda_devices(info, 0)));
  int32_t h;
  if (!c.free_handles.empty()) {
    h = c.free_handles.back();
    c.free_handles.pop_back();
    c.captured[h] = std::move(s);
  } else {
    h = static_cast<int32_t>(c.captured.size());
    c.captured.push_back(std::move(s));
  }
  return Napi::Number::New(info.Env(), h);
}

Napi::Value release(Info info) {
  CheckpointState& c = ck(info.Env());
  const int64_t h = arg_int(info, 0);
  if (h >= 0 && h < static_cast<int64_t>(c.captured.size()) && c.captured[h]) {
    c.captured[h].reset();
    c.free_handles.push_back(static_cast<int32_t>(h));
  }
  return info.Env().Undefined();
}

// ckptEnter(handle): the recompute's first-pass state goes in (generators, autocast), with grad
// mode on; the current state is saved for ckptExit. Autocast's cast cache lives for the recompute.
Napi::Value enter(Info info) {
  CheckpointState& c = ck(info.Env());
  const SavedState& s = arg_state(info, 0);
  std::vector<c10::DeviceIndex> cuda;
  for (const auto& kv : s.cuda_rng) cuda.push_back(kv.first);
  c.entered.push_back(snapshot(cuda));
  apply(s, /*grad_enabled=*/true);
  at::autocast::increment_nesting();
  return info.Env().Undefined();
}

// ckptExit(): back to the state before the matching ckptEnter (generators included, so a
// recompute never shifts the random stream of what follows).
Napi::Value exit_fn(Info info) {
  CheckpointState& c = ck(info.Env());
  if (c.entered.empty()) throw_js(info.Env(), kArgument, "ckptExit without a matching ckptEnter");
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  const SavedState s = std::move(c.entered.back());
  c.entered.pop_back();
  apply(s, s.grad_enabled);
  return info.Env().Undefined();
}

// ckptBackward(outputs, mailboxes) -> n: one engine call from a segment's outputs with the
// gradients accumulated in their cut points' .grad. Mailboxes are emptied first, so their memory
// goes as soon as the engine has used it; outputs without a gradient (unused) are skipped.
Napi::Value backward(Info info) {
  std::vector<at::Tensor> outs = arg_tensors(info, 0);
  std::vector<at::Tensor> boxes = arg_tensors(info, 1);
  if (outs.size() != boxes.size())
    throw_js(info.Env(), kArgument, "ckptBackward: " + std::to_string(outs.size()) + " outputs but " +
                                        std::to_string(boxes.size()) + " mailboxes");
  std::vector<at::Tensor> sel_out, sel_grad;
  for (size_t k = 0; k < outs.size(); ++k) {
    at::Tensor g = boxes[k].grad();
    if (!g.defined()) continue;
    boxes[k].mutable_grad().reset();
    if (!outs[k].requires_grad()) continue;
    sel_out.push_back(outs[k]);
    sel_grad.push_back(std::move(g));
  }
  if (!sel_out.empty()) torch::autograd::backward(sel_out, sel_grad, /*keep_graph=*/false);
  return Napi::Number::New(info.Env(), static_cast<double>(sel_out.size()));
}

// ckptDepth() -> number of recomputes entered and not yet exited (0 between steps).
Napi::Value depth(Info info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ck(info.Env()).entered.size()));
}

}  // namespace

void init_checkpoint(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("ckptShare", share);
  OLMO_EXPORT("ckptLeaves", leaves);
  OLMO_EXPORT("ckptCapture", capture);
  OLMO_EXPORT("ckptRelease", release);
  OLMO_EXPORT("ckptEnter", enter);
  OLMO_EXPORT("ckptExit", exit_fn);
  OLMO_EXPORT("ckptBackward", backward);
  OLMO_EXPORT("ckptDepth", depth);
}

}  // namespace olmo
