// Process-wide rate limits shared by all worker threads: sliding windows and token buckets by
// key, several limits per request, and the response headers that describe them.
//
// Storage is sharded by key hash, one mutex per shard held for one map operation, so workers
// rarely meet on a lock. A counter is identified by (key, window), so one key can carry a
// per-second and a per-day limit; lookups do not allocate (heterogeneous find; a key's string is allocated once, when it is first
// seen); memory is bounded (max keys per shard: idle entries are dropped first, then the least
// recently used eighth); and what a take consumed can be given back (refund).
//
// Times are milliseconds of the caller's clock (`now_ms`, injected for tests). Windows are
// aligned to multiples of window_ms of that clock: pass wall-clock time where windows must line
// up across processes.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lg {

// One limit's answer to one take.
struct RateResult {
  bool allowed = false;
  double limit = 0;                 // the quota (window: limit; bucket: burst). 0: not evaluated
  double remaining = 0;             // whole units left after this take
  std::int64_t window_ms = 0;       // the window (bucket: the period `limit` refills in)
  std::int64_t reset_ms = 0;        // until one more unit is available (0: the quota is full)
  std::int64_t retry_after_ms = 0;  // refused: until this cost would pass, if nothing else is taken
  std::int64_t counted_in_ms = 0;   // sliding window: the window the take was counted in (refund)
};

// Sliding windows, by the two-window weighted approximation (as Cloudflare and Kong): the count
// at time t, e ms into the fixed window [s, s + W), is
//     count = prev * (W - e) / W + curr
// where prev and curr are what was taken in [s - W, s) and [s, s + W). A take passes when
// count + cost <= limit. Memory: two counters per key.
//
// Error bound. The estimate assumes prev's takes were spread evenly over their window; the exact
// count over (t - W, t] holds between 0 and all of prev, so
//     exact - prev * e / W  <=  estimate  <=  exact + prev * (1 - e / W),
// |estimate - exact| <= prev * max(e / W, 1 - e / W) <= limit. For admissions this means:
//   - each aligned window [kW, (k+1)W) admits at most `limit` (count >= curr), so over any n
//     aligned windows at most n * limit: the long-run rate never exceeds limit / W;
//   - any W-long interval spans two aligned windows and admits less than 2 * limit (the worst
//     case: a burst at the end of one window, then takes as prev's weight decays);
//   - steady traffic is counted exactly; bursty traffic may also be refused early (prev's takes
//     at the start of its window are still weighted).
// With integer limits and costs the comparison is exact (integer products in long double).
class SlidingWindows {
 public:
  explicit SlidingWindows(std::size_t max_keys = 200000, unsigned shards = 64);
  ~SlidingWindows();
  // limit <= 0 refuses everything. A cost above the limit never passes (retry_after_ms: until
  // the window is empty).
  RateResult take(std::string_view key, double limit, std::int64_t window_ms, double cost, std::int64_t now_ms);
  // Gives back `cost` taken by an allowed take whose result said counted_in_ms. If that window
  // has been left behind it is given back from prev; two windows later there is nothing to give.
  void refund(std::string_view key, std::int64_t window_ms, double cost, std::int64_t counted_in_ms);
  std::size_t size();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Token buckets: `limit` tokens per `period_ms`, holding at most `burst` (0: limit). A new
// bucket starts full. A bucket is identified by (key, period) and can be refunded.
class RateBuckets {
 public:
  explicit RateBuckets(std::size_t max_keys = 200000, unsigned shards = 64);
  ~RateBuckets();
  RateResult take(std::string_view key, double limit, std::int64_t period_ms, double burst, double cost,
                  std::int64_t now_ms);
  void refund(std::string_view key, std::int64_t period_ms, double limit, double burst, double cost);
  std::size_t size();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RateLimitSpec {
  enum class Algorithm : std::uint8_t { token_bucket, sliding_window };
  Algorithm algorithm = Algorithm::sliding_window;
  std::string_view key;
  double limit = 0;
  std::int64_t window_ms = 1000;  // window, or the bucket's period
  double burst = 0;               // token bucket only (0: limit)
};

// Several limits on one request (per second and per day, say): all take `cost`, or none does.
//
// Take then refund, not check then commit: limits are taken in order, each under its own shard
// lock for one operation; when one refuses, what the earlier ones took is refunded. A concurrent
// request can then see a limit that is briefly fuller than it will be, and be refused, but no
// limit is ever exceeded: the error is only ever a refusal, never an admission. Check then commit
// would need every shard of the request locked at once (ordered locking, held across several
// map operations) or would admit past a limit between the check and the commit; and refunds are
// what a Redis-backed limit can do too (one script per key, no multi-key transaction).
class RateLimiter {
 public:
  explicit RateLimiter(std::size_t max_keys = 200000, unsigned shards = 64)
      : windows(max_keys, shards), buckets(max_keys, shards) {}
  // Fills out[i] for each spec (out.size() >= specs.size()). Returns -1 if the request passes,
  // else the index of the refusing limit; results before it are as after their refund (allowed,
  // remaining restored), results after it are not evaluated (limit == 0).
  int take_all(std::span<const RateLimitSpec> specs, double cost, std::int64_t now_ms, std::span<RateResult> out);
  RateResult take(const RateLimitSpec& spec, double cost, std::int64_t now_ms);
  void refund(const RateLimitSpec& spec, double cost, const RateResult& taken);

  SlidingWindows windows;
  RateBuckets buckets;
};

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// The response headers for one request's limits (IETF draft-ietf-httpapi-ratelimit-headers, the
// three-field form): RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (seconds, rounded up)
// of the most restrictive limit (a refusing one, else the one with the least remaining), and,
// when refused, Retry-After (seconds, rounded up, at least 1). With `kong_style`, also
// X-RateLimit-Limit-<W> and X-RateLimit-Remaining-<W> for each window of exactly a Second,
// Minute, Hour or Day (the most restrictive limit of that window). Results with limit == 0 are
// skipped; none left: nothing is written.
//
// Writes at out[at], out[at + 1], ... and returns the index past the last pair written. Pairs
// already there are overwritten in place, so a list reused from request to request (and its
// strings' capacity) allocates nothing once warm; pairs past the returned index are not headers.
// Pass at = out.size() to append.
std::size_t format_rate_limit_headers(std::span<const RateResult> results, bool kong_style, HeaderPairs& out,
                                      std::size_t at = 0);

}  // namespace lg
