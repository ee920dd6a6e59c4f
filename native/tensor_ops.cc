// tensor_ops.cc — tensor creation, host transfer, queries, views/shape ops, elementwise math and
// reductions. Each function reads ids, calls one ATen op, stores the result: no policy here.
#include <cstring>

#include "registry.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;

c10::optional<at::Generator> arg_gen(Info info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  const int64_t id = arg_int(info, i);
  if (id < 0) return c10::nullopt;
  Registry& r = reg(info.Env());
  if (id >= static_cast<int64_t>(r.gens.size()) || !r.gens[id].defined())
    throw_js(info.Env(), kDisposed, "generator was disposed");
  return r.gens[id];
}

at::TensorOptions opts(Info info, size_t dtype_i, size_t device_i) {
  return at::TensorOptions().dtype(arg_dtype(info, dtype_i)).device(arg_device(info, device_i));
}

// ---------------------------------------------------------------- creation
// fromArray(typedArray, shape, dtype, device). Uint16Array into bf16/fp16 copies raw bits.
Napi::Value from_array(Info info) {
  if (!info[0].IsTypedArray()) bad_arg(info.Env(), 0, "a typed array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  const std::vector<int64_t> shape = arg_ints(info, 1);
  const at::ScalarType dst = arg_dtype(info, 2);
  const at::Device dev = arg_device(info, 3);
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) throw_js(info.Env(), kShape, "negative dimension in shape");
    numel *= s;
  }
  if (static_cast<int64_t>(ta.ElementLength()) != numel)
    throw_js(info.Env(), kShape,
             "data has " + std::to_string(ta.ElementLength()) + " elements but shape needs " + std::to_string(numel));
  void* data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  at::Tensor t;
  const auto cpu = at::TensorOptions().device(at::kCPU);
  switch (ta.TypedArrayType()) {
    case napi_float32_array: t = at::from_blob(data, shape, cpu.dtype(at::kFloat)).clone(); break;
    case napi_float64_array: t = at::from_blob(data, shape, cpu.dtype(at::kDouble)).clone(); break;
    case napi_int32_array: t = at::from_blob(data, shape, cpu.dtype(at::kInt)).clone(); break;
    case napi_int16_array: t = at::from_blob(data, shape, cpu.dtype(at::kShort)).clone(); break;
    case napi_int8_array: t = at::from_blob(data, shape, cpu.dtype(at::kChar)).clone(); break;
    case napi_uint8_array:
    case napi_uint8_clamped_array: t = at::from_blob(data, shape, cpu.dtype(at::kByte)).clone(); break;
    case napi_bigint64_array: t = at::from_blob(data, shape, cpu.dtype(at::kLong)).clone(); break;
    case napi_uint16_array:
      if (dst == at::kBFloat16 || dst == at::kHalf) {
        t = at::from_blob(data, shape, cpu.dtype(dst)).clone();
      } else {  // widen: libtorch 1.13 has no uint16
        t = at::empty(shape, cpu.dtype(at::kInt));
        const uint16_t* src = static_cast<const uint16_t*>(data);
        int32_t* out = t.data_ptr<int32_t>();
        for (int64_t k = 0; k < numel; ++k) out[k] = src[k];
      }
      break;
    case napi_uint32_array: {
      t = at::empty(shape, cpu.dtype(at::kLong));
      const uint32_t* src = static_cast<const uint32_t*>(data);
      int64_t* out = t.data_ptr<int64_t>();
      for (int64_t k = 0; k < numel; ++k) out[k] = src[k];
      break;
    }
    default: bad_arg(info.Env(), 0, "a supported typed array");
  }
  if (t.scalar_type() != dst || !dev.is_cpu()) t = t.to(dev, dst);
  return put(info, std::move(t));
}

// toArray(id) -> typed array matching the dtype (bf16/fp16 as raw Uint16Array bits). // SYNC
Napi::Value to_array(Info info) {
  Napi::Env env = info.Env();
  at::Tensor t = arg_tensor(info, 0).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  const size_t n = static_cast<size_t>(t.numel());
  const size_t bytes = n * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  napi_typedarray_type tt;
  switch (t.scalar_type()) {
    case at::kFloat: tt = napi_float32_array; break;
    case at::kDouble: tt = napi_float64_array; break;
    case at::kHalf:
    case at::kBFloat16: tt = napi_uint16_array; break;
    case at::kLong: tt = napi_bigint64_array; break;
    case at::kInt: tt = napi_int32_array; break;
    case at::kByte:
    case at::kBool: tt = napi_uint8_array; break;
    default: throw_js(env, kDType, "unsupported dtype for host copy");
  }
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, tt, n, buf, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

// item(id) -> number (bool tensors give booleans). // SYNC
Napi::Value item(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  if (t.numel() != 1)
    throw_js(info.Env(), kShape, "item() needs a tensor with one element, got " + std::to_string(t.numel()));
  const at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  return Napi::Number::New(info.Env(), s.toDouble());
}

Napi::Value empty(Info info) { return put(info, at::empty(arg_ints(info, 0), opts(info, 1, 2))); }
Napi::Value zeros(Info info) { return put(info, at::zeros(arg_ints(info, 0), opts(info, 1, 2))); }
Napi::Value ones(Info info) { return put(info, at::ones(arg_ints(info, 0), opts(info, 1, 2))); }
Napi::Value full(Info info) {
  const at::TensorOptions o = opts(info, 2, 3);
  at::Tensor like = at::empty({0}, o);
  return put(info, at::full(arg_ints(info, 0), arg_scalar(info, 1, like), o));
}
// arange(start, end, step, dtype, device)
Napi::Value arange(Info info) {
  return put(info, at::arange(arg_num(info, 0), arg_num(info, 1), arg_num(info, 2), opts(info, 3, 4)));
}
Napi::Value randn(Info info) { return put(info, at::randn(arg_ints(info, 0), arg_gen(info, 3), opts(info, 1, 2))); }
Napi::Value rand(Info info) { return put(info, at::rand(arg_ints(info, 0), arg_gen(info, 3), opts(info, 1, 2))); }
// randint(low, high, shape, dtype, device, gen)
Napi::Value randint(Info info) {
  return put(info, at::randint(arg_int(info, 0), arg_int(info, 1), arg_ints(info, 2), arg_gen(info, 5), opts(info, 3, 4)));
}
Napi::Value randperm(Info info) { return put(info, at::randperm(arg_int(info, 0), arg_gen(info, 3), opts(info, 1, 2))); }

// ---------------------------------------------------------------- in-place init and writes
Napi::Value uniform_(Info info) {
  arg_tensor(info, 0).uniform_(arg_num(info, 1), arg_num(info, 2), arg_gen(info, 3));
  return info.Env().Undefined();
}
Napi::Value normal_(Info info) {
  arg_tensor(info, 0).normal_(arg_num(info, 1), arg_num(info, 2), arg_gen(info, 3));
  return info.Env().Undefined();
}
Napi::Value fill_(Info info) {
  at::Tensor& t = arg_tensor(info, 0);
  t.fill_(arg_scalar(info, 1, t));
  return info.Env().Undefined();
}
Napi::Value zero_(Info info) {
  arg_tensor(info, 0).zero_();
  return info.Env().Undefined();
}
Napi::Value copy_(Info info) {
  arg_tensor(info, 0).copy_(arg_tensor(info, 1));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- queries
Napi::Value shape(Info info) {
  const at::Tensor& t = arg_tensor_meta(info, 0);
  Napi::Env env = info.Env();
  const auto s = t.sizes();
  Napi::Array a = Napi::Array::New(env, s.size());
  for (size_t k = 0; k < s.size(); ++k) a.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(s[k])));
  return a;
}
Napi::Value strides(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  Napi::Env env = info.Env();
  const auto s = t.strides();
  Napi::Array a = Napi::Array::New(env, s.size());
  for (size_t k = 0; k < s.size(); ++k) a.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(s[k])));
  return a;
}
Napi::Value dtype(Info info) { return Napi::Number::New(info.Env(), dtype_code(arg_tensor_meta(info, 0).scalar_type())); }
Napi::Value device(Info info) { return Napi::Number::New(info.Env(), device_code(arg_tensor_meta(info, 0).device())); }
Napi::Value numel(Info info) { return Napi::Number::New(info.Env(), static_cast<double>(arg_tensor_meta(info, 0).numel())); }
Napi::Value ndim(Info info) { return Napi::Number::New(info.Env(), static_cast<double>(arg_tensor_meta(info, 0).dim())); }
Napi::Value is_contiguous(Info info) { return Napi::Boolean::New(info.Env(), arg_tensor(info, 0).is_contiguous()); }
// Two handles over the same storage (views, detach): lets tests and FSDP reason about aliasing.
Napi::Value shares_storage(Info info) {
  return Napi::Boolean::New(info.Env(), arg_tensor(info, 0).is_alias_of(arg_tensor(info, 1)));
}

// ---------------------------------------------------------------- conversion
// to(id, dtype, device, copy)
Napi::Value to(Info info) {
  return put(info, arg_tensor(info, 0).to(arg_device(info, 2), arg_dtype(info, 1), /*non_blocking=*/false, arg_bool(info, 3)));
}
Napi::Value contiguous(Info info) { return put(info, arg_tensor(info, 0).contiguous()); }
Napi::Value clone(Info info) { return put(info, arg_tensor(info, 0).clone()); }
Napi::Value detach(Info info) { return put(info, arg_tensor(info, 0).detach()); }

// ---------------------------------------------------------------- views and shape
Napi::Value reshape(Info info) { return put(info, arg_tensor(info, 0).reshape(arg_ints(info, 1))); }
Napi::Value view(Info info) { return put(info, arg_tensor(info, 0).view(arg_ints(info, 1))); }
Napi::Value transpose(Info info) { return put(info, arg_tensor(info, 0).transpose(arg_int(info, 1), arg_int(info, 2))); }
Napi::Value permute(Info info) { return put(info, arg_tensor(info, 0).permute(arg_ints(info, 1))); }
Napi::Value narrow(Info info) {
  return put(info, arg_tensor(info, 0).narrow(arg_int(info, 1), arg_int(info, 2), arg_int(info, 3)));
}
// slice(id, dim, start, end, step) — end clamps like Python's slicing
Napi::Value slice(Info info) {
  return put(info, arg_tensor(info, 0).slice(arg_int(info, 1), arg_int(info, 2), arg_int(info, 3), arg_int(info, 4)));
}
Napi::Value select(Info info) { return put(info, arg_tensor(info, 0).select(arg_int(info, 1), arg_int(info, 2))); }
Napi::Value chunk(Info info) { return put_all(info, arg_tensor(info, 0).chunk(arg_int(info, 1), arg_int(info, 2))); }
// split(id, sizeOrSizes, dim)
Napi::Value split(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  if (info[1].IsArray()) return put_all(info, t.split_with_sizes(arg_ints(info, 1), arg_int(info, 2)));
  return put_all(info, t.split(arg_int(info, 1), arg_int(info, 2)));
}
Napi::Value cat(Info info) { return put(info, at::cat(arg_tensors(info, 0), arg_int(info, 1))); }
Napi::Value stack(Info info) { return put(info, at::stack(arg_tensors(info, 0), arg_int(info, 1))); }
Napi::Value squeeze(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  if (info[1].IsUndefined() || info[1].IsNull()) return put(info, t.squeeze());
  return put(info, t.squeeze(arg_int(info, 1)));
}
Napi::Value unsqueeze(Info info) { return put(info, arg_tensor(info, 0).unsqueeze(arg_int(info, 1))); }
Napi::Value expand(Info info) { return put(info, arg_tensor(info, 0).expand(arg_ints(info, 1))); }
Napi::Value flatten(Info info) { return put(info, arg_tensor(info, 0).flatten(arg_int(info, 1), arg_int(info, 2))); }
Napi::Value repeat(Info info) { return put(info, arg_tensor(info, 0).repeat(arg_ints(info, 1))); }
Napi::Value repeat_interleave(Info info) {
  return put(info, arg_tensor(info, 0).repeat_interleave(arg_int(info, 1), arg_int(info, 2)));
}
Napi::Value flip(Info info) { return put(info, arg_tensor(info, 0).flip(arg_ints(info, 1))); }
Napi::Value index_select(Info info) {
  return put(info, arg_tensor(info, 0).index_select(arg_int(info, 1), arg_tensor(info, 2)));
}
Napi::Value gather(Info info) { return put(info, arg_tensor(info, 0).gather(arg_int(info, 1), arg_tensor(info, 2))); }
// scatter(id, dim, index, src)
Napi::Value scatter(Info info) {
  return put(info, arg_tensor(info, 0).scatter(arg_int(info, 1), arg_tensor(info, 2), arg_tensor(info, 3)));
}
Napi::Value masked_fill(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  return put(info, t.masked_fill(arg_tensor(info, 1), arg_scalar(info, 2, t)));
}
Napi::Value masked_fill_(Info info) {
  at::Tensor& t = arg_tensor(info, 0);
  t.masked_fill_(arg_tensor(info, 1), arg_scalar(info, 2, t));
  return info.Env().Undefined();
}
Napi::Value where(Info info) { return put(info, at::where(arg_tensor(info, 0), arg_tensor(info, 1), arg_tensor(info, 2))); }
Napi::Value tril(Info info) { return put(info, arg_tensor(info, 0).tril(arg_int(info, 1))); }
Napi::Value triu(Info info) { return put(info, arg_tensor(info, 0).triu(arg_int(info, 1))); }
// sort(id, dim, descending) -> [values, indices]
Napi::Value sort(Info info) {
  auto r = arg_tensor(info, 0).sort(arg_int(info, 1), arg_bool(info, 2));
  return put_all(info, {std::get<0>(r), std::get<1>(r)});
}
// topk(id, k, dim) -> [values, indices]
Napi::Value topk(Info info) {
  auto r = arg_tensor(info, 0).topk(arg_int(info, 1), arg_int(info, 2));
  return put_all(info, {std::get<0>(r), std::get<1>(r)});
}
// multinomial(probs, n, replacement, gen)
Napi::Value multinomial(Info info) {
  return put(info, arg_tensor(info, 0).multinomial(arg_int(info, 1), arg_bool(info, 2), arg_gen(info, 3)));
}
Napi::Value cumsum(Info info) { return put(info, arg_tensor(info, 0).cumsum(arg_int(info, 1))); }

// ---------------------------------------------------------------- elementwise
// Binary op codes shared with src/tensor/ops.ts (BinaryOp).
at::Tensor binary(int code, const at::Tensor& a, const at::Tensor& b, Napi::Env env) {
  switch (code) {
    case 0: return at::add(a, b);
    case 1: return at::sub(a, b);
    case 2: return at::mul(a, b);
    case 3: return at::div(a, b);
    case 4: return at::pow(a, b);
    case 5: return at::maximum(a, b);
    case 6: return at::minimum(a, b);
    case 7: return at::eq(a, b);
    case 8: return at::ne(a, b);
    case 9: return at::lt(a, b);
    case 10: return at::le(a, b);
    case 11: return at::gt(a, b);
    case 12: return at::ge(a, b);
    case 13: return at::logical_and(a, b);
    case 14: return at::logical_or(a, b);
    case 15: return at::remainder(a, b);
    case 16: return at::floor_divide(a, b);
  }
  throw_js(env, kArgument, "unknown binary op code " + std::to_string(code));
}
at::Tensor binary_scalar(int code, const at::Tensor& a, const at::Scalar& s, Napi::Env env) {
  switch (code) {
    case 0: return at::add(a, s);
    case 1: return at::sub(a, s);
    case 2: return at::mul(a, s);
    case 3: return at::div(a, s);
    case 4: return at::pow(a, s);
    case 5: return at::clamp_min(a, s);
    case 6: return at::clamp_max(a, s);
    case 7: return at::eq(a, s);
    case 8: return at::ne(a, s);
    case 9: return at::lt(a, s);
    case 10: return at::le(a, s);
    case 11: return at::gt(a, s);
    case 12: return at::ge(a, s);
    case 15: return at::remainder(a, s);
    case 16: return at::floor_divide(a, s);
    case 17: return at::rsub(a, s);  // s - a
  }
  throw_js(env, kArgument, "binary op code " + std::to_string(code) + " has no scalar form");
}
// binary(code, a, b) / binaryScalar(code, a, number)
Napi::Value binary_fn(Info info) {
  return put(info, binary(static_cast<int>(arg_int(info, 0)), arg_tensor(info, 1), arg_tensor(info, 2), info.Env()));
}
Napi::Value binary_scalar_fn(Info info) {
  const at::Tensor& a = arg_tensor(info, 1);
  return put(info, binary_scalar(static_cast<int>(arg_int(info, 0)), a, arg_scalar(info, 2, a), info.Env()));
}
// binaryInplace(code, a, bOrNumber, bIsScalar, alpha) — add_/sub_/mul_/div_/pow_ (alpha: add_/sub_)
Napi::Value binary_inplace_fn(Info info) {
  const int code = static_cast<int>(arg_int(info, 0));
  at::Tensor& a = arg_tensor(info, 1);
  const bool b_is_scalar = arg_bool(info, 3);
  const at::Scalar alpha = at::Scalar(arg_num(info, 4));
  if (b_is_scalar) {
    const at::Scalar s = arg_scalar(info, 2, a);
    switch (code) {
      case 0: a.add_(s, alpha); break;
      case 1: a.sub_(s, alpha); break;
      case 2: a.mul_(s); break;
      case 3: a.div_(s); break;
      case 4: a.pow_(s); break;
      default: throw_js(info.Env(), kArgument, "binary op code " + std::to_string(code) + " has no in-place form");
    }
  } else {
    const at::Tensor& b = arg_tensor(info, 2);
    switch (code) {
      case 0: a.add_(b, alpha); break;
      case 1: a.sub_(b, alpha); break;
      case 2: a.mul_(b); break;
      case 3: a.div_(b); break;
      case 4: a.pow_(b); break;
      default: throw_js(info.Env(), kArgument, "binary op code " + std::to_string(code) + " has no in-place form");
    }
  }
  return info.Env().Undefined();
}

// Unary op codes shared with src/tensor/ops.ts (UnaryOp).
at::Tensor unary(int code, const at::Tensor& a, Napi::Env env) {
  switch (code) {
    case 0: return at::neg(a);
    case 1: return at::exp(a);
    case 2: return at::log(a);
    case 3: return at::sqrt(a);
    case 4: return at::rsqrt(a);
    case 5: return at::abs(a);
    case 6: return at::sin(a);
    case 7: return at::cos(a);
    case 8: return at::tanh(a);
    case 9: return at::sigmoid(a);
    case 10: return at::silu(a);
    case 11: return at::gelu(a);
    case 12: return at::gelu(a, "tanh");
    case 13: return at::relu(a);
    case 14: return at::erf(a);
    case 15: return at::erfinv(a);
    case 16: return at::square(a);
    case 17: return at::reciprocal(a);
    case 18: return at::isfinite(a);
    case 19: return at::isnan(a);
    case 20: return at::logical_not(a);
    case 21: return at::sign(a);
    case 22: return at::floor(a);
    case 23: return at::ceil(a);
    case 24: return at::round(a);
    case 25: return at::log1p(a);
    case 26: return at::expm1(a);
    case 27: return at::isinf(a);
  }
  throw_js(env, kArgument, "unknown unary op code " + std::to_string(code));
}
Napi::Value unary_fn(Info info) {
  return put(info, unary(static_cast<int>(arg_int(info, 0)), arg_tensor(info, 1), info.Env()));
}
Napi::Value unary_inplace_fn(Info info) {
  const int code = static_cast<int>(arg_int(info, 0));
  at::Tensor& a = arg_tensor(info, 1);
  switch (code) {
    case 0: a.neg_(); break;
    case 1: a.exp_(); break;
    case 2: a.log_(); break;
    case 3: a.sqrt_(); break;
    case 4: a.rsqrt_(); break;
    case 5: a.abs_(); break;
    case 8: a.tanh_(); break;
    case 9: a.sigmoid_(); break;
    case 10: at::silu_(a); break;
    case 13: a.relu_(); break;
    case 14: a.erf_(); break;
    case 15: a.erfinv_(); break;
    case 16: a.square_(); break;
    case 17: a.reciprocal_(); break;
    case 22: a.floor_(); break;
    case 23: a.ceil_(); break;
    case 24: a.round_(); break;
    default: throw_js(info.Env(), kArgument, "unary op code " + std::to_string(code) + " has no in-place form");
  }
  return info.Env().Undefined();
}

c10::optional<at::Scalar> opt_scalar(Info info, size_t i, const at::Tensor& like) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return arg_scalar(info, i, like);
}
// clamp(id, min|null, max|null)
Napi::Value clamp(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  return put(info, at::clamp(t, opt_scalar(info, 1, t), opt_scalar(info, 2, t)));
}
Napi::Value clamp_(Info info) {
  at::Tensor& t = arg_tensor(info, 0);
  t.clamp_(opt_scalar(info, 1, t), opt_scalar(info, 2, t));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- reductions
// Optional dims: undefined/null = all dims.
c10::optional<std::vector<int64_t>> opt_dims(Info info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  if (v.IsNumber()) return std::vector<int64_t>{arg_int(info, i)};
  return arg_ints(info, i);
}
c10::optional<at::ScalarType> opt_dtype(Info info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull() || (v.IsNumber() && v.As<Napi::Number>().Int32Value() < 0)) return c10::nullopt;
  return arg_dtype(info, i);
}

// reduce(code, id, dims|null, keepdim, dtype|-1): 0 sum, 1 mean, 2 amax, 3 amin, 4 all, 5 any,
// 6 var (unbiased), 7 std (unbiased), 8 var (biased)
Napi::Value reduce(Info info) {
  const int code = static_cast<int>(arg_int(info, 0));
  const at::Tensor& t = arg_tensor(info, 1);
  const auto dims = opt_dims(info, 2);
  const bool keep = arg_bool(info, 3);
  const auto dt = opt_dtype(info, 4);
  const at::IntArrayRef d = dims ? at::IntArrayRef(*dims) : at::IntArrayRef();
  switch (code) {
    case 0: return put(info, dims ? at::sum(t, d, keep, dt) : at::sum(t, dt));
    case 1: return put(info, dims ? at::mean(t, d, keep, dt) : at::mean(t, dt));
    case 2: return put(info, at::amax(t, d, keep));
    case 3: return put(info, at::amin(t, d, keep));
    case 4:
    case 5:
      if (!dims) return put(info, code == 4 ? at::all(t) : at::any(t));
      if (dims->size() != 1) throw_js(info.Env(), kArgument, "all()/any() take one dim");
      return put(info, code == 4 ? at::all(t, (*dims)[0], keep) : at::any(t, (*dims)[0], keep));
    case 6: return put(info, dims ? at::var(t, d, /*unbiased=*/true, keep) : at::var(t, true));
    case 7: return put(info, dims ? at::std(t, d, /*unbiased=*/true, keep) : at::std(t, true));
    case 8: return put(info, dims ? at::var(t, d, /*unbiased=*/false, keep) : at::var(t, false));
  }
  throw_js(info.Env(), kArgument, "unknown reduction code " + std::to_string(code));
}
// maxDim(id, dim, keepdim) / minDim -> [values, indices]
Napi::Value max_dim(Info info) {
  auto r = at::max(arg_tensor(info, 0), arg_int(info, 1), arg_bool(info, 2));
  return put_all(info, {std::get<0>(r), std::get<1>(r)});
}
Napi::Value min_dim(Info info) {
  auto r = at::min(arg_tensor(info, 0), arg_int(info, 1), arg_bool(info, 2));
  return put_all(info, {std::get<0>(r), std::get<1>(r)});
}
// argmax(id, dim|null, keepdim)
Napi::Value argmax(Info info) {
  const Napi::Value d = info[1];
  const c10::optional<int64_t> dim = (d.IsUndefined() || d.IsNull()) ? c10::nullopt : c10::optional<int64_t>(arg_int(info, 1));
  return put(info, at::argmax(arg_tensor(info, 0), dim, arg_bool(info, 2)));
}
// norm(id, p, dims|null, keepdim)
Napi::Value norm(Info info) {
  const at::Tensor& t = arg_tensor(info, 0);
  const double p = arg_num(info, 1);
  const auto dims = opt_dims(info, 2);
  if (!dims) return put(info, at::norm(t, p));
  return put(info, at::norm(t, p, *dims, arg_bool(info, 3)));
}

}  // namespace

void init_tensor_ops(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("fromArray", from_array);
  OLMO_EXPORT("toArray", to_array);
  OLMO_EXPORT("item", item);
  OLMO_EXPORT("empty", empty);
  OLMO_EXPORT("zeros", zeros);
  OLMO_EXPORT("ones", ones);
  OLMO_EXPORT("full", full);
  OLMO_EXPORT("arange", arange);
  OLMO_EXPORT("randn", randn);
  OLMO_EXPORT("rand", rand);
  OLMO_EXPORT("randint", randint);
  OLMO_EXPORT("randperm", randperm);
  OLMO_EXPORT("uniform_", uniform_);
  OLMO_EXPORT("normal_", normal_);
  OLMO_EXPORT("fill_", fill_);
  OLMO_EXPORT("zero_", zero_);
  OLMO_EXPORT("copy_", copy_);
  OLMO_EXPORT("shape", shape);
  OLMO_EXPORT("strides", strides);
  OLMO_EXPORT("dtype", dtype);
  OLMO_EXPORT("device", device);
  OLMO_EXPORT("numel", numel);
  OLMO_EXPORT("ndim", ndim);
  OLMO_EXPORT("isContiguous", is_contiguous);
  OLMO_EXPORT("sharesStorage", shares_storage);
  OLMO_EXPORT("to", to);
  OLMO_EXPORT("contiguous", contiguous);
  OLMO_EXPORT("clone", clone);
  OLMO_EXPORT("detach", detach);
  OLMO_EXPORT("reshape", reshape);
  OLMO_EXPORT("view", view);
  OLMO_EXPORT("transpose", transpose);
  OLMO_EXPORT("permute", permute);
  OLMO_EXPORT("narrow", narrow);
  OLMO_EXPORT("slice", slice);
  OLMO_EXPORT("select", select);
  OLMO_EXPORT("chunk", chunk);
  OLMO_EXPORT("split", split);
  OLMO_EXPORT("cat", cat);
  OLMO_EXPORT("stack", stack);
  OLMO_EXPORT("squeeze", squeeze);
  OLMO_EXPORT("unsqueeze", unsqueeze);
  OLMO_EXPORT("expand", expand);
  OLMO_EXPORT("flatten", flatten);
  OLMO_EXPORT("repeat", repeat);
  OLMO_EXPORT("repeatInterleave", repeat_interleave);
  OLMO_EXPORT("flip", flip);
  OLMO_EXPORT("indexSelect", index_select);
  OLMO_EXPORT("gather", gather);
  OLMO_EXPORT("scatter", scatter);
  OLMO_EXPORT("maskedFill", masked_fill);
  OLMO_EXPORT("maskedFill_", masked_fill_);
  OLMO_EXPORT("where", where);
  OLMO_EXPORT("tril", tril);
  OLMO_EXPORT("triu", triu);
  OLMO_EXPORT("sort", sort);
  OLMO_EXPORT("topk", topk);
  OLMO_EXPORT("multinomial", multinomial);
  OLMO_EXPORT("cumsum", cumsum);
  OLMO_EXPORT("binary", binary_fn);
  OLMO_EXPORT("binaryScalar", binary_scalar_fn);
  OLMO_EXPORT("binaryInplace", binary_inplace_fn);
  OLMO_EXPORT("unary", unary_fn);
  OLMO_EXPORT("unaryInplace", unary_inplace_fn);
  OLMO_EXPORT("clamp", clamp);
  OLMO_EXPORT("clamp_", clamp_);
  OLMO_EXPORT("reduce", reduce);
  OLMO_EXPORT("maxDim", max_dim);
  OLMO_EXPORT("minDim", min_dim);
  OLMO_EXPORT("argmax", argmax);
  OLMO_EXPORT("norm", norm);
}

}  // namespace olmo
