// Who may pass by address, and how often: ip-restriction (CIDR allow/deny, the client found
// behind trusted proxies) and rate-limit (token buckets or sliding windows, several limits per
// route, shared by all workers of the process).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config/policies.hpp"
#include "core/rate_limit.hpp"
#include "policy/cidr.hpp"
#include "policy/policy.hpp"

namespace lg::policy {

// Resolves r.client_ip from X-Forwarded-For when the peer is a trusted proxy (client_ip.hpp).
void resolve_client_ip(PolicyRequest& r, const CidrSet& trusted_proxies);

class IpRestriction final : public Policy {
 public:
  // nullptr with `error` ("allow: 10.0.0.0/33: prefix length out of range") for a bad entry.
  static std::unique_ptr<IpRestriction> make(const IpRestrictionConfig& c, std::string& error);
  bool apply(PolicyRequest& r) const override;

 private:
  CidrSet allow_, deny_, trusted_;
};

class RateLimit final : public Policy {
 public:
  // `id` tells this policy's counters apart from every other rate-limit's ("route#index").
  // nullptr with `error` for a bad trusted_proxies entry.
  static std::unique_ptr<RateLimit> make(const RateLimitConfig& c, std::string id, std::string& error);
  bool apply(PolicyRequest& r) const override;
  bool resume(PolicyRequest& r) const override;

 private:
  bool apply_remote(PolicyRequest& r, std::string_view key, const std::vector<RateLimitConfig::Limit>& limits) const;
  bool finish_remote(PolicyRequest& r) const;
  RateLimit(const RateLimitConfig& c, std::string id) : cfg_(c), id_(std::move(id)) {}
  RateLimitConfig cfg_;
  std::string id_;
  CidrSet trusted_;
};

}  // namespace lg::policy
