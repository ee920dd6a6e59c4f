// dist.cc — the c10d mechanism behind multi-process training: rendezvous stores (TCP, file),
// process groups (Gloo for CPU tensors; NCCL — RCCL on ROCm builds — for CUDA tensors), collectives
// issued from the JS thread and waited for off it, and a bucketed gradient all-reduce.
// Policy (ranks from the environment, which group, what to reduce and when) lives in src/dist/.
//
// Threading: every collective is *issued* on the JS thread, in the order JS calls it (so every
// rank issues the same sequence), and returns an integer work handle. `distWait(handles)` returns a
// Promise and waits on libuv's pool, so signals, timers and checkpoint writes keep running while a
// collective is in flight. Nothing that waits touches a JS value.
//
// Gloo (1.13) lacks flat all-gather, reduce-scatter, ReduceOp.AVG and bf16/fp16 payloads; those go
// through the fallbacks of ../shared/DESIGN-FSDP.md §4: list all-gather into chunk views, all-reduce
// and keep one's own slice, sum then divide, and fp32 (reductions) or byte views (copies).
#include "dist.h"

namespace olmo {
namespace {

using Info = const Napi::CallbackInfo&;
enum class Op { kSum = 0, kAvg = 1, kMax = 2, kMin = 3 };


std::string arg_str(Info info, size_t i) {
  if (!info[i].IsString()) bad_arg(info.Env(), i, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// ---- an AsyncWorker that settles a Promise and reports failures as typed errors ----
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void fail(ErrKind kind, std::string msg) {
    kind_ = kind;
    SetError(msg);
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(js_error(Env(), kind_, e.Message()));
  }
  void OnOK() override { deferred_.Resolve(result(Env())); }
  virtual Napi::Value result(Napi::Env env) { return env.Undefined(); }
  Napi::Promise::Deferred deferred_;
  ErrKind kind_ = kDist;
};

// ---- stores ----

// distTcpStore(host, port, isServer, worldSize, timeoutMs) -> Promise<storeId>. Rank 0 hosts the
// store and waits (up to the timeout) for the others to connect; the others retry connecting.
class TcpStoreWorker : public PromiseWorker {
 public:
  TcpStoreWorker(Napi::Env env, std::string host, c10d::TCPStoreOptions o) : PromiseWorker(env), host_(std::move(host)), o_(o) {}
  void Execute() override {
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(host_, o_);
    } catch (const std::exception& e) {
      const std::string m = short_what(e);
      fail(classify_dist(m), (o_.isServer ? "hosting the rendezvous store on port " : "connecting to the rendezvous store at ") +
                                 host_ + ":" + std::to_string(o_.port) + " failed: " + m);
    }
  }
  Napi::Value result(Napi::Env env) override {
    return Napi::Number::New(env, put_slot(dist(env).stores, c10::intrusive_ptr<c10d::Store>(store_)));
  }

 private:
  std::string host_;
  c10d::TCPStoreOptions o_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
};

Napi::Value tcp_store(Info info) {
  const std::string host = arg_str(info, 0);
  const int64_t port = arg_int(info, 1);
  if (port < 0 || port > 65535) bad_arg(info.Env(), 1, "a port number (0-65535)");
  const int64_t world = arg_int(info, 3);
  const int64_t timeout = arg_int(info, 4);
  if (world < 1) bad_arg(info.Env(), 3, "a world size >= 1");
  if (timeout < 1) bad_arg(info.Env(), 4, "a timeout in milliseconds >= 1");
  c10d::TCPStoreOptions o = compat::tcp_store_options();
  o.port = static_cast<uint16_t>(port);
  o.isServer = arg_bool(info, 2);
  o.numWorkers = static_cast<size_t>(world);
  // The host does not wait for the clients here: the ranks' check-in (src/dist/process-group.ts)
  // waits for all of them and names the missing ones. 1.13's TCPStore gave up waiting silently at
  // the timeout; 2.x throws its own "waiting for clients" timeout first, so waiting here made the
  // two versions fail differently.
  o.waitWorkers = false;
  o.timeout = ms(timeout);
  auto* w = new TcpStoreWorker(info.Env(), host, o);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// distFileStore(path, worldSize) -> storeId: a store on a shared file system (no host or port).
Napi::Value file_store(Info info) {
  const std::string path = arg_str(info, 0);
  const int64_t world = arg_int(info, 1);
  if (world < 1) bad_arg(info.Env(), 1, "a world size >= 1");
  auto s = c10::make_intrusive<c10d::FileStore>(path, static_cast<int>(world));
  return Napi::Number::New(info.Env(), put_slot(dist(info.Env()).stores, c10::intrusive_ptr<c10d::Store>(s)));
}

// distStoreSet(store, key, Uint8Array)
Napi::Value store_set(Info info) {
  auto s = arg_store(info, 0);
  const std::string key = arg_str(info, 1);
  if (!info[2].IsTypedArray()) bad_arg(info.Env(), 2, "a Uint8Array");
  Napi::Uint8Array a = info[2].As<Napi::Uint8Array>();
  s->set(key, std::vector<uint8_t>(a.Data(), a.Data() + a.ElementLength()));
  return info.Env().Undefined();
}

// distStoreGet(store, key, timeoutMs) -> Promise<Uint8Array>: waits until the key exists.
class StoreGetWorker : public PromiseWorker {
 public:
  StoreGetWorker(Napi::Env env, c10::intrusive_ptr<c10d::Store> s, std::string key, ms timeout)
      : PromiseWorker(env), s_(std::move(s)), key_(std::move(key)), timeout_(timeout) {}
  void Execute() override {
    try {
      s_->wait({key_}, timeout_);
      value_ = s_->get(key_);
    } catch (const std::exception& e) {
      const std::string m = short_what(e);
      fail(classify_dist(m), "waiting for '" + key_ + "' in the rendezvous store failed: " + m);
    }
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Uint8Array out = Napi::Uint8Array::New(env, value_.size());
    std::copy(value_.begin(), value_.end(), out.Data());
    return out;
  }

 private:
  c10::intrusive_ptr<c10d::Store> s_;
  std::string key_;
  ms timeout_;
  std::vector<uint8_t> value_;
};

Napi::Value store_get(Info info) {
  auto s = arg_store(info, 0);
  const std::string key = arg_str(info, 1);
  const int64_t timeout = arg_int(info, 2);
  if (timeout < 1) bad_arg(info.Env(), 2, "a timeout in milliseconds >= 1");
  auto* w = new StoreGetWorker(info.Env(), s, key, ms(timeout));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// distStoreCheck(store, key) -> boolean: whether the key exists (no waiting).
Napi::Value store_check(Info info) {
  auto s = arg_store(info, 0);
  return Napi::Boolean::New(info.Env(), s->check({arg_str(info, 1)}));
}

Napi::Value store_close(Info info) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, 0);
  if (id >= 0 && id < static_cast<int64_t>(d.stores.size())) d.stores[id].reset();
  return info.Env().Undefined();
}

// ---- process groups ----

// distNewGroup(store, prefix, rank, size, backend ('gloo' | 'nccl'), timeoutMs, gloo {hostname, ifname})
// -> Promise<groupId>. Every member of the group calls it with the same prefix; it returns once all
// of them have connected (Gloo's full mesh), or fails at the timeout naming who is missing.
class GroupWorker : public PromiseWorker {
 public:
  GroupWorker(Napi::Env env, std::shared_ptr<Group> g, c10::intrusive_ptr<c10d::Store> store, std::string host, std::string ifname)
      : PromiseWorker(env), g_(std::move(g)), store_(std::move(store)), host_(std::move(host)), ifname_(std::move(ifname)) {}
  void Execute() override {
    try {
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>(g_->name, store_);
      if (g_->nccl) {
#ifdef OLMO_HAVE_NCCL
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = g_->timeout;
        g_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, g_->rank, g_->size, opts);
#else
        throw std::runtime_error("this build of the olmo-ts addon has no NCCL (it was built against a CPU libtorch)");
#endif
      } else {
#if !OLMO_C10D_GLOO
        throw std::runtime_error("this build of the olmo-ts addon has no Gloo (its headers were not found at build time; set GLOO_INCLUDE_DIR and rebuild)");
#else
        auto opts = c10d::ProcessGroupGloo::Options::create(g_->timeout);
        if (!ifname_.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname_));
        else if (!host_.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host_));
        else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        opts->threads = 2;
        g_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, g_->rank, g_->size, opts);
#endif
      }
    } catch (const std::exception& e) {
      const std::string m = short_what(e);
      fail(classify_dist(m), "joining " + g_->where("the process group") + " failed: " + m);
    }
  }
  Napi::Value result(Napi::Env env) override { return Napi::Number::New(env, put_slot(dist(env).groups, g_)); }

 private:
  std::shared_ptr<Group> g_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::string host_, ifname_;
};

Napi::Value new_group(Info info) {
  auto store = arg_store(info, 0);
  auto g = std::make_shared<Group>();
  g->name = arg_str(info, 1);
  g->rank = static_cast<int>(arg_int(info, 2));
  g->size = static_cast<int>(arg_int(info, 3));
  if (g->size < 1) bad_arg(info.Env(), 3, "a group size >= 1");
  if (g->rank < 0 || g->rank >= g->size) bad_arg(info.Env(), 2, "a rank in [0, size)");
  const std::string backend = arg_str(info, 4);
  if (backend != "gloo" && backend != "nccl") bad_arg(info.Env(), 4, "'gloo' or 'nccl'");
  g->nccl = backend == "nccl";
  const int64_t timeout = arg_int(info, 5);
  if (timeout < 1) bad_arg(info.Env(), 5, "a timeout in milliseconds >= 1");
  g->timeout = ms(timeout);
  std::string host, ifname;
  if (info[6].IsObject()) {
    Napi::Object o = info[6].As<Napi::Object>();
    if (o.Get("hostname").IsString()) host = o.Get("hostname").As<Napi::String>().Utf8Value();
    if (o.Get("ifname").IsString()) ifname = o.Get("ifname").As<Napi::String>().Utf8Value();
  }
  auto* w = new GroupWorker(info.Env(), g, store, host, ifname);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value close_group(Info info) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, 0);
  if (id >= 0 && id < static_cast<int64_t>(d.groups.size())) d.groups[id].reset();
  return info.Env().Undefined();
}

Napi::Value has_nccl(Info info) {
#ifdef OLMO_HAVE_NCCL
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// ---- collectives ----

c10d::ReduceOp reduce_op(Op op) {
  switch (op) {
    case Op::kMax: return c10d::ReduceOp::MAX;
    case Op::kMin: return c10d::ReduceOp::MIN;
    default: return c10d::ReduceOp::SUM;
  }
}

Op arg_op(Info info, size_t i) {
  const int64_t o = arg_int(info, i);
  if (o < 0 || o > 3) bad_arg(info.Env(), i, "a reduce op (0 sum, 1 avg, 2 max, 3 min)");
  return static_cast<Op>(o);
}

void check_same_device(Info info, const std::vector<at::Tensor>& ts) {
  if (ts.empty()) throw_js(info.Env(), kArgument, "a collective needs at least one tensor");
  for (const auto& t : ts)
    if (t.device() != ts[0].device()) throw_js(info.Env(), kArgument, "the tensors of one collective must be on one device");
}

// The tensors as one contiguous 1-D buffer of `dtype` (a copy unless it is already that).
at::Tensor flatten_as(const std::vector<at::Tensor>& ts, at::ScalarType dtype) {
  if (ts.size() == 1 && ts[0].is_contiguous() && ts[0].scalar_type() == dtype) return ts[0].view({-1});
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto& t : ts) flat.push_back(t.reshape({-1}).to(dtype));
  return at::cat(flat);
}

// Copies a flat buffer back into the tensors it was made from (no-op for an in-place view).
void unflatten_into(const at::Tensor& flat, const std::vector<at::Tensor>& ts) {
  if (ts.size() == 1 && flat.data_ptr() == ts[0].data_ptr()) return;
  int64_t off = 0;
  for (const auto& t : ts) {
    const int64_t n = t.numel();
    t.copy_(flat.narrow(0, off, n).view(t.sizes()));
    off += n;
  }
}

// distAllReduce(group, tensors[], op) -> work. Several tensors are reduced as one flat buffer.
Napi::Value all_reduce(Info info) {
  auto g = arg_group(info, 0);
  std::vector<at::Tensor> ts = arg_tensors(info, 1);
  const Op op = arg_op(info, 2);
  check_same_device(info, ts);
  at::NoGradGuard no_grad;
  const at::ScalarType dt = ts[0].scalar_type();
  for (const auto& t : ts)
    if (t.scalar_type() != dt) throw_js(info.Env(), kArgument, "the tensors of one all-reduce must share a dtype");
  const at::ScalarType wire = gloo_reduces(*g, dt) ? dt : at::kFloat;
  at::Tensor flat = flatten_as(ts, wire);
  std::vector<at::Tensor> io{flat};
  c10d::AllreduceOptions o;
  const bool native_avg = op == Op::kAvg && g->nccl;
  o.reduceOp = native_avg ? c10d::ReduceOp(c10d::ReduceOp::AVG) : reduce_op(op);
  auto p = std::make_shared<Pending>();
  p->group = g;
  p->what = "all_reduce";
  p->works.push_back(g->pg->allreduce(io, o));
  const int size = g->size;
  p->finish = [flat, ts, op, native_avg, size]() {
    at::NoGradGuard ng;
    if (op == Op::kAvg && !native_avg) flat.div_(size);
    unflatten_into(flat, ts);
  };
  return put_pending(info.Env(), p);
}

// distBroadcast(group, tensors[], root) -> work. Copies bit for bit (half types as bytes).
Napi::Value broadcast(Info info) {
  auto g = arg_group(info, 0);
  std::vector<at::Tensor> ts = arg_tensors(info, 1);
  const int64_t root = arg_int(info, 2);
  if (root < 0 || root >= g->size) bad_arg(info.Env(), 2, "a root rank in [0, size)");
  check_same_device(info, ts);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> bytes;
  for (const auto& t : ts) bytes.push_back(t.contiguous().view({-1}).view(at::kByte));
  at::Tensor flat = ts.size() == 1 && ts[0].is_contiguous() ? bytes[0] : at::cat(bytes);
  std::vector<at::Tensor> io{flat};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  auto p = std::make_shared<Pending>();
  p->group = g;
  p->what = "broadcast";
  p->works.push_back(g->pg->broadcast(io, o));
  p->finish = [flat, ts]() {
    at::NoGradGuard ng;
    int64_t off = 0;
    for (const auto& t : ts) {
      const int64_t n = t.numel() * t.element_size();
      if (!(ts.size() == 1 && flat.data_ptr() == t.data_ptr())) t.view({-1}).view(at::kByte).copy_(flat.narrow(0, off, n));
      off += n;
    }
  };
  return put_pending(info.Env(), p);
}

// distAllGather(group, out, in) -> work. out (contiguous, numel = size * in.numel) receives every
// rank's `in`, rank order.
Napi::Value all_gather(Info info) {
  auto g = arg_group(info, 0);
  at::Tensor out = arg_tensor(info, 1);
  at::Tensor in = arg_tensor(info, 2);
  if (!out.is_contiguous()) throw_js(info.Env(), kArgument, "all_gather: the output must be contiguous");
  if (out.numel() != in.numel() * g->size)
    throw_js(info.Env(), kShape, "all_gather: the output has " + std::to_string(out.numel()) + " elements, expected " +
                                     std::to_string(in.numel()) + " x " + std::to_string(g->size));
  if (out.scalar_type() != in.scalar_type() || out.device() != in.device())
    throw_js(info.Env(), kArgument, "all_gather: input and output must share dtype and device");
  at::NoGradGuard no_grad;
  auto p = std::make_shared<Pending>();
  p->group = g;
  p->what = "all_gather";
  at::Tensor src = in.contiguous().view({-1});
  at::Tensor dst = out.view({-1});
  if (!g->nccl && !gloo_reduces(*g, src.scalar_type())) {  // Gloo copies half types as bytes
    src = src.view(at::kByte);
    dst = dst.view(at::kByte);
  }
  if (g->nccl) {
    p->works.push_back(g->pg->_allgather_base(dst, src));
  } else {
    std::vector<std::vector<at::Tensor>> outs{dst.chunk(g->size)};
    std::vector<at::Tensor> ins{src};
    p->works.push_back(g->pg->allgather(outs, ins));
  }
  p->finish = [src, dst]() {};  // keeps the buffers alive until the gather is done
  return put_pending(info.Env(), p);
}

// distReduceScatter(group, out, in, op) -> work. in has size * out.numel elements; rank r receives
// the reduction of every rank's chunk r. Gloo: all-reduce a copy, keep one's own chunk.
Napi::Value reduce_scatter(Info info) {
  auto g = arg_group(info, 0);
  at::Tensor out = arg_tensor(info, 1);
  at::Tensor in = arg_tensor(info, 2);
  const Op op = arg_op(info, 3);
  if (in.numel() != out.numel() * g->size)
    throw_js(info.Env(), kShape, "reduce_scatter: the input has " + std::to_string(in.numel()) + " elements, expected " +
                                     std::to_string(out.numel()) + " x " + std::to_string(g->size));
  if (out.scalar_type() != in.scalar_type() || out.device() != in.device())
    throw_js(info.Env(), kArgument, "reduce_scatter: input and output must share dtype and device");
  at::NoGradGuard no_grad;
  auto p = std::make_shared<Pending>();
  p->group = g;
  p->what = "reduce_scatter";
  const int size = g->size, rank = g->rank;
  if (g->nccl) {
    at::Tensor dst = out.is_contiguous() ? out.view({-1}) : at::empty({out.numel()}, out.options());
    at::Tensor src = in.contiguous().view({-1});
    c10d::ReduceScatterOptions o;
    o.reduceOp = op == Op::kAvg ? c10d::ReduceOp(c10d::ReduceOp::AVG) : reduce_op(op);
    p->works.push_back(g->pg->_reduce_scatter_base(dst, src, o));
    p->finish = [dst, src, out]() {
      at::NoGradGuard ng;
      if (dst.data_ptr() != out.data_ptr()) out.copy_(dst.view(out.sizes()));
    };
  } else {
    const at::ScalarType wire = gloo_reduces(*g, in.scalar_type()) ? in.scalar_type() : at::kFloat;
    at::Tensor buf = in.reshape({-1}).to(wire, /*non_blocking=*/false, /*copy=*/true);
    std::vector<at::Tensor> io{buf};
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    p->works.push_back(g->pg->allreduce(io, o));
    p->finish = [buf, out, op, size, rank]() {
      at::NoGradGuard ng;
      at::Tensor mine = buf.chunk(size)[rank];
      if (op == Op::kAvg) mine.div_(size);
      out.copy_(mine.view(out.sizes()));
    };
  }
  return put_pending(info.Env(), p);
}

// distBarrier(group) -> work.
Napi::Value barrier(Info info) {
  auto g = arg_group(info, 0);
  auto p = std::make_shared<Pending>();
  p->group = g;
  p->what = "barrier";
  c10d::BarrierOptions o;
  o.timeout = g->timeout;
  p->works.push_back(g->pg->barrier(o));
  return put_pending(info.Env(), p);
}

// distWait(works[]) -> Promise<void>: waits for each work in order, then runs its completion
// (copy back, divide). The handles are consumed. A failure names the collective, rank and size.
class WaitWorker : public PromiseWorker {
 public:
  WaitWorker(Napi::Env env, std::vector<std::shared_ptr<Pending>> ps) : PromiseWorker(env), ps_(std::move(ps)) {}
  void Execute() override {
    for (auto& p : ps_) {
      try {
        // The group's timeout bounds each collective inside c10d; the wait gets a little more so
        // that c10d's own, more specific, message is the one reported.
        const ms limit = p->group->timeout + ms(5000);
        for (auto& w : p->works) {
          if (!w->wait(limit)) throw std::runtime_error("the collective did not complete");
        }
        if (p->finish) p->finish();
      } catch (const std::exception& e) {
        const std::string m = short_what(e);
        fail(classify_dist(m), p->group->where(p->what.c_str()) + " failed: " + m);
        return;
      }
    }
  }

 private:
  std::vector<std::shared_ptr<Pending>> ps_;
};

std::vector<std::shared_ptr<Pending>> take_works(Info info, size_t i) {
  auto& d = dist(info.Env());
  const std::vector<int64_t> ids = arg_ints(info, i);
  std::vector<std::shared_ptr<Pending>> ps;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(d.works.size()) || !d.works[id])
      throw_js(info.Env(), kArgument, "work " + std::to_string(id) + " does not exist or was already waited for");
  }
  for (int64_t id : ids) {
    ps.push_back(d.works[id]);
    d.works[id].reset();
  }
  return ps;
}

Napi::Value wait_works(Info info) {
  auto* w = new WaitWorker(info.Env(), take_works(info, 0));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// distIsCompleted(work) -> boolean, without waiting.
Napi::Value is_completed(Info info) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, 0);
  if (id < 0 || id >= static_cast<int64_t>(d.works.size()) || !d.works[id])
    throw_js(info.Env(), kArgument, "work " + std::to_string(id) + " does not exist or was already waited for");
  for (auto& w : d.works[id]->works)
    if (!w->isCompleted()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), true);
}

// ---- gradient reducer ----
// Averages the gradients of a parameter list across a group in flat fp32 buckets of about
// `bucketBytes`. Buckets follow the reverse parameter order (the order backward produces them).
// With `overlap`, a post-hook on each parameter's AccumulateGrad launches a bucket's all-reduce as
// soon as its last gradient is accumulated, while backward goes on (DDP's Reducer); the hooks are
// C++ only and are armed for one backward at a time. reduce() launches whatever is left (all of it
// without overlap) and returns one work that, once waited for, has written the averages back.
}  // namespace

struct Reducer : std::enable_shared_from_this<Reducer> {
  std::shared_ptr<Group> group;
  std::vector<at::Tensor> params;
  std::vector<std::vector<size_t>> buckets;  // parameter indexes per bucket
  std::vector<size_t> bucket_of;             // parameter -> bucket
  std::vector<int> missing;                  // per bucket: gradients not yet accumulated this backward
  std::vector<at::Tensor> flat;              // per bucket: the launched buffer (undefined if not launched)
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  size_t next = 0;                           // next bucket to launch (buckets launch in order)
  bool armed = false;
  std::mutex mu;

  at::Tensor grad_or_zeros(size_t i) {
    const at::Tensor& g = params[i].grad();
    if (g.defined()) return g;
    params[i].mutable_grad() = at::zeros_like(params[i]);  // a parameter this rank did not use
    return params[i].grad();
  }

  void launch(size_t b) {
    std::vector<at::Tensor> gs;
    for (size_t i : buckets[b]) gs.push_back(grad_or_zeros(i));
    flat[b] = flatten_as(gs, at::kFloat);
    if (flat[b].data_ptr() == gs[0].data_ptr()) flat[b] = flat[b].clone();  // never reduce into the grad itself mid-backward
    std::vector<at::Tensor> io{flat[b]};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    works.push_back(group->pg->allreduce(io, o));
  }

  void on_ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    --missing[bucket_of[i]];
    // Launch in bucket order only, so every rank issues the same sequence of collectives.
    while (next < buckets.size() && missing[next] == 0) launch(next++);
  }
};

namespace {

struct ReadyHook : torch::autograd::FunctionPostHook {
  std::weak_ptr<Reducer> r;
  size_t i;
  ReadyHook(std::weak_ptr<Reducer> r, size_t i) : r(std::move(r)), i(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = r.lock()) s->on_ready(i);
    return outputs;
  }
};

std::shared_ptr<Reducer> arg_reducer(Info info, size_t i) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, i);
  if (id < 0 || id >= static_cast<int64_t>(d.reducers.size()) || !d.reducers[id])
    throw_js(info.Env(), kArgument, "gradient reducer " + std::to_string(id) + " does not exist or was closed");
  return d.reducers[id];
}

// distReducerNew(group, params[], bucketBytes, overlap) -> reducer id.
Napi::Value reducer_new(Info info) {
  auto r = std::make_shared<Reducer>();
  r->group = arg_group(info, 0);
  r->params = arg_tensors(info, 1);
  const int64_t cap = arg_int(info, 2);
  if (cap < 1) bad_arg(info.Env(), 2, "a bucket size in bytes >= 1");
  const bool overlap = arg_bool(info, 3);
  const size_t n = r->params.size();
  r->bucket_of.resize(n);
  int64_t bytes = cap;
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = r->params[k];
    if (!p.requires_grad() || !p.is_leaf()) throw_js(info.Env(), kArgument, "every parameter of a gradient reducer must be a leaf that requires grad");
    if (bytes >= cap) { r->buckets.emplace_back(); bytes = 0; }
    r->buckets.back().push_back(k);
    r->bucket_of[k] = r->buckets.size() - 1;
    bytes += p.numel() * 4;
  }
  r->missing.assign(r->buckets.size(), 0);
  r->flat.resize(r->buckets.size());
  if (overlap) {
    std::weak_ptr<Reducer> weak = r;
    for (size_t k = 0; k < n; ++k) {
      auto acc = torch::autograd::impl::grad_accumulator(r->params[k]);
      acc->add_post_hook(std::make_unique<ReadyHook>(weak, k));
      r->accumulators.push_back(std::move(acc));  // held, or autograd makes a new one without the hook
    }
  }
  return Napi::Number::New(info.Env(), put_slot(dist(info.Env()).reducers, r));
}

// distReducerArm(reducer): the next backward launches buckets as they fill (overlap mode only).
Napi::Value reducer_arm(Info info) {
  auto r = arg_reducer(info, 0);
  std::lock_guard<std::mutex> lock(r->mu);
  if (r->accumulators.empty()) return info.Env().Undefined();
  for (size_t b = 0; b < r->buckets.size(); ++b) r->missing[b] = static_cast<int>(r->buckets[b].size());
  r->next = 0;
  r->armed = true;
  return info.Env().Undefined();
}

// distReducerReduce(reducer) -> work: launches the buckets still unlaunched; once waited for, every
// parameter's .grad holds the average over the group.
Napi::Value reducer_reduce(Info info) {
  auto r = arg_reducer(info, 0);
  at::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(r->mu);
  r->armed = false;
  for (size_t b = r->next; b < r->buckets.size(); ++b) r->launch(b);
  r->next = 0;
  auto p = std::make_shared<Pending>();
  p->group = r->group;
  p->what = "gradient all_reduce";
  p->works = std::move(r->works);
  r->works.clear();
  std::vector<at::Tensor> flats = std::move(r->flat);
  r->flat.assign(r->buckets.size(), at::Tensor());
  std::vector<std::vector<at::Tensor>> grads;
  for (const auto& bucket : r->buckets) {
    std::vector<at::Tensor> gs;
    for (size_t i : bucket) gs.push_back(r->params[i].grad());
    grads.push_back(std::move(gs));
  }
  const int size = r->group->size;
  p->finish = [flats, grads, size]() {
    at::NoGradGuard ng;
    for (size_t b = 0; b < flats.size(); ++b) {
      flats[b].div_(size);
      int64_t off = 0;
      for (const auto& g : grads[b]) {
        g.copy_(flats[b].narrow(0, off, g.numel()).view(g.sizes()));
        off += g.numel();
      }
    }
  };
  return put_pending(info.Env(), p);
}

// distReducerInfo(reducer) -> {buckets, bytes}: what one reduce() moves.
Napi::Value reducer_info(Info info) {
  auto r = arg_reducer(info, 0);
  int64_t bytes = 0;
  for (const auto& p : r->params) bytes += p.numel() * 4;
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("buckets", Napi::Number::New(info.Env(), static_cast<double>(r->buckets.size())));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(bytes)));
  return o;
}

Napi::Value reducer_close(Info info) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, 0);
  if (id >= 0 && id < static_cast<int64_t>(d.reducers.size()) && d.reducers[id]) {
    std::lock_guard<std::mutex> lock(d.reducers[id]->mu);
    d.reducers[id]->armed = false;
    d.reducers[id].reset();  // hooks hold weak references and become no-ops
  }
  return info.Env().Undefined();
}

}  // namespace

void init_dist(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("distTcpStore", tcp_store);
  OLMO_EXPORT("distFileStore", file_store);
  OLMO_EXPORT("distStoreSet", store_set);
  OLMO_EXPORT("distStoreGet", store_get);
  OLMO_EXPORT("distStoreCheck", store_check);
  OLMO_EXPORT("distStoreClose", store_close);
  OLMO_EXPORT("distNewGroup", new_group);
  OLMO_EXPORT("distCloseGroup", close_group);
  OLMO_EXPORT("distHasNccl", has_nccl);
  OLMO_EXPORT("distAllReduce", all_reduce);
  OLMO_EXPORT("distBroadcast", broadcast);
  OLMO_EXPORT("distAllGather", all_gather);
  OLMO_EXPORT("distReduceScatter", reduce_scatter);
  OLMO_EXPORT("distBarrier", barrier);
  OLMO_EXPORT("distWait", wait_works);
  OLMO_EXPORT("distIsCompleted", is_completed);
  OLMO_EXPORT("distReducerNew", reducer_new);
  OLMO_EXPORT("distReducerArm", reducer_arm);
  OLMO_EXPORT("distReducerReduce", reducer_reduce);
  OLMO_EXPORT("distReducerInfo", reducer_info);
  OLMO_EXPORT("distReducerClose", reducer_close);
}

}  // namespace olmo
