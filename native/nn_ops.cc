// nn_ops.cc — the neural-network ops a transformer needs: matmul/linear, activations that take
// options, softmax family, norms, embedding, cross-entropy, dropout and fused attention.
#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

c10::optional<at::ScalarType> opt_dtype(Info info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull() || (v.IsNumber() && v.As<Napi::Number>().Int32Value() < 0)) return c10::nullopt;
  return arg_dtype(info, i);
}

Napi::Value matmul(Info info) { return put(info, at::matmul(arg_tensor(info, 0), arg_tensor(info, 1))); }
// linear(x, weight, bias|-1): x @ weight^T + bias
Napi::Value linear(Info info) {
  return put(info, at::linear(arg_tensor(info, 0), arg_tensor(info, 1), arg_opt_tensor(info, 2)));
}
// softmax(id, dim, dtype|-1) / logSoftmax
Napi::Value softmax(Info info) { return put(info, at::softmax(arg_tensor(info, 0), arg_int(info, 1), opt_dtype(info, 2))); }
Napi::Value log_softmax(Info info) {
  return put(info, at::log_softmax(arg_tensor(info, 0), arg_int(info, 1), opt_dtype(info, 2)));
}
// logsumexp(id, dims, keepdim)
Napi::Value logsumexp(Info info) {
  std::vector<int64_t> dims = info[1].IsNumber() ? std::vector<int64_t>{arg_int(info, 1)} : arg_ints(info, 1);
  return put(info, at::logsumexp(arg_tensor(info, 0), dims, arg_bool(info, 2)));
}
// layerNorm(x, normalizedShape, weight|-1, bias|-1, eps)
Napi::Value layer_norm(Info info) {
  return put(info, at::layer_norm(arg_tensor(info, 0), arg_ints(info, 1), arg_opt_tensor(info, 2),
                                  arg_opt_tensor(info, 3), arg_num(info, 4)));
}
// rmsNorm(x, weight|-1, bias|-1, eps): normalises over the last dim in fp32, returns x's dtype,
// then applies weight (and bias) — the arithmetic of OLMo's RMSLayerNorm.
Napi::Value rms_norm(Info info) {
  const at::Tensor& x = arg_tensor(info, 0);
  const auto w = arg_opt_tensor(info, 1);
  const auto b = arg_opt_tensor(info, 2);
  const double eps = arg_num(info, 3);
  const at::Tensor x32 = x.to(at::kFloat);
  const at::Tensor var = x32.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor y = (x32 * at::rsqrt(var + eps)).to(x.scalar_type());
  if (w) y = b ? at::add(at::mul(*w, y), *b) : at::mul(*w, y);
  return put(info, std::move(y));
}
Napi::Value embedding(Info info) { return put(info, at::embedding(arg_tensor(info, 0), arg_tensor(info, 1))); }
// crossEntropy(logits (N, C), target (N), ignoreIndex, reduction 0 none|1 mean|2 sum, labelSmoothing)
Napi::Value cross_entropy(Info info) {
  const int64_t red = arg_int(info, 3);
  if (red < 0 || red > 2) bad_arg(info.Env(), 3, "a reduction code (0 none, 1 mean, 2 sum)");
  return put(info, at::cross_entropy_loss(arg_tensor(info, 0), arg_tensor(info, 1), /*weight=*/{}, red,
                                          arg_int(info, 2), arg_num(info, 4)));
}
// dropout(x, p, train) — uses the default generator
Napi::Value dropout(Info info) { return put(info, at::dropout(arg_tensor(info, 0), arg_num(info, 1), arg_bool(info, 2))); }
// sdpa(q, k, v, mask|-1, dropoutP, isCausal); q, k, v: (B, nh, T, hs)
Napi::Value sdpa(Info info) {
  return put(info, compat::scaled_dot_product_attention(arg_tensor(info, 0), arg_tensor(info, 1), arg_tensor(info, 2),
                                                        arg_opt_tensor(info, 3), arg_num(info, 4), arg_bool(info, 5)));
}

}  // namespace

void init_nn_ops(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("matmul", matmul);
  OLMO_EXPORT("linear", linear);
  OLMO_EXPORT("softmax", softmax);
  OLMO_EXPORT("logSoftmax", log_softmax);
  OLMO_EXPORT("logsumexp", logsumexp);
  OLMO_EXPORT("layerNorm", layer_norm);
  OLMO_EXPORT("rmsNorm", rms_norm);
  OLMO_EXPORT("embedding", embedding);
  OLMO_EXPORT("crossEntropy", cross_entropy);
  OLMO_EXPORT("dropout", dropout);
  OLMO_EXPORT("sdpa", sdpa);
}

}  // namespace olmo
