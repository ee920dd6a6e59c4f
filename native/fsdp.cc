// fsdp.cc — the mechanism of FSDP/ZeRO sharding on libtorch (the policy — which modules form a unit,
// the strategy, the precision, when to prefetch — is src/dist/fsdp.ts). One FsdpUnit owns a group
// of parameters as one flat parameter, laid out as torch FSDP's FlatParameter: each parameter starts
// at a multiple of kAlign elements, the total is padded to a multiple of (ranks x kAlign), and rank r
// keeps elements [r·S, (r+1)·S) as its fp32 master shard. The unit:
//  - gathers the full parameters (cast to the parameter dtype, all-gather) into one leaf tensor
//    `full` whose storage is freed and refilled in place, so tensors that autograd saved still see
//    the data when backward re-gathers (../shared/DESIGN-FSDP.md §2);
//  - hands the model views of `full` as its parameter tensors (the registry ids the model holds
//    are re-pointed at the views, or parked with a clear message while the unit is sharded);
//  - re-gathers before the unit's backward (a hook on the unit's outputs) and prefetches the next
//    unit of backward (BACKWARD_PRE), reduce-scatters the gradient in a post-hook of `full`'s
//    AccumulateGrad, and frees `full` per strategy;
//  - gives the optimizer per-parameter fp32 "segments": leaf aliases of its piece of the master
//    shard whose .grad aliases the same piece of the gradient shard (use_orig_params), so the
//    existing AdamW/LionW loops, clipping and checkpoints work on shards unchanged.
// Hooks are C++ only and touch no JS value and no registry slot (on CUDA they run on autograd's
// device threads); the registry is changed only by calls from JS.
#include <algorithm>
#include <atomic>

#include "dist.h"

namespace olmo {

namespace {
using Info = const Napi::CallbackInfo&;
enum Strategy { kNoShard = 0, kShardGradOp = 1, kFullShard = 2 };
constexpr int64_t kAlign = 16;  // elements; fixed so the unpadded layout depends only on the parameters

// Process-wide accounting of gathered (unsharded) parameter bytes, for tests and the memory bench.
std::atomic<int64_t> g_full_live{0}, g_full_peak{0}, g_gathers{0}, g_reductions{0};

void account(int64_t delta) {
  const int64_t now = g_full_live += delta;
  int64_t peak = g_full_peak.load();
  while (now > peak && !g_full_peak.compare_exchange_weak(peak, now)) {
  }
}

at::Tensor alias_of(const at::Tensor& base, int64_t offset, int64_t n) {
  // A tensor on `base`'s storage with its own autograd metadata and version counter: writes through
  // it do not bump the counter that views of `base` share (autograd would reject the backward).
  return at::empty({0}, base.options().requires_grad(false)).set_(base.storage(), base.storage_offset() + offset, {n}, {1});
}
}  // namespace

struct FsdpUnit : std::enable_shared_from_this<FsdpUnit> {
  std::string name;
  std::shared_ptr<Group> shard;      // the ranks this unit is sharded over (null: one process)
  std::shared_ptr<Group> replicate;  // HYBRID: the same shard on other nodes (null otherwise)
  int strategy = kFullShard;
  bool root = false;
  at::ScalarType param_dtype = at::kFloat, reduce_dtype = at::kFloat;
  int world = 1;  // every rank whose gradient is averaged (shard x replicate)
  int nshard = 1, srank = 0;
  ms timeout{30 * 60 * 1000};
  // layout
  std::vector<std::vector<int64_t>> shapes;
  std::vector<int64_t> numels, offsets, split_sizes;  // split_sizes: param, pad, param, pad, ..., tail
  int64_t padded = 0, S = 0;
  // state
  at::Tensor local;                // fp32 [S]: this rank's master shard
  at::Tensor full;                 // param dtype [padded], leaf; storage freed while sharded
  at::Tensor full_alias;           // writes into full's storage (gathers)
  bool full_is_local = false;      // NO_SHARD in fp32: the master is the full parameter
  std::vector<int64_t> view_ids;   // registry ids the model holds for the parameters
  bool views_bound = false;        // the ids point at views (else they are parked)
  std::vector<at::Tensor> segs;    // per param: fp32 leaf alias of this rank's piece of `local`
  std::vector<int64_t> seg_lo;     // per param: where its piece starts in `local`
  at::Tensor grad_shard;           // fp32 [S]; undefined until a gradient arrives (zero_grad: none)
  std::shared_ptr<torch::autograd::Node> acc;
  bool gathered = false;           // full's storage is allocated (data may still be arriving: gather_work)
  c10::intrusive_ptr<c10d::Work> gather_work;
  at::Tensor gather_keep;
  struct Reduction {
    c10::intrusive_ptr<c10d::Work> work;
    at::Tensor buf;
    bool slice;  // Gloo's emulated reduce-scatter: the buffer is the whole all-reduced gradient
    bool rounded;  // emulated low-precision reduction: round the shard to reduce_dtype
  };
  std::vector<Reduction> pending;
  bool pre_backward_ran = false;
  std::weak_ptr<FsdpUnit> backward_next;  // gathered ahead in this unit's pre-backward hook
  std::string error;               // the first failure inside a hook, reported at finish

  bool frees() const { return strategy != kNoShard; }
  int64_t full_bytes() const { return padded * static_cast<int64_t>(c10::elementSize(param_dtype)); }

  void alloc_full() {
    c10::StorageImpl* impl = full.storage().unsafeGetStorageImpl();
    impl->set_data_ptr_noswap(impl->allocator()->allocate(full_bytes()));
    impl->set_nbytes(full_bytes());
    account(full_bytes());
  }
  void free_full() {
    if (!gathered || full_is_local) return;
    if (gather_work) wait_gather();
    c10::StorageImpl* impl = full.storage().unsafeGetStorageImpl();
    impl->set_data_ptr_noswap(at::DataPtr(nullptr, full.device()));
    impl->set_nbytes(0);
    account(-full_bytes());
    gathered = false;
  }

  // Starts filling `full` from the shards (returns at once; wait_gather() completes it).
  void gather() {
    if (gathered) return;
    at::NoGradGuard ng;
    alloc_full();
    gathered = true;
    ++g_gathers;
    at::Tensor mp = local.to(param_dtype);  // [S]
    if (!shard || nshard == 1) {
      full_alias.copy_(mp);
      return;
    }
    if (shard->nccl) {
      gather_work = shard->pg->_allgather_base(full_alias, mp);
    } else {
      at::Tensor src = mp, dst = full_alias;
      if (!gloo_reduces(*shard, param_dtype)) {
        src = src.view(at::kByte);
        dst = dst.view(at::kByte);
      }
      std::vector<std::vector<at::Tensor>> outs{dst.chunk(nshard)};
      std::vector<at::Tensor> ins{src};
      gather_work = shard->pg->allgather(outs, ins);
    }
    gather_keep = mp;
  }
  void wait_gather() {
    if (!gather_work) return;
    auto w = std::move(gather_work);
    gather_work.reset();
    if (!w->wait(timeout + ms(5000))) throw std::runtime_error("the all-gather did not complete");
    gather_keep.reset();
  }
  void gather_now() {
    gather();
    wait_gather();
    if (strategy == kNoShard && !full_is_local) {  // NO_SHARD in a lower precision: refresh the cast
      at::NoGradGuard ng;
      full_alias.copy_(local);
    }
  }

  // Views of `full`, one per parameter, built fresh for each forward (as FSDP's use_orig_params).
  std::vector<at::Tensor> make_views() {
    std::vector<at::Tensor> pieces = full.split_with_sizes(split_sizes);
    std::vector<at::Tensor> out;
    for (size_t k = 0; k < shapes.size(); ++k) out.push_back(pieces[2 * k].view(shapes[k]));
    return out;
  }

  // Post-backward: the gradient of `full` is complete. Reduce it (scatter to shards) without waiting.
  void reduce_grad() {
    at::Tensor g = full.grad();
    full.mutable_grad().reset();
    if (!g.defined()) return;
    at::NoGradGuard ng;
    ++g_reductions;
    const bool low = reduce_dtype != at::kFloat;
    if (!shard || nshard == 1) {
      Reduction r{c10::intrusive_ptr<c10d::Work>(), strategy == kNoShard ? g.to(reduce_dtype) : g.to(reduce_dtype).narrow(0, 0, S), false, false};
      if (replicate) all_reduce_replicas(r);
      pending.push_back(std::move(r));
      return;
    }
    if (strategy == kNoShard) {  // every rank keeps the whole gradient: all-reduce
      const bool wire_ok = gloo_reduces(*shard, reduce_dtype);
      at::Tensor buf = wire_ok ? g.to(reduce_dtype).contiguous() : g.to(at::kFloat);
      std::vector<at::Tensor> io{buf};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      pending.push_back({shard->pg->allreduce(io, o), buf, false, low && !wire_ok});
      return;
    }
    Reduction r;
    if (shard->nccl) {
      at::Tensor in = g.to(reduce_dtype).contiguous();
      r.buf = at::empty({S}, in.options());
      c10d::ReduceScatterOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      r.work = shard->pg->_reduce_scatter_base(r.buf, in, o);
      r.slice = false;
      r.rounded = false;
    } else {  // Gloo has no reduce-scatter: all-reduce (in fp32 for half types) and keep one's chunk
      const bool wire_ok = gloo_reduces(*shard, reduce_dtype);
      r.buf = wire_ok ? g.to(reduce_dtype).contiguous() : g.to(at::kFloat);
      std::vector<at::Tensor> io{r.buf};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      r.work = shard->pg->allreduce(io, o);
      r.slice = true;
      r.rounded = low && !wire_ok;
    }
    if (replicate) {  // HYBRID: the shard is then summed over the other nodes' copies
      settle(r);
      all_reduce_replicas(r);
    }
    pending.push_back(std::move(r));
    // Gloo's emulation all-reduces the whole unit gradient: keep at most one such buffer in flight
    // (it overlaps the next unit's backward), or every unit's full gradient would live until the end
    // of backward — the memory FULL_SHARD exists to save.
    size_t whole = 0;
    for (auto& x : pending) whole += x.slice ? 1 : 0;
    for (auto& x : pending) {
      if (whole <= 1) break;
      if (x.slice) { settle(x); --whole; }
    }
  }
  // Waits for a Gloo-emulated reduce-scatter and keeps only this rank's chunk.
  void settle(Reduction& r) {
    if (!r.work->wait(timeout + ms(5000))) throw std::runtime_error("the reduce-scatter did not complete");
    r.work = c10::intrusive_ptr<c10d::Work>();
    if (r.slice) r.buf = r.buf.chunk(nshard)[srank].clone();
    r.slice = false;
  }
  void all_reduce_replicas(Reduction& r) {
    if (r.rounded) r.buf = r.buf.to(reduce_dtype).to(at::kFloat);
    r.rounded = false;
    const bool wire_ok = gloo_reduces(*replicate, r.buf.scalar_type());
    if (!wire_ok) { r.buf = r.buf.to(at::kFloat); r.rounded = reduce_dtype != at::kFloat; }
    std::vector<at::Tensor> io{r.buf};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    r.work = replicate->pg->allreduce(io, o);
  }

  // Completes the reductions issued this backward: averages, adds into the gradient shard, and
  // points the segments' .grad at it. Runs off the JS thread (no JS values, no registry).
  void finish_reductions() {
    at::NoGradGuard ng;
    for (auto& r : pending) {
      if (r.work && !r.work->wait(timeout + ms(5000))) throw std::runtime_error("the gradient reduction did not complete");
      at::Tensor t = r.slice ? r.buf.chunk(nshard)[srank] : r.buf;
      if (r.rounded) t = t.to(reduce_dtype);  // Gloo summed in fp32: round as a low-precision reduction would
      t = t.to(at::kFloat).div(world);        // a new tensor: never an alias of the buffer
      if (grad_shard.defined()) grad_shard.add_(t);
      else grad_shard = t.contiguous();
    }
    pending.clear();
    if (!grad_shard.defined()) return;
    for (size_t k = 0; k < segs.size(); ++k)
      segs[k].mutable_grad() = grad_shard.narrow(0, seg_lo[k], segs[k].numel());
  }

  void pre_backward() {
    if (pre_backward_ran) return;
    pre_backward_ran = true;
    gather_now();
    if (auto next = backward_next.lock()) next->gather();  // BACKWARD_PRE prefetch
  }

  void zero_grad() {
    grad_shard = at::Tensor();
    for (auto& s : segs) s.mutable_grad().reset();
  }
};

namespace {

struct PostBackwardHook : torch::autograd::FunctionPostHook {
  std::weak_ptr<FsdpUnit> unit;
  explicit PostBackwardHook(std::weak_ptr<FsdpUnit> u) : unit(std::move(u)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    auto u = unit.lock();
    if (!u) return outputs;
    try {
      u->reduce_grad();
      u->free_full();
    } catch (const std::exception& e) {
      if (u->error.empty()) u->error = u->name + ": " + short_what(e);
    }
    return outputs;
  }
};

std::shared_ptr<FsdpUnit> arg_unit(Info info, size_t i) {
  auto& d = dist(info.Env());
  const int64_t id = arg_int(info, i);
  if (id < 0 || id >= static_cast<int64_t>(d.units.size()) || !d.units[id])
    throw_js(info.Env(), kArgument, "FSDP unit " + std::to_string(id) + " does not exist or was closed");
  return d.units[id];
}

std::vector<std::shared_ptr<FsdpUnit>> arg_units(Info info, size_t i) {
  auto& d = dist(info.Env());
  std::vector<std::shared_ptr<FsdpUnit>> out;
  for (int64_t id : arg_ints(info, i)) {
    if (id < 0 || id >= static_cast<int64_t>(d.units.size()) || !d.units[id])
      throw_js(info.Env(), kArgument, "FSDP unit " + std::to_string(id) + " does not exist or was closed");
    out.push_back(d.units[id]);
  }
  return out;
}

std::string parked_message(const FsdpUnit& u) {
  return "this parameter belongs to FSDP unit '" + u.name + "', whose full parameters exist only during its forward and backward; use the trainer's state dict (gathered) instead";
}

// The model's parameter ids point at fresh views of `full`.
void bind_views(Napi::Env env, FsdpUnit& u) {
  Registry& r = reg(env);
  std::vector<at::Tensor> views;
  {
    at::AutoGradMode on(true);  // the views must lead back to `full` in autograd (also under noGrad)
    views = u.make_views();
  }
  for (size_t k = 0; k < views.size(); ++k) {
    const int64_t id = u.view_ids[k];
    if (id < 0) continue;
    if (!r.slots[id].defined() && !r.parked.count(id)) {  // the model disposed this parameter
      u.view_ids[k] = -1;
      continue;
    }
    r.parked.erase(id);
    r.slots[id] = views[k];
  }
  u.views_bound = true;
}
// While sharded, the ids hold nothing: a use gets a message instead of reading freed memory.
void park_views(Napi::Env env, FsdpUnit& u) {
  Registry& r = reg(env);
  for (int64_t& id : u.view_ids) {
    if (id < 0) continue;
    if (!r.slots[id].defined() && !r.parked.count(id)) { id = -1; continue; }
    if (r.slots[id].defined()) r.parked[id] = Registry::Parked{parked_message(u), r.slots[id]};
    r.slots[id] = at::Tensor();
  }
  u.views_bound = false;
}

const char* kStrategyNames[] = {"NO_SHARD", "SHARD_GRAD_OP", "FULL_SHARD"};

// fsdpUnitNew(shardGroup | -1, replicateGroup | -1, params[], {name, strategy, root, paramDtype,
// reduceDtype, world}) -> {unit, segments[]}. Takes the parameters over: each rank keeps its shard
// of their current values (identical on every rank), the ids become views of the unit's flat
// parameter, and `segments` are the tensors the optimizer updates, one per parameter.
Napi::Value unit_new(Info info) {
  Napi::Env env = info.Env();
  auto& d = dist(env);
  auto u = std::make_shared<FsdpUnit>();
  if (arg_int(info, 0) >= 0) u->shard = arg_group(info, 0);
  if (arg_int(info, 1) >= 0) u->replicate = arg_group(info, 1);
  const std::vector<int64_t> ids = arg_ints(info, 2);
  std::vector<at::Tensor> params = arg_tensors(info, 2);
  if (!info[3].IsObject()) bad_arg(env, 3, "an options object");
  Napi::Object o = info[3].As<Napi::Object>();
  u->name = o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "unit";
  u->strategy = o.Get("strategy").As<Napi::Number>().Int32Value();
  if (u->strategy < 0 || u->strategy > 2) throw_js(env, kArgument, "FSDP strategy must be 0 (NO_SHARD), 1 (SHARD_GRAD_OP) or 2 (FULL_SHARD)");
  u->root = o.Get("root").ToBoolean();
  u->param_dtype = o.Get("paramDtype").IsString() && o.Get("paramDtype").As<Napi::String>().Utf8Value() == "bfloat16" ? at::kBFloat16
                   : o.Get("paramDtype").IsString() && o.Get("paramDtype").As<Napi::String>().Utf8Value() == "float16" ? at::kHalf : at::kFloat;
  u->reduce_dtype = o.Get("reduceDtype").IsString() && o.Get("reduceDtype").As<Napi::String>().Utf8Value() == "bfloat16" ? at::kBFloat16
                    : o.Get("reduceDtype").IsString() && o.Get("reduceDtype").As<Napi::String>().Utf8Value() == "float16" ? at::kHalf : at::kFloat;
  u->world = o.Get("world").IsNumber() ? o.Get("world").As<Napi::Number>().Int32Value() : 1;
  if (u->shard) {
    u->nshard = u->shard->size;
    u->srank = u->shard->rank;
    u->timeout = u->shard->timeout;
  }
  if (u->world < u->nshard * (u->replicate ? u->replicate->size : 1)) throw_js(env, kArgument, "FSDP world size is smaller than the groups");
  if (params.empty()) throw_js(env, kArgument, "an FSDP unit needs at least one parameter");
  const at::Device dev = params[0].device();
  for (const auto& p : params) {
    if (!p.is_leaf() || !p.requires_grad()) throw_js(env, kArgument, "FSDP unit '" + u->name + "': every parameter must be a leaf that requires grad");
    if (p.scalar_type() != at::kFloat) throw_js(env, kArgument, "FSDP unit '" + u->name + "': parameters must be fp32 (the master weights)");
    if (p.device() != dev) throw_js(env, kArgument, "FSDP unit '" + u->name + "': parameters must be on one device");
  }
  // Layout (as FlatParameter): aligned starts, padded total.
  int64_t off = 0;
  for (const auto& p : params) {
    u->shapes.push_back(p.sizes().vec());
    u->numels.push_back(p.numel());
    u->offsets.push_back(off);
    off += (p.numel() + kAlign - 1) / kAlign * kAlign;
  }
  const int64_t unit_align = kAlign * (u->strategy == kNoShard ? 1 : u->nshard);
  u->padded = std::max<int64_t>(1, (off + unit_align - 1) / unit_align) * unit_align;
  u->S = u->strategy == kNoShard ? u->padded : u->padded / u->nshard;
  for (size_t k = 0; k < params.size(); ++k) {
    const int64_t end = k + 1 < params.size() ? u->offsets[k + 1] : u->padded;
    u->split_sizes.push_back(u->numels[k]);
    u->split_sizes.push_back(end - u->offsets[k] - u->numels[k]);
  }
  at::NoGradGuard ng;
  const int64_t lo = u->strategy == kNoShard ? 0 : u->srank * u->S;  // this rank's global range
  const int64_t hi = lo + u->S;
  u->full_is_local = u->strategy == kNoShard && u->param_dtype == at::kFloat;
  {
    at::AutoGradMode on(true);
    u->full = at::empty({u->padded}, params[0].options().dtype(u->param_dtype)).requires_grad_(true);
  }
  u->full_alias = alias_of(u->full, 0, u->padded);
  u->local = u->full_is_local ? u->full_alias : at::zeros({u->S}, params[0].options().requires_grad(false));
  if (u->full_is_local) u->full_alias.zero_();
  for (size_t k = 0; k < params.size(); ++k) {
    const int64_t a = std::max(lo, u->offsets[k]), b = std::min(hi, u->offsets[k] + u->numels[k]);
    const int64_t n = std::max<int64_t>(0, b - a);
    const int64_t seg_start = n ? a - lo : 0;
    if (n) u->local.narrow(0, seg_start, n).copy_(params[k].detach().reshape({-1}).narrow(0, a - u->offsets[k], n));
    at::Tensor seg = n ? alias_of(u->local, seg_start, n) : at::empty({0}, u->local.options());
    seg.set_requires_grad(true);
    u->segs.push_back(seg);
    u->seg_lo.push_back(seg_start);
  }
  u->gathered = true;  // full's storage exists (allocated by at::empty)
  account(u->full_bytes());
  u->acc = torch::autograd::impl::grad_accumulator(u->full);  // held: the hook lives on this node
  u->acc->add_post_hook(std::make_unique<PostBackwardHook>(u));
  u->view_ids = ids;
  u->gather_now();
  bind_views(env, *u);  // the original parameter tensors are released here
  if (u->strategy != kNoShard) {
    u->free_full();
    park_views(env, *u);
  }
  const int32_t uid = put_slot(d.units, u);
  Napi::Object out = Napi::Object::New(env);
  out.Set("unit", Napi::Number::New(env, uid));
  out.Set("segments", put_all(info, u->segs));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("padded", Napi::Number::New(env, static_cast<double>(u->padded)));
  layout.Set("shard", Napi::Number::New(env, static_cast<double>(u->S)));
  out.Set("layout", layout);
  return out;
}

// fsdpPreForward(unit): the unit's parameters are gathered and the model's ids point at them.
Napi::Value pre_forward(Info info) {
  auto u = arg_unit(info, 0);
  u->gather_now();
  bind_views(info.Env(), *u);
  u->pre_backward_ran = false;
  return info.Env().Undefined();
}

// fsdpPrefetch(unit): starts gathering the unit (forward prefetch); its preForward completes it.
Napi::Value prefetch(Info info) {
  arg_unit(info, 0)->gather();
  return info.Env().Undefined();
}

// fsdpPostForward(unit, outputs[], gradEnabled): with grad, hooks on the outputs re-gather the unit
// before its backward; frees it now if the strategy says so (FULL_SHARD non-root, or any sharded
// strategy without grad).
Napi::Value post_forward(Info info) {
  Napi::Env env = info.Env();
  auto u = arg_unit(info, 0);
  std::vector<at::Tensor> outs = arg_tensors(info, 1);
  const bool grad = arg_bool(info, 2);
  if (grad) {
    std::weak_ptr<FsdpUnit> weak = u;
    for (auto& t : outs) {
      if (!t.requires_grad()) continue;
      t.register_hook([weak](const at::TensorBase&) {
        if (auto x = weak.lock()) {
          try {
            x->pre_backward();
          } catch (const std::exception& e) {
            if (x->error.empty()) x->error = x->name + ": " + short_what(e);
          }
        }
      });
    }
  }
  const bool free_now = grad ? (u->strategy == kFullShard && !u->root) : u->frees();
  if (free_now) {
    u->free_full();
    park_views(env, *u);
  }
  return env.Undefined();
}

// fsdpSetBackwardNext(unit, next | -1): the unit gathered ahead when `unit`'s backward starts.
Napi::Value set_backward_next(Info info) {
  auto u = arg_unit(info, 0);
  if (arg_int(info, 1) < 0) u->backward_next.reset();
  else u->backward_next = arg_unit(info, 1);
  return info.Env().Undefined();
}

// fsdpFinishBackward(units[]) -> work: after each backward. Frees what is still gathered (sharded
// strategies), then — off the JS thread once waited for — completes the gradient reductions into
// the shards. A failure inside a hook is reported here.
Napi::Value finish_backward(Info info) {
  Napi::Env env = info.Env();
  auto units = arg_units(info, 0);
  for (auto& u : units) {
    if (!u->error.empty()) {
      const std::string e = u->error;
      u->error.clear();
      throw_js(env, classify_dist(e), "FSDP backward failed in unit " + e);
    }
  }
  auto p = std::make_shared<Pending>();
  for (auto& u : units) {
    if (u->frees()) {
      u->free_full();  // catch-all: units whose backward hooks did not run (no gradient reached them)
      if (u->views_bound) park_views(env, *u);  // the hooks freed the others but cannot touch the registry
    }
    u->pre_backward_ran = false;
    if (u->shard && !p->group) p->group = u->shard;
  }
  if (!p->group) {
    p->group = std::make_shared<Group>();
    p->group->name = "local";
    p->group->timeout = ms(30 * 60 * 1000);
  }
  p->what = "FSDP gradient reduce-scatter";
  p->finish = [units]() {
    for (auto& u : units) u->finish_reductions();
  };
  return put_pending(env, p);
}

// fsdpZeroGrad(units[]): no gradient (set to None) for the shards and segments.
Napi::Value zero_grad(Info info) {
  for (auto& u : arg_units(info, 0)) u->zero_grad();
  return info.Env().Undefined();
}

// fsdpGatherFlat(unit, pieces[]) -> {work, tensors[]}: the full tensors of one per-parameter state
// (pieces shaped like the unit's segments: master weights, exp_avg, ...), assembled from every
// rank's pieces. fp32 out, one per parameter, with the parameter's shape.
Napi::Value gather_flat(Info info) {
  Napi::Env env = info.Env();
  auto u = arg_unit(info, 0);
  std::vector<at::Tensor> pieces = arg_tensors(info, 1);
  if (pieces.size() != u->segs.size()) throw_js(env, kArgument, "fsdpGatherFlat: one piece per parameter of the unit");
  at::NoGradGuard ng;
  at::Tensor shard = at::zeros({u->S}, u->local.options());
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (pieces[k].numel() != u->segs[k].numel()) throw_js(env, kShape, "fsdpGatherFlat: piece " + std::to_string(k) + " does not match the segment");
    if (pieces[k].numel()) shard.narrow(0, u->seg_lo[k], pieces[k].numel()).copy_(pieces[k].reshape({-1}));
  }
  auto p = std::make_shared<Pending>();
  at::Tensor flat;
  if (u->strategy == kNoShard || !u->shard || u->nshard == 1) {
    flat = shard;
  } else {
    flat = at::empty({u->padded}, u->local.options());
    if (u->shard->nccl) {
      p->works.push_back(u->shard->pg->_allgather_base(flat, shard));
    } else {
      std::vector<std::vector<at::Tensor>> outs{flat.chunk(u->nshard)};
      std::vector<at::Tensor> ins{shard};
      p->works.push_back(u->shard->pg->allgather(outs, ins));
    }
  }
  if (u->shard) p->group = u->shard;
  else { p->group = std::make_shared<Group>(); p->group->name = "local"; p->group->timeout = ms(30 * 60 * 1000); }
  p->what = "FSDP state all-gather";
  p->finish = [flat, shard]() {};
  std::vector<at::Tensor> outs;
  for (size_t k = 0; k < u->shapes.size(); ++k) outs.push_back(flat.narrow(0, u->offsets[k], u->numels[k]).view(u->shapes[k]));
  Napi::Object o = Napi::Object::New(env);
  o.Set("work", put_pending(env, p));
  o.Set("tensors", put_all(info, outs));
  return o;
}

// fsdpShardOf(unit, fulls[]) -> pieces[]: this rank's piece of each full per-parameter tensor
// (copies, shaped like the segments) — to load an unsharded checkpoint at any world size.
Napi::Value shard_of(Info info) {
  Napi::Env env = info.Env();
  auto u = arg_unit(info, 0);
  std::vector<at::Tensor> fulls = arg_tensors(info, 1);
  if (fulls.size() != u->segs.size()) throw_js(env, kArgument, "fsdpShardOf: one tensor per parameter of the unit");
  at::NoGradGuard ng;
  const int64_t lo = u->strategy == kNoShard ? 0 : u->srank * u->S;
  std::vector<at::Tensor> out;
  for (size_t k = 0; k < fulls.size(); ++k) {
    if (fulls[k].numel() != u->numels[k]) throw_js(env, kShape, "fsdpShardOf: tensor " + std::to_string(k) + " has " + std::to_string(fulls[k].numel()) + " elements, the parameter " + std::to_string(u->numels[k]));
    const int64_t n = u->segs[k].numel();
    if (n == 0) {  // a parameter wholly on other ranks
      out.push_back(at::empty({0}, u->local.options()));
      continue;
    }
    const int64_t a = std::max(lo, u->offsets[k]);
    out.push_back(fulls[k].reshape({-1}).narrow(0, a - u->offsets[k], n).to(at::kFloat, false, true));
  }
  return put_all(info, out);
}

// fsdpStats() -> {fullBytesLive, fullBytesPeak, gathers, reductions}; fsdpResetPeak().
Napi::Value stats(Info info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("fullBytesLive", Napi::Number::New(info.Env(), static_cast<double>(g_full_live.load())));
  o.Set("fullBytesPeak", Napi::Number::New(info.Env(), static_cast<double>(g_full_peak.load())));
  o.Set("gathers", Napi::Number::New(info.Env(), static_cast<double>(g_gathers.load())));
  o.Set("reductions", Napi::Number::New(info.Env(), static_cast<double>(g_reductions.load())));
  return o;
}
Napi::Value reset_peak(Info info) {
  g_full_peak = g_full_live.load();
  return info.Env().Undefined();
}

// fsdpUnitInfo(unit) -> {name, strategy, padded, shard, gathered, gradShard}.
Napi::Value unit_info(Info info) {
  auto u = arg_unit(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", u->name);
  o.Set("strategy", kStrategyNames[u->strategy]);
  o.Set("padded", Napi::Number::New(info.Env(), static_cast<double>(u->padded)));
  o.Set("shard", Napi::Number::New(info.Env(), static_cast<double>(u->S)));
  o.Set("gathered", Napi::Boolean::New(info.Env(), u->gathered));
  o.Set("gradShard", Napi::Boolean::New(info.Env(), u->grad_shard.defined()));
  return o;
}

// fsdpUnitClose(unit): releases the unit; the model's parameter ids become disposed.
Napi::Value unit_close(Info info) {
  Napi::Env env = info.Env();
  auto& d = dist(env);
  const int64_t id = arg_int(info, 0);
  if (id < 0 || id >= static_cast<int64_t>(d.units.size()) || !d.units[id]) return env.Undefined();
  auto u = d.units[id];
  Registry& r = reg(env);
  for (int64_t v : u->view_ids) {
    // A parked id stays occupied by an empty placeholder, so the model's dispose() frees it as usual
    // (handing the id back here could let a later tensor take it and be freed by that dispose).
    if (v >= 0 && r.parked.erase(v)) r.slots[v] = at::empty({0});
  }
  u->view_ids.clear();
  if (u->gathered) account(-u->full_bytes());
  u->gathered = false;
  d.units[id].reset();
  return env.Undefined();
}

}  // namespace

void init_fsdp(Napi::Env env, Napi::Object exports) {
  OLMO_EXPORT("fsdpUnitNew", unit_new);
  OLMO_EXPORT("fsdpPreForward", pre_forward);
  OLMO_EXPORT("fsdpPrefetch", prefetch);
  OLMO_EXPORT("fsdpPostForward", post_forward);
  OLMO_EXPORT("fsdpSetBackwardNext", set_backward_next);
  OLMO_EXPORT("fsdpFinishBackward", finish_backward);
  OLMO_EXPORT("fsdpZeroGrad", zero_grad);
  OLMO_EXPORT("fsdpGatherFlat", gather_flat);
  OLMO_EXPORT("fsdpShardOf", shard_of);
  OLMO_EXPORT("fsdpStats", stats);
  OLMO_EXPORT("fsdpResetPeak", reset_peak);
  OLMO_EXPORT("fsdpUnitInfo", unit_info);
  OLMO_EXPORT("fsdpUnitClose", unit_close);
}

}  // namespace olmo
