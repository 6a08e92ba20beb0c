// The jwt policy with keys from a JWKS URL: static keys first, then the fetched set; a token
// whose kid the fetched set lacks parks the request for a refresh, and resume verifies it again.
#include "policy/jwt_policy.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <string>
#include <vector>

#include "../auth/jwt_support.hpp"
#include "config/config.hpp"
#include "core/shared_state.hpp"

using namespace lg;
using namespace lgtest::jwt;

namespace {

const std::string kSecret(32, 's');

std::string bearer(std::string_view kid, const std::string& secret = kSecret) {
  return "Bearer " + make_token(header_for(Alg::HS256, kid), claims_at(std::time(nullptr)), Alg::HS256, nullptr, secret);
}

std::shared_ptr<const auth::JwtKeySet> fetched(std::initializer_list<const char*> kids) {
  auto s = std::make_shared<auth::JwtKeySet>();
  for (const char* k : kids) REQUIRE(s->add_secret(k, Alg::HS256, kSecret).ok());
  return s;
}

struct Owner final : policy::PolicyWaitOwner {
  int woken = 0;
  void on_policy_wake() override { ++woken; }
};

// One request through the policy, as ClientConnection drives it.
struct Request {
  std::vector<http::Header> headers;
  HeaderEdits edits;
  SharedState shared;
  Owner owner;
  policy::PolicyRequest r;
  std::string auth;
  explicit Request(std::string authorization) : auth(std::move(authorization)) {
    headers.push_back({"Authorization", auth});
    r.headers = &headers;
    r.up_edits = &edits;
    r.shared = &shared;
    r.wait_owner = &owner;
    r.now_ms = 1'000;
    r.now_unix = std::time(nullptr);
  }
};

struct Fixture {
  std::vector<ConsumerConfig> none;
  policy::ConsumerTable consumers{none};
  JwtConfig cfg;
  std::shared_ptr<auth::JwksSource> remote;
  std::unique_ptr<policy::JwtAuth> jwt;
  explicit Fixture(bool with_static) {
    cfg.issuer = "https://issuer.test";
    cfg.jwks_url = "https://idp.test/jwks.json";
    auth::JwksSettings s;
    s.timeout_ms = 700;
    remote = std::make_shared<auth::JwksSource>(1, s, std::make_shared<auth::Doorbell>());
    auth::JwtKeySet keys;
    if (with_static) REQUIRE(keys.add_secret("static-1", Alg::HS256, kSecret).ok());
    jwt = std::make_unique<policy::JwtAuth>(cfg, std::move(keys), remote, consumers);
  }
};

}  // namespace

TEST_CASE("jwt policy: static keys first, then the fetched set", "[policy][jwt][jwks]") {
  Fixture f(true);
  f.remote->publish(fetched({"k1"}));
  Request a(bearer("static-1"));
  CHECK(f.jwt->apply(a.r));
  CHECK(a.r.consumer_id == "user-1");
  Request b(bearer("k1"));
  CHECK(f.jwt->apply(b.r));
  Request c(bearer("static-1", std::string(32, 'x')));  // a static kid with a bad signature: no refresh
  CHECK_FALSE(f.jwt->apply(c.r));
  CHECK_FALSE(c.r.waiting);
  CHECK(c.r.status == 401);
  CHECK(c.r.message_detail == "bad_signature");
  CHECK_FALSE(f.remote->refresh_requested());
}

TEST_CASE("jwt policy: an unknown kid waits for the refresh it asked for", "[policy][jwt][jwks]") {
  Fixture f(false);
  f.remote->publish(fetched({"k1"}));
  Request q(bearer("k2"));
  CHECK_FALSE(f.jwt->apply(q.r));
  REQUIRE(q.r.waiting);
  CHECK(q.r.wait_deadline_ms == 1'700);
  CHECK(q.r.key_wait.linked());
  CHECK(f.remote->refresh_requested());
  // The fetcher got the rotated set and ended its fetch; the worker wakes its parked requests.
  f.remote->fetch_started();
  f.remote->publish(fetched({"k1", "k2"}));
  f.remote->fetch_ended();
  f.remote->wake_parked(0);
  CHECK(q.owner.woken == 1);
  CHECK_FALSE(q.r.key_wait.linked());
  q.r.waiting = false;
  CHECK(f.jwt->resume(q.r));
  CHECK(q.r.consumer_id == "user-1");
  CHECK(q.edits.remove.size() == f.cfg.claims_to_headers.size());  // dropped once, not again on resume
}

TEST_CASE("jwt policy: no second wait, and none within the minimum interval", "[policy][jwt][jwks]") {
  Fixture f(false);
  f.remote->publish(fetched({"k1"}));
  Request q(bearer("k9"));
  CHECK_FALSE(f.jwt->apply(q.r));
  REQUIRE(q.r.waiting);
  f.remote->fetch_started();
  f.remote->fetch_ended();  // the new set still lacks k9
  f.remote->wake_parked(0);
  q.r.waiting = false;
  CHECK_FALSE(f.jwt->resume(q.r));
  CHECK_FALSE(q.r.waiting);
  CHECK(q.r.status == 401);
  CHECK(q.r.message_detail == "kid_unknown");
  Request again(bearer("k8"));  // a refresh was asked for 0 ms ago: answered at once
  CHECK_FALSE(f.jwt->apply(again.r));
  CHECK_FALSE(again.r.waiting);
  CHECK(again.r.status == 401);
}

TEST_CASE("jwt policy: nothing fetched yet, a token without kid waits too", "[policy][jwt][jwks]") {
  Fixture f(false);
  Request q("Bearer " + make_token("{\"alg\":\"HS256\"}", claims_at(std::time(nullptr)), Alg::HS256, nullptr, kSecret));
  CHECK_FALSE(f.jwt->apply(q.r));
  CHECK(q.r.waiting);
  q.r.key_wait.unlink();  // the client went away
  CHECK(f.remote.use_count() == 2);  // the fixture and the policy only
}
