// Process-wide state scripts share across workers: a key/value dictionary with TTLs and atomic
// increments (gw.shared) and token buckets by key (gw.ratelimit). Sharded by key hash with one
// mutex per shard, held for a single map operation, so workers rarely meet on the same lock.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/rate_limit.hpp"

namespace lg {

class SharedDict {
 public:
  struct Value {
    bool is_number = false;
    double number = 0;
    std::string text;
  };
  enum class Status { ok, not_found, full, not_a_number };

  explicit SharedDict(std::size_t max_entries = 200000, unsigned shards = 64);
  // ttl_ms <= 0: no expiry. now_ms: a monotonic clock.
  Status get(std::string_view key, std::int64_t now_ms, Value& out);
  // With `at_least`, a live entry that expires later (or never) is kept as it is: marking something
  // for at least ttl_ms never shortens an earlier, longer mark (a JWT revocation).
  Status set(std::string_view key, const Value& v, std::int64_t ttl_ms, std::int64_t now_ms, bool at_least = false);
  // Adds `delta` to a number (a missing key starts at `init`); returns the new value in `out`.
  Status incr(std::string_view key, double delta, double init, std::int64_t ttl_ms, std::int64_t now_ms, double& out);
  bool erase(std::string_view key);
  std::size_t size();

 private:
  struct Entry {
    Value value;
    std::int64_t expires_ms = 0;  // 0 = never
  };
  struct Hash {  // lookups by string_view, without building a std::string (no allocation)
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map;
  };
  Shard& shard_for(std::string_view key);
  bool make_room(Shard& s, std::int64_t now_ms);  // caller holds s.mu
  std::vector<Shard> shards_;
  std::size_t max_per_shard_;
};

struct SharedState {
  SharedDict dict;
  RateLimiter limits;  // the rate-limit policy's counters, and gw.ratelimit's
};

}  // namespace lg
