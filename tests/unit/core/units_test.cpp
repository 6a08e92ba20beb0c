#include <catch2/catch.hpp>

#include <limits>

#include "core/units.hpp"

using lg::Millis;
using lg::parse_duration;
using lg::parse_size;

TEST_CASE("parse_duration accepts an integer with a unit", "[units]") {
  CHECK(parse_duration("250ms") == Millis{250});
  CHECK(parse_duration("0ms") == Millis{0});
  CHECK(parse_duration("5s") == Millis{5'000});
  CHECK(parse_duration("1m") == Millis{60'000});
  CHECK(parse_duration("2h") == Millis{7'200'000});
  CHECK(parse_duration("1d") == Millis{86'400'000});
  CHECK(parse_duration("007s") == Millis{7'000});
}

TEST_CASE("parse_duration rejects anything else", "[units]") {
  for (const char* bad : {"", "5", "s", "ms", "5 s", " 5s", "5s ", "-1s", "+1s", "1.5s", "10x",
                          "5S", "5MS", "5sec", "5ss", "1m30s", "1e3ms", "0x10s", "5\ns"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("parse_duration rejects overflow", "[units]") {
  // Millis::rep is int64: 9223372036854775807 ms is the largest representable value.
  CHECK(parse_duration("9223372036854775807ms") == Millis{std::numeric_limits<Millis::rep>::max()});
  CHECK_FALSE(parse_duration("9223372036854775808ms").has_value());
  CHECK_FALSE(parse_duration("99999999999999999999s").has_value());
  CHECK_FALSE(parse_duration("106751991167301d").has_value());  // * 86400000 > int64
  CHECK(parse_duration("106751991167d").has_value());
}

TEST_CASE("parse_size accepts bytes and 1024-based k/m/g", "[units]") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("64k") == 64u * 1024);
  CHECK(parse_size("64K") == 64u * 1024);
  CHECK(parse_size("10m") == 10u * 1024 * 1024);
  CHECK(parse_size("10M") == 10u * 1024 * 1024);
  CHECK(parse_size("1g") == 1024u * 1024 * 1024);
  CHECK(parse_size("3G") == 3ull * 1024 * 1024 * 1024);
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("parse_size rejects anything else", "[units]") {
  for (const char* bad : {"", "k", "-1", "+1", "1.5k", "10x", "10 k", " 10", "10kb", "10KiB",
                          "1t", "0x10", "10mm"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("parse_size rejects overflow", "[units]") {
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK_FALSE(parse_size("17179869184g").has_value());  // 2^34 * 2^30 = 2^64
  CHECK(parse_size("17179869183g") == 17179869183ull << 30);
}
