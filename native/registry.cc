// registry.cc — handle table, error translation and the addon's entry point.
#include "registry.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <regex>

namespace olmo {

namespace {
const char* kErrFallbackName[kNumErrKinds] = {"TorchError",       "ShapeError",    "DTypeError",
                                               "IndexError",       "OutOfMemoryError",
                                               "DisposedError",    "ArgumentError",
                                               "DistributedError", "DistributedTimeoutError"};

// libtorch messages carry a trailing "Exception raised from ..." location and sometimes a
// multi-line context; users get the first meaningful part only.
std::string short_message(const std::string& full) {
  std::string m = full;
  const auto cut = m.find("Exception raised from");
  if (cut != std::string::npos) m = m.substr(0, cut);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

ErrKind classify(const std::string& m) {
  static const std::regex shape(
      "must match the size|shapes cannot be multiplied|is invalid for input of size|size mismatch|"
      "Expected size|sizes of tensors must match|inconsistent tensor size|number of dimensions|"
      "[0-9]-?D tensor|must have the same shape|shape mismatch|must be broadcastable|"
      "same number of dimensions|should have the same size|dimension specified as .* but tensor has",
      std::regex::icase | std::regex::optimize);
  static const std::regex dtype(
      "scalar type|dtype|not implemented for '|expected .* to have the same type|"
      "result type .* can't be cast|Expected object of scalar type",
      std::regex::icase | std::regex::optimize);
  static const std::regex oom("out of memory|can't allocate memory|cannot allocate",
                              std::regex::icase | std::regex::optimize);
  if (std::regex_search(m, oom)) return kOutOfMemory;
  if (std::regex_search(m, dtype)) return kDType;
  if (std::regex_search(m, shape)) return kShape;
  return kTorch;
}
}  // namespace

Napi::Value js_error(Napi::Env env, ErrKind kind, const std::string& msg) {
  Registry* r = env.GetInstanceData<Registry>();
  if (r && !r->err_ctor[kind].IsEmpty()) return r->err_ctor[kind].New({Napi::String::New(env, msg)});
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("name", Napi::String::New(env, kErrFallbackName[kind]));
  return e.Value();
}

void throw_js(Napi::Env env, ErrKind kind, const std::string& msg) {
  throw Napi::Error(env, js_error(env, kind, msg));
}

void rethrow_as_js(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    throw_js(env, kOutOfMemory, short_message(e.msg()));
  } catch (const c10::IndexError& e) {
    throw_js(env, kIndex, short_message(e.msg()));
  } catch (const c10::Error& e) {
    const std::string m = short_message(e.msg());
    throw_js(env, classify(m), m);
  } catch (const std::bad_alloc&) {
    throw_js(env, kOutOfMemory, "out of memory (host allocation failed)");
  } catch (const std::exception& e) {
    const std::string m = short_message(e.what());
    throw_js(env, classify(m), m);
  } catch (...) {
    throw_js(env, kTorch, "unknown native error");
  }
}

void throw_missing(Napi::Env env, int64_t id, const std::string& where) {
  Registry& r = reg(env);
  const auto it = r.parked.find(id);
  if (it != r.parked.end()) throw_js(env, kArgument, it->second.why + " (" + where + ")");
  throw_js(env, kDisposed, "tensor was disposed (" + where + ")");
}

const at::Tensor& arg_tensor_meta(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsNumber()) {
    Registry& r = reg(info.Env());
    const int64_t id = v.As<Napi::Number>().Int64Value();
    const auto it = r.parked.find(id);
    if (it != r.parked.end()) return it->second.meta;
  }
  return arg_tensor(info, i);
}

void bad_arg(Napi::Env env, size_t i, const char* expected) {
  throw_js(env, kArgument, "argument " + std::to_string(i) + " must be " + expected);
}

std::vector<int64_t> arg_ints(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsArray()) bad_arg(info.Env(), i, "an array of integers");
  const Napi::Array a = v.As<Napi::Array>();
  const uint32_t n = a.Length();
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; ++k) {
    const Napi::Value e = a.Get(k);
    if (!e.IsNumber()) bad_arg(info.Env(), i, "an array of integers");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) bad_arg(info.Env(), i, "an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

c10::optional<at::Tensor> arg_opt_tensor(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  if (v.IsNumber() && v.As<Napi::Number>().Int64Value() == -1) return c10::nullopt;
  return arg_tensor(info, i);
}

std::vector<at::Tensor> arg_tensors(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsArray()) bad_arg(info.Env(), i, "an array of tensors");
  const Napi::Array a = v.As<Napi::Array>();
  Registry& r = reg(info.Env());
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    const Napi::Value e = a.Get(k);
    if (!e.IsNumber()) bad_arg(info.Env(), i, "an array of tensors");
    const int64_t id = e.As<Napi::Number>().Int64Value();
    if (id < 0 || id >= static_cast<int64_t>(r.slots.size()) || !r.slots[id].defined())
      throw_missing(info.Env(), id, "tensor " + std::to_string(k) + " of the list");
    out.push_back(r.slots[id]);
  }
  return out;
}

// dtype codes shared with src/tensor/dtype.ts
static const at::ScalarType kDTypes[] = {at::kFloat, at::kDouble, at::kHalf,  at::kBFloat16,
                                         at::kLong,  at::kInt,    at::kByte,  at::kBool};
static constexpr int kNumDTypes = sizeof(kDTypes) / sizeof(kDTypes[0]);

at::ScalarType arg_dtype(const Napi::CallbackInfo& info, size_t i) {
  const int64_t c = arg_int(info, i);
  if (c < 0 || c >= kNumDTypes) bad_arg(info.Env(), i, "a dtype code");
  return kDTypes[c];
}

int dtype_code(at::ScalarType t) {
  for (int k = 0; k < kNumDTypes; ++k)
    if (kDTypes[k] == t) return k;
  return -1;
}

// device codes: -1 = cpu, n >= 0 = cuda:n
at::Device arg_device(const Napi::CallbackInfo& info, size_t i) {
  const int64_t c = arg_int(info, i);
  if (c < -1) bad_arg(info.Env(), i, "a device code");
  if (c == -1) return at::Device(at::kCPU);
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(c));
}

int device_code(const at::Device& d) { return d.is_cpu() ? -1 : (d.is_cuda() ? d.index() : -2); }

at::Scalar arg_scalar(const Napi::CallbackInfo& info, size_t i, const at::Tensor& like) {
  const Napi::Value v = info[i];
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) bad_arg(info.Env(), i, "a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (like.defined() && at::isIntegralType(like.scalar_type(), /*includeBool=*/true) &&
      d == static_cast<double>(static_cast<int64_t>(d)))
    return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

int32_t store(Registry& r, at::Tensor t) {
  int32_t id;
  if (!r.free_ids.empty()) {
    id = r.free_ids.back();
    r.free_ids.pop_back();
    r.slots[id] = std::move(t);
  } else {
    id = static_cast<int32_t>(r.slots.size());
    r.slots.push_back(std::move(t));
  }
  ++r.live;
  return id;
}

Napi::Value put_all(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts) {
  Napi::Env env = info.Env();
  Registry& r = reg(env);
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); ++k) out.Set(static_cast<uint32_t>(k), Napi::Number::New(env, store(r, ts[k])));
  return out;
}

namespace {

Napi::Value dispose(const Napi::CallbackInfo& info) {
  Registry& r = reg(info.Env());
  const int64_t id = arg_int(info, 0);
  if (r.parked.erase(id)) return info.Env().Undefined();  // its owner (an FSDP unit) sees it is gone
  if (id < 0 || id >= static_cast<int64_t>(r.slots.size()) || !r.slots[id].defined()) return info.Env().Undefined();
  r.slots[id] = at::Tensor();
  r.free_ids.push_back(static_cast<int32_t>(id));
  --r.live;
  return info.Env().Undefined();
}

// mallocTrim(): hands the heap's free memory back to the OS (glibc's malloc_trim), so that a
// process's resident set shows what it holds (benchmarks; after a large model was built and
// sharded, say). Returns whether memory was released.
Napi::Value malloc_trim_fn(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value live_count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(reg(info.Env()).live));
}

// setErrorClasses({TorchError, ShapeError, ...}) — JS hands its error classes to C++ once.
Napi::Value set_error_classes(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) bad_arg(info.Env(), 0, "an object of error classes");
  Napi::Object o = info[0].As<Napi::Object>();
  Registry& r = reg(info.Env());
  for (int k = 0; k < kNumErrKinds; ++k) {
    Napi::Value c = o.Get(kErrFallbackName[k]);
    if (!c.IsFunction()) bad_arg(info.Env(), 0, "an object with every error class");
    r.err_ctor[k] = Napi::Persistent(c.As<Napi::Function>());
  }
  return info.Env().Undefined();
}

// Optional malloc tuning. glibc's default (a dynamic mmap threshold) is what Python PyTorch runs
// with, and with explicit dispose it kept RSS flat in test/integration/memory.test.ts; forcing a
// 1 MB mmap threshold also kept RSS flat but made a 4 MB alloc/free loop ~4x slower (page faults).
// OLMO_TS_MALLOC_MMAP_THRESHOLD=<bytes> sets the threshold for workloads that do fragment.
void tune_malloc() {
  static bool done = false;
  if (done) return;
  done = true;
  const char* s = std::getenv("OLMO_TS_MALLOC_MMAP_THRESHOLD");
  if (!s) return;
  const long long threshold = std::strtoll(s, nullptr, 10);
  if (threshold > 0) mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold));
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  tune_malloc();
  env.SetInstanceData<Registry>(new Registry());
  OLMO_EXPORT("dispose", dispose);
  OLMO_EXPORT("liveCount", live_count);
  OLMO_EXPORT("mallocTrim", malloc_trim_fn);
  OLMO_EXPORT("setErrorClasses", set_error_classes);
  init_tensor_ops(env, exports);
  init_nn_ops(env, exports);
  init_runtime(env, exports);
  init_optim(env, exports);
  init_cpu_cache(env, exports);
  init_checkpoint(env, exports);
  init_fused_head(env, exports);
  init_dist(env, exports);
  init_fsdp(env, exports);
  return exports;
}

}  // namespace olmo

static Napi::Object InitOlmoNative(Napi::Env env, Napi::Object exports) { return olmo::init(env, exports); }
NODE_API_MODULE(olmo_native, InitOlmoNative)
