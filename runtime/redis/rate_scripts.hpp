// The pure parts of Redis-backed rate limits: the server-side scripts (one per algorithm; each
// checks every limit of a request and takes from all of them, or from none, atomically), the
// keys and arguments they get, what their replies mean, and a worker's batch reserve.
//
// Script contract (both algorithms):
//   ARGV = now_ms, want, then per limit: limit, window_ms (bucket: period), burst (bucket only)
//   KEYS = sliding window: per limit the current and the previous window's counter;
//          token bucket: per limit one hash {t: tokens, u: updated_ms}
//   grant = min(want, room of every limit) (0 if any limit has no room); every limit is charged
//   `grant`. exact mode sends want = 1; batch mode want = the batch size.
//   Reply: { grant, refusing (1-based index of the tightest limit, 0 = none),
//            then per limit: remaining, reset_ms, retry_after_ms }
// Keys start with "lunagate:rl:"; sliding windows are aligned to multiples of the window in
// wall-clock milliseconds (the caller's `now_ms`), so every instance counts in the same window.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/rate_limit.hpp"

namespace lg::redis {

extern const char* const kSlidingWindowScript;
extern const char* const kTokenBucketScript;

struct RemoteLimit {
  double limit = 0;
  std::int64_t window_ms = 1000;
  double burst = 0;  // token bucket: capacity (0: limit)
};

// Appends what follows EVALSHA <sha> in one call, RESP-encoded (resp_writer.hpp): numkeys,
// KEYS, ARGV. Returns how many arguments that is. `base` identifies the policy and who is
// counted.
std::size_t encode_call(std::string& out, bool token_bucket, std::string_view base,
                        std::span<const RemoteLimit> limits, std::int64_t now_ms, std::int64_t want);

// Until when a reserve taken at now_ms may be used: the end of the earliest window (sliding
// window), or now + the shortest period (token bucket).
std::int64_t reserve_expiry(bool token_bucket, std::span<const RemoteLimit> limits, std::int64_t now_ms);

struct ScriptReply {
  bool ok = false;  // the reply had the expected shape
  std::int64_t grant = 0;
  int refusing = -1;  // 0-based, -1: none
  std::vector<RateResult> results;  // per limit (limit, window_ms, remaining, reset, retry)
};
// Parses a reply given as its integers (the array elements, in order) into `out` (its results'
// capacity is reused); returns out.ok.
bool parse_reply(std::span<const long long> values, std::span<const RemoteLimit> limits, bool token_bucket,
                 ScriptReply& out);

// What the request at `index` (0-based, arrival order) of those sharing one call gets from its
// reply: the first `grant` pass, each told what the later ones leave; the others are refused,
// told when one unit will be free. Returns whether it passes; `out` gets its per-limit results.
bool share_of_reply(const ScriptReply& sr, std::int64_t index, std::vector<RateResult>& out);

// A worker's reserve for one (policy, key): units granted by Redis (already counted there)
// that requests may use without asking, until `expires_at` (wall-clock ms).
struct Reserve {
  double left = 0;
  std::int64_t expires_at = 0;
  std::uint64_t served = 0, granted = 0;  // totals, for tests and metrics
  bool usable(std::int64_t now_ms) const { return left >= 1 && now_ms < expires_at; }
  bool take(std::int64_t now_ms) {
    if (!usable(now_ms)) return false;
    left -= 1;
    ++served;
    return true;
  }
  // A new grant replaces the reserve (asked for only when it is empty or expired, so nothing
  // is lost, and a worker never holds more than one batch).
  void add(std::int64_t grant, std::int64_t expires, std::int64_t now_ms) {
    left = now_ms < expires ? static_cast<double>(grant) : 0;
    expires_at = expires;
    granted += static_cast<std::uint64_t>(grant);
  }
};

// The default batch: min(limit / (4 * workers), 100) units of the tightest limit, at least 1.
std::uint32_t default_batch(std::span<const RemoteLimit> limits, unsigned workers);

}  // namespace lg::redis
