// fused_head.cc — the LM head and its loss as one autograd operation: logits = hidden @ W^T (+ b),
// times a scale, cross-entropy with an ignore index and OLMo's z-loss, taken chunk by chunk of rows,
// so the (tokens, vocab) logits never exist in float32 and their gradient never exists whole.
//
// The loss is a scalar, so its gradient is known in the forward pass: each chunk's softmax-minus-
// one-hot gradient is turned into the chunk's share of d hidden, d W and d b right away (the same
// three matmuls as the unfused head, nothing recomputed), and backward only scales them by the
// incoming gradient. Chunk size and when to use this are policy, decided in TypeScript.
#include <ATen/Parallel.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

/** What one call computes. */
struct HeadLossOpts {
  int64_t ignore_index = -100;
  double ce_weight = 1.0;    // loss = ce_weight · mean cross-entropy over the non-ignored targets
  double z_weight = 0.0;     //      + z_weight · mean logsumexp² over every row (ignored ones too)
  double scale = 1.0;        // logits = (hidden @ W^T + b) · scale
  int64_t chunk_rows = 1024; // rows of logits alive at a time
  bool cpu_kernel = true;    // false: the device-generic ATen path (what CUDA runs), on CPU too
  bool need_gh = false, need_gw = false, need_gb = false;
};

struct HeadLossOut {
  at::Tensor loss, ce, z;  // 0-dim float32
  at::Tensor gh, gw, gb;   // gradients of loss w.r.t. hidden, weight, bias (undefined when not needed)
};

// ------------------------------------------------------------------ CPU row kernel
// One row of logits: max, sum of exp, logsumexp, and (for training) the gradient written over the
// logits in place, in one pass each over a row that stays in L2. GCC vector extensions keep it
// portable; target_clones builds AVX-512 / AVX2 / baseline copies and picks one at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define OLMO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OLMO_CLONES
#endif

// The helpers below are always inlined into the cloned kernels, so passing 64-byte vectors by value
// never crosses a function boundary whose ABI depends on the ISA.
#pragma GCC diagnostic ignored "-Wpsabi"
#define OLMO_INLINE inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(64)));     // 16 floats
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));
typedef uint16_t vh __attribute__((vector_size(32)));  // 16 bfloat16 bit patterns
constexpr int64_t kW = 16;

OLMO_INLINE vf splat(float v) { return vf{} + v; }

OLMO_INLINE vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
OLMO_INLINE vf load(const c10::BFloat16* p) {
  vh h;
  std::memcpy(&h, p, sizeof h);
  return (vf)(__builtin_convertvector(h, vu) << 16);
}
OLMO_INLINE void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// float -> bfloat16, round to nearest even; NaN stays NaN (as c10::BFloat16 rounds).
OLMO_INLINE void store(c10::BFloat16* p, vf v) {
  const vu u = (vu)v;
  vu r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  r = (v != v) ? (vu{} + 0x7FC0u) : r;
  const vh h = __builtin_convertvector(r, vh);
  std::memcpy(p, &h, sizeof h);
}
template <typename T>
OLMO_INLINE vf load_tail(const T* p, int64_t n, float pad) {
  T tmp[kW];
  for (int64_t k = 0; k < kW; ++k) tmp[k] = k < n ? p[k] : T(pad);
  return load(tmp);
}
template <typename T>
OLMO_INLINE void store_tail(T* p, int64_t n, vf v) {
  T tmp[kW];
  store(tmp, v);
  for (int64_t k = 0; k < n; ++k) p[k] = tmp[k];
}
OLMO_INLINE float hsum(vf v) {
  float s = 0.f;
  for (int k = 0; k < kW; ++k) s += v[k];
  return s;
}
OLMO_INLINE float hmax(vf v) {
  float m = v[0];
  for (int k = 1; k < kW; ++k) m = v[k] > m ? v[k] : m;
  return m;
}

// exp(x) for x <= 0 (all this kernel needs): Cephes' expf range reduction and polynomial (~1 ulp),
// 0 below -87.3 (where float32 exp leaves the normal range); NaN stays NaN.
OLMO_INLINE vf vexp(vf x) {
  const vi under = x < splat(-87.3365f);
  x = under ? splat(-87.3365f) : x;
  const vf k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln 2)
  vf r = x - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  vf e = p * (r * r) + r + 1.0f;
  const vi ki = __builtin_convertvector(k, vi);
  e = e * (vf)((ki + 127) << 23);
  return under ? splat(0.f) : e;
}

/**
 * One row of logits x (V values before the scale s > 0): lse = logsumexp(s·x), yt = s·x[t] (0 when
 * t < 0, an ignored target). With `grad`, overwrites the row with d loss / d x =
 * s·(softmax·(cw + zc2·lse) − onehot(t)·cw), where cw is the row's cross-entropy weight (0 when
 * ignored) and zc2 = 2·z_weight/N. `e` is scratch for V floats: exp(s·x − max), kept from the sum
 * pass so the gradient pass only scales it.
 */
template <typename T>
OLMO_INLINE void row_body(T* row, int64_t V, int64_t t, float cw, float s, float zc2, bool grad, float* e,
                          float* lse, float* yt) {
  const int64_t Vv = V / kW * kW, rem = V - Vv;
  const float ninf = -std::numeric_limits<float>::infinity();
  vf mx = splat(ninf);
  for (int64_t j = 0; j < Vv; j += kW) {
    const vf v = load(row + j);
    mx = v > mx ? v : mx;
  }
  if (rem) {
    const vf v = load_tail(row + Vv, rem, ninf);
    mx = v > mx ? v : mx;
  }
  const float m = hmax(mx) * s;  // NaNs are skipped here but reach the sum below
  vf acc0 = splat(0.f), acc1 = splat(0.f);
  int64_t j = 0;
  for (; j + 2 * kW <= Vv; j += 2 * kW) {
    const vf e0 = vexp(load(row + j) * s - m), e1 = vexp(load(row + j + kW) * s - m);
    store(e + j, e0);
    store(e + j + kW, e1);
    acc0 += e0;
    acc1 += e1;
  }
  for (; j < Vv; j += kW) {
    const vf e0 = vexp(load(row + j) * s - m);
    store(e + j, e0);
    acc0 += e0;
  }
  if (rem) {
    const vf e0 = vexp(load_tail(row + Vv, rem, ninf) * s - m);
    store(e + Vv, e0);  // e has room for a whole vector past Vv
    acc1 += e0;
  }
  const float sum = hsum(acc0 + acc1);
  const float l = m + std::log(sum);
  const float y_t = t >= 0 ? static_cast<float>(row[t]) * s : 0.f;
  *lse = l;
  *yt = y_t;
  if (!grad) return;
  const float a = (cw + zc2 * l) * s;  // gradient = softmax · a − onehot · s·cw; softmax = e / sum
  const vf av = splat(a / sum);
  for (j = 0; j < Vv; j += kW) store(row + j, load(e + j) * av);
  if (rem) store_tail(row + Vv, rem, load(e + Vv) * av);
  if (t >= 0) row[t] = static_cast<T>(e[t] / sum * a - cw * s);
}

OLMO_CLONES void rows_bf16(c10::BFloat16* data, int64_t i0, int64_t i1, int64_t V, const int64_t* tgt, int64_t ignore,
                           const float* cw, float s, float zc2, bool grad, float* e, float* lse, float* yt) {
  for (int64_t i = i0; i < i1; ++i)
    row_body(data + i * V, V, tgt[i] == ignore ? -1 : tgt[i], cw[i], s, zc2, grad, e, lse + i, yt + i);
}
OLMO_CLONES void rows_f32(float* data, int64_t i0, int64_t i1, int64_t V, const int64_t* tgt, int64_t ignore,
                          const float* cw, float s, float zc2, bool grad, float* e, float* lse, float* yt) {
  for (int64_t i = i0; i < i1; ++i)
    row_body(data + i * V, V, tgt[i] == ignore ? -1 : tgt[i], cw[i], s, zc2, grad, e, lse + i, yt + i);
}

// lg (r, V) contiguous, float32 or bfloat16, on CPU; the others (r) contiguous.
void chunk_rows_cpu(at::Tensor& lg, const at::Tensor& tgt, const at::Tensor& cw, at::Tensor& lse, at::Tensor& yt,
                    int64_t ignore, double s, double zc2, bool grad) {
  const int64_t r = lg.size(0), V = lg.size(1);
  const int64_t* t = tgt.data_ptr<int64_t>();
  const float* w = cw.data_ptr<float>();
  float* l = lse.data_ptr<float>();
  float* y = yt.data_ptr<float>();
  const bool bf16 = lg.scalar_type() == at::kBFloat16;
  void* base = lg.data_ptr();
  at::parallel_for(0, r, 1, [&](int64_t i0, int64_t i1) {
    std::unique_ptr<float[]> e(new float[V + kW]);  // per thread: one row of exp(s·x − max)
    if (bf16) rows_bf16(static_cast<c10::BFloat16*>(base), i0, i1, V, t, ignore, w, float(s), float(zc2), grad, e.get(), l, y);
    else rows_f32(static_cast<float*>(base), i0, i1, V, t, ignore, w, float(s), float(zc2), grad, e.get(), l, y);
  });
}

// The same arithmetic with ATen ops, for any device (CUDA runs this): one float32 copy of the chunk.
void chunk_rows_aten(at::Tensor& lg, const at::Tensor& tidx, const at::Tensor& valid, const at::Tensor& cw,
                     at::Tensor& lse, at::Tensor& yt, double s, double zc2, bool grad) {
  at::Tensor y = lg.scalar_type() == at::kFloat ? lg : lg.to(at::kFloat);  // (r, V) float32
  if (s != 1.0) y.mul_(s);
  lse.copy_(at::logsumexp(y, {1}, false));
  yt.copy_(y.gather(1, tidx.unsqueeze(1)).squeeze(1).mul_(valid));
  if (!grad) return;
  y.sub_(lse.unsqueeze(1)).exp_();                      // softmax
  y.mul_(cw.add(lse, zc2).mul_(s).unsqueeze(1));        // · s(cw + zc2·lse)
  y.scatter_add_(1, tidx.unsqueeze(1), cw.mul(-s).unsqueeze(1));  // − s·cw at the target
  if (!y.is_same(lg)) lg.copy_(y);
}

HeadLossOut head_loss(const at::Tensor& hidden, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                      const at::Tensor& targets, const HeadLossOpts& o) {
  // Autocast decides the matmul dtype as it would for the unfused linear; then it is switched off
  // so the ops below run in exactly the dtypes chosen here (float32 for the loss).
  const bool cuda = hidden.is_cuda();
  const bool amp = compat::autocast_enabled(cuda);
  const at::ScalarType cdt = amp ? compat::autocast_dtype(cuda) : hidden.scalar_type();
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      c10::DispatchKeySet({c10::DispatchKey::AutocastCPU, c10::DispatchKey::AutocastCUDA}));

  const int64_t N = hidden.size(0), C = hidden.size(1), V = weight.size(0);
  const at::Tensor x = hidden.to(cdt).contiguous();  // (N, C)
  const at::Tensor w = weight.to(cdt).contiguous();  // (V, C)
  const at::Tensor wt = w.t();                       // (C, V)
  c10::optional<at::Tensor> b;
  if (bias) b = bias->to(cdt);
  const auto f32 = hidden.options().dtype(at::kFloat);

  const at::Tensor tg = targets.contiguous();
  const at::Tensor valid = tg.ne(o.ignore_index);                   // (N) bool
  const at::Tensor validf = valid.to(at::kFloat);
  const at::Tensor count = validf.sum();                            // non-ignored targets
  const at::Tensor tidx = tg.masked_fill(valid.logical_not(), 0);  // (N) a safe column
  // Per-row cross-entropy weight of the gradient; max(count, 1) keeps it 0 (not NaN) when every
  // target is ignored, as PyTorch's gradient is (its loss is NaN then, and so is ours).
  const at::Tensor cw = validf.mul(o.ce_weight).div_(count.clamp_min(1));
  const double zc2 = 2.0 * o.z_weight / static_cast<double>(N);
  const bool grad = o.need_gh || o.need_gw || o.need_gb;
  const bool kernel = o.cpu_kernel && hidden.device().is_cpu() && (cdt == at::kFloat || cdt == at::kBFloat16);

  at::Tensor lse = at::empty({N}, f32), yt = at::empty({N}, f32);
  HeadLossOut out;
  if (o.need_gh) out.gh = at::empty({N, C}, x.options());
  at::Tensor gw_chunk;  // (V, C) in cdt, when d W accumulates in a wider dtype
  const int64_t R = std::max<int64_t>(1, std::min(o.chunk_rows, N));
  at::Tensor buf = at::empty({R, V}, x.options());  // (R, V): a chunk's logits, then their gradient
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t r = std::min(R, N - r0);
    at::Tensor lg = buf.narrow(0, 0, r);  // (r, V)
    const at::Tensor xc = x.narrow(0, r0, r);  // (r, C)
    if (b) at::addmm_out(lg, *b, xc, wt); else at::mm_out(lg, xc, wt);
    at::Tensor lse_c = lse.narrow(0, r0, r), yt_c = yt.narrow(0, r0, r);
    const at::Tensor cw_c = cw.narrow(0, r0, r);
    if (kernel) chunk_rows_cpu(lg, tg.narrow(0, r0, r), cw_c, lse_c, yt_c, o.ignore_index, o.scale, zc2, grad);
    else chunk_rows_aten(lg, tidx.narrow(0, r0, r), validf.narrow(0, r0, r), cw_c, lse_c, yt_c, o.scale, zc2, grad);
    if (!grad) continue;
    // lg now holds d loss / d (hidden @ W^T + b) for these rows.
    if (o.need_gh) {
      at::Tensor gh_c = out.gh.narrow(0, r0, r);
      at::mm_out(gh_c, lg, w);  // (r, V) @ (V, C)
    }
    if (o.need_gw) {
      const at::Tensor lgt = lg.t();  // (V, r)
      if (weight.scalar_type() == cdt) {
        if (r0 == 0) out.gw = at::mm(lgt, xc); else out.gw.addmm_(lgt, xc);
      } else {
        if (!gw_chunk.defined()) gw_chunk = at::empty({V, C}, x.options());
        at::mm_out(gw_chunk, lgt, xc);
        if (r0 == 0) out.gw = gw_chunk.to(weight.scalar_type()); else out.gw.add_(gw_chunk);
      }
    }
    if (o.need_gb) {
      at::Tensor s = lg.sum(at::IntArrayRef{0}, false, at::kFloat);  // (V)
      if (r0 == 0) out.gb = s; else out.gb.add_(s);
    }
  }
  buf.reset();
  if (out.gh.defined()) out.gh = out.gh.to(hidden.scalar_type());
  if (out.gb.defined()) out.gb = out.gb.to(bias->scalar_type());
  // ce = ce_weight · Σ_valid (lse − y_t) / count; z = z_weight · Σ lse² / N
  out.ce = at::where(valid, lse - yt, at::zeros({}, f32)).sum().div(count).mul(o.ce_weight);
  out.z = o.z_weight != 0.0 ? lse.square().sum().mul(o.z_weight / static_cast<double>(N)) : at::zeros({}, f32);
  out.loss = out.ce + out.z;
  return out;
}

// ------------------------------------------------------------------ autograd
struct HeadLossFunction : public torch::autograd::Function<HeadLossFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                                const at::Tensor& targets, const HeadLossOpts& o) {
    HeadLossOut r = head_loss(hidden, weight, bias, targets, o);
    ctx->saved_data["gh"] = r.gh;
    ctx->saved_data["gw"] = r.gw;
    ctx->saved_data["gb"] = r.gb;
    ctx->saved_data["has_bias"] = bias.has_value();
    ctx->mark_non_differentiable({r.ce, r.z});
    return {r.loss, r.ce, r.z};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(ctx->saved_data.count("gh"),
                "fused LM head loss: backward ran twice (its gradients are computed once, in the forward pass)");
    const at::Tensor& g = grads[0];  // d out / d loss, a scalar
    // On CPU a gradient of exactly 1 (the usual loss.backward()) hands the tensors over without a
    // pass over them; they are released from the context so autograd can adopt them as .grad.
    const bool one = g.device().is_cpu() && g.numel() == 1 && g.item<double>() == 1.0;
    auto take = [&](const char* k) {
      const at::IValue& v = ctx->saved_data[k];
      at::Tensor t = v.isTensor() ? v.toTensor() : at::Tensor();
      ctx->saved_data.erase(k);
      if (t.defined() && !one) t = t * g.to(t.scalar_type());
      return t;
    };
    at::Tensor gh = take("gh"), gw = take("gw"), gb = take("gb");
    // One entry per forward argument: hidden, weight, bias, targets, options.
    return {gh, gw, gb, at::Tensor(), at::Tensor()};
  }
};

// headLoss(hidden (N, C), weight (V, C), bias (V)|-1, targets (N) int64, ignoreIndex, ceWeight,
//          zWeight, scale, chunkRows, cpuKernel) -> [loss, ce, z]
Napi::Value head_loss_entry(Info info) {
  Napi::Env env = info.Env();
  const at::Tensor& hidden = arg_tensor(info, 0);
  const at::Tensor& weight = arg_tensor(info, 1);
  const c10::optional<at::Tensor> bias = arg_opt_tensor(info, 2);
  const at::Tensor& targets = arg_tensor(info, 3);
  HeadLossOpts o;
  o.ignore_index = arg_int(info, 4);
  o.ce_weight = arg_num(info, 5);
  o.z_weight = arg_num(info, 6);
  o.scale = arg_num(info, 7);
  o.chunk_rows = arg_int(info, 8);
  o.cpu_kernel = arg_bool(info, 9);
  auto shape = [](const at::Tensor& t) {
    std::string s = "[";
    for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
    return s + "]";
  };
  if (hidden.dim() != 2) throw_js(env, kShape, "headLoss: hidden must be (tokens, d_model), got shape " + shape(hidden));
  if (weight.dim() != 2 || weight.size(1) != hidden.size(1))
    throw_js(env, kShape, "headLoss: weight must be (vocab, " + std::to_string(hidden.size(1)) + "), got shape " + shape(weight));
  if (bias && (bias->dim() != 1 || bias->size(0) != weight.size(0)))
    throw_js(env, kShape, "headLoss: bias must be (" + std::to_string(weight.size(0)) + "), got shape " + shape(*bias));
  if (targets.dim() != 1 || targets.size(0) != hidden.size(0))
    throw_js(env, kShape, "headLoss: targets must be (" + std::to_string(hidden.size(0)) + "), got shape " + shape(targets));
  if (targets.scalar_type() != at::kLong) throw_js(env, kDType, "headLoss: targets must be int64");
  if (!at::isFloatingType(hidden.scalar_type()) || !at::isFloatingType(weight.scalar_type()))
    throw_js(env, kDType, "headLoss: hidden and weight must be floating point");
  if (hidden.device() != weight.device() || targets.device() != hidden.device() || (bias && bias->device() != hidden.device()))
    throw_js(env, kArgument, "headLoss: hidden, weight, bias and targets must be on one device");
  const bool amp = compat::autocast_enabled(hidden.is_cuda());
  if (!amp && (weight.scalar_type() != hidden.scalar_type() || (bias && bias->scalar_type() != hidden.scalar_type())))
    throw_js(env, kDType, "headLoss: hidden, weight and bias must have one dtype outside autocast");
  if (hidden.size(0) == 0) throw_js(env, kShape, "headLoss: no tokens (hidden has 0 rows)");
  if (o.chunk_rows < 1) bad_arg(env, 8, "a positive number of rows per chunk");
  if (!(o.scale > 0) || !std::isfinite(o.scale)) bad_arg(env, 7, "a positive finite scale");
  {  // out-of-range targets would read outside the logits: a readable error instead
    c10::impl::ExcludeDispatchKeyGuard no_autocast(
        c10::DispatchKeySet({c10::DispatchKey::AutocastCPU, c10::DispatchKey::AutocastCUDA}));
    const at::Tensor bad = targets.ne(o.ignore_index).logical_and_(targets.lt(0).logical_or_(targets.ge(weight.size(0))));
    if (bad.any().item<bool>()) {  // SYNC on CUDA
      const int64_t v = targets.masked_select(bad)[0].item<int64_t>();
      throw_js(env, kIndex, "headLoss: target " + std::to_string(v) + " is out of range for " + std::to_string(weight.size(0)) +
                                " logits (ignore index " + std::to_string(o.ignore_index) + ")");
    }
  }
  const bool any_grad = hidden.requires_grad() || weight.requires_grad() || (bias && bias->requires_grad());
  if (c10::GradMode::is_enabled() && any_grad) {
    o.need_gh = hidden.requires_grad();
    o.need_gw = weight.requires_grad();
    o.need_gb = bias && bias->requires_grad();
    return put_all(info, HeadLossFunction::apply(hidden, weight, bias, targets, o));
  }
  HeadLossOut r = head_loss(hidden, weight, bias, targets, o);
  return put_all(info, {r.loss, r.ce, r.z});
}

}  // namespace

void init_fused_head(Napi::Env env, Napi::Object exports) { OLMO_EXPORT("headLoss", head_loss_entry); }

}  // namespace olmo
