// optim.cc — optimizer inner loops over a whole parameter list in one call (AdamW, LionW),
// per-parameter gradient norms and gradient scaling for clipping. Policy (groups, schedules,
// clipping rules, state layout) stays in TypeScript: src/optim/.
#include <cmath>

#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

std::vector<double> arg_doubles(Info info, size_t i, size_t n) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    bad_arg(info.Env(), i, "a Float64Array");
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  if (a.ElementLength() != n) bad_arg(info.Env(), i, "a Float64Array with one value per parameter");
  return std::vector<double>(a.Data(), a.Data() + n);
}

// adamwStep(params, expAvgs, expAvgSqs, steps, lrs, wds, beta1, beta2, eps) -> number updated.
// steps/lrs/wds: Float64Array, one entry per param; steps[i] is incremented in place for every
// param that has a grad (torch keeps the step per parameter and skips params whose grad is None).
// The arithmetic and its order are torch 1.13's single-tensor AdamW, so results match
// torch.optim.AdamW bit for bit on the same libtorch. Params without a grad are skipped.
Napi::Value adamw_step(Info info) {
  const std::vector<at::Tensor> ps = arg_tensors(info, 0);
  const std::vector<at::Tensor> ms = arg_tensors(info, 1);
  const std::vector<at::Tensor> vs = arg_tensors(info, 2);
  const size_t n = ps.size();
  if (ms.size() != n || vs.size() != n) throw_js(info.Env(), kArgument, "adamwStep: state lists must match the params");
  arg_doubles(info, 3, n);  // validates
  double* steps = info[3].As<Napi::Float64Array>().Data();
  const auto lrs = arg_doubles(info, 4, n), wds = arg_doubles(info, 5, n);
  const double beta1 = arg_num(info, 6), beta2 = arg_num(info, 7), eps = arg_num(info, 8);
  at::NoGradGuard no_grad;
  int updated = 0;
  for (size_t i = 0; i < n; ++i) {
    at::Tensor p = ps[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor m = ms[i], v = vs[i];
    steps[i] += 1;
    p.mul_(1 - lrs[i] * wds[i]);
    m.mul_(beta1).add_(g, 1 - beta1);
    v.mul_(beta2).addcmul_(g, g, 1 - beta2);
    const double bc1 = 1 - std::pow(beta1, steps[i]);
    const double bc2 = 1 - std::pow(beta2, steps[i]);
    const double step_size = lrs[i] / bc1;
    const at::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(eps);
    p.addcdiv_(m, denom, -step_size);
    ++updated;
  }
  return Napi::Number::New(info.Env(), updated);
}

// lionStep(params, expAvgs, lrs, wds, beta1, beta2) -> [dot(update, sign(update)), |update|², |sign|²]
// as OLMo's LionW (decoupled decay, sign update, then momentum update), for its update_cos_sim metric.
Napi::Value lion_step(Info info) {
  const std::vector<at::Tensor> ps = arg_tensors(info, 0);
  const std::vector<at::Tensor> ms = arg_tensors(info, 1);
  const size_t n = ps.size();
  if (ms.size() != n) throw_js(info.Env(), kArgument, "lionStep: state list must match the params");
  const auto lrs = arg_doubles(info, 2, n), wds = arg_doubles(info, 3, n);
  const double beta1 = arg_num(info, 4), beta2 = arg_num(info, 5);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> dots, norms, snorms;
  for (size_t i = 0; i < n; ++i) {
    at::Tensor p = ps[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor m = ms[i];
    p.mul_(1 - lrs[i] * wds[i]);
    const at::Tensor update = m * beta1 + g * (1 - beta1);
    const at::Tensor signed_update = at::sign(update);
    p.add_(signed_update, -lrs[i]);
    m.mul_(beta2).add_(g, 1 - beta2);
    dots.push_back(at::sum(update.to(at::kFloat) * signed_update.to(at::kFloat)));
    norms.push_back(at::linalg_vector_norm(update, 2, c10::nullopt, false, at::kFloat));
    snorms.push_back(at::linalg_vector_norm(signed_update, 2, c10::nullopt, false, at::kFloat));
  }
  double out[3] = {0, 0, 0};
  if (!dots.empty()) {
    const at::Tensor r = at::stack({at::stack(dots).sum(), at::stack(norms).pow(2).sum(), at::stack(snorms).pow(2).sum()})
                             .to(at::kCPU, at::kDouble);  // SYNC
    for (int k = 0; k < 3; ++k) out[k] = r[k].item<double>();
  }
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, 3);
  for (uint32_t k = 0; k < 3; ++k) a.Set(k, Napi::Number::New(env, out[k]));
  return a;
}

// gradNorms(params) -> Float64Array of per-parameter L2 norms of .grad computed in float32
// (0 for a param without grad), with one device->host copy for the whole list. // SYNC
Napi::Value grad_norms(Info info) {
  const std::vector<at::Tensor> ps = arg_tensors(info, 0);
  Napi::Env env = info.Env();
  Napi::Float64Array out = Napi::Float64Array::New(env, ps.size());
  std::vector<at::Tensor> norms;
  std::vector<size_t> where;
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < ps.size(); ++i) {
    out[i] = 0;
    const at::Tensor& g = ps[i].grad();
    if (!g.defined() || g.numel() == 0) continue;
    norms.push_back(at::linalg_vector_norm(g, 2, c10::nullopt, false, at::kFloat));
    where.push_back(i);
  }
  if (!norms.empty()) {
    const at::Tensor host = at::stack(norms).to(at::kCPU, at::kDouble).contiguous();
    const double* d = host.data_ptr<double>();
    for (size_t k = 0; k < where.size(); ++k) out[where[k]] = d[k];
  }
  return out;
}

// scaleGrads(params, coefs: Float64Array) — grad *= coef, per param (skips params without grad).
Napi::Value scale_grads(Info info) {
  const std::vector<at::Tensor> ps = arg_tensors(info, 0);
  const auto coefs = arg_doubles(info, 1, ps.size());
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < ps.size(); ++i) {
    at::Tensor g = ps[i].grad();
    if (g.defined()) g.mul_(coefs[i]);
  }
  return info.Env().Undefined();
}

// allFinite(ids) -> index of the first tensor holding a NaN/inf, or -1. // SYNC
Napi::Value first_non_finite(Info info) {
  const std::vector<at::Tensor> ts = arg_tensors(info, 0);
  if (ts.empty()) return Napi::Number::New(info.Env(), -1);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> flags;
  for (const at::Tensor& t : ts) flags.push_back(t.defined() && t.numel() ? at::isfinite(t).all().logical_not() : at::zeros({}, at::kBool));
  const at::Tensor host = at::stack(flags).to(at::kCPU).contiguous();
  const bool* d = host.data_ptr<bool>();
  for (size_t i = 0; i < ts.size(); ++i)
    if (d[i]) return Napi::Number::New(info.Env(), static_cast<double>(i));
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace

void init_optim(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("adamwStep", adamw_step);
  OLMO_EXPORT("lionStep", lion_step);
  OLMO_EXPORT("gradNorms", grad_norms);
  OLMO_EXPORT("scaleGrads", scale_grads);
  OLMO_EXPORT("firstNonFinite", first_non_finite);
}

}  // namespace olmo
