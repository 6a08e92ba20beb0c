#include "policy/jwt_policy.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/config_loader.hpp"
#include "core/shared_state.hpp"
#include "net/tls_context.hpp"

namespace lg::policy {

namespace {
bool refuse_revoked(PolicyRequest& r) {
  r.answer_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lunagate\", error=\"invalid_token\"");
  r.message_detail = "revoked";
  r.consumer = nullptr;  // decided before a Redis lookup came back
  r.consumer_id.clear();
  return r.answer(401, "invalid token");
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}
}  // namespace

std::string make_jwt_keys(const JwtConfig& c, auth::JwtKeySet& out) {
  for (const JwtKeyConfig& k : c.keys) {
    auth::Alg alg;
    if (!auth::parse_alg(k.alg, alg)) return "key '" + k.kid + "': unknown alg '" + k.alg + "'";
    auth::JwtLoadResult r;
    if (!k.secret.empty()) {
      r = out.add_secret(k.kid, alg, k.secret);
    } else {
      std::string pem = k.pem;
      if (!k.pem_file.empty() && !read_file(k.pem_file, pem))
        return "key '" + k.kid + "': cannot read " + k.pem_file;
      r = out.load_pem(k.kid, alg, pem);
    }
    if (!r.ok()) return "key '" + k.kid + "': " + r.error;
  }
  if (!c.jwks_file.empty()) {
    std::string text;
    if (!read_file(c.jwks_file, text)) return "cannot read jwks_file " + c.jwks_file;
    const auth::JwtLoadResult r = out.load_jwks(text);
    if (!r.ok()) return "jwks_file: " + r.error;
  }
  return {};
}

std::shared_ptr<auth::JwksSource> make_jwks_source(const JwtConfig& c, unsigned workers,
                                                   auth::JwksProvider* provider, std::string& err) {
  auth::JwksSettings s;
  if (const std::string why = http::parse_https_url(c.jwks_url, s.url); !why.empty()) {
    err = "jwks_url: " + why;
    return nullptr;
  }
  UpstreamTlsConfig tls;  // the same client settings as upstream TLS: TLS 1.2+, chain verified
  tls.origin = "jwks_ca_file";
  if (!c.jwks_ca_file.empty()) tls.ca = ConfigFile{c.jwks_ca_file, "jwks_ca_file"};
  try {
    s.tls = std::make_shared<const TlsClientContext>(tls);
  } catch (const ConfigError& e) {
    err = e.what();
    return nullptr;
  }
  // Different trust stores never share fetched keys.
  s.key = c.jwks_url + "\n" + c.jwks_ca_file + (c.jwks_allow_symmetric ? "\nsymmetric" : "");
  s.refresh_ms = c.jwks_refresh.count();
  s.timeout_ms = c.jwks_timeout.count();
  s.min_refresh_ms = c.jwks_min_refresh_interval.count();
  s.allow_symmetric = c.jwks_allow_symmetric;
  if (provider) return provider->source(s, workers);
  return std::make_shared<auth::JwksSource>(workers, s, nullptr);
}

JwtAuth::JwtAuth(const JwtConfig& c, auth::JwtKeySet keys, std::shared_ptr<auth::JwksSource> remote,
                 const ConsumerTable& consumers)
    : cfg_(c), keys_(std::move(keys)), remote_(std::move(remote)), consumers_(consumers) {
  policy_.issuer = c.issuer;
  policy_.audiences = c.audiences;
  policy_.leeway_s = c.leeway.count() / 1000;
  policy_.max_lifetime_s = c.max_lifetime.count() / 1000;
  policy_.required_claims = c.required_claims;
}

// "Authorization: Bearer <token>" (scheme case-insensitive), another header's whole value, or a
// query parameter.
std::string_view JwtAuth::token_of(PolicyRequest& r, std::string& scratch) const {
  std::string_view v = r.header(cfg_.header);
  if (!v.empty() && http::iequals(cfg_.header, "authorization")) {
    if (v.size() < 7 || !http::iequals(v.substr(0, 7), "bearer ")) return {};
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return v;
  }
  if (v.empty() && !cfg_.query.empty() && r.query_arg(cfg_.query, scratch)) return scratch;
  return v;
}

// Static keys first; the fetched set when they do not have the token's key.
bool JwtAuth::verify(std::string_view token, PolicyRequest& r, auth::JwtResult& result) const {
  if (!remote_ || keys_.size() > 0) {
    if (auth::verify_jwt(token, keys_, policy_, r.now_unix, result)) return true;
    if (!remote_ || (result.error != auth::JwtError::kid_unknown && result.error != auth::JwtError::kid_missing))
      return false;
  }
  return auth::verify_jwt(token, remote_->keys(r.worker), policy_, r.now_unix, result);
}

// The fetched set lacks the token's key (the identity provider rotated its keys): ask for a
// refresh and park the request until that fetch ends, at most jwks_timeout. No wait when no
// fetch is pending or running (a refresh was asked within the minimum interval, and it ended).
bool JwtAuth::wait_for_keys(PolicyRequest& r, const auth::JwtResult& result) const {
  if (!remote_ || !r.wait_owner) return false;
  const bool missing = result.error == auth::JwtError::kid_unknown ||
                       (result.error == auth::JwtError::kid_missing && remote_->keys(r.worker).size() == 0);
  if (!missing || !remote_->refresh_for_kid(r.now_ms)) return false;
  const auto wake = [](void* owner) { static_cast<PolicyWaitOwner*>(owner)->on_policy_wake(); };
  if (!remote_->park(remote_, r.worker, r.key_wait, wake, r.wait_owner)) return false;
  r.waiting = true;
  r.wait_deadline_ms = r.now_ms + remote_->timeout_ms();
  return true;
}

bool JwtAuth::apply(PolicyRequest& r) const {
  if (r.header_count(cfg_.header) > 1) return r.answer(400, "more than one credential header");
  // Whatever happens, the headers this policy sets upstream never come from the client.
  for (const auto& [claim, header] : cfg_.claims_to_headers) r.up_edits->remove.push_back(header);
  return check(r, true);
}

// Which wait ended: wait_for_keys set a deadline (the fetch's bound); a Redis lookup has none.
bool JwtAuth::resume(PolicyRequest& r) const {
  if (r.wait_deadline_ms != 0) {
    r.wait_deadline_ms = 0;
    return check(r, false);  // may go on to wait for Redis
  }
  return finish_redis(r);
}

bool JwtAuth::check(PolicyRequest& r, bool may_wait) const {
  thread_local auth::JwtResult result;  // its buffers are reused: no allocation per token once warm
  thread_local std::string scratch;
  const std::string_view token = token_of(r, scratch);
  if (token.empty()) {
    r.answer_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lunagate\"");
    return r.answer(401, "missing bearer token");
  }
  if (!verify(token, r, result)) {
    if (may_wait && wait_for_keys(r, result)) return false;
    r.answer_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lunagate\", error=\"invalid_token\"");
    r.message_detail = auth::jwt_error_name(result.error);
    return r.answer(401, "invalid token");
  }
  const std::string_view jti = result.claims.jti();
  thread_local std::string key;  // "lunagate:jwt:revoked:<jti>": the blocklist's and Redis's key
  if (!jti.empty()) {
    key.assign(kRevokedJtiPrefix).append(jti);
    SharedDict::Value ignored;
    if (r.shared->dict.get(key, r.now_ms, ignored) == SharedDict::Status::ok) return refuse_revoked(r);
  }
  for (const std::string& scope : cfg_.required_scopes)
    if (!result.claims.has_scope(scope)) {
      r.answer_headers.emplace_back("WWW-Authenticate",
                                    "Bearer realm=\"lunagate\", error=\"insufficient_scope\", scope=\"" + scope + "\"");
      return r.answer(403, "insufficient scope");
    }
  const std::string_view who = result.claims.string(cfg_.consumer_claim);
  if (!who.empty()) {
    // It becomes X-Consumer-ID and a rate-limit key: a value that is no header value is refused.
    if (who.size() > 256 || !http::detail::valid_field_value(who.data(), who.data() + who.size())) {
      r.answer_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lunagate\", error=\"invalid_token\"");
      r.message_detail = "consumer claim not usable";
      return r.answer(401, "invalid token");
    }
    r.consumer_id.assign(who);
    // A configured consumer is attached by id only when tokens are pinned to an issuer: a token
    // of another issuer sharing the keys must not take on a consumer's groups.
    if (!cfg_.issuer.empty()) r.consumer = consumers_.by_id(who);
  }
  std::string value;
  for (const auto& [claim, header] : cfg_.claims_to_headers) {
    value.clear();
    if (result.claims.append_header_value(claim, value)) r.up_edits->set.emplace_back(header, value);
  }
  if (jti.empty() || cfg_.revocation != JwtConfig::Revocation::redis) return true;
  // Last, so that a token refused for another reason costs no round trip.
  const std::int64_t until = result.claims.has_exp() ? result.claims.exp() + policy_.leeway_s : r.now_unix + 86400;
  return ask_redis(r, key, until);
}

// Revocations made through another instance are in Redis only. How a token's jti is checked
// there, with performance in mind:
// - One PTTL per request (pipelined with the other commands of the loop's turn on the worker's
//   connection; the request parks like an exact rate limit): correct and immediate, a
//   revocation holds on every instance once the admin call returned. Cost: a round trip of
//   latency and one small command per token request, no syscall of its own per request.
// - A positive cache is always safe (a revocation is never undone before it expires): a
//   "revoked" answer goes into the process's SharedDict, which apply() reads first, for as long
//   as Redis keeps it (bounded by the token's own expiry), so a replayed revoked token costs no
//   round trip. PTTL rather than EXISTS gives that duration in the same reply.
// - "Not revoked" is never cached: each entry would be a window in which a revoked token still
//   passes.
// - Pushing revocations to the instances (pub/sub) would save the round trip but miss those
//   published while an instance is disconnected, unless it rescans on reconnect; a lookup has
//   no such gap.
bool JwtAuth::ask_redis(PolicyRequest& r, std::string_view key, std::int64_t cache_until_unix) const {
  RevocationCheck& c = *r.revocation_check;
  c.key.assign(key);
  c.status = RevocationCheck::Status::failed;
  c.ttl_ms = std::max<std::int64_t>(0, cache_until_unix - r.now_unix) * 1000;  // the cache's bound
  c.owner = r.wait_owner;
  r.wait_deadline_ms = 0;  // the command has its own timeout (and resume() tells the waits apart)
  if (r.revocations) r.revocations->check(c);
  if (c.status == RevocationCheck::Status::waiting) {
    r.waiting = true;
    return false;
  }
  return finish_redis(r);
}

bool JwtAuth::finish_redis(PolicyRequest& r) const {
  RevocationCheck& c = *r.revocation_check;
  if (c.status == RevocationCheck::Status::clear) return true;
  if (c.status == RevocationCheck::Status::revoked) {
    if (c.ttl_ms > 0) {  // the positive cache
      SharedDict::Value v;
      v.is_number = true;
      v.number = 1;
      r.shared->dict.set(c.key, v, c.ttl_ms, r.now_ms);
    }
    return refuse_revoked(r);
  }
  // Redis failed (down, timed out, too much in flight): redis.on_failure decides.
  if (!r.revocations || r.revocations->fail_open()) {
    r.revocation_bypassed = true;
    return true;
  }
  return r.answer(503, "token revocation store unavailable");  // with Retry-After: 1
}

}  // namespace lg::policy
