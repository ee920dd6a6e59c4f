// cpu_cache.cc — a caching CPU allocator for large blocks. Training allocates and frees the same
// big activations every step; glibc serves blocks over 32 MB with fresh mmaps, so each step
// page-faults and zeroes them again (measured: ~40% of a CPU demo step spent in the kernel). Freed
// blocks >= 1 MB are kept and reused (best fit within 1/8 slack). Small blocks go to libtorch's own
// allocator. Works with the c10::Allocator of libtorch 1.x and 2.x alike (see the class comment).
//
// Its memory cost is bounded and visible:
// - a byte limit on idle blocks: OLMO_TS_CPU_CACHE_MB, or 1/8 of the machine's memory (the cgroup
//   limit when a container has a smaller one), between 256 MB and 8 GB; 0 disables the cache;
// - under memory pressure (less than 1/16 of that memory available when a new block is needed, or
//   OLMO_TS_CPU_CACHE_MIN_FREE_MB; or a failed allocation) every idle block goes back to the OS first;
// - cpuCacheStats() reports idle, live and peak bytes, hits, misses and what was released.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "compat.h"
#include "registry.h"

namespace olmo {
namespace {

constexpr size_t kMinCached = size_t(1) << 20;   // 1 MiB
constexpr size_t kGranule = size_t(1) << 16;      // sizes rounded to 64 KiB
constexpr size_t kAlign = 64;

struct CacheStats {
  size_t limit = 0;         // byte limit on idle blocks
  size_t cached = 0;        // bytes held idle in free lists
  size_t live = 0;          // bytes of large blocks in use (handed out, not yet freed)
  size_t peak_live = 0;     // high-water mark of `live` since start or resetPeak
  size_t peak_total = 0;    // high-water mark of live + cached: what the cache makes the process hold
  size_t hits = 0, misses = 0;
  size_t released = 0;      // bytes given back to the OS (over the limit, under pressure, trims)
  size_t pressure_trims = 0;
  size_t min_free = 0;      // below this much available memory, idle blocks are released first
};

// ---------------------------------------------------------------- what the machine has
long long read_ll_file(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[64] = {0};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!ok || std::strncmp(buf, "max", 3) == 0) return -1;
  return std::strtoll(buf, nullptr, 10);
}

// Physical memory, or the cgroup's memory limit when that is smaller (containers).
long long machine_bytes() {
  long long phys = static_cast<long long>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  for (const char* p : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const long long lim = read_ll_file(p);
    if (lim > 0 && lim < phys) phys = lim;
  }
  return phys;
}

// Bytes the process could still get: MemAvailable, and the cgroup's headroom when it has a limit.
long long available_bytes() {
  long long avail = -1;
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[128];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "MemAvailable:", 13) == 0) {
        avail = std::strtoll(line + 13, nullptr, 10) * 1024;
        break;
      }
    }
    std::fclose(f);
  }
  const long long lim = read_ll_file("/sys/fs/cgroup/memory.max");
  const long long cur = read_ll_file("/sys/fs/cgroup/memory.current");
  if (lim > 0 && cur >= 0 && (avail < 0 || lim - cur < avail)) avail = lim - cur;
  return avail;
}

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
  CachingCpuAllocator(c10::Allocator* base, size_t limit, long long low_water)
      : base_(base), limit_(limit), low_water_(low_water) {
    stats_.limit = limit;
    stats_.min_free = low_water > 0 ? static_cast<size_t>(low_water) : 0;
  }

  c10::DataPtr allocate(size_t n) const { return allocate_block(n); }
  c10::DataPtr allocate(size_t n) { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count) std::memcpy(dest, src, count);
  }

  c10::DataPtr allocate_block(size_t n) const {
    if (n < kMinCached) return base_->allocate(n);
    size_t size = (n + kGranule - 1) / kGranule * kGranule;
    void* p = nullptr;
    bool check_pressure = false;
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
        check_pressure = stats_.cached > 0;
      }
    }
    if (check_pressure && under_pressure()) {
      std::lock_guard<std::mutex> g(mu_);
      ++stats_.pressure_trims;
      release_all_locked();
    }
    if (!p && posix_memalign(&p, kAlign, size) != 0) {
      trim();  // give cached blocks back and try once more
      TORCH_CHECK(posix_memalign(&p, kAlign, size) == 0, "CPU allocator: cannot allocate ", n,
                  " bytes (out of memory)");
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      live_[p] = size;
      stats_.live += size;
      stats_.peak_live = std::max(stats_.peak_live, stats_.live);
      stats_.peak_total = std::max(stats_.peak_total, stats_.live + stats_.cached);
    }
    return {p, p, &release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  /** Frees every cached block. */
  void trim() const {
    std::lock_guard<std::mutex> g(mu_);
    release_all_locked();
  }
  CacheStats stats() const {
    std::lock_guard<std::mutex> g(mu_);
    return stats_;
  }
  void reset_peak() const {
    std::lock_guard<std::mutex> g(mu_);
    stats_.peak_live = stats_.live;
    stats_.peak_total = stats_.live + stats_.cached;
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
        stats_.live -= size;
        if (stats_.cached + size <= limit_) {
          free_.emplace(size, p);
          stats_.cached += size;
          return;
        }
        stats_.released += size;
        // over the limit: fall through to free() below, outside the lock
      } else {
        base_->raw_deleter()(p);  // a small block from the default allocator
        return;
      }
    }
    std::free(p);
  }
  void release_all_locked() const {
    for (auto& kv : free_) std::free(kv.second);
    free_.clear();
    stats_.released += stats_.cached;
    stats_.cached = 0;
  }
  // True when the machine (or cgroup) has less than low_water_ bytes available; asked at most
  // every 100 ms (misses are rare once training has warmed up, and /proc/meminfo costs ~20 µs).
  bool under_pressure() const {
    if (low_water_ <= 0) return false;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> g(mu_);
      if (now - last_check_ < std::chrono::milliseconds(100)) return last_pressure_;
      last_check_ = now;
    }
    const long long avail = available_bytes();
    const bool p = avail >= 0 && avail < low_water_;
    std::lock_guard<std::mutex> g(mu_);
    last_pressure_ = p;
    return p;
  }

  c10::Allocator* base_;
  size_t limit_;
  long long low_water_;
  mutable std::mutex mu_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable CacheStats stats_;
  mutable std::chrono::steady_clock::time_point last_check_{};
  mutable bool last_pressure_ = false;
};

Napi::Value cpu_cache_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, g_cache != nullptr));
  const CacheStats s = g_cache ? g_cache->stats() : CacheStats{};
  auto num = [&](const char* k, size_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("limitBytes", s.limit);
  num("cachedBytes", s.cached);
  num("liveBytes", s.live);
  num("peakLiveBytes", s.peak_live);
  num("peakTotalBytes", s.peak_total);
  num("hits", s.hits);
  num("misses", s.misses);
  num("releasedBytes", s.released);
  num("pressureTrims", s.pressure_trims);
  num("minFreeBytes", s.min_free);
  num("machineBytes", static_cast<size_t>(std::max(0LL, machine_bytes())));
  return o;
}

Napi::Value cpu_cache_trim(const Napi::CallbackInfo& info) {
  if (g_cache) g_cache->trim();
  return info.Env().Undefined();
}

Napi::Value cpu_cache_reset_peak(const Napi::CallbackInfo& info) {
  if (g_cache) g_cache->reset_peak();
  return info.Env().Undefined();
}

}  // namespace

void init_cpu_cache(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    // Default: an eighth of the machine's memory (3 GB on a 24 GB machine), 256 MB to 8 GB.
    const long long machine = machine_bytes();
    long long mb = std::min<long long>(8192, std::max<long long>(256, (machine >> 20) / 8));
    if (const char* s = std::getenv("OLMO_TS_CPU_CACHE_MB")) mb = std::strtoll(s, nullptr, 10);
    if (mb <= 0) return;
    long long low_water = machine / 16;
    if (const char* s = std::getenv("OLMO_TS_CPU_CACHE_MIN_FREE_MB")) low_water = std::strtoll(s, nullptr, 10) << 20;
    g_cache = new CachingCpuAllocator(c10::GetDefaultCPUAllocator(), static_cast<size_t>(mb) << 20, low_water);
    c10::SetAllocator(c10::kCPU, g_cache);
  });
  OLMO_EXPORT("cpuCacheStats", cpu_cache_stats);
  OLMO_EXPORT("cpuCacheTrim", cpu_cache_trim);
  OLMO_EXPORT("cpuCacheResetPeak", cpu_cache_reset_peak);
}

}  // namespace olmo
