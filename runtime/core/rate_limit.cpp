#include "core/rate_limit.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace lg {

namespace {

// A counter's identity: the key and its window (or period). Hash and equality are transparent
// so a lookup by string_view builds no std::string.
struct KeyRef {
  std::string_view key;
  std::int64_t tag;
};
struct StoredKey {
  std::string key;
  std::int64_t tag;
};
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(const KeyRef& k) const noexcept {
    return std::hash<std::string_view>{}(k.key) ^ (static_cast<std::size_t>(k.tag) * 0x9E3779B97F4A7C15ull);
  }
  std::size_t operator()(const StoredKey& k) const noexcept { return (*this)(KeyRef{k.key, k.tag}); }
};
struct KeyEq {
  using is_transparent = void;
  static KeyRef ref(const KeyRef& k) { return k; }
  static KeyRef ref(const StoredKey& k) { return {k.key, k.tag}; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    const KeyRef x = ref(a), y = ref(b);
    return x.tag == y.tag && x.key == y.key;
  }
};

// Sharded map of State (which has idle_at_ms: from then on it holds no information, and
// last_ms: its last take, for eviction).
template <class State>
class Store {
 public:
  Store(std::size_t max_keys, unsigned shards)
      : shards_(std::max(1u, shards)), max_per_shard_(std::max<std::size_t>(8, max_keys / shards_.size())) {}

  // Runs fn(state) under the shard's lock. A missing entry is created from *fresh, or, without
  // `fresh`, fn is not called.
  template <class Fn>
  void with(KeyRef k, std::int64_t now_ms, const State* fresh, Fn&& fn) {
    // High bits pick the shard; the map's buckets use the low ones (hash % prime).
    Shard& s = shards_[(KeyHash{}(k) >> 20) % shards_.size()];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) {
      if (!fresh) return;
      if (s.map.size() >= max_per_shard_) make_room(s, now_ms);
      it = s.map.emplace(StoredKey{std::string(k.key), k.tag}, *fresh).first;
    }
    fn(it->second);
  }

  std::size_t size() {
    std::size_t n = 0;
    for (Shard& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      n += s.map.size();
    }
    return n;
  }

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<StoredKey, State, KeyHash, KeyEq> map;
    std::vector<std::int64_t> ages;  // eviction scratch, kept for the next time
  };

  // Full: drop idle entries; if that frees less than an eighth, drop the least recently used
  // down to 7/8 of the bound, so the O(n) pass runs at most once per n/8 new keys. A dropped
  // live counter starts again empty: under a flood of keys the oldest clients are forgotten
  // rather than new ones refused.
  void make_room(Shard& s, std::int64_t now_ms) {
    std::erase_if(s.map, [now_ms](const auto& kv) { return kv.second.idle_at_ms <= now_ms; });
    const std::size_t target = max_per_shard_ - max_per_shard_ / 8;
    if (s.map.size() <= target) return;
    s.ages.clear();
    for (const auto& kv : s.map) s.ages.push_back(kv.second.last_ms);
    const std::size_t drop = s.map.size() - target;
    std::nth_element(s.ages.begin(), s.ages.begin() + (drop - 1), s.ages.end());
    const std::int64_t cutoff = s.ages[drop - 1];
    std::erase_if(s.map, [cutoff](const auto& kv) { return kv.second.last_ms <= cutoff; });
  }

  std::vector<Shard> shards_;
  std::size_t max_per_shard_;
};

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Milliseconds, rounded up; float noise below 1e-6 ms is not a millisecond.
std::int64_t ceil_ms(long double x) { return x <= 0 ? 0 : static_cast<std::int64_t>(std::ceil(x - 1e-6L)); }

struct Window {
  double prev = 0, curr = 0;
  std::int64_t start = 0;  // the current window [start, start + W)
  std::int64_t idle_at_ms = 0, last_ms = 0;
};

// Moves w to the window holding now; returns e, the ms into it. A caller whose clock read is a
// little older than the window's (another thread got the lock first) counts at its start.
std::int64_t advance(Window& w, std::int64_t W, std::int64_t now) {
  const std::int64_t start = floor_div(now, W) * W;
  if (start > w.start) {
    w.prev = start - w.start == W ? w.curr : 0;
    w.curr = 0;
    w.start = start;
  }
  return std::clamp<std::int64_t>(now - w.start, 0, W - 1);
}

// How long, from e ms into the window, until `need` units fit under L with no other takes.
// Within this window (prev's weight decays): prev * (W - e') <= (L - need - curr) * W. Else in
// the next one (curr becomes prev, nothing new): curr * (W - e'') <= (L - need) * W. Else two
// windows on, everything has aged out.
std::int64_t wait_ms(const Window& w, long double W, std::int64_t e, long double L, long double need) {
  const long double prev = w.prev, curr = w.curr;
  if (need > L) return curr > 0 ? 2 * static_cast<std::int64_t>(W) - e : prev > 0 ? static_cast<std::int64_t>(W) - e : 0;
  const long double room = L - need - curr;
  if (room >= 0) {
    if (prev * (W - e) <= room * W) return 0;
    const long double e1 = W - std::floor(room * W / prev);  // prev > 0 here
    if (e1 < W) return static_cast<std::int64_t>(e1) - e;
  }
  const std::int64_t to_next = static_cast<std::int64_t>(W) - e;
  if (curr <= L - need) return to_next;
  const long double e2 = W - std::floor((L - need) * W / curr);  // curr > 0 here
  return e2 < W ? to_next + static_cast<std::int64_t>(e2) : to_next + static_cast<std::int64_t>(W);
}

struct Bucket {
  double tokens = 0;
  std::int64_t updated_ms = 0;
  std::int64_t idle_at_ms = 0, last_ms = 0;
};

constexpr double kEps = 1e-9;  // tokens are refilled in floating point: 0.9999999999 is 1

}  // namespace

struct SlidingWindows::Impl : Store<Window> {
  using Store<Window>::Store;
};
struct RateBuckets::Impl : Store<Bucket> {
  using Store<Bucket>::Store;
};

SlidingWindows::SlidingWindows(std::size_t max_keys, unsigned shards)
    : impl_(std::make_unique<Impl>(max_keys, shards)) {}
SlidingWindows::~SlidingWindows() = default;
std::size_t SlidingWindows::size() { return impl_->size(); }

RateResult SlidingWindows::take(std::string_view key, double limit, std::int64_t window_ms, double cost,
                                std::int64_t now_ms) {
  const std::int64_t W = std::max<std::int64_t>(1, window_ms);
  RateResult r;
  r.limit = limit;
  r.window_ms = W;
  Window fresh;
  fresh.start = floor_div(now_ms, W) * W;
  impl_->with(KeyRef{key, W}, now_ms, &fresh, [&](Window& w) {
    const std::int64_t e = advance(w, W, now_ms);
    // count * W, in integers for integer inputs: long double holds products up to 2^64 exactly.
    const long double LW = static_cast<long double>(limit) * W;
    const long double aged = static_cast<long double>(w.prev) * (W - e);
    r.allowed = limit > 0 && aged + (static_cast<long double>(w.curr) + cost) * W <= LW;
    if (r.allowed) w.curr += cost;
    const long double left = std::floor((LW - aged - static_cast<long double>(w.curr) * W) / W);
    r.remaining = static_cast<double>(std::max<long double>(0, left));
    r.reset_ms = r.remaining >= limit ? 0 : wait_ms(w, W, e, limit, r.remaining + 1);
    r.retry_after_ms = r.allowed ? 0 : limit > 0 ? wait_ms(w, W, e, limit, cost) : W;
    r.counted_in_ms = w.start;
    w.last_ms = now_ms;
    w.idle_at_ms = w.curr > 0 ? w.start + 2 * W : w.prev > 0 ? w.start + W : now_ms;
  });
  return r;
}

void SlidingWindows::refund(std::string_view key, std::int64_t window_ms, double cost, std::int64_t counted_in_ms) {
  const std::int64_t W = std::max<std::int64_t>(1, window_ms);
  impl_->with(KeyRef{key, W}, counted_in_ms, nullptr, [&](Window& w) {
    if (w.start == counted_in_ms) w.curr = std::max(0.0, w.curr - cost);
    else if (w.start == counted_in_ms + W) w.prev = std::max(0.0, w.prev - cost);
  });
}

RateBuckets::RateBuckets(std::size_t max_keys, unsigned shards) : impl_(std::make_unique<Impl>(max_keys, shards)) {}
RateBuckets::~RateBuckets() = default;
std::size_t RateBuckets::size() { return impl_->size(); }

RateResult RateBuckets::take(std::string_view key, double limit, std::int64_t period_ms, double burst, double cost,
                             std::int64_t now_ms) {
  const std::int64_t P = std::max<std::int64_t>(1, period_ms);
  const double cap = burst > 0 ? burst : limit;
  RateResult r;
  r.limit = cap;
  r.window_ms = P;
  if (!(limit > 0)) {
    r.retry_after_ms = P;
    return r;
  }
  const long double per_ms = static_cast<long double>(limit) / P;  // refill rate
  Bucket fresh;
  fresh.tokens = cap;
  fresh.updated_ms = now_ms;
  impl_->with(KeyRef{key, P}, now_ms, &fresh, [&](Bucket& b) {
    if (now_ms > b.updated_ms) {
      // elapsed * limit / P rather than elapsed * rate: exact for integer inputs.
      const long double refill = static_cast<long double>(now_ms - b.updated_ms) * limit / P;
      b.tokens = static_cast<double>(std::min<long double>(cap, b.tokens + refill));
      b.updated_ms = now_ms;
    }
    r.allowed = b.tokens + kEps >= cost;
    if (r.allowed) b.tokens = std::max(0.0, b.tokens - cost);
    r.remaining = std::floor(b.tokens + kEps);
    r.reset_ms = b.tokens + kEps >= cap ? 0 : ceil_ms((std::min(cap, r.remaining + 1) - b.tokens) / per_ms);
    // A cost above the burst never passes: say when the bucket is full.
    if (!r.allowed) r.retry_after_ms = ceil_ms((std::min(cost, cap) - b.tokens) / per_ms);
    b.last_ms = now_ms;
    b.idle_at_ms = now_ms + ceil_ms((cap - b.tokens) / per_ms);
  });
  return r;
}

void RateBuckets::refund(std::string_view key, std::int64_t period_ms, double limit, double burst, double cost) {
  const std::int64_t P = std::max<std::int64_t>(1, period_ms);
  const double cap = burst > 0 ? burst : limit;
  // idle_at_ms is left as it is: a fuller bucket is idle sooner, so it stays a safe bound.
  impl_->with(KeyRef{key, P}, 0, nullptr, [&](Bucket& b) { b.tokens = std::min(cap, b.tokens + cost); });
}

RateResult RateLimiter::take(const RateLimitSpec& s, double cost, std::int64_t now_ms) {
  if (s.algorithm == RateLimitSpec::Algorithm::token_bucket)
    return buckets.take(s.key, s.limit, s.window_ms, s.burst, cost, now_ms);
  return windows.take(s.key, s.limit, s.window_ms, cost, now_ms);
}

void RateLimiter::refund(const RateLimitSpec& s, double cost, const RateResult& taken) {
  if (!taken.allowed) return;
  if (s.algorithm == RateLimitSpec::Algorithm::token_bucket) buckets.refund(s.key, s.window_ms, s.limit, s.burst, cost);
  else windows.refund(s.key, s.window_ms, cost, taken.counted_in_ms);
}

int RateLimiter::take_all(std::span<const RateLimitSpec> specs, double cost, std::int64_t now_ms,
                          std::span<RateResult> out) {
  const std::size_t n = std::min(specs.size(), out.size());
  for (std::size_t i = 0; i < n; ++i) out[i] = RateResult{};
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = take(specs[i], cost, now_ms);
    if (out[i].allowed) continue;
    for (std::size_t j = 0; j < i; ++j) {
      refund(specs[j], cost, out[j]);
      out[j].remaining = std::min(out[j].limit, std::floor(out[j].remaining + cost));
    }
    return static_cast<int>(i);
  }
  return -1;
}

namespace {

void put(HeaderPairs& out, std::size_t& at, std::string_view name, std::int64_t value) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  if (at < out.size()) {
    out[at].first.assign(name);  // assign keeps the strings' capacity
    out[at].second.assign(buf, res.ptr);
  } else {
    out.emplace_back(std::string(name), std::string(buf, res.ptr));
  }
  ++at;
}

std::int64_t ceil_seconds(std::int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

// Is a more restrictive than b? A refusal beats an admission (then the longer wait); else the
// least remaining (then the longer reset).
bool more_restrictive(const RateResult& a, const RateResult& b) {
  if (a.allowed != b.allowed) return !a.allowed;
  if (!a.allowed) return a.retry_after_ms > b.retry_after_ms;
  if (a.remaining != b.remaining) return a.remaining < b.remaining;
  return a.reset_ms > b.reset_ms;
}

}  // namespace

std::size_t format_rate_limit_headers(std::span<const RateResult> results, bool kong_style, HeaderPairs& out,
                                      std::size_t at) {
  at = std::min(at, out.size());
  const RateResult* top = nullptr;
  for (const RateResult& r : results)
    if (r.limit > 0 && (!top || more_restrictive(r, *top))) top = &r;
  if (!top) return at;
  put(out, at, "RateLimit-Limit", static_cast<std::int64_t>(top->limit));
  put(out, at, "RateLimit-Remaining", static_cast<std::int64_t>(top->remaining));
  put(out, at, "RateLimit-Reset", ceil_seconds(top->reset_ms));
  if (!top->allowed) put(out, at, "Retry-After", std::max<std::int64_t>(1, ceil_seconds(top->retry_after_ms)));
  if (!kong_style) return at;
  static constexpr struct {
    std::int64_t ms;
    std::string_view limit_name, remaining_name;
  } kWindows[] = {
      {1000, "X-RateLimit-Limit-Second", "X-RateLimit-Remaining-Second"},
      {60'000, "X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute"},
      {3'600'000, "X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour"},
      {86'400'000, "X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day"},
  };
  for (const auto& w : kWindows) {
    const RateResult* best = nullptr;
    for (const RateResult& r : results)
      if (r.limit > 0 && r.window_ms == w.ms && (!best || more_restrictive(r, *best))) best = &r;
    if (!best) continue;
    put(out, at, w.limit_name, static_cast<std::int64_t>(best->limit));
    put(out, at, w.remaining_name, static_cast<std::int64_t>(best->remaining));
  }
  return at;
}

}  // namespace lg
