// Request identity: X-Request-ID validation, W3C traceparent validation, id generation.
#include "core/request_id.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <iterator>
#include <string>
#include <unordered_set>

using namespace lg;

namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::string gen_request_id(IdGenerator& g) {
  char buf[40];
  std::fill(std::begin(buf), std::end(buf), '#');
  g.request_id(buf);
  // Exactly 36 bytes written: the guard bytes after them are untouched.
  REQUIRE(buf[36] == '#');
  return std::string(buf, 36);
}

std::string gen_traceparent(IdGenerator& g, std::string_view trace_id = {}) {
  char buf[60];
  std::fill(std::begin(buf), std::end(buf), '#');
  g.traceparent(buf, trace_id);
  REQUIRE(buf[55] == '#');
  return std::string(buf, 55);
}

constexpr std::string_view kGoodTp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

}  // namespace

TEST_CASE("valid_request_id: length bounds", "[request_id]") {
  CHECK_FALSE(valid_request_id(""));
  CHECK(valid_request_id("a"));
  CHECK(valid_request_id(std::string(127, 'x')));
  CHECK(valid_request_id(std::string(128, 'x')));
  CHECK_FALSE(valid_request_id(std::string(129, 'x')));
  CHECK_FALSE(valid_request_id(std::string(4096, 'x')));
}

TEST_CASE("valid_request_id: allowed characters", "[request_id]") {
  CHECK(valid_request_id("abcdefghijklmnopqrstuvwxyz"));
  CHECK(valid_request_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
  CHECK(valid_request_id("0123456789"));
  CHECK(valid_request_id("._:+/=-"));
  CHECK(valid_request_id("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
  CHECK(valid_request_id("trace:abc/def+ghi=="));
}

TEST_CASE("valid_request_id: rejected characters", "[request_id]") {
  for (const char* bad : {"a b", "a\tb", "a\"b", "a'b", "a,b", "a;b", "a\\b", "a<b", "a>b", "a{b}", "a@b",
                          "a#b", "a%b", "a*b", "a?b", "a&b", "a!b", "a~b", "a(b)", "a[b]", "a|b", "a`b", "a^b",
                          "a$b"}) {
    INFO(bad);
    CHECK_FALSE(valid_request_id(bad));
  }
  CHECK_FALSE(valid_request_id(std::string("a\0b", 3)));
  CHECK_FALSE(valid_request_id("a\r\nX-Injected: 1"));
  CHECK_FALSE(valid_request_id("a\nb"));
  CHECK_FALSE(valid_request_id("\x7f"));
  CHECK_FALSE(valid_request_id("caf\xc3\xa9"));
  CHECK_FALSE(valid_request_id("\xff"));
  // One bad byte at the end of an otherwise valid max-length id.
  std::string s(127, 'a');
  s.push_back(' ');
  CHECK_FALSE(valid_request_id(s));
}

TEST_CASE("valid_traceparent: accepts the W3C example and variations", "[request_id]") {
  CHECK(valid_traceparent(kGoodTp));
  CHECK(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  CHECK(valid_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"));
  CHECK(valid_traceparent("fe-00000000000000000000000000000001-0000000000000001-01"));
}

TEST_CASE("valid_traceparent: rejects malformed values", "[request_id]") {
  SECTION("length") {
    CHECK_FALSE(valid_traceparent(""));
    CHECK_FALSE(valid_traceparent(kGoodTp.substr(0, 54)));
    CHECK_FALSE(valid_traceparent(std::string(kGoodTp) + "0"));
    CHECK_FALSE(valid_traceparent(std::string(kGoodTp) + "-"));
  }
  SECTION("upper-case hex") {
    CHECK_FALSE(valid_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"));
    CHECK_FALSE(valid_traceparent("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  }
  SECTION("all-zero ids") {
    CHECK_FALSE(valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    CHECK_FALSE(valid_traceparent("00-00000000000000000000000000000000-0000000000000000-01"));
  }
  SECTION("version ff is invalid") {
    CHECK_FALSE(valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  }
  SECTION("wrong dashes") {
    CHECK_FALSE(valid_traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"));
    // Dashes moved by one: right length, wrong places.
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("000-bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  }
  SECTION("non-hex characters") {
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"));
    CHECK_FALSE(valid_traceparent("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 1"));
  }
}

TEST_CASE("IdGenerator: request ids are UUIDv4-formatted", "[request_id]") {
  IdGenerator g(12345);
  for (int n = 0; n < 1000; ++n) {
    const std::string id = gen_request_id(g);
    INFO(id);
    REQUIRE(id.size() == 36);
    for (std::size_t i = 0; i < id.size(); ++i) {
      if (i == 8 || i == 13 || i == 18 || i == 23) REQUIRE(id[i] == '-');
      else REQUIRE(is_lower_hex(id[i]));
    }
    REQUIRE(id[14] == '4');  // version nibble
    REQUIRE((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));  // RFC 4122 variant
    REQUIRE(valid_request_id(id));
  }
}

TEST_CASE("IdGenerator: 10,000 request ids are unique and all variant nibbles occur", "[request_id]") {
  IdGenerator g(42);
  std::unordered_set<std::string> seen;
  std::unordered_set<char> variants;
  for (int n = 0; n < 10000; ++n) {
    const std::string id = gen_request_id(g);
    variants.insert(id[19]);
    REQUIRE(seen.insert(id).second);
  }
  CHECK(seen.size() == 10000);
  CHECK(variants == std::unordered_set<char>{'8', '9', 'a', 'b'});
}

TEST_CASE("IdGenerator: deterministic per seed, different across seeds", "[request_id]") {
  IdGenerator a(7), b(7), c(8);
  const std::string a1 = gen_request_id(a), b1 = gen_request_id(b), c1 = gen_request_id(c);
  CHECK(a1 == b1);
  CHECK(a1 != c1);
  CHECK(gen_request_id(a) != a1);
  // Seed 0 works too (the state is never all zero).
  IdGenerator z(0);
  const std::string z1 = gen_request_id(z), z2 = gen_request_id(z);
  CHECK(z1 != z2);
  CHECK(z1 != "00000000-0000-4000-8000-000000000000");
}

TEST_CASE("IdGenerator: new traceparents are valid and distinct", "[request_id]") {
  IdGenerator g(99);
  std::unordered_set<std::string> traces;
  for (int n = 0; n < 1000; ++n) {
    const std::string tp = gen_traceparent(g);
    INFO(tp);
    REQUIRE(valid_traceparent(tp));
    CHECK(tp.substr(0, 3) == "00-");
    CHECK(tp.substr(52) == "-01");
    REQUIRE(traces.insert(tp.substr(3, 32)).second);
  }
}

TEST_CASE("IdGenerator: traceparent keeps a given trace id with a new parent id", "[request_id]") {
  IdGenerator g(5);
  const std::string_view trace = kGoodTp.substr(3, 32);
  REQUIRE(trace == "4bf92f3577b34da6a3ce929d0e0e4736");
  const std::string tp1 = gen_traceparent(g, trace);
  const std::string tp2 = gen_traceparent(g, trace);
  INFO(tp1 << " / " << tp2);
  CHECK(valid_traceparent(tp1));
  CHECK(valid_traceparent(tp2));
  CHECK(tp1.substr(0, 36) == "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  CHECK(tp2.substr(0, 36) == "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  CHECK(tp1.substr(36, 16) != "00f067aa0ba902b7");  // a new span, not the client's parent
  CHECK(tp1.substr(36, 16) != tp2.substr(36, 16));
  CHECK(tp1.substr(52) == "-01");
  SECTION("a trace id of the wrong length is not kept") {
    const std::string tp = gen_traceparent(g, "abc");
    CHECK(valid_traceparent(tp));
    CHECK(tp.find("abc") != 3);
  }
}
