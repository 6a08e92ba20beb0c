#include <catch2/catch.hpp>

#include "core/query_string.hpp"

using namespace lg;

TEST_CASE("query string: finding an argument, bare or with a value", "[core][query]") {
  std::string_view v;
  bool bare = false;
  REQUIRE(find_query_arg("a=1&key=x%20y&key=2", "key", false, v, bare));
  CHECK((v == "x%20y" && !bare));
  REQUIRE(find_query_arg("flag&key=3", "flag", false, v, bare));
  CHECK(bare);
  // skip_bare passes over "key" without '=' to a later "key=..."
  REQUIRE(find_query_arg("key&key=4", "key", true, v, bare));
  CHECK((v == "4" && !bare));
  CHECK_FALSE(find_query_arg("key", "key", true, v, bare));
  CHECK_FALSE(find_query_arg("keys=1&k=2", "key", false, v, bare));
  REQUIRE(find_query_arg("key=", "key", true, v, bare));
  CHECK(v.empty());
}

TEST_CASE("query string: form and strict percent-decoding", "[core][query]") {
  std::string out;
  percent_decode("a+b%2Bc%41%zz%4", out);
  CHECK(out == "a b+cA%zz%4");  // malformed escapes kept as they are
  REQUIRE(percent_decode_strict("a+b%20c%C3%BC", out));
  CHECK(out == "a+b c\xC3\xBC");
  for (const char* bad : {"%zz", "abc%2", "x%0Ay", "tab\there"}) CHECK_FALSE(percent_decode_strict(bad, out));
}
