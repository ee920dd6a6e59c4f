// checkpoint_fn.cc — the mechanism behind activation checkpointing (src/tensor/checkpoint.ts).
// TypeScript splits the forward into segments and drives the backward segment by segment (the
// forward/backward split); no JavaScript ever runs inside an autograd hook. What lives here:
//   - cut points: aliases whose grad_fn is a Mailbox, a custom autograd node with no next edges:
//     the engine stops there and the node keeps the gradient that reached each alias, summed
//     over engine calls. It holds no tensor data, so an alias nobody else needs is freed;
//   - one engine call per segment: backward(segment outputs, their mailbox gradients);
//   - the state a recompute must reproduce: the default generators (CPU and each CUDA device used)
//     and the autocast settings at the first pass, applied around the recompute and then restored
//     (torch.utils.checkpoint's preserve_rng_state / autocast handling).
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

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

// The sink of a cut: input i is the gradient of cut point i. The engine calls apply() once per
// backward that reaches it (with undefined tensors for cut points it did not reach).
struct Mailbox final : torch::autograd::Node {
  std::vector<at::Tensor> grads;
  std::mutex mu;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& in) override {
    std::lock_guard<std::mutex> lock(mu);
    if (grads.size() < in.size()) grads.resize(in.size());
    for (size_t k = 0; k < in.size(); ++k) {
      if (!in[k].defined()) continue;
      // Out of place: the engine's buffer may be shared; the sum of two gradients is the same
      // either way (a leaf's AccumulateGrad adds in place).
      grads[k] = grads[k].defined() ? grads[k] + in[k] : std::move(in[k]);
    }
    return {};
  }
  std::string name() const override { return "olmo::CheckpointMailbox"; }
};

// Per-environment checkpoint state: captured states and mailboxes by handle, and the stack of
// states that a recompute replaced (restored on exit, innermost first).
struct CheckpointState {
  std::vector<std::unique_ptr<SavedState>> captured;  // handle -> state (null = free)
  std::vector<int32_t> free_handles;
  std::vector<std::shared_ptr<Mailbox>> boxes;         // handle -> mailbox (null = free)
  std::vector<int32_t> free_boxes;
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

std::shared_ptr<Mailbox>& arg_box(Info info, size_t i) {
  CheckpointState& c = ck(info.Env());
  const int64_t h = arg_int(info, i);
  if (h < 0 || h >= static_cast<int64_t>(c.boxes.size()) || !c.boxes[h])
    throw_js(info.Env(), kDisposed, "checkpoint mailbox was released");
  return c.boxes[h];
}

// ckptShare(ids) -> ids: new handles to the same tensors (autograd history included), so the
// checkpoint tape owns what it needs independently of the caller's scopes.
Napi::Value share(Info info) { return put_all(info, arg_tensors(info, 0)); }

// ckptCut(ids) -> [box, id...]: one mailbox for all the tensors, and for each a cut point: an alias
// (same storage) whose grad_fn is input k of the mailbox. Floating-point tensors only.
Napi::Value cut(Info info) {
  std::vector<at::Tensor> ts = arg_tensors(info, 0);
  auto box = std::make_shared<Mailbox>();
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (size_t k = 0; k < ts.size(); ++k) {
    if (!at::isFloatingType(ts[k].scalar_type()))
      throw_js(info.Env(), kDType, "a cut point must be a floating-point tensor (tensor " + std::to_string(k) + ")");
    at::Tensor d = ts[k].detach();
    torch::autograd::create_gradient_edge(d, box);
    out.push_back(std::move(d));
  }
  CheckpointState& c = ck(info.Env());
  int32_t h;
  if (!c.free_boxes.empty()) {
    h = c.free_boxes.back();
    c.free_boxes.pop_back();
    c.boxes[h] = box;
  } else {
    h = static_cast<int32_t>(c.boxes.size());
    c.boxes.push_back(box);
  }
  Napi::Env env = info.Env();
  Napi::Array res = Napi::Array::New(env, out.size() + 1);
  res.Set(0u, Napi::Number::New(env, h));
  Registry& r = reg(env);
  for (size_t k = 0; k < out.size(); ++k) res.Set(static_cast<uint32_t>(k + 1), Napi::Number::New(env, store(r, out[k])));
  return res;
}

// ckptBoxHasGrad(box) -> whether any cut point of the mailbox received a gradient.
Napi::Value box_has_grad(Info info) {
  std::shared_ptr<Mailbox>& box = arg_box(info, 0);
  std::lock_guard<std::mutex> lock(box->mu);
  bool any = false;
  for (const at::Tensor& g : box->grads) any = any || g.defined();
  return Napi::Boolean::New(info.Env(), any);
}

Napi::Value box_release(Info info) {
  CheckpointState& c = ck(info.Env());
  const int64_t h = arg_int(info, 0);
  if (h >= 0 && h < static_cast<int64_t>(c.boxes.size()) && c.boxes[h]) {
    c.boxes[h].reset();
    c.free_boxes.push_back(static_cast<int32_t>(h));
  }
  return info.Env().Undefined();
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

// ckptBackward(outputs, box) -> n: one engine call from a segment's outputs with the gradients
// their cut points' mailbox received. The mailbox is emptied first, so its memory goes as soon as
// the engine has used it; outputs without a gradient (unused) are skipped.
Napi::Value backward(Info info) {
  std::vector<at::Tensor> outs = arg_tensors(info, 0);
  std::shared_ptr<Mailbox> box = arg_box(info, 1);
  std::vector<at::Tensor> grads;
  {
    std::lock_guard<std::mutex> lock(box->mu);
    grads = std::move(box->grads);
    box->grads.clear();
  }
  if (grads.size() > outs.size())
    throw_js(info.Env(), kArgument, "ckptBackward: " + std::to_string(outs.size()) + " outputs for a mailbox of " +
                                        std::to_string(box->num_inputs()));
  std::vector<at::Tensor> sel_out, sel_grad;
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k].defined() || !outs[k].requires_grad()) continue;
    sel_out.push_back(outs[k]);
    sel_grad.push_back(std::move(grads[k]));
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
  OLMO_EXPORT("ckptCut", cut);
  OLMO_EXPORT("ckptBoxHasGrad", box_has_grad);
  OLMO_EXPORT("ckptBoxRelease", box_release);
  OLMO_EXPORT("ckptCapture", capture);
  OLMO_EXPORT("ckptRelease", release);
  OLMO_EXPORT("ckptEnter", enter);
  OLMO_EXPORT("ckptExit", exit_fn);
  OLMO_EXPORT("ckptBackward", backward);
  OLMO_EXPORT("ckptDepth", depth);
}

}  // namespace olmo
