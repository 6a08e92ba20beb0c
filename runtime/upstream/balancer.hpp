// Target selection for an upstream group. Pure logic (no I/O): the per-worker state it reads
// (active requests, down marks) is passed in, so it is unit-testable and lock-free.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace lg {

// Consistent-hash ring (ketama-like): 160 points per unit of weight, so adding or removing
// one target moves only ~1/N of the keys.
class HashRing {
 public:
  HashRing() = default;
  explicit HashRing(const std::vector<TargetConfig>& targets);
  // Index of the first target clockwise from hash(key) that `usable(index)` accepts;
  // -1 if none is usable.
  template <class Usable>
  int pick(std::string_view key, Usable usable) const;
  bool empty() const { return points_.empty(); }

 private:
  struct Point {
    std::uint32_t hash;
    std::uint32_t target;
  };
  std::vector<Point> points_;
  std::size_t first_at_or_after(std::uint32_t h) const;
};

std::uint32_t hash32(std::string_view key);  // FNV-1a then a murmur3 finalizer

// What the balancer may know about each target of a group on this worker.
struct TargetView {
  bool usable = true;          // not marked down by passive health
  std::uint32_t active = 0;    // requests in flight from this worker
};

// Per-worker round-robin cursor for one group (weighted smooth round robin, as nginx).
struct RoundRobinState {
  std::vector<std::int64_t> current;
};

// Picks a target index for a group, or -1 when none is usable.
// `hash_key` is used by consistent_hash only. `skip` marks targets already tried for this request.
int pick_target(const UpstreamConfig& cfg, const HashRing& ring, const std::vector<TargetView>& view,
                RoundRobinState& rr, std::string_view hash_key, std::uint64_t skip_mask);

template <class Usable>
int HashRing::pick(std::string_view key, Usable usable) const {
  if (points_.empty()) return -1;
  std::size_t i = first_at_or_after(hash32(key));
  for (std::size_t n = 0; n < points_.size(); ++n) {
    const Point& p = points_[(i + n) % points_.size()];
    if (usable(p.target)) return static_cast<int>(p.target);
  }
  return -1;
}

}  // namespace lg
