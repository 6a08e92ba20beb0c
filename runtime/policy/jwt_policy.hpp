// jwt: a bearer token verified natively (auth/jwt.hpp) against keys from the config and/or keys
// fetched from a JWKS URL (auth/jwks_source.hpp), then its jti looked up in the revocation
// blocklist (the process's SharedDict, and Redis with `revocation: redis`; jwt_policy.cpp says
// why one lookup per request).
#pragma once
#include <memory>

#include "auth/jwks_source.hpp"
#include "auth/jwt.hpp"
#include "config/policies.hpp"
#include "policy/policy.hpp"

namespace lg::policy {

class JwtAuth final : public Policy {
 public:
  // `keys` loaded by make_jwt_keys; `remote` the jwks_url's source (or null); `consumers` to
  // attach a consumer by the consumer claim.
  JwtAuth(const JwtConfig& c, auth::JwtKeySet keys, std::shared_ptr<auth::JwksSource> remote,
          const ConsumerTable& consumers);
  bool apply(PolicyRequest& r) const override;
  // After a wait: for a JWKS refresh, the token is verified again (it never waits twice for
  // keys); for a Redis revocation lookup, its answer decides.
  bool resume(PolicyRequest& r) const override;

 private:
  bool check(PolicyRequest& r, bool may_wait) const;
  bool verify(std::string_view token, PolicyRequest& r, auth::JwtResult& result) const;
  bool wait_for_keys(PolicyRequest& r, const auth::JwtResult& result) const;
  std::string_view token_of(PolicyRequest& r, std::string& scratch) const;
  bool ask_redis(PolicyRequest& r, std::string_view key, std::int64_t cache_until_unix) const;
  bool finish_redis(PolicyRequest& r) const;
  JwtConfig cfg_;
  auth::JwtKeySet keys_;
  std::shared_ptr<auth::JwksSource> remote_;
  auth::JwtPolicy policy_;
  const ConsumerTable& consumers_;
};

// Loads the keys of a jwt policy (secrets, PEM text or files, a JWKS file; the reader resolved
// the paths). Returns "" or an error message.
std::string make_jwt_keys(const JwtConfig& c, auth::JwtKeySet& out);

// The source of a policy's jwks_url: from `provider` (the running gateway's fetcher, which may
// fetch it now), or an unfetched one when there is none (lunagate check). Null with `err` set
// when the URL or the CA file is unusable.
std::shared_ptr<auth::JwksSource> make_jwks_source(const JwtConfig& c, unsigned workers,
                                                   auth::JwksProvider* provider, std::string& err);

}  // namespace lg::policy
