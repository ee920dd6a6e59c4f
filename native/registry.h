// registry.h — the integer handle table that stands between JS and at::Tensor, per-environment
// state, argument readers, and the guard that turns every C++ exception into a typed JS error.
//
// JS holds plain integer ids, not wrapper objects: creating an ObjectWrap per result costs ~2-4 µs
// per op, an integer costs nothing. The id -> tensor table lives in the Env's instance data, so
// each worker_thread has its own.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace olmo {

// Error kinds; JS registers one class per kind (see src/native/errors.ts).
enum ErrKind { kTorch = 0, kShape, kDType, kIndex, kOutOfMemory, kDisposed, kArgument, kDist, kDistTimeout, kNumErrKinds };

struct Registry {
  std::vector<at::Tensor> slots;      // id -> tensor; an undefined tensor marks a free slot
  std::vector<int32_t> free_ids;      // recycled ids
  int64_t live = 0;                   // number of occupied slots
  std::vector<at::Generator> gens;    // generator handles (CPU), id -> generator
  Napi::FunctionReference err_ctor[kNumErrKinds];
  int autocast_depth[2] = {0, 0};     // nesting per device type (cpu, cuda)
  std::shared_ptr<void> checkpoint;  // activation-checkpointing state (checkpoint_fn.cc)
  std::shared_ptr<void> dist;         // stores, process groups, works (native/dist.cc)
  // Parked ids: slots whose tensor is temporarily absent (an FSDP parameter view while its unit's
  // parameters are sharded). A use gets `why` instead of "disposed"; shape/dtype/device queries are
  // answered from `meta` (a tensor whose storage is freed: metadata only, never its data).
  struct Parked {
    std::string why;
    at::Tensor meta;
  };
  std::unordered_map<int64_t, Parked> parked;
};

inline Registry& reg(Napi::Env env) { return *env.GetInstanceData<Registry>(); }

// Throws a JS error of the registered class for `kind` (plain Error before registration).
[[noreturn]] void throw_js(Napi::Env env, ErrKind kind, const std::string& msg);

// An instance of the registered error class for `kind` (to reject a Promise with).
Napi::Value js_error(Napi::Env env, ErrKind kind, const std::string& msg);

// Throws the error for a tensor id that is not in the table: DisposedError, or the parked message.
[[noreturn]] void throw_missing(Napi::Env env, int64_t id, const std::string& where);

// Converts the exception in flight into a typed JS error. Call only from a catch block.
[[noreturn]] void rethrow_as_js(Napi::Env env);

// Wraps a native entry point: every exception leaves as a typed JS error, never as a crash.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (...) {
    rethrow_as_js(info.Env());
  }
}

// ---- argument readers (all throw ArgumentError naming the argument position) ----
[[noreturn]] void bad_arg(Napi::Env env, size_t i, const char* expected);

inline int64_t arg_int(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) bad_arg(info.Env(), i, "an integer");
  return v.As<Napi::Number>().Int64Value();
}
inline double arg_num(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) bad_arg(info.Env(), i, "a number");
  return v.As<Napi::Number>().DoubleValue();
}
inline bool arg_bool(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsBoolean()) bad_arg(info.Env(), i, "a boolean");
  return v.As<Napi::Boolean>().Value();
}
std::vector<int64_t> arg_ints(const Napi::CallbackInfo& info, size_t i);

// The tensor behind the id at argument i; throws DisposedError for -1 / freed ids.
inline at::Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) bad_arg(info.Env(), i, "a tensor");
  Registry& r = reg(info.Env());
  const int64_t id = v.As<Napi::Number>().Int64Value();
  if (id < 0 || id >= static_cast<int64_t>(r.slots.size()) || !r.slots[id].defined())
    throw_missing(info.Env(), id, "argument " + std::to_string(i));
  return r.slots[id];
}
// For metadata queries only (shape, dtype, device, numel, ndim): a parked id answers too.
const at::Tensor& arg_tensor_meta(const Napi::CallbackInfo& info, size_t i);
// Optional tensor: -1 or undefined/null means "none".
c10::optional<at::Tensor> arg_opt_tensor(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> arg_tensors(const Napi::CallbackInfo& info, size_t i);

at::ScalarType arg_dtype(const Napi::CallbackInfo& info, size_t i);
at::Device arg_device(const Napi::CallbackInfo& info, size_t i);
// Scalar matched to a tensor: integral values stay integral for integral tensors.
at::Scalar arg_scalar(const Napi::CallbackInfo& info, size_t i, const at::Tensor& like);

// ---- results ----
int32_t store(Registry& r, at::Tensor t);
inline Napi::Value put(const Napi::CallbackInfo& info, at::Tensor t) {
  return Napi::Number::New(info.Env(), store(reg(info.Env()), std::move(t)));
}
Napi::Value put_all(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts);

int dtype_code(at::ScalarType t);
int device_code(const at::Device& d);

// ---- registration helpers: each translation unit adds its functions to the exports ----
using Fn = Napi::Value (*)(const Napi::CallbackInfo&);
void init_tensor_ops(Napi::Env env, Napi::Object exports);
void init_nn_ops(Napi::Env env, Napi::Object exports);
void init_runtime(Napi::Env env, Napi::Object exports);
void init_optim(Napi::Env env, Napi::Object exports);
void init_cpu_cache(Napi::Env env, Napi::Object exports);
void init_checkpoint(Napi::Env env, Napi::Object exports);
void init_fused_head(Napi::Env env, Napi::Object exports);
void init_dist(Napi::Env env, Napi::Object exports);
void init_fsdp(Napi::Env env, Napi::Object exports);

}  // namespace olmo

#define OLMO_EXPORT(name, fn) exports.Set(name, Napi::Function::New(env, ::olmo::guarded<fn>, name))
