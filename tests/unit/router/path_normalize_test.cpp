#include "router/path_normalize.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

using lg::normalize_path;

namespace {

struct Row {
  std::string raw;
  std::optional<std::string> want;  // nullopt: rejected
};

const std::optional<std::string> kReject;

}  // namespace

TEST_CASE("normalize_path table", "[router][normalize]") {
  const Row rows[] = {
      // Traversal and its encodings.
      {"/public/../admin", "/admin"},
      {"/public/%2e%2e/admin", "/admin"},
      {"/public/%2E%2E/admin", "/admin"},
      {"/public/%2e./admin", "/admin"},
      {"/../../../etc/passwd", "/etc/passwd"},
      {"/a/b/../../..", "/"},
      {"/a/b/..", "/a/"},
      {"/a/b/../c/./d", "/a/c/d"},
      {"/..", "/"},
      {"/.", "/"},
      {"/%2e", "/"},
      {"/a/%2e%2e", "/"},
      {"/./admin", "/admin"},
      {"/a/./b/.", "/a/b/"},
      {"/a/.../b", "/a/.../b"},
      {"/a/..b/c", "/a/..b/c"},
      {"/a/b%2e%2E", "/a/b.."},
      // Slashes.
      {"//admin", "/admin"},
      {"/a//b///c", "/a/b/c"},
      {"/a/", "/a/"},
      {"/a//", "/a/"},
      {"/", "/"},
      {"", "/"},
      {"a/b", "/a/b"},
      // Unreserved escapes are decoded, the rest stays encoded with upper-case hex.
      {"/%61dmin", "/admin"},
      {"/%7euser", "/~user"},
      {"/A%2dB%5f", "/A-B_"},
      {"/ADMIN", "/ADMIN"},
      {"/public/%252e%252e/admin", "/public/%252e%252e/admin"},
      {"/a%3fb", "/a%3Fb"},
      {"/a%20b", "/a%20b"},
      {"/caf%C3%A9", "/caf%C3%A9"},
      {"/caf%c3%a9", "/caf%C3%A9"},
      {"/%e0%a0%80", "/%E0%A0%80"},
      {"/%f0%90%80%80", "/%F0%90%80%80"},
      {"/~u/:x@y!$&'()*+,;=", "/~u/:x@y!$&'()*+,;="},
      // Rejected escapes.
      {"/admin%00.css", kReject},
      {"/%c0%ae%c0%ae/admin", kReject},
      {"/%C1%81", kReject},
      {"/%f5%80%80%80", kReject},
      {"/%ff", kReject},
      {"/%e0%80%af", kReject},
      {"/%e0%9f%bf", kReject},
      {"/%f0%80%80%af", kReject},
      {"/%f0%8f%bf%bf", kReject},
      {"/a%2fb", kReject},
      {"/a%2Fb", kReject},
      {"/..%2f", kReject},
      {"/a%5cb", kReject},
      {"/a%zz", kReject},
      {"/a%4", kReject},
      {"/a%", kReject},
      {"/a%g1", kReject},
      // Rejected raw bytes.
      {"/a b", kReject},
      {"/a\tb", kReject},
      {std::string("/a\0b", 4), kReject},
      {"/a\x7f", kReject},
      {"/a#b", kReject},
      {"/a\\b", kReject},
      {"/a?b", kReject},
      {"/caf\xc3\xa9", kReject},
  };
  std::string out;
  for (const Row& row : rows) {
    INFO("raw: \"" << row.raw << "\"");
    const char* why = normalize_path(row.raw, out);
    if (row.want) {
      CHECK(why == nullptr);
      CHECK(out == *row.want);
    } else {
      CHECK(why != nullptr);
    }
  }
}

TEST_CASE("normalize_path reuses the output buffer", "[router][normalize]") {
  std::string out;
  out.reserve(256);
  const char* data = out.data();
  const auto cap = out.capacity();
  REQUIRE(normalize_path("/x/y/../z", out) == nullptr);
  CHECK(out == "/x/z");
  REQUIRE(normalize_path("/%61", out) == nullptr);
  CHECK(out == "/a");  // cleared between calls
  CHECK(out.data() == data);
  CHECK(out.capacity() == cap);

  // A fresh string grows once, to at most the input size plus the leading '/'.
  std::string fresh;
  const std::string raw(200, 'a');
  REQUIRE(normalize_path(raw, fresh) == nullptr);
  CHECK(fresh.size() == 201);
  CHECK(fresh[0] == '/');
}

TEST_CASE("normalize_path gives a reason on rejection", "[router][normalize]") {
  std::string out;
  const char* why = normalize_path("/a%2fb", out);
  REQUIRE(why != nullptr);
  CHECK(std::string(why).find("slash") != std::string::npos);
  why = normalize_path("/a%zz", out);
  REQUIRE(why != nullptr);
  CHECK(std::string(why).find("escape") != std::string::npos);
}
