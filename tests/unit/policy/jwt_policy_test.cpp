// The jwt policy's revocation lookups: `revocation` config (default, explicit, refused without
// a redis section), the in-process blocklist, and the Redis lookup's outcomes (clear, revoked and
// cached, failed with on_failure open or closed) through a fake RemoteRevocations.
#include <catch2/catch.hpp>

#include <ctime>

#include "../auth/jwt_support.hpp"
#include "config/config_loader.hpp"
#include "core/shared_state.hpp"
#include "policy/policy.hpp"

using namespace lg;
using lg::policy::RevocationCheck;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

std::string config(const std::string& redis, const std::string& revocation) {
  return "listen: [ { address: \"127.0.0.1:8080\" } ]\n" + redis +
         "upstreams:\n  app: { targets: [ \"127.0.0.1:9000\" ] }\n"
         "routes:\n  - name: r\n    match: { path: \"/*\" }\n    upstream: app\n"
         "    policies:\n      - jwt: { issuer: \"https://issuer.test\", audience: gateway.test, " +
         revocation + "keys: [ { kid: k1, alg: HS256, secret: \"" + kSecret + "\" } ] }\n";
}
const std::string kRedis = "redis: { address: \"127.0.0.1:6379\" }\n";

JwtConfig::Revocation revocation_of(const std::string& yaml) {
  const Config c = load_config_text(yaml, "gw.yaml");
  return std::get<JwtConfig>(c.routes[0].policies[0].spec).revocation;
}

std::string errors(const std::string& yaml) {
  try {
    load_config_text(yaml, "gw.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string token(std::string_view extra) {
  using namespace lgtest::jwt;
  return make_token(header_for(Alg::HS256, "k1"), claims_at(std::time(nullptr), extra), Alg::HS256, nullptr, kSecret);
}

class FakeRevocations final : public policy::RemoteRevocations {
 public:
  RevocationCheck::Status answer = RevocationCheck::Status::waiting;
  bool open = true;
  int asked = 0;
  std::string last_key;
  void check(RevocationCheck& c) override {
    ++asked;
    last_key = c.key;
    c.status = answer;
  }
  void cancel(RevocationCheck& c) override { c.status = RevocationCheck::Status::idle; }
  bool fail_open() const override { return open; }
};

struct Owner final : policy::PolicyWaitOwner {
  void on_policy_wake() override {}
};

// One request through a compiled jwt policy.
struct Fixture {
  Config cfg;
  std::unique_ptr<policy::CompiledPolicies> compiled;
  SharedState shared;
  FakeRevocations redis;
  Owner owner;
  RevocationCheck check;
  std::vector<http::Header> headers;
  std::string auth;
  HeaderEdits edits;
  policy::HeaderList resp;
  policy::PolicyRequest r;

  explicit Fixture(const std::string& yaml) : cfg(load_config_text(yaml, "gw.yaml")) {
    compiled = policy::compile_policies(cfg);
  }
  const policy::Policy& jwt() const { return *compiled->routes[0].chain[0]; }
  bool apply(std::string_view extra_claims, bool with_redis = true) {
    auth = "Bearer " + token(extra_claims);
    headers = {{"Authorization", auth}};
    r = policy::PolicyRequest{};
    r.headers = &headers;
    r.shared = &shared;
    r.now_ms = 1000;
    r.now_unix = std::time(nullptr);
    r.up_edits = &edits;
    r.resp_headers = &resp;
    r.revocations = with_redis ? &redis : nullptr;
    r.revocation_check = &check;
    r.wait_owner = &owner;
    return jwt().apply(r);
  }
};

}  // namespace

TEST_CASE("jwt revocation: redis by default with a redis section, local without", "[policy][jwt]") {
  CHECK(revocation_of(config(kRedis, "")) == JwtConfig::Revocation::redis);
  CHECK(revocation_of(config("", "")) == JwtConfig::Revocation::local);
  CHECK(revocation_of(config(kRedis, "revocation: local, ")) == JwtConfig::Revocation::local);
  CHECK(revocation_of(config(kRedis, "revocation: redis, ")) == JwtConfig::Revocation::redis);
  CHECK(errors(config("", "revocation: redis, ")) ==
        "gw.yaml:9: routes[0].policies[0].jwt.revocation: revocation: redis needs a top-level redis section");
  CHECK(errors(config(kRedis, "revocation: everywhere, ")).find("invalid value") != std::string::npos);
}

TEST_CASE("jwt revocation: a token without jti or a local policy never asks Redis", "[policy][jwt]") {
  Fixture local(config(kRedis, "revocation: local, "));
  CHECK(local.apply(",\"jti\":\"t-1\""));
  CHECK(local.redis.asked == 0);
  Fixture f(config(kRedis, ""));
  CHECK(f.apply(""));
  CHECK(f.redis.asked == 0);
}

TEST_CASE("jwt revocation: the in-process blocklist answers before Redis", "[policy][jwt]") {
  Fixture f(config(kRedis, ""));
  SharedDict::Value v;
  v.is_number = true;
  f.shared.dict.set(std::string(policy::kRevokedJtiPrefix) + "t-1", v, 60'000, 1000);
  CHECK_FALSE(f.apply(",\"jti\":\"t-1\""));
  CHECK(f.r.status == 401);
  CHECK_FALSE(f.r.waiting);
  CHECK(f.redis.asked == 0);
}

TEST_CASE("jwt revocation: the request waits for Redis, then passes or is refused", "[policy][jwt]") {
  Fixture f(config(kRedis, ""));
  CHECK_FALSE(f.apply(",\"jti\":\"t-2\""));
  REQUIRE(f.r.waiting);
  CHECK(f.redis.last_key == "lunagate:jwt:revoked:t-2");
  CHECK(f.check.ttl_ms > 500'000);  // bounded by the token's life (600 s + leeway)
  CHECK(f.r.consumer_id == "user-1");

  SECTION("not revoked") {
    f.check.status = RevocationCheck::Status::clear;
    CHECK(f.jwt().resume(f.r));
    CHECK(f.r.consumer_id == "user-1");
  }
  SECTION("revoked: 401, and cached in the process for the next request") {
    f.check.status = RevocationCheck::Status::revoked;
    f.check.ttl_ms = 30'000;
    CHECK_FALSE(f.jwt().resume(f.r));
    CHECK(f.r.status == 401);
    CHECK(f.r.message_detail == "revoked");
    CHECK(f.r.consumer_id.empty());
    f.redis.asked = 0;
    CHECK_FALSE(f.apply(",\"jti\":\"t-2\""));
    CHECK(f.r.status == 401);
    CHECK(f.redis.asked == 0);
  }
  SECTION("Redis failed, on_failure: open") {
    f.check.status = RevocationCheck::Status::failed;
    CHECK(f.jwt().resume(f.r));
    CHECK(f.r.revocation_bypassed);
  }
  SECTION("Redis failed, on_failure: closed") {
    f.redis.open = false;
    f.check.status = RevocationCheck::Status::failed;
    CHECK_FALSE(f.jwt().resume(f.r));
    CHECK(f.r.status == 503);
  }
}

TEST_CASE("jwt revocation: Redis known down answers at once", "[policy][jwt]") {
  Fixture f(config(kRedis, ""));
  f.redis.answer = RevocationCheck::Status::failed;
  CHECK(f.apply(",\"jti\":\"t-3\""));
  CHECK_FALSE(f.r.waiting);
  CHECK(f.r.revocation_bypassed);
  f.redis.open = false;
  CHECK_FALSE(f.apply(",\"jti\":\"t-3\""));
  CHECK(f.r.status == 503);
  // No lookup facility (cannot happen: a redis section gives every worker one): let through, counted.
  CHECK(f.apply(",\"jti\":\"t-3\"", false));
  CHECK(f.r.revocation_bypassed);
}
