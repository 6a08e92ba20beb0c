// Who may pass: key-auth (API keys of consumers), acl (consumer groups), cors (browsers'
// origins); and the fixed header rules of `headers`.
#pragma once
#include "config/policies.hpp"
#include "policy/policy.hpp"

namespace lg::policy {

class KeyAuth final : public Policy {
 public:
  KeyAuth(const KeyAuthConfig& c, const ConsumerTable& consumers);
  bool apply(PolicyRequest& r) const override;

 private:
  KeyAuthConfig cfg_;
  const ConsumerTable& consumers_;
};

class Acl final : public Policy {
 public:
  explicit Acl(const AclConfig& c) : cfg_(c) {}
  bool apply(PolicyRequest& r) const override;

 private:
  AclConfig cfg_;
};

// headers: fixed request (set, add, remove) and response (set) fields.
class Headers final : public Policy {
 public:
  explicit Headers(const HeadersConfig& c) : cfg_(c) {}
  bool apply(PolicyRequest& r) const override;

 private:
  HeadersConfig cfg_;
};

class Cors final : public Policy {
 public:
  explicit Cors(const CorsConfig& c);
  bool apply(PolicyRequest& r) const override;

 private:
  bool origin_allowed(std::string_view origin) const;
  CorsConfig cfg_;
  bool any_origin_;
  std::string methods_, headers_, expose_, max_age_;
};

}  // namespace lg::policy
