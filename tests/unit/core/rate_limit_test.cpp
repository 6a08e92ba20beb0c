// Rate limits: sliding windows against an exact model over a simulated clock, token buckets,
// several limits per request with refunds, bounded memory, threads, and the headers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <deque>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/rate_limit.hpp"

using lg::format_rate_limit_headers;
using lg::HeaderPairs;
using lg::RateBuckets;
using lg::RateLimiter;
using lg::RateLimitSpec;
using lg::RateResult;
using lg::SlidingWindows;

namespace {

using Algo = RateLimitSpec::Algorithm;

std::string header(const HeaderPairs& h, std::size_t n, std::string_view name) {
  for (std::size_t i = 0; i < n; ++i)
    if (h[i].first == name) return h[i].second;
  return "<none>";
}

}  // namespace

TEST_CASE("SlidingWindows: a fresh window admits the limit, then says when to retry", "[rate-limit]") {
  SlidingWindows w;
  for (int i = 0; i < 10; ++i) {
    const RateResult r = w.take("k", 10, 1000, 1, 0);
    REQUIRE(r.allowed);
    CHECK(r.remaining == 9 - i);
    CHECK(r.limit == 10);
    CHECK(r.window_ms == 1000);
  }
  RateResult r = w.take("k", 10, 1000, 1, 0);
  CHECK_FALSE(r.allowed);
  CHECK(r.remaining == 0);
  // At 1000 + e the count is 10 * (1000 - e) / 1000: one unit frees at e = 100.
  CHECK(r.retry_after_ms == 1100);
  CHECK(r.reset_ms == 1100);
  CHECK_FALSE(w.take("k", 10, 1000, 1, 1099).allowed);
  r = w.take("k", 10, 1000, 1, 1100);
  CHECK(r.allowed);
  CHECK(r.remaining == 0);
  CHECK(w.take("other", 10, 1000, 1, 1100).allowed);  // keys are independent
  CHECK(w.take("k", 10, 60'000, 1, 1100).allowed);    // so are windows of one key
  CHECK(w.take("k", 10, 1000, 1, 5000).remaining == 9);  // two windows later: empty again
}

TEST_CASE("SlidingWindows: costs, a cost above the limit, a zero limit", "[rate-limit]") {
  SlidingWindows w;
  CHECK(w.take("c", 10, 1000, 4, 0).allowed);
  CHECK(w.take("c", 10, 1000, 4, 0).allowed);
  RateResult r = w.take("c", 10, 1000, 4, 0);
  CHECK_FALSE(r.allowed);
  CHECK(r.remaining == 2);
  // 8 in prev: 8 * (1000 - e) / 1000 + 4 <= 10 from e = 250.
  CHECK(r.retry_after_ms == 1250);
  CHECK(r.reset_ms == 1000 + 125);  // 3 remaining (one more) from 8 * (1000 - e) / 1000 <= 7
  r = w.take("c", 10, 1000, 11, 0);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after_ms == 2000);  // never: until the window is empty
  r = w.take("z", 0, 1000, 1, 0);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after_ms == 1000);
}

TEST_CASE("SlidingWindows: retry_after is exact (a millisecond earlier is refused)", "[rate-limit]") {
  std::mt19937 rng(7);
  for (const std::int64_t W : {1000, 60'000, 7}) {
    SlidingWindows w;
    const double limit = 1 + rng() % 50;
    std::int64_t t = 12345;
    int refusals = 0;
    for (int i = 0; i < 3000; ++i) {
      const double cost = 1 + rng() % 3;
      const RateResult r = w.take("k", limit, W, cost, t);
      if (!r.allowed && cost <= limit) {
        ++refusals;
        REQUIRE(r.retry_after_ms > 0);
        if (r.retry_after_ms > 1) REQUIRE_FALSE(w.take("k", limit, W, cost, t + r.retry_after_ms - 1).allowed);
        t += r.retry_after_ms;
        INFO("W " << W << " limit " << limit << " cost " << cost);
        REQUIRE(w.take("k", limit, W, cost, t).allowed);
      }
      t += static_cast<std::int64_t>(rng() % (W / 20 + 1));
    }
    CHECK(refusals > 100);
  }
}

TEST_CASE("SlidingWindows: accuracy against an exact sliding log", "[rate-limit]") {
  // Poisson arrivals at ~3x the limit; the exact model keeps every admitted time.
  const std::int64_t W = 1000;
  const double L = 100;
  SlidingWindows w;
  std::mt19937 rng(42);
  std::exponential_distribution<double> gap(1.0 / 3.0);  // mean 3 ms
  std::vector<std::int64_t> admitted;
  double t_real = 0;
  std::int64_t max_err_seen = 0;
  for (int i = 0; i < 20000; ++i) {
    t_real += gap(rng);
    const auto t = static_cast<std::int64_t>(t_real);
    const RateResult r = w.take("k", L, W, 1, t);
    if (r.allowed) admitted.push_back(t);
    // The estimate after this take lies in (L - remaining - 1, L - remaining].
    const std::int64_t start = t / W * W, e = t - start;
    const auto exact = std::count_if(admitted.begin(), admitted.end(), [&](auto a) { return a > t - W; });
    const auto prev = std::count_if(admitted.begin(), admitted.end(), [&](auto a) { return a >= start - W && a < start; });
    const double bound = prev * std::max(double(e) / W, 1 - double(e) / W);
    const double est_hi = L - r.remaining, est_lo = est_hi - 1;
    REQUIRE(est_lo < exact + bound + 1e-9);
    REQUIRE(est_hi > exact - bound - 1e-9);
    // Past the first windows (an initial burst, then its transient), |error| stays small.
    if (t >= 3 * W) max_err_seen = std::max<std::int64_t>(max_err_seen, std::llabs(static_cast<std::int64_t>(est_hi) - exact));
  }
  // Admissions: at most L per aligned window, under 2L per any W-long interval, and close to L
  // per window over the run (the long-run rate).
  const std::int64_t end = admitted.back();
  for (std::int64_t k = 0; k * W <= end; ++k) {
    const auto n = std::count_if(admitted.begin(), admitted.end(), [&](auto a) { return a >= k * W && a < (k + 1) * W; });
    REQUIRE(n <= L);
  }
  std::size_t worst = 0;
  for (std::size_t i = 0, j = 0; i < admitted.size(); ++i) {  // intervals (admitted[i] - W, admitted[i]]
    while (admitted[j] <= admitted[i] - W) ++j;
    worst = std::max(worst, i - j + 1);
  }
  CHECK(worst < 2 * L);
  const double windows = double(end) / W;
  CHECK(admitted.size() / windows > 0.97 * L);
  CHECK(admitted.size() / windows <= L + 1);
  // Random (not adversarial) traffic stays far from the bound: a few percent of L.
  INFO("worst " << worst << " rate " << admitted.size() / windows << " max err " << max_err_seen);
  CHECK(worst <= 1.05 * L);
  CHECK(max_err_seen <= 0.05 * L);
}

TEST_CASE("SlidingWindows: the worst case stays under twice the limit in any window", "[rate-limit]") {
  // A burst at the end of one window, then takes as fast as the decaying weight allows.
  const std::int64_t W = 1000;
  SlidingWindows w;
  std::deque<std::int64_t> admitted;
  std::size_t worst = 0;
  for (std::int64_t t = 999; t < 3000; ++t) {
    while (w.take("k", 100, W, 1, t).allowed) admitted.push_back(t);
    while (!admitted.empty() && admitted.front() <= t - W) admitted.pop_front();
    worst = std::max(worst, admitted.size());
  }
  CHECK(worst > 100);  // the approximation's known overshoot...
  CHECK(worst < 200);  // ...bounded as documented
}

TEST_CASE("Rate limits: a clock read older than the counter's counts as now", "[rate-limit]") {
  // Another thread may take the lock first with a later reading of the same clock.
  SlidingWindows w;
  CHECK(w.take("k", 2, 1000, 1, 2000).allowed);
  const RateResult late = w.take("k", 2, 1000, 1, 1999);  // counted in [2000, 3000)
  CHECK(late.allowed);
  CHECK(late.counted_in_ms == 2000);
  CHECK_FALSE(w.take("k", 2, 1000, 1, 2000).allowed);
  RateBuckets b;
  CHECK(b.take("k", 1, 1000, 1, 1, 5000).allowed);
  CHECK_FALSE(b.take("k", 1, 1000, 1, 1, 4000).allowed);  // no refill backwards
  CHECK(b.take("k", 1, 1000, 1, 1, 6000).allowed);
}

TEST_CASE("RateBuckets: refill, burst, retry_after and reset", "[rate-limit]") {
  RateBuckets b;
  // 2 per second, burst 3.
  for (int i = 0; i < 3; ++i) {
    const RateResult r = b.take("k", 2, 1000, 3, 1, 0);
    REQUIRE(r.allowed);
    CHECK(r.remaining == 2 - i);
  }
  RateResult r = b.take("k", 2, 1000, 3, 1, 0);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after_ms == 500);
  CHECK(r.reset_ms == 500);
  CHECK(r.limit == 3);
  CHECK_FALSE(b.take("k", 2, 1000, 3, 1, 499).allowed);
  CHECK(b.take("k", 2, 1000, 3, 1, 500).allowed);
  r = b.take("k", 2, 1000, 3, 1, 100'000);  // a long pause refills up to the burst only
  CHECK(r.allowed);
  CHECK(r.remaining == 2);
  CHECK(r.reset_ms == 500);
  r = b.take("k", 2, 1000, 3, 5, 100'000);  // above the burst: until the bucket is full
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after_ms == 500);
  CHECK(b.take("fresh", 60, 60'000, 0, 1, 0).remaining == 59);  // burst 0: the limit
}

TEST_CASE("RateLimiter: a request refused by one limit consumes none of the others", "[rate-limit]") {
  RateLimiter rl;
  // A sliding window of 10 per minute and a token bucket of burst 2 (1 per minute).
  const RateLimitSpec specs[] = {
      {Algo::sliding_window, "route:a", 10, 60'000, 0},
      {Algo::token_bucket, "route:a", 1, 60'000, 2},
  };
  RateResult out[2];
  CHECK(rl.take_all(specs, 1, 0, out) == -1);
  CHECK(rl.take_all(specs, 1, 0, out) == -1);
  CHECK(out[0].remaining == 8);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(rl.take_all(specs, 1, 0, out) == 1);  // the bucket refuses
    CHECK(out[0].allowed);
    CHECK(out[0].remaining == 8);  // as after the refund
    CHECK_FALSE(out[1].allowed);
  }
  CHECK(rl.windows.take("route:a", 10, 60'000, 1, 0).remaining == 7);  // the refused ones were given back
  // Reversed order: the window refuses after the bucket took.
  RateLimiter r2;
  const RateLimitSpec rev[] = {
      {Algo::token_bucket, "c", 1, 60'000, 5},
      {Algo::sliding_window, "c", 2, 60'000, 0},
      {Algo::sliding_window, "d", 100, 1000, 0},
  };
  RateResult o[3];
  CHECK(r2.take_all(rev, 1, 0, o) == -1);
  CHECK(r2.take_all(rev, 1, 0, o) == -1);
  CHECK(r2.take_all(rev, 1, 0, o) == 1);
  CHECK(o[0].remaining == 3);
  CHECK(o[2].limit == 0);  // not evaluated
  CHECK(r2.buckets.take("c", 1, 60'000, 5, 1, 0).remaining == 2);  // 5 - 2 admitted - this one
  CHECK(r2.windows.take("d", 100, 1000, 1, 0).remaining == 97);
}

TEST_CASE("SlidingWindows: a refund after the window rolled over comes out of prev", "[rate-limit]") {
  SlidingWindows w;
  const RateResult a = w.take("k", 10, 1000, 5, 900);
  REQUIRE(a.allowed);
  CHECK(a.counted_in_ms == 0);
  CHECK(w.take("k", 10, 1000, 5, 1000).remaining == 0);  // prev 5 at full weight + 5
  w.refund("k", 1000, 5, a.counted_in_ms);               // the first take is given back
  CHECK(w.take("k", 10, 1000, 1, 1000).remaining == 4);
  w.refund("k", 1000, 5, -5000);  // a window long gone: nothing to give back
  w.refund("nobody", 1000, 5, 0);
  CHECK(w.take("k", 10, 1000, 0, 1000).remaining == 4);
}

TEST_CASE("Rate limits: memory is bounded, idle entries go first, then the oldest", "[rate-limit]") {
  SlidingWindows w(64, 1);
  for (int i = 0; i < 64; ++i) REQUIRE(w.take("k" + std::to_string(i), 10, 1000, 1, 0).allowed);
  CHECK(w.size() == 64);
  CHECK(w.take("late", 10, 1000, 1, 5000).allowed);  // all others idle by now: dropped
  CHECK(w.size() == 1);
  // Live entries: the least recently used eighth goes.
  SlidingWindows lru(64, 1);
  for (int i = 0; i < 64; ++i) REQUIRE(lru.take("k" + std::to_string(i), 1, 60'000, 1, i).allowed);
  CHECK(lru.take("new", 1, 60'000, 1, 100).allowed);
  CHECK(lru.size() == 57);
  CHECK(lru.take("k0", 1, 60'000, 1, 101).allowed);         // forgotten: a fresh window
  CHECK_FALSE(lru.take("k63", 1, 60'000, 1, 101).allowed);  // remembered
  RateBuckets b(64, 1);
  for (int i = 0; i < 10'000; ++i) b.take("b" + std::to_string(i), 1, 60'000, 1, 1, i);
  CHECK(b.size() <= 64);
}

TEST_CASE("Rate limits: threads hammering one key get exactly the limit", "[rate-limit]") {
  RateLimiter rl;
  std::atomic<int> windows{0}, buckets{0}, both{0};
  const RateLimitSpec multi[] = {
      {Algo::sliding_window, "m", 300, 60'000, 0},
      {Algo::token_bucket, "m", 1, 3'600'000, 150},
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      RateResult out[2];
      for (int i = 0; i < 2000; ++i) {
        windows += rl.windows.take("hot", 100, 60'000, 1, 1000).allowed;
        buckets += rl.buckets.take("hot", 1, 3'600'000, 100, 1, 1000).allowed;
        both += rl.take_all(multi, 1, 1000, out) == -1;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(windows.load() == 100);
  CHECK(buckets.load() == 100);
  CHECK(both.load() == 150);  // the bucket's burst; refunds left the window at exactly 150 taken
  CHECK(rl.windows.take("m", 300, 60'000, 1, 1000).remaining == 300 - 151);
}

TEST_CASE("format_rate_limit_headers: the most restrictive limit, Retry-After, Kong style", "[rate-limit]") {
  HeaderPairs h;
  RateResult sec;
  sec.allowed = true;
  sec.limit = 10;
  sec.remaining = 7;
  sec.window_ms = 1000;
  sec.reset_ms = 1;
  RateResult day = sec;
  day.limit = 1000;
  day.remaining = 3;
  day.window_ms = 86'400'000;
  day.reset_ms = 40'001;
  RateResult odd = sec;
  odd.window_ms = 120'000;  // two minutes: no Kong name
  odd.remaining = 9;
  const RateResult all[] = {sec, day, odd};
  std::size_t n = format_rate_limit_headers(all, false, h);
  CHECK(n == 3);
  CHECK(header(h, n, "RateLimit-Limit") == "1000");  // the least remaining
  CHECK(header(h, n, "RateLimit-Remaining") == "3");
  CHECK(header(h, n, "RateLimit-Reset") == "41");  // rounded up
  CHECK(header(h, n, "Retry-After") == "<none>");
  n = format_rate_limit_headers(all, true, h);
  CHECK(n == 7);
  CHECK(header(h, n, "X-RateLimit-Limit-Second") == "10");
  CHECK(header(h, n, "X-RateLimit-Remaining-Second") == "7");
  CHECK(header(h, n, "X-RateLimit-Limit-Day") == "1000");
  CHECK(header(h, n, "X-RateLimit-Remaining-Day") == "3");
  CHECK(header(h, n, "X-RateLimit-Limit-Minute") == "<none>");
  // A refusal wins over a lower remaining; Retry-After is at least 1.
  RateResult refused = sec;
  refused.allowed = false;
  refused.remaining = 5;
  refused.retry_after_ms = 1;
  refused.reset_ms = 1;
  const RateResult r2[] = {day, refused};
  n = format_rate_limit_headers(r2, false, h);
  CHECK(n == 4);
  CHECK(header(h, n, "RateLimit-Limit") == "10");
  CHECK(header(h, n, "Retry-After") == "1");
  refused.retry_after_ms = 1001;
  n = format_rate_limit_headers(std::span<const RateResult>(&refused, 1), false, h);
  CHECK(header(h, n, "Retry-After") == "2");
  // Nothing evaluated: nothing written. Appending after other headers.
  RateResult none;
  CHECK(format_rate_limit_headers(std::span<const RateResult>(&none, 1), true, h, 2) == 2);
  HeaderPairs app = {{"Vary", "Origin"}};
  CHECK(format_rate_limit_headers(all, false, app, app.size()) == 4);
  CHECK(app[0].first == "Vary");
  CHECK(app[1].first == "RateLimit-Limit");
}

TEST_CASE("format_rate_limit_headers: a reused list allocates nothing once warm", "[rate-limit]") {
  RateResult a;
  a.allowed = false;
  a.limit = 60;
  a.window_ms = 60'000;
  a.retry_after_ms = 5000;
  HeaderPairs h;
  const RateResult one[] = {a};
  const std::size_t n = format_rate_limit_headers(one, true, h);
  REQUIRE(n == 6);
  std::vector<const char*> before;
  for (const auto& p : h) before.push_back(p.first.data());
  const auto* storage = h.data();
  a.remaining = 17;
  const RateResult again[] = {a};
  CHECK(format_rate_limit_headers(again, true, h) == 6);
  CHECK(h.data() == storage);
  for (std::size_t i = 0; i < h.size(); ++i) CHECK(h[i].first.data() == before[i]);
  CHECK(header(h, 6, "X-RateLimit-Remaining-Minute") == "17");
}
