#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/shared_state.hpp"

using lg::SharedDict;

TEST_CASE("SharedDict: set, get, ttl expiry, delete", "[shared]") {
  SharedDict d;
  SharedDict::Value v;
  v.text = "hello";
  REQUIRE(d.set("k", v, 1000, 0) == SharedDict::Status::ok);
  SharedDict::Value out;
  REQUIRE(d.get("k", 999, out) == SharedDict::Status::ok);
  CHECK(out.text == "hello");
  CHECK_FALSE(out.is_number);
  CHECK(d.get("k", 1000, out) == SharedDict::Status::not_found);  // expired exactly at its deadline
  v.is_number = true;
  v.number = 7;
  REQUIRE(d.set("n", v, 0, 0) == SharedDict::Status::ok);  // no ttl: never expires
  REQUIRE(d.get("n", 1'000'000'000, out) == SharedDict::Status::ok);
  CHECK(out.number == 7);
  CHECK(d.erase("n"));
  CHECK_FALSE(d.erase("n"));
}

TEST_CASE("SharedDict: set with at_least never shortens a live entry's expiry", "[shared]") {
  SharedDict d;
  SharedDict::Value v, out;
  v.is_number = true;
  v.number = 1;
  const std::string key = "lunagate:jwt:revoked:a-long-enough-key-to-be-heap-allocated";
  REQUIRE(d.set(key, v, 300'000, 0, true) == SharedDict::Status::ok);
  REQUIRE(d.set(key, v, 5'000, 1'000, true) == SharedDict::Status::ok);  // shorter: kept at 300 s
  CHECK(d.get(key, 299'999, out) == SharedDict::Status::ok);
  REQUIRE(d.set(key, v, 900'000, 1'000, true) == SharedDict::Status::ok);  // longer: extended
  CHECK(d.get(key, 900'999, out) == SharedDict::Status::ok);
  CHECK(d.get(key, 901'000, out) == SharedDict::Status::not_found);
  REQUIRE(d.set(key, v, 5'000, 950'000, true) == SharedDict::Status::ok);  // expired: set anew
  CHECK(d.get(key, 954'999, out) == SharedDict::Status::ok);
  CHECK(d.get(key, 955'000, out) == SharedDict::Status::not_found);
}

TEST_CASE("SharedDict: incr starts at init, refuses strings, keeps the ttl of the first write", "[shared]") {
  SharedDict d;
  double out = 0;
  REQUIRE(d.incr("c", 1, 10, 500, 0, out) == SharedDict::Status::ok);
  CHECK(out == 11);
  REQUIRE(d.incr("c", 2, 0, 500, 400, out) == SharedDict::Status::ok);
  CHECK(out == 13);
  REQUIRE(d.incr("c", 1, 0, 500, 500, out) == SharedDict::Status::ok);  // expired at 500: starts again
  CHECK(out == 1);
  SharedDict::Value s;
  s.text = "x";
  d.set("s", s, 0, 0);
  CHECK(d.incr("s", 1, 0, 0, 0, out) == SharedDict::Status::not_a_number);
}

TEST_CASE("SharedDict: a full shard evicts only expired entries", "[shared]") {
  SharedDict d(4, 1);  // one shard of 4 entries
  SharedDict::Value v;
  v.text = "v";
  for (int i = 0; i < 3; ++i) REQUIRE(d.set("p" + std::to_string(i), v, 0, 0) == SharedDict::Status::ok);
  REQUIRE(d.set("t", v, 10, 0) == SharedDict::Status::ok);
  CHECK(d.set("new", v, 0, 5) == SharedDict::Status::full);   // nothing expired yet
  CHECK(d.set("new", v, 0, 20) == SharedDict::Status::ok);    // "t" expired and made room
  CHECK(d.size() == 4);
}

TEST_CASE("SharedDict: concurrent increments from several threads are exact", "[shared]") {
  SharedDict d;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      double out = 0;
      for (int i = 0; i < 10000; ++i) d.incr("hits", 1, 0, 0, 0, out);
    });
  for (auto& t : ts) t.join();
  SharedDict::Value v;
  REQUIRE(d.get("hits", 0, v) == SharedDict::Status::ok);
  CHECK(v.number == 40000);
}

// Token buckets (gw.ratelimit and the rate-limit policy) are tested in rate_limit_test.cpp.
