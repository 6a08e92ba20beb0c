// JwksSource: what workers see of fetched keys (per-worker cached sets, generations), how a
// token with an unknown kid asks for a fetch (bounded by the minimum interval), and how parked
// requests are woken when a fetch ends.
#include "auth/jwks_source.hpp"

#include <poll.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

using namespace lg::auth;

namespace {

std::shared_ptr<const JwtKeySet> set_of(std::initializer_list<const char*> kids) {
  auto s = std::make_shared<JwtKeySet>();
  for (const char* k : kids) REQUIRE(s->add_secret(k, Alg::HS256, std::string(32, 'k')).ok());
  return s;
}

bool rung(const Doorbell& b) {
  pollfd p{b.fd(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

JwksSettings settings() {
  JwksSettings s;
  s.timeout_ms = 500;
  s.min_refresh_ms = 10'000;
  return s;
}

}  // namespace

TEST_CASE("jwks source: each worker sees the latest published set", "[auth][jwks]") {
  JwksSource src(2, settings(), nullptr);
  CHECK(src.keys(0).size() == 0);  // nothing fetched yet: an empty set
  CHECK_FALSE(src.has_keys());
  src.publish(set_of({"a"}));
  const JwtKeySet* w0 = &src.keys(0);
  CHECK(w0->contains("a"));
  CHECK(&src.keys(0) == w0);  // cached: the same set until the next publish
  CHECK(src.keys(1).contains("a"));
  src.publish(set_of({"b"}));
  CHECK(src.keys(0).contains("b"));
  CHECK_FALSE(src.keys(0).contains("a"));
  CHECK(src.keys(1).contains("b"));
  CHECK(src.keys(7).contains("b"));  // a thread with no slot still sees it
  CHECK(src.key_count() == 1);
}

TEST_CASE("jwks source: unknown kids ask for one fetch per minimum interval", "[auth][jwks]") {
  auto bell = std::make_shared<Doorbell>();
  JwksSource src(1, settings(), bell);
  CHECK(src.refresh_for_kid(1'000));  // pending: worth waiting for
  CHECK(rung(*bell));
  CHECK(src.refresh_requested());
  bell->drain();
  CHECK(src.refresh_for_kid(2'000));  // still pending, no second ring
  CHECK_FALSE(rung(*bell));
  src.fetch_started();
  CHECK_FALSE(src.refresh_requested());
  CHECK(src.refresh_for_kid(3'000));  // running
  src.fetch_ended();
  CHECK_FALSE(src.refresh_for_kid(5'000));  // within the interval and nothing running: no wait
  CHECK_FALSE(rung(*bell));
  CHECK(src.refresh_for_kid(11'000));  // the interval passed
  CHECK(rung(*bell));

  JwksSource unfetched(1, settings(), nullptr);  // lunagate check: nothing would ever wake a waiter
  CHECK_FALSE(unfetched.refresh_for_kid(1'000));
}

TEST_CASE("jwks source: parked requests wake on their worker, once", "[auth][jwks]") {
  auto src = std::make_shared<JwksSource>(2, settings(), std::make_shared<Doorbell>());
  std::vector<int> woken;
  struct Owner {
    std::vector<int>* log;
    int id;
  };
  Owner o1{&woken, 1}, o2{&woken, 2}, o3{&woken, 3};
  const auto wake = [](void* p) {
    auto* o = static_cast<Owner*>(p);
    o->log->push_back(o->id);
  };
  KeyWait k1, k2, k3;
  REQUIRE(src->park(src, 0, k1, wake, &o1));
  REQUIRE(src->park(src, 0, k2, wake, &o2));
  REQUIRE(src->park(src, 1, k3, wake, &o3));
  CHECK_FALSE(src->park(src, 0, k1, wake, &o1));  // already parked
  CHECK_FALSE(src->park(src, 5, k3, wake, &o3));  // no such worker
  CHECK(src.use_count() == 4);                    // each parked request holds the source
  k2.unlink();                                    // that client went away
  CHECK_FALSE(k2.linked());
  src->wake_parked(0);
  CHECK(woken == std::vector<int>{1});
  CHECK_FALSE(k1.linked());
  src->wake_parked(0);  // nobody left on worker 0
  CHECK(woken == std::vector<int>{1});
  src->wake_parked(1);
  CHECK(woken == std::vector<int>{1, 3});
  CHECK(src.use_count() == 1);
}

TEST_CASE("jwks source: a reload's limits apply to the shared source", "[auth][jwks]") {
  JwksSource src(1, settings(), std::make_shared<Doorbell>());
  CHECK(src.timeout_ms() == 500);
  JwksSettings s = settings();
  s.timeout_ms = 2'000;
  s.min_refresh_ms = 1'000;
  src.update(s);
  CHECK(src.timeout_ms() == 2'000);
  CHECK(src.refresh_for_kid(100));
  src.fetch_started();
  src.fetch_ended();
  CHECK_FALSE(src.refresh_for_kid(1'000));
  CHECK(src.refresh_for_kid(1'100));  // the new, shorter interval
}
