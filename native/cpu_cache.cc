// cpu_cache.cc — a caching CPU allocator for large blocks. Training allocates and frees the same
// big activations (e.g. a 200 MB logits tensor) every step; glibc serves blocks over 32 MB with
// fresh mmaps, so each step page-faults and zeroes them again (measured: ~40% of a CPU demo step
// spent in the kernel). Freed blocks >= 1 MB are kept and reused (best fit within 1/8 slack), up to a
// byte limit (OLMO_TS_CPU_CACHE_MB, default 1/8 of RAM, at most 8 GB; 0 disables). Small blocks go to libtorch's own
// allocator. Works with the c10::Allocator of libtorch 1.x and 2.x alike (see the class comment).
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

constexpr size_t kMinCached = size_t(1) << 20;   // 1 MiB
constexpr size_t kGranule = size_t(1) << 16;      // sizes rounded to 64 KiB
constexpr size_t kAlign = 64;

struct CacheStats {
  size_t cached = 0;  // bytes held in free lists
  size_t hits = 0, misses = 0;
};

class CachingCpuAllocator;
CachingCpuAllocator* g_cache = nullptr;  // process-wide, never destroyed (tensors may outlive envs)

// The context of every DataPtr is the data pointer itself, as libtorch's raw_allocate requires
// (OpenBLAS/oneDNN paths allocate raw buffers through the CPU allocator); sizes of our blocks are
// kept in a map, and other pointers belong to the wrapped default allocator.
//
// c10::Allocator changed across versions: `allocate` is const up to 2.2 and non-const from 2.3,
// and 2.3 added a pure virtual `copy_data`. Both forms of `allocate` are declared (without
// `override`): the one that matches the base class overrides it, the other is a plain overload;
// `copy_data` overrides where it exists. So no version test is needed here.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(c10::Allocator* base, size_t limit) : base_(base), limit_(limit) {}

  c10::DataPtr allocate(size_t n) const { return allocate_block(n); }
  c10::DataPtr allocate(size_t n) { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count) std::memcpy(dest, src, count);
  }

  c10::DataPtr allocate_block(size_t n) const {
    if (n < kMinCached) return base_->allocate(n);
    size_t size = (n + kGranule - 1) / kGranule * kGranule;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> g(mu_);
      // Best fit: the smallest cached block that is at least `size` and at most 1/8 larger.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 8) {
        p = it->second;
        size = it->first;
        free_.erase(it);
        stats_.cached -= size;
        ++stats_.hits;
      } else {
        ++stats_.misses;
      }
    }
    if (!p && posix_memalign(&p, kAlign, size) != 0) {
      trim();  // give cached blocks back and try once more
      TORCH_CHECK(posix_memalign(&p, kAlign, size) == 0, "CPU allocator: cannot allocate ", n,
                  " bytes (out of memory)");
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      live_[p] = size;
    }
    return {p, p, &release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  /** Frees every cached block. */
  void trim() const {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& kv : free_) std::free(kv.second);
    free_.clear();
    stats_.cached = 0;
  }
  CacheStats stats() const {
    std::lock_guard<std::mutex> g(mu_);
    return stats_;
  }

 private:
  static void release(void* p) {
    if (p) g_cache->put(p);
  }
  void put(void* p) const {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const size_t size = it->second;
        live_.erase(it);
        if (stats_.cached + size <= limit_) {
          free_.emplace(size, p);
          stats_.cached += size;
          return;
        }
        // over the limit: fall through to free() below, outside the lock
      } else {
        base_->raw_deleter()(p);  // a small block from the default allocator
        return;
      }
    }
    std::free(p);
  }

  c10::Allocator* base_;
  size_t limit_;
  mutable std::mutex mu_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable CacheStats stats_;
};


Napi::Value cpu_cache_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, g_cache != nullptr));
  const CacheStats s = g_cache ? g_cache->stats() : CacheStats{};
  o.Set("cachedBytes", Napi::Number::New(env, static_cast<double>(s.cached)));
  o.Set("hits", Napi::Number::New(env, static_cast<double>(s.hits)));
  o.Set("misses", Napi::Number::New(env, static_cast<double>(s.misses)));
  return o;
}

Napi::Value cpu_cache_trim(const Napi::CallbackInfo& info) {
  if (g_cache) g_cache->trim();
  return info.Env().Undefined();
}

}  // namespace

void init_cpu_cache(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    // Default: an eighth of physical memory (3 GB on a 24 GB machine), at most 8 GB.
    const long long phys_mb = static_cast<long long>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) >> 20;
    long long mb = std::min<long long>(8192, std::max<long long>(256, phys_mb / 8));
    if (const char* s = std::getenv("OLMO_TS_CPU_CACHE_MB")) mb = std::strtoll(s, nullptr, 10);
    if (mb <= 0) return;
    g_cache = new CachingCpuAllocator(c10::GetDefaultCPUAllocator(), static_cast<size_t>(mb) << 20);
    c10::SetAllocator(c10::kCPU, g_cache);
  });
  OLMO_EXPORT("cpuCacheStats", cpu_cache_stats);
  OLMO_EXPORT("cpuCacheTrim", cpu_cache_trim);
}

}  // namespace olmo
