#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "core/base64url.hpp"
#include "core/json_value.hpp"

using lg::json::Document;
using lg::json::Error;
using lg::json::Type;

namespace {
Error parse(std::string_view text, lg::json::Limits limits = {}) {
  Document d;
  return d.parse(text, limits);
}
}  // namespace

TEST_CASE("json: values, lookup and iteration", "[json]") {
  Document d;
  REQUIRE(d.parse(R"( {"a":1,"b":[true,false,null,"x\u00e9\n",{"c":-2.5e1}],"e":{},"f":[] ,"g":"\ud83d\ude00"} )") ==
          Error::none);
  const auto root = d.root();
  REQUIRE(root.is_object());
  CHECK(root.size() == 5);
  std::int64_t i = 0;
  CHECK(root.find("a").as_int64(i));
  CHECK(i == 1);
  const auto b = root.find("b");
  REQUIRE(b.is_array());
  CHECK(b.size() == 5);
  std::vector<Type> types;
  for (auto v = b.first(); v; v = v.next()) types.push_back(v.type());
  CHECK(types == std::vector<Type>{Type::boolean, Type::boolean, Type::null, Type::string, Type::object});
  CHECK(b.first().as_bool());
  CHECK(b.first().next().next().next().str() == "x\xc3\xa9\n");
  const auto c = b.first().next().next().next().next().find("c");
  CHECK(c.as_double() == -25.0);
  CHECK_FALSE(c.as_int64(i));
  CHECK(root.find("e").is_object());
  CHECK(root.find("e").size() == 0);
  CHECK_FALSE(root.find("e").first());
  CHECK(root.find("g").str() == "\xf0\x9f\x98\x80");
  std::vector<std::string> keys;
  for (auto m = root.first(); m; m = m.next()) keys.emplace_back(m.key());
  CHECK(keys == std::vector<std::string>{"a", "b", "e", "f", "g"});
  CHECK_FALSE(root.find("zz"));
  CHECK(root.find("zz").str().empty());
  CHECK(root.find("a").find("x").size() == 0);  // lookups on the wrong type are neutral
}

TEST_CASE("json: numbers", "[json]") {
  Document d;
  std::int64_t i = 0;
  REQUIRE(d.parse("[9223372036854775807,-9223372036854775808,9223372036854775808,-0,0,1.5,1e3,18446744073709551616]") ==
          Error::none);
  auto v = d.root().first();
  CHECK((v.as_int64(i) && i == INT64_MAX));
  v = v.next();
  CHECK((v.as_int64(i) && i == INT64_MIN));
  v = v.next();
  CHECK_FALSE(v.as_int64(i));
  CHECK(v.as_double() == 9223372036854775808.0);
  v = v.next();
  CHECK((v.as_int64(i) && i == 0));
  v = v.next().next();
  CHECK(v.as_double() == 1.5);
  v = v.next();
  CHECK_FALSE(v.as_int64(i));
  CHECK(v.as_double() == 1000.0);
  CHECK(v.next().as_double() == 18446744073709551616.0);
  for (const char* bad : {"01", "-", "+1", ".5", "1.", "1e", "1e+", "-01", "0x10", "NaN", "Infinity", "-Infinity",
                          "1e400", "--1"}) {
    INFO(bad);
    CHECK(parse(bad) != Error::none);
  }
}

TEST_CASE("json: strict syntax", "[json]") {
  for (const char* bad : {"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "{a:1}", "[1 2]", "{\"a\" 1}",
                          "// c\n1", "/* c */1", "tru", "nul", "True", "[1]]", "{} {}", "\xef\xbb\xbf{}"}) {
    INFO(bad);
    CHECK(parse(bad) != Error::none);
  }
  CHECK(parse("[1]x") == Error::trailing);
  CHECK(parse("  true  ") == Error::none);
  CHECK(parse("\"s\"") == Error::none);
}

TEST_CASE("json: strings are valid UTF-8 with valid escapes", "[json]") {
  for (const char* bad : {"\"\x01\"", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"",
                          "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"",
                          "\"\xe0\x80\xaf\"", "\"\xc3\"", "\"\x80\"", "\"abc", "\"\\"}) {
    INFO(bad);
    CHECK(parse(bad) == Error::bad_string);
  }
  Document d;
  REQUIRE(d.parse(R"(["\"\\\/\b\f\n\r\t", "\u0000", "caf\u00e9 \u20ac"])") == Error::none);
  CHECK(d.root().first().str() == "\"\\/\b\f\n\r\t");
  CHECK(d.root().first().next().str() == std::string_view("\0", 1));
  CHECK(d.root().first().next().next().str() == "caf\xc3\xa9 \xe2\x82\xac");
}

TEST_CASE("json: duplicate member names are refused, however they are spelled", "[json]") {
  CHECK(parse(R"({"a":1,"a":2})") == Error::duplicate_key);
  CHECK(parse(R"({"a":1,"\u0061":2})") == Error::duplicate_key);
  CHECK(parse(R"({"x":{"a":1,"b":2,"a":3}})") == Error::duplicate_key);
  CHECK(parse(R"({"a":{"a":1},"b":{"a":2}})") == Error::none);  // same name in different objects
  Document d;
  CHECK(d.parse(R"({"abc":1, "abc":2})") == Error::duplicate_key);
  CHECK(d.error_offset() == 10);
  CHECK_FALSE(d.root());
}

TEST_CASE("json: depth and size limits", "[json]") {
  CHECK(parse(std::string(32, '[') + std::string(32, ']')) == Error::none);
  CHECK(parse(std::string(33, '[') + std::string(33, ']')) == Error::too_deep);
  CHECK(parse("[1,2,3]", {32, 4}) == Error::none);
  CHECK(parse("[1,2,3,4]", {32, 4}) == Error::too_many_nodes);
  CHECK(parse(std::string(100000, '[')) == Error::too_deep);  // no stack exhaustion
}

TEST_CASE("json: a document is reusable", "[json]") {
  Document d;
  REQUIRE(d.parse(R"({"long":"a string with \"escapes\" in it","n":[1,2,3]})") == Error::none);
  REQUIRE(d.parse(R"({"k":"v"})") == Error::none);
  CHECK(d.root().size() == 1);
  CHECK(d.root().find("k").str() == "v");
  CHECK_FALSE(d.root().find("long"));
  REQUIRE(d.parse("[") != Error::none);
  CHECK_FALSE(d.root());
  d.text() = "[\"in place\"]";
  REQUIRE(d.parse_text() == Error::none);
  CHECK(d.root().first().str() == "in place");
}

TEST_CASE("base64url: strict decoding, round trips", "[json][base64]") {
  std::string out;
  for (const char* bad : {"A", "AAAAA", "QQ==", "QQ=", "Q+==", "ab+c", "ab/c", "ab c", "ab\nc", "QR", "QUF", "QUH"}) {
    INFO(bad);
    CHECK_FALSE(lg::base64url_decode(bad, out));
  }
  CHECK(lg::base64url_decode("QQ", out));
  CHECK(out == "A");
  CHECK(lg::base64url_decode("QUE", out));
  CHECK(out == "AA");
  CHECK(lg::base64url_decode("", out));
  CHECK(out.empty());
  CHECK(lg::base64url_decode("-_-_", out));
  CHECK(out == "\xfb\xff\xbf");
  std::mt19937 rng(7);
  for (int n = 0; n < 200; ++n) {
    std::string bytes(static_cast<std::size_t>(n), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string enc;
    lg::base64url_encode_append(enc, bytes);
    CHECK(enc.size() == lg::base64url_encoded_size(bytes.size()));
    CHECK(lg::base64url_decoded_size(enc.size()) == bytes.size());
    REQUIRE(lg::base64url_decode(enc, out));
    CHECK(out == bytes);
  }
}
