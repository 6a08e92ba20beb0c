// Compiles the configured policies of every route (config/policies.hpp) into their runtime
// objects, once per snapshot.
#include <type_traits>

#include "config/config.hpp"
#include "config/config_loader.hpp"
#include "policy/access_policies.hpp"
#include "policy/jwt_policy.hpp"
#include "policy/traffic_policies.hpp"

namespace lg::policy {

std::unique_ptr<CompiledPolicies> compile_policies(const Config& cfg, auth::JwksProvider* jwks) {
  auto out = std::make_unique<CompiledPolicies>();
  out->consumers = std::make_unique<ConsumerTable>(cfg.consumers);
  out->routes.resize(cfg.routes.size());
  std::string errors;
  const auto fail = [&](const PolicyConfig& pc, const std::string& msg) {
    if (!errors.empty()) errors += '\n';
    errors += cfg.path + ":" + std::to_string(pc.line) + ": " + pc.path + ": " + msg;
  };
  for (std::size_t r = 0; r < cfg.routes.size(); ++r) {
    auto& chain = out->routes[r].chain;
    unsigned rate_limits = 0;  // a rate limit's id: its route and its rank among the route's rate limits
    for (const PolicyConfig& pc : cfg.routes[r].policies) {
      std::visit(
          [&](const auto& spec) {
            using T = std::decay_t<decltype(spec)>;
            if constexpr (std::is_same_v<T, KeyAuthConfig>) {
              chain.push_back(std::make_unique<KeyAuth>(spec, *out->consumers));
            } else if constexpr (std::is_same_v<T, JwtConfig>) {
              auth::JwtKeySet keys;
              std::string err = make_jwt_keys(spec, keys);
              std::shared_ptr<auth::JwksSource> remote;
              if (err.empty() && !spec.jwks_url.empty()) remote = make_jwks_source(spec, cfg.workers, jwks, err);
              if (!err.empty()) fail(pc, err);
              else chain.push_back(std::make_unique<JwtAuth>(spec, std::move(keys), std::move(remote), *out->consumers));
            } else if constexpr (std::is_same_v<T, AclConfig>) {
              chain.push_back(std::make_unique<Acl>(spec));
            } else if constexpr (std::is_same_v<T, IpRestrictionConfig>) {
              std::string err;
              auto p = IpRestriction::make(spec, err);
              if (!p) fail(pc, err);
              else chain.push_back(std::move(p));
            } else if constexpr (std::is_same_v<T, HeadersConfig>) {
              chain.push_back(std::make_unique<Headers>(spec));
            } else if constexpr (std::is_same_v<T, CorsConfig>) {
              chain.push_back(std::make_unique<Cors>(spec));
            } else if constexpr (std::is_same_v<T, RateLimitConfig>) {
              std::string err;
              // The id names its counters (in Redis too): stable when other policies are added or
              // moved around it, so a reload or a rolling change keeps counting the same window.
              auto p = RateLimit::make(spec, cfg.routes[r].name + "#rl" + std::to_string(rate_limits++), err);
              if (!p) fail(pc, err);
              else chain.push_back(std::move(p));
            }
          },
          pc.spec);
    }
  }
  if (!errors.empty()) throw ConfigError(errors);
  return out;
}

}  // namespace lg::policy
