// jwt: a bearer token verified natively (auth/jwt.hpp) against keys from the config, then its
// jti looked up in the revocation blocklist (the process's SharedDict, and Redis with
// `revocation: redis`; jwt_policy.cpp says why one lookup per request).
#pragma once
#include <memory>

#include "auth/jwt.hpp"
#include "config/policies.hpp"
#include "policy/policy.hpp"

namespace lg::policy {

class JwtAuth final : public Policy {
 public:
  // `keys` loaded by make_jwt_keys; `consumers` to attach a consumer by the consumer claim.
  JwtAuth(const JwtConfig& c, auth::JwtKeySet keys, const ConsumerTable& consumers);
  bool apply(PolicyRequest& r) const override;
  bool resume(PolicyRequest& r) const override;

 private:
  std::string_view token_of(PolicyRequest& r, std::string& scratch) const;
  bool ask_redis(PolicyRequest& r, std::string_view jti, std::int64_t cache_until_unix) const;
  bool finish_redis(PolicyRequest& r) const;
  JwtConfig cfg_;
  auth::JwtKeySet keys_;
  auth::JwtPolicy policy_;
  const ConsumerTable& consumers_;
};

// Loads the keys of a jwt policy (secrets, PEM text or files, a JWKS file; the reader resolved
// the paths). Returns "" or an error message.
std::string make_jwt_keys(const JwtConfig& c, auth::JwtKeySet& out);

}  // namespace lg::policy
