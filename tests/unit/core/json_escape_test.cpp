#include <catch2/catch.hpp>

#include <cctype>
#include <random>
#include <string>

#include "core/json_escape.hpp"

namespace {

std::string esc(std::string_view s) {
  std::string out;
  lg::json_escape_append(out, s);
  return out;
}

// True if `s` is valid UTF-8 (RFC 3629) containing no raw control character, no unescaped '"'
// and only valid escapes: i.e. it can sit between two quotes as a JSON string.
bool valid_json_string_body(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"') return false;
    if (c == '\\') {
      if (i + 1 >= s.size()) return false;
      const char e = s[i + 1];
      if (e == 'u') {
        if (i + 6 > s.size()) return false;
        for (std::size_t k = i + 2; k < i + 6; ++k)
          if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return false;
        i += 6;
      } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
        i += 2;
      } else {
        return false;
      }
      continue;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
    else return false;
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

TEST_CASE("json_escape_append: plain text is copied", "[json]") {
  CHECK(esc("") == "");
  CHECK(esc("GET /v1/users?id=7 HTTP/1.1") == "GET /v1/users?id=7 HTTP/1.1");
  CHECK(esc("a/b'c<d>") == "a/b'c<d>");
}

TEST_CASE("json_escape_append: quotes, backslash and short escapes", "[json]") {
  CHECK(esc("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(esc("C:\\dir") == "C:\\\\dir");
  CHECK(esc("a\nb\rc\td\be\ff") == "a\\nb\\rc\\td\\be\\ff");
}

TEST_CASE("json_escape_append: other control characters as \\u00XX", "[json]") {
  CHECK(esc(std::string_view("\0", 1)) == "\\u0000");
  CHECK(esc("\x01\x1f") == "\\u0001\\u001f");
  CHECK(esc("x\x1by") == "x\\u001by");
  CHECK(esc("\x7f") == "\x7f");  // DEL is legal in JSON strings
}

TEST_CASE("json_escape_append: valid UTF-8 is kept as is", "[json]") {
  CHECK(esc("caf\xC3\xA9") == "caf\xC3\xA9");                 // é (2 bytes)
  CHECK(esc("\xE2\x82\xAC 5") == "\xE2\x82\xAC 5");           // € (3 bytes)
  CHECK(esc("\xF0\x9F\x98\x80!") == "\xF0\x9F\x98\x80!");     // 😀 (4 bytes)
  CHECK(esc("\xEF\xBF\xBF") == "\xEF\xBF\xBF");               // U+FFFF
  CHECK(esc("\xF4\x8F\xBF\xBF") == "\xF4\x8F\xBF\xBF");       // U+10FFFF
}

TEST_CASE("json_escape_append: invalid bytes become \\u00XX, one per byte", "[json]") {
  CHECK(esc("\xff") == "\\u00ff");
  CHECK(esc("a\x80z") == "a\\u0080z");                       // stray continuation byte
  CHECK(esc("\xC3") == "\\u00c3");                           // truncated at the end
  CHECK(esc("\xC3(") == "\\u00c3(");                         // lead byte without continuation
  CHECK(esc("\xC0\xAF") == "\\u00c0\\u00af");                // overlong '/'
  CHECK(esc("\xE0\x80\xAF") == "\\u00e0\\u0080\\u00af");     // overlong 3-byte
  CHECK(esc("\xED\xA0\x80") == "\\u00ed\\u00a0\\u0080");     // UTF-16 surrogate D800
  CHECK(esc("\xF4\x90\x80\x80") == "\\u00f4\\u0090\\u0080\\u0080");  // > U+10FFFF
  CHECK(esc("\xF0\x9F\x98") == "\\u00f0\\u009f\\u0098");     // truncated 4-byte
  CHECK(esc("\xC3\xA9\xff\xC3\xA9") == "\xC3\xA9\\u00ff\xC3\xA9");
}

TEST_CASE("json_escape_append: appends to what is already there", "[json]") {
  std::string out = "{\"msg\":\"";
  lg::json_escape_append(out, "a\"b");
  out += "\"}";
  CHECK(out == "{\"msg\":\"a\\\"b\"}");
}

TEST_CASE("json_escape_append: random bytes always give a valid JSON string", "[json]") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> len(0, 64), byte(0, 255);
  for (int round = 0; round < 5000; ++round) {
    std::string in(static_cast<std::size_t>(len(rng)), '\0');
    for (char& c : in) c = static_cast<char>(byte(rng));
    const std::string out = esc(in);
    INFO(round);
    REQUIRE(valid_json_string_body(out));
  }
  CHECK_FALSE(valid_json_string_body("\xff"));  // the checker itself can say no
  CHECK_FALSE(valid_json_string_body("a\"b"));
}
