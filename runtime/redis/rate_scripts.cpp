#include "redis/rate_scripts.hpp"

#include <algorithm>
#include <cmath>

#include "redis/resp_writer.hpp"

namespace lg::redis {

// Sliding windows: the two-window weighted estimate of core/rate_limit.hpp, in integers
// (count * W), so that Redis and the in-process limiter agree on every admission.
const char* const kSlidingWindowScript = R"lua(
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local n = (#ARGV - 2) / 2
local grant = want
local refusing = 0
local st = {}
local function wait_ms(prev, curr, W, e, L, need)
  if need > L then
    if curr > 0 then return 2 * W - e elseif prev > 0 then return W - e else return 0 end
  end
  local room = L - need - curr
  if room >= 0 then
    if prev * (W - e) <= room * W then return 0 end
    local e1 = W - math.floor(room * W / prev)
    if e1 < W then return e1 - e end
  end
  local to_next = W - e
  if curr <= L - need then return to_next end
  local e2 = W - math.floor((L - need) * W / curr)
  if e2 < W then return to_next + e2 end
  return to_next + W
end
for i = 1, n do
  local L = tonumber(ARGV[1 + 2 * i])
  local W = tonumber(ARGV[2 + 2 * i])
  local e = now % W
  local curr = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local room = math.floor((L * W - prev * (W - e) - curr * W) / W)
  if room < 0 then room = 0 end
  if room < grant then grant = room; refusing = i end
  st[i] = {L, W, e, curr, prev}
end
if grant < 1 then grant = 0 else refusing = 0 end
local out = {grant, refusing}
for i = 1, n do
  local L, W, e, curr, prev = st[i][1], st[i][2], st[i][3], st[i][4], st[i][5]
  if grant > 0 then
    redis.call('INCRBY', KEYS[2 * i - 1], grant)
    redis.call('PEXPIRE', KEYS[2 * i - 1], 2 * W + 1000)
    curr = curr + grant
  end
  local left = math.floor((L * W - prev * (W - e) - curr * W) / W)
  if left < 0 then left = 0 end
  local reset = 0
  if left < L then reset = wait_ms(prev, curr, W, e, L, left + 1) end
  local retry = 0
  if grant == 0 then retry = wait_ms(prev, curr, W, e, L, 1) end
  out[#out + 1] = left
  out[#out + 1] = reset
  out[#out + 1] = retry
end
return out
)lua";

// Token buckets: `limit` tokens per period, at most `burst`; a new bucket starts full.
const char* const kTokenBucketScript = R"lua(
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local n = (#ARGV - 2) / 3
local grant = want
local refusing = 0
local st = {}
for i = 1, n do
  local L = tonumber(ARGV[3 * i])
  local P = tonumber(ARGV[3 * i + 1])
  local cap = tonumber(ARGV[3 * i + 2])
  if cap <= 0 then cap = L end
  local h = redis.call('HMGET', KEYS[i], 't', 'u')
  local tokens, upd = tonumber(h[1]), tonumber(h[2])
  if tokens == nil or upd == nil then tokens = cap; upd = now end
  if now > upd then
    tokens = math.min(cap, tokens + (now - upd) * L / P)
    upd = now
  end
  local room = math.floor(tokens + 1e-9)
  if room < grant then grant = room; refusing = i end
  st[i] = {L, P, cap, tokens, upd}
end
if grant < 1 then grant = 0 else refusing = 0 end
local out = {grant, refusing}
for i = 1, n do
  local L, P, cap, tokens, upd = st[i][1], st[i][2], st[i][3], st[i][4], st[i][5]
  if grant > 0 then
    tokens = math.max(0, tokens - grant)
    redis.call('HSET', KEYS[i], 't', tostring(tokens), 'u', upd)
    redis.call('PEXPIRE', KEYS[i], math.ceil(cap * P / L) + 1000)
  end
  local per_ms = L / P
  local left = math.floor(tokens + 1e-9)
  local reset = 0
  if tokens + 1e-9 < cap then reset = math.ceil((math.min(cap, left + 1) - tokens) / per_ms) end
  local retry = 0
  if grant == 0 then retry = math.ceil((math.min(1, cap) - tokens) / per_ms) end
  out[#out + 1] = left
  out[#out + 1] = reset
  out[#out + 1] = retry
end
return out
)lua";

namespace {
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
}  // namespace

std::size_t encode_call(std::string& out, bool token_bucket, std::string_view base,
                        std::span<const RemoteLimit> limits, std::int64_t now_ms, std::int64_t want) {
  const std::size_t n = limits.size();
  const std::size_t argc = 1 + (token_bucket ? n : 2 * n) + 2 + (token_bucket ? 3 * n : 2 * n);
  RespWriter w(out);
  w.arg(static_cast<std::int64_t>(token_bucket ? n : 2 * n));  // numkeys
  const std::string_view prefix = token_bucket ? "lunagate:rl:tb:" : "lunagate:rl:sw:";
  for (const RemoteLimit& l : limits) {
    const std::int64_t W = std::max<std::int64_t>(1, l.window_ms);
    const Decimal window(W);
    if (token_bucket) {
      w.arg_parts({prefix, base, ":", window.view()});
    } else {
      const std::int64_t start = floor_div(now_ms, W) * W;
      w.arg_parts({prefix, base, ":", window.view(), ":", Decimal(start).view()});
      w.arg_parts({prefix, base, ":", window.view(), ":", Decimal(start - W).view()});
    }
  }
  w.arg(now_ms);
  w.arg(want);
  for (const RemoteLimit& l : limits) {
    w.arg(static_cast<std::int64_t>(l.limit));
    w.arg(std::max<std::int64_t>(1, l.window_ms));
    if (token_bucket) w.arg(static_cast<std::int64_t>(l.burst));
  }
  return argc;
}

std::int64_t reserve_expiry(bool token_bucket, std::span<const RemoteLimit> limits, std::int64_t now_ms) {
  std::int64_t at = 0;
  for (const RemoteLimit& l : limits) {
    const std::int64_t W = std::max<std::int64_t>(1, l.window_ms);
    const std::int64_t end = token_bucket ? now_ms + W : (floor_div(now_ms, W) + 1) * W;
    if (at == 0 || end < at) at = end;
  }
  return at;
}

bool parse_reply(std::span<const long long> v, std::span<const RemoteLimit> limits, bool token_bucket,
                 ScriptReply& r) {
  r.ok = false;
  r.grant = 0;
  r.refusing = -1;
  r.results.clear();
  if (v.size() != 2 + 3 * limits.size()) return false;
  if (v[0] < 0 || v[1] < 0 || v[1] > static_cast<long long>(limits.size())) return false;
  r.grant = v[0];
  r.refusing = static_cast<int>(v[1]) - 1;
  r.results.resize(limits.size());
  for (std::size_t i = 0; i < limits.size(); ++i) {
    RateResult& o = r.results[i];
    const RemoteLimit& l = limits[i];
    o.allowed = r.grant > 0;
    o.limit = token_bucket && l.burst > 0 ? l.burst : l.limit;
    o.window_ms = l.window_ms;
    o.remaining = static_cast<double>(std::max<long long>(0, v[2 + 3 * i]));
    o.reset_ms = std::max<long long>(0, v[3 + 3 * i]);
    o.retry_after_ms = std::max<long long>(0, v[4 + 3 * i]);
  }
  if (r.grant == 0 && r.refusing < 0) return false;  // a refusal names its limit
  r.ok = true;
  return true;
}

bool share_of_reply(const ScriptReply& sr, std::int64_t index, std::vector<RateResult>& out) {
  const bool pass = index < sr.grant;
  out.assign(sr.results.begin(), sr.results.end());
  for (RateResult& r : out) {
    r.allowed = pass;
    if (pass) r.remaining = std::min(r.limit, r.remaining + static_cast<double>(sr.grant - 1 - index));
    else r.retry_after_ms = std::max(r.retry_after_ms, r.reset_ms);
  }
  return pass;
}

std::uint32_t default_batch(std::span<const RemoteLimit> limits, unsigned workers) {
  double tight = 0;
  for (const RemoteLimit& l : limits)
    if (tight == 0 || l.limit < tight) tight = l.limit;
  const double b = std::floor(tight / (4.0 * std::max(1u, workers)));
  return static_cast<std::uint32_t>(std::clamp(b, 1.0, 100.0));
}

}  // namespace lg::redis
