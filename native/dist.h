// dist.h — what the c10d mechanism files share (native/dist.cc: stores, groups, collectives;
// native/fsdp.cc: flat-parameter sharding): the process-group and in-flight-collective records,
// per-environment tables of them, and helpers. Include only from those files (c10d headers are heavy).
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// ProcessGroup (and on 2.x c10d::Backend) for every build: a PyTorch wheel has no gloo headers, so
// ProcessGroupGloo.hpp, which pulls them in on Debian's builds, cannot be the one to declare them.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#if OLMO_C10D_GLOO  // gloo headers found at build time (cmake/c10d.cmake); PyTorch wheels lack them
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(OLMO_TORCH_CUDA) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define OLMO_HAVE_NCCL 1
#endif
#define OLMO_COMPAT_DIST 1
#include "compat.h"


namespace olmo {

using ms = std::chrono::milliseconds;

struct Group {
  c10::intrusive_ptr<compat::PGBackend> pg;
  int rank = 0;
  int size = 1;
  bool nccl = false;
  std::string name;
  ms timeout{0};
  std::string where(const char* what) const {
    return std::string(what) + " on rank " + std::to_string(rank) + " of " + std::to_string(size) + " (group '" + name + "')";
  }
};

// A collective in flight: its c10d works, what to do once they are done (copy results back, divide
// for an average), and the tensors that must live until then.
struct Pending {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::function<void()> finish;
  std::shared_ptr<Group> group;
  std::string what;
};

struct Reducer;
struct FsdpUnit;

struct DistState {
  std::vector<c10::intrusive_ptr<c10d::Store>> stores;  // id -> store (null once closed)
  std::vector<std::shared_ptr<Group>> groups;          // id -> group (null once closed)
  std::vector<std::shared_ptr<Pending>> works;         // id -> pending (null once waited)
  std::vector<std::shared_ptr<Reducer>> reducers;
  std::vector<std::shared_ptr<FsdpUnit>> units;           // native/fsdp.cc
};

inline DistState& dist(Napi::Env env) {
  Registry& r = reg(env);
  if (!r.dist) r.dist = std::make_shared<DistState>();
  return *std::static_pointer_cast<DistState>(r.dist);
}

template <typename T>
int32_t put_slot(std::vector<T>& v, T x) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!v[i]) { v[i] = std::move(x); return static_cast<int32_t>(i); }
  v.push_back(std::move(x));
  return static_cast<int32_t>(v.size() - 1);
}

inline std::shared_ptr<Group> arg_group(const Napi::CallbackInfo& info, size_t i) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, i);
  if (id < 0 || id >= static_cast<int64_t>(d.groups.size()) || !d.groups[id])
    throw_js(info.Env(), kArgument, "process group " + std::to_string(id) + " does not exist or was closed");
  return d.groups[id];
}

inline c10::intrusive_ptr<c10d::Store> arg_store(const Napi::CallbackInfo& info, size_t i) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, i);
  if (id < 0 || id >= static_cast<int64_t>(d.stores.size()) || !d.stores[id])
    throw_js(info.Env(), kArgument, "store " + std::to_string(id) + " does not exist or was closed");
  return d.stores[id];
}

// Timeouts and peer failures get their own error classes; everything else is a DistributedError.
inline ErrKind classify_dist(const std::string& m) {
  static const char* kTimeout[] = {"imed out", "imeout", "timeout"};
  for (const char* k : kTimeout)
    if (m.find(k) != std::string::npos) return kDistTimeout;
  return kDist;
}

inline std::string short_what(const std::exception& e) {
  std::string m = e.what();
  const auto cut = m.find("Exception raised from");
  if (cut != std::string::npos) m = m.substr(0, cut);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

inline bool gloo_reduces(const Group& g, at::ScalarType t) {
  // Gloo 1.13 reduces float, double, int and long, not half types.
  return g.nccl || (t != at::kBFloat16 && t != at::kHalf);
}

inline Napi::Value put_pending(Napi::Env env, std::shared_ptr<Pending> p) {
  return Napi::Number::New(env, put_slot(dist(env).works, std::move(p)));
}

}  // namespace olmo
