#include "upstream/balancer.hpp"

#include <algorithm>
#include <string>

namespace lg {

std::uint32_t hash32(std::string_view key) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

HashRing::HashRing(const std::vector<TargetConfig>& targets) {
  for (std::uint32_t t = 0; t < targets.size(); ++t) {
    const std::uint32_t points = 160 * targets[t].weight;
    for (std::uint32_t i = 0; i < points; ++i) {
      std::string label = targets[t].address.text + "#" + std::to_string(i);
      points_.push_back({hash32(label), t});
    }
  }
  std::sort(points_.begin(), points_.end(),
            [](const Point& a, const Point& b) { return a.hash < b.hash || (a.hash == b.hash && a.target < b.target); });
}

std::size_t HashRing::first_at_or_after(std::uint32_t h) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), h,
                             [](const Point& p, std::uint32_t v) { return p.hash < v; });
  return it == points_.end() ? 0 : static_cast<std::size_t>(it - points_.begin());
}

int pick_target(const UpstreamConfig& cfg, const HashRing& ring, const std::vector<TargetView>& view,
                RoundRobinState& rr, std::string_view hash_key, std::uint64_t skip_mask) {
  const std::size_t n = cfg.targets.size();
  auto allowed = [&](std::size_t i) {
    return i < view.size() && view[i].usable && !(i < 64 && (skip_mask >> i) & 1u);
  };
  switch (cfg.balance) {
    case BalanceKind::consistent_hash:
      return ring.pick(hash_key, [&](std::uint32_t i) { return allowed(i); });
    case BalanceKind::least_conn: {
      // Fewest in flight relative to weight; ties go to the lower index after the rr cursor
      // so equal targets still share the load.
      int best = -1;
      double best_load = 0;
      if (rr.current.size() != n) rr.current.assign(n, 0);
      const std::size_t start = static_cast<std::size_t>(rr.current.empty() ? 0 : rr.current[0]) % (n ? n : 1);
      for (std::size_t k = 0; k < n; ++k) {
        std::size_t i = (start + k) % n;
        if (!allowed(i)) continue;
        double load = static_cast<double>(view[i].active) / cfg.targets[i].weight;
        if (best < 0 || load < best_load) {
          best = static_cast<int>(i);
          best_load = load;
        }
      }
      if (!rr.current.empty()) rr.current[0] = static_cast<std::int64_t>(start + 1);
      return best;
    }
    case BalanceKind::round_robin:
    default: {
      // Smooth weighted round robin: each pick adds weights, takes the max, subtracts the total.
      if (rr.current.size() != n) rr.current.assign(n, 0);
      std::int64_t total = 0;
      int best = -1;
      for (std::size_t i = 0; i < n; ++i) {
        if (!allowed(i)) continue;
        rr.current[i] += cfg.targets[i].weight;
        total += cfg.targets[i].weight;
        if (best < 0 || rr.current[i] > rr.current[static_cast<std::size_t>(best)]) best = static_cast<int>(i);
      }
      if (best >= 0) rr.current[static_cast<std::size_t>(best)] -= total;
      return best;
    }
  }
}

}  // namespace lg
