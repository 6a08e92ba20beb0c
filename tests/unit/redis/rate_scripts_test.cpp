// The pure parts of Redis-backed rate limits: call arguments, reply parsing, batch accounting,
// and the `redis` / `store` config.
#include <catch2/catch.hpp>

#include "config/config_loader.hpp"
#include "redis/rate_scripts.hpp"
#include "redis/resp_writer.hpp"

using namespace lg;
using namespace lg::redis;

namespace {
// The bulk strings of RESP-encoded arguments, in order (what encode_call wrote).
std::vector<std::string> bulks(std::string_view resp) {
  std::vector<std::string> out;
  while (!resp.empty()) {
    REQUIRE(resp.front() == '$');
    const std::size_t eol = resp.find("\r\n");
    const std::size_t len = std::stoul(std::string(resp.substr(1, eol - 1)));
    out.emplace_back(resp.substr(eol + 2, len));
    REQUIRE(resp.substr(eol + 2 + len, 2) == "\r\n");
    resp.remove_prefix(eol + 4 + len);
  }
  return out;
}
}  // namespace

TEST_CASE("encode_call: numkeys, aligned sliding-window keys, prefixed, and the arguments", "[redis]") {
  std::string out;
  const RemoteLimit limits[] = {{100, 60'000, 0}, {1000, 3'600'000, 0}};
  CHECK(encode_call(out, false, "r#0|acme", limits, 1'700'000'123'456, 1) == 11);
  CHECK(bulks(out) == std::vector<std::string>{"4", "lunagate:rl:sw:r#0|acme:60000:1700000100000",
                                               "lunagate:rl:sw:r#0|acme:60000:1700000040000",
                                               "lunagate:rl:sw:r#0|acme:3600000:1699999200000",
                                               "lunagate:rl:sw:r#0|acme:3600000:1699995600000",
                                               "1700000123456", "1", "100", "60000", "1000", "3600000"});
  out.clear();
  CHECK(encode_call(out, true, "r#1|*", std::span(limits, 1), 5, 12) == 7);
  CHECK(bulks(out) == std::vector<std::string>{"1", "lunagate:rl:tb:r#1|*:60000", "5", "12", "100", "60000", "0"});
}

TEST_CASE("RespWriter: arrays, bulk strings, integers and joined parts", "[redis]") {
  std::string out;
  RespWriter w(out);
  w.array(4);
  w.arg("PTTL");
  w.arg(std::int64_t{-42});
  w.arg_parts({"a:", "b", ":", Decimal(7).view()});
  w.arg("");
  CHECK(out == "*4\r\n$4\r\nPTTL\r\n$3\r\n-42\r\n$5\r\na:b:7\r\n$0\r\n\r\n");
}

TEST_CASE("reserve_expiry: end of the earliest window, or one period for buckets", "[redis]") {
  const RemoteLimit limits[] = {{100, 60'000, 0}, {10, 1'000, 0}};
  CHECK(reserve_expiry(false, limits, 120'500) == 121'000);
  CHECK(reserve_expiry(false, std::span(limits, 1), 120'500) == 180'000);
  CHECK(reserve_expiry(true, limits, 120'500) == 121'500);
}

TEST_CASE("parse_reply: grants, refusals and malformed replies", "[redis]") {
  const RemoteLimit limits[] = {{100, 60'000, 0}, {10, 1'000, 0}};
  SECTION("allowed") {
    const long long v[] = {1, 0, 99, 600, 0, 9, 100, 0};
    ScriptReply r;
    REQUIRE(parse_reply(v, limits, false, r));
    CHECK(r.grant == 1);
    CHECK(r.refusing == -1);
    REQUIRE(r.results.size() == 2);
    CHECK(r.results[0].allowed);
    CHECK(r.results[0].limit == 100);
    CHECK(r.results[0].remaining == 99);
    CHECK(r.results[0].reset_ms == 600);
    CHECK(r.results[1].window_ms == 1000);
  }
  SECTION("refused by the second limit") {
    const long long v[] = {0, 2, 50, 600, 0, 0, 900, 350};
    ScriptReply r;
    REQUIRE(parse_reply(v, limits, false, r));
    CHECK(r.grant == 0);
    CHECK(r.refusing == 1);
    CHECK_FALSE(r.results[1].allowed);
    CHECK(r.results[1].retry_after_ms == 350);
  }
  SECTION("a partial batch grant") {
    const long long v[] = {7, 0, 0, 600, 0, 3, 100, 0};
    ScriptReply r;
    REQUIRE(parse_reply(v, limits, false, r));
    CHECK(r.grant == 7);
  }
  SECTION("token bucket: the limit shown is the burst") {
    const RemoteLimit tb[] = {{10, 1'000, 50}};
    const long long v[] = {1, 0, 49, 100, 0};
    ScriptReply r;
    REQUIRE(parse_reply(v, tb, true, r));
    CHECK(r.results[0].limit == 50);
  }
  SECTION("malformed") {
    ScriptReply r;
    const long long short_v[] = {1, 0, 99};
    CHECK_FALSE(parse_reply(short_v, limits, false, r));
    const long long bad_index[] = {0, 3, 0, 0, 0, 0, 0, 0};
    CHECK_FALSE(parse_reply(bad_index, limits, false, r));
    const long long negative[] = {-1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_FALSE(parse_reply(negative, limits, false, r));
    const long long refusal_without_limit[] = {0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_FALSE(parse_reply(refusal_without_limit, limits, false, r));
  }
}

TEST_CASE("share_of_reply: requests sharing one call, in arrival order", "[redis]") {
  const RemoteLimit limits[] = {{10, 1'000, 0}, {100, 60'000, 0}};
  // 4 asked, 3 granted: 2 and 40 left after the grant; one unit free again in 100 / 600 ms
  const long long v[] = {3, 0, 2, 100, 0, 40, 600, 0};
  ScriptReply sr;
  REQUIRE(parse_reply(v, limits, false, sr));
  std::vector<RateResult> out;
  CHECK(share_of_reply(sr, 0, out));
  CHECK(out[0].remaining == 4);  // as if it had been alone: the two after it not yet taken
  CHECK(out[1].remaining == 42);
  CHECK(share_of_reply(sr, 2, out));
  CHECK(out[0].remaining == 2);
  CHECK_FALSE(share_of_reply(sr, 3, out));
  CHECK_FALSE(out[0].allowed);
  CHECK(out[0].retry_after_ms == 100);
  CHECK(out[1].retry_after_ms == 600);
}

TEST_CASE("Reserve: serves what was granted until its window ends", "[redis]") {
  Reserve r;
  CHECK_FALSE(r.take(0));
  r.add(3, 1000, 10);
  CHECK(r.take(20));
  CHECK(r.take(30));
  CHECK(r.take(999));
  CHECK_FALSE(r.take(999));  // all used
  r.add(5, 2000, 1000);
  CHECK(r.take(1500));
  CHECK_FALSE(r.take(2000));  // expired with its window: the 4 left are never used
  CHECK(r.served == 4);
  CHECK(r.granted == 8);
  r.add(2, 2000, 2500);  // a grant that arrives after its window: unusable
  CHECK_FALSE(r.take(2500));
}

TEST_CASE("Reserve: a worker never holds more than one batch", "[redis]") {
  // Over any run of takes and grants, what is held is at most the last grant.
  Reserve r;
  std::int64_t now = 0;
  for (int round = 0; round < 50; ++round) {
    while (r.take(now)) ++now;
    r.add(12, now + 100, now);
    CHECK(r.left <= 12);
    now += 7;
  }
  CHECK(r.served <= r.granted);
}

TEST_CASE("default_batch: min(limit / (4 * workers), 100), at least 1", "[redis]") {
  const RemoteLimit l100[] = {{100, 60'000, 0}};
  const RemoteLimit l1m[] = {{1'000'000, 60'000, 0}, {5'000, 1'000, 0}};
  const RemoteLimit l3[] = {{3, 1'000, 0}};
  CHECK(default_batch(l100, 2) == 12);
  CHECK(default_batch(l1m, 4) == 100);
  CHECK(default_batch(l3, 8) == 1);
}

namespace {
const char* kHead = "listen: [ { address: \"127.0.0.1:8080\" } ]\n";
}

TEST_CASE("config: redis section and store/mode of rate limits", "[redis][config]") {
  const Config c = load_config_text(std::string(kHead) +
                                        "redis: { address: \"127.0.0.1:6390\", timeout: 20ms, on_failure: closed }\n"
                                        "upstreams: { app: { targets: [ \"127.0.0.1:9000\" ] } }\n"
                                        "routes:\n"
                                        "  - name: r\n"
                                        "    match: { path: /x }\n"
                                        "    upstream: app\n"
                                        "    policies: [ { rate-limit: { limit: 5, per: 1s, store: redis, mode: batch, batch: 3 } } ]\n",
                                    "gw.yaml");
  REQUIRE(c.redis);
  CHECK(c.redis->address.port == 6390);
  CHECK(c.redis->timeout.count() == 20);
  CHECK(c.redis->on_failure == RedisConfig::OnFailure::closed);
  const auto& rl = std::get<RateLimitConfig>(c.routes[0].policies[0].spec);
  CHECK(rl.store == RateLimitConfig::Store::redis);
  CHECK(rl.mode == RateLimitConfig::Mode::batch);
  CHECK(rl.batch == 3);
}

TEST_CASE("config: store: redis without a redis section, and bad values, are errors with lines", "[redis][config]") {
  const std::string routes =
      "upstreams: { app: { targets: [ \"127.0.0.1:9000\" ] } }\n"
      "routes:\n"
      "  - name: r\n"
      "    match: { path: /x }\n"
      "    upstream: app\n"
      "    policies:\n"
      "      - rate-limit: { limit: 5, per: 1s, store: redis }\n";
  try {
    load_config_text(std::string(kHead) + routes, "gw.yaml");
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("gw.yaml:8: routes[0].policies[0].rate-limit.store: store: redis needs a "
                                         "top-level redis section"));
  }
  try {
    load_config_text(std::string(kHead) + "redis: { address: \"127.0.0.1:6390\", on_failure: maybe }\n", "gw.yaml");
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("gw.yaml:2: redis.on_failure"));
  }
  try {
    load_config_text(std::string(kHead) + routes.substr(0, routes.size() - 3) + ", mode: batch }\n" +
                         "redis: { address: \"127.0.0.1:6390\" }\n",
                     "gw.yaml");
    SUCCEED();
  } catch (const ConfigError& e) {
    FAIL(e.what());
  }
  // Batch reserves from several windows would stay counted against the longer ones: refused.
  for (const char* limits : {"limits: [ { limit: 5, per: 1s }, { limit: 1000, per: 1h } ]",
                             "limit: 5, per: 1s, consumers: { c: [ { limit: 1, per: 1s }, { limit: 9, per: 1m } ] }"}) {
    INFO(limits);
    try {
      load_config_text(std::string(kHead) + routes.substr(0, routes.find("rate-limit:")) + "rate-limit: { " + limits +
                           ", store: redis, mode: batch }\n" + "redis: { address: \"127.0.0.1:6390\" }\n",
                       "gw.yaml");
      FAIL("accepted");
    } catch (const ConfigError& e) {
      CHECK_THAT(e.what(), Catch::Contains("gw.yaml:8: routes[0].policies[0].rate-limit: mode: batch takes one limit per list"));
    }
  }
}
