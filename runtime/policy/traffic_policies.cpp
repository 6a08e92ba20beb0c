#include "policy/traffic_policies.hpp"

#include <array>

#include "core/clock.hpp"
#include "core/shared_state.hpp"
#include "policy/client_ip.hpp"

namespace lg::policy {

// Each policy resolves the client with its own trusted proxies (an empty set: the peer itself);
// a result is reused only by a policy with the same set.
void resolve_client_ip(PolicyRequest& r, const CidrSet& trusted_proxies) {
  if (trusted_proxies.empty() || !r.headers) {
    r.client_ip.clear();
    r.client_ip_by = nullptr;
    return;
  }
  if (r.client_ip_by == &trusted_proxies && !r.client_ip.empty()) return;
  r.client_ip_by = &trusted_proxies;
  std::array<std::string_view, 16> xff;  // more lines than this: the first 16 (the walk is from the right)
  std::size_t n = 0;
  for (const http::Header& h : *r.headers)
    if (h.name.size() == 15 && http::iequals(h.name, "x-forwarded-for")) {
      if (n == xff.size()) std::move(xff.begin() + 1, xff.end(), xff.begin()), --n;
      xff[n++] = h.value;
    }
  std::array<char, kIpTextMax> scratch;
  r.client_ip.assign(real_client_ip(r.peer_ip, std::span(xff.data(), n), trusted_proxies, scratch));
}

std::unique_ptr<IpRestriction> IpRestriction::make(const IpRestrictionConfig& c, std::string& error) {
  auto p = std::unique_ptr<IpRestriction>(new IpRestriction());
  std::string e;
  if (!p->allow_.parse(std::span<const std::string>(c.allow), e)) error = "allow: " + e;
  else if (!p->deny_.parse(std::span<const std::string>(c.deny), e)) error = "deny: " + e;
  else if (!p->trusted_.parse(std::span<const std::string>(c.trusted_proxies), e)) error = "trusted_proxies: " + e;
  return error.empty() ? std::move(p) : nullptr;
}

// Deny wins over allow; with an allow list, everything else is refused.
bool IpRestriction::apply(PolicyRequest& r) const {
  resolve_client_ip(r, trusted_);
  IpAddress a;
  if (!parse_ip(r.effective_client_ip(), a)) return r.answer(403, "forbidden: client address not allowed");
  if (deny_.contains(a) || (!allow_.empty() && !allow_.contains(a)))
    return r.answer(403, "forbidden: client address not allowed");
  return true;
}

std::unique_ptr<RateLimit> RateLimit::make(const RateLimitConfig& c, std::string id, std::string& error) {
  auto p = std::unique_ptr<RateLimit>(new RateLimit(c, std::move(id)));
  std::string e;
  if (!p->trusted_.parse(std::span<const std::string>(c.trusted_proxies), e)) {
    error = "trusted_proxies: " + e;
    return nullptr;
  }
  return p;
}

bool RateLimit::apply(PolicyRequest& r) const {
  thread_local std::string key;
  thread_local std::vector<RateLimitSpec> specs;
  thread_local std::vector<RateResult> results;
  // The counter's key: this policy, then who is counted. Without a consumer (by: consumer on a
  // route that authenticated nobody) or the header, the client's address is counted instead.
  std::string_view who;
  switch (cfg_.by) {
    case RateLimitConfig::Key::consumer: who = r.consumer_id; break;
    case RateLimitConfig::Key::ip: break;
    case RateLimitConfig::Key::route: who = "*"; break;
    case RateLimitConfig::Key::header: who = r.header(cfg_.header); break;
  }
  // Each source has its own tag, so no value of one can name another's counter.
  key.assign(id_).push_back('|');
  if (who.empty()) {
    resolve_client_ip(r, trusted_);  // only when the address is what is counted
    key.append("ip:").append(r.effective_client_ip());
  }
  else if (cfg_.by == RateLimitConfig::Key::header) key.append("h:").append(who.substr(0, 256));
  else if (cfg_.by == RateLimitConfig::Key::route) key.append("r:");
  else key.append("c:").append(who.substr(0, 256));
  specs.clear();
  const std::vector<RateLimitConfig::Limit>* limits = &cfg_.limits;
  if (!cfg_.consumer_limits.empty() && !r.consumer_id.empty()) {
    const auto it = cfg_.consumer_limits.find(r.consumer_id);
    if (it != cfg_.consumer_limits.end()) limits = &it->second;
  }
  if (cfg_.store == RateLimitConfig::Store::redis) return apply_remote(r, key, *limits);
  for (const auto& l : *limits) {
    RateLimitSpec s;
    s.algorithm = cfg_.algorithm == RateLimitConfig::Algorithm::token_bucket ? RateLimitSpec::Algorithm::token_bucket
                                                                               : RateLimitSpec::Algorithm::sliding_window;
    s.key = key;
    s.limit = l.limit;
    s.window_ms = l.per.count();
    s.burst = l.burst;
    specs.push_back(s);
  }
  results.assign(specs.size(), RateResult{});
  const std::int64_t now = wall_ms();
  const int refused = r.shared->limits.take_all(specs, 1, now, results);
  if (refused < 0) {
    format_rate_limit_headers(results, cfg_.legacy_headers, *r.resp_headers, r.resp_headers->size());
    return true;
  }
  format_rate_limit_headers(results, cfg_.legacy_headers, r.answer_headers, r.answer_headers.size());
  return r.answer(429, "rate limit exceeded");
}

// Redis-backed: the worker's RemoteLimits answers at once (batch reserve, a store known to be
// down) or later (the request waits; resume() finishes).
bool RateLimit::apply_remote(PolicyRequest& r, std::string_view key,
                             const std::vector<RateLimitConfig::Limit>& limits) const {
  RemoteTake& t = *r.remote_take;
  t.token_bucket = cfg_.algorithm == RateLimitConfig::Algorithm::token_bucket;
  t.batch = cfg_.mode == RateLimitConfig::Mode::batch;
  t.base.assign(key);
  t.limits.clear();
  for (const auto& l : limits) t.limits.push_back({l.limit, l.per.count(), l.burst});
  t.results.clear();
  t.status = RemoteTake::Status::failed;
  t.owner = r.wait_owner;
  if (r.remote) {
    t.batch_size = cfg_.batch ? cfg_.batch : redis::default_batch(t.limits, r.remote->workers());
    r.remote->take(t);
  }
  if (t.status == RemoteTake::Status::waiting) {
    r.waiting = true;
    return false;
  }
  return finish_remote(r);
}

bool RateLimit::resume(PolicyRequest& r) const { return finish_remote(r); }

bool RateLimit::finish_remote(PolicyRequest& r) const {
  RemoteTake& t = *r.remote_take;
  switch (t.status) {
    case RemoteTake::Status::allowed:
      format_rate_limit_headers(t.results, cfg_.legacy_headers, *r.resp_headers, r.resp_headers->size());
      return true;
    case RemoteTake::Status::refused:
      format_rate_limit_headers(t.results, cfg_.legacy_headers, r.answer_headers, r.answer_headers.size());
      return r.answer(429, "rate limit exceeded");
    default:
      break;
  }
  // The store failed (down, timed out, too much in flight).
  if (!r.remote || r.remote->fail_open()) {
    r.bypassed = true;
    return true;
  }
  return r.answer(503, "rate limit store unavailable");  // with Retry-After: 1 (error_response.cpp)
}

}  // namespace lg::policy
