// Strict request-head parser: every rule, incremental parsing, limits.
#include "http/request_parser.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/chunked.hpp"

using namespace lg::http;
using namespace std::string_literals;

namespace {

// A string literal with embedded NULs, without its terminator.
template <std::size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

RequestLimits test_limits() {
  RequestLimits l;
  l.max_header_bytes = 32 * 1024;
  l.max_uri_bytes = 8 * 1024;
  l.max_headers = 100;
  l.max_body_bytes = 10 * 1024 * 1024;
  return l;
}

// Owning copy of a parse outcome, so results from different buffers can be compared.
struct Summary {
  ParseResult::Kind kind = ParseResult::incomplete;
  std::uint16_t status = 0;
  std::string method;
  std::uint16_t method_bit = 0;
  std::string target, path, query;
  bool has_query = false;
  int version_minor = 1;
  std::string host;
  int body = 0;
  std::uint64_t content_length = 0;
  bool keep_alive = true, expect_continue = false, upgrade_websocket = false, has_upgrade = false;
  std::string connection;
  std::size_t head_bytes = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const Summary&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Summary& s) {
  os << "{kind=" << int(s.kind) << " status=" << s.status;
  if (s.kind == ParseResult::complete) {
    os << " " << s.method << " " << s.target << " path=" << s.path << " query=" << s.query << " 1."
       << s.version_minor << " host=" << s.host << " body=" << s.body << " cl=" << s.content_length
       << " ka=" << s.keep_alive << " hb=" << s.head_bytes << " headers=" << s.headers.size();
  }
  return os << "}";
}

Summary summarize(const ParseResult& r, const RequestHead& h) {
  Summary s;
  s.kind = r.kind;
  s.status = r.status;
  if (r.kind != ParseResult::complete) return s;
  s.method = std::string(h.method);
  s.method_bit = h.method_bit;
  s.target = std::string(h.target);
  s.path = std::string(h.path);
  s.query = std::string(h.query);
  s.has_query = h.has_query;
  s.version_minor = h.version_minor;
  s.host = std::string(h.host);
  s.body = static_cast<int>(h.body);
  s.content_length = h.content_length;
  s.keep_alive = h.keep_alive;
  s.expect_continue = h.expect_continue;
  s.upgrade_websocket = h.upgrade_websocket;
  s.has_upgrade = h.has_upgrade;
  s.connection = std::string(h.connection);
  s.head_bytes = h.head_bytes;
  for (const Header& x : *h.headers) s.headers.emplace_back(x.name, x.value);
  return s;
}

Summary parse_once(std::string_view in, const RequestLimits& lim) {
  std::vector<Header> hv;
  hv.reserve(128);
  RequestHead h;
  h.headers = &hv;
  HeadScan scan;
  return summarize(parse_request_head(in, lim, scan, h), h);
}

// Feeds `in` in pieces into a growing std::string (which reallocates, so views from earlier
// calls die: the parser must not rely on them). Stops at the first non-incomplete result.
Summary parse_pieces(std::string_view in, const RequestLimits& lim, std::mt19937* rng) {
  std::vector<Header> hv;
  hv.reserve(128);
  RequestHead h;
  h.headers = &hv;
  HeadScan scan;
  std::string buf;
  ParseResult r = ParseResult::more();
  std::size_t i = 0;
  while (i < in.size()) {
    std::size_t n = 1;
    if (rng) n = std::uniform_int_distribution<std::size_t>(1, 17)(*rng);
    n = std::min(n, in.size() - i);
    buf.append(in.substr(i, n));
    i += n;
    r = parse_request_head(buf, lim, scan, h);
    if (r.kind != ParseResult::incomplete) break;
  }
  return summarize(r, h);
}

// Parses all at once, one byte at a time and in random pieces; all three must agree.
Summary req(std::string_view in, const RequestLimits& lim = test_limits()) {
  Summary once = parse_once(in, lim);
  Summary bytewise = parse_pieces(in, lim, nullptr);
  CHECK(bytewise == once);
  std::mt19937 rng(static_cast<unsigned>(in.size()));
  Summary random = parse_pieces(in, lim, &rng);
  CHECK(random == once);
  return once;
}

std::uint16_t status_of(std::string_view in, const RequestLimits& lim = test_limits()) {
  Summary s = req(in, lim);
  return s.kind == ParseResult::error ? s.status : 0;
}

std::string get_with(std::string_view fields, std::string_view line = "GET / HTTP/1.1") {
  return std::string(line) + "\r\n" + std::string(fields) + "\r\n";
}

}  // namespace

TEST_CASE("request: simple GET", "[http]") {
  Summary s =
      req("GET /index.html?a=1&b HTTP/1.1\r\nHost: gw.test\r\nUser-Agent: t\r\n"
          "Accept:*/*\r\n\r\nNEXT");
  REQUIRE(s.kind == ParseResult::complete);
  CHECK(s.method == "GET");
  CHECK(s.method_bit == lg::M_GET);
  CHECK(s.target == "/index.html?a=1&b");
  CHECK(s.path == "/index.html");
  CHECK(s.query == "a=1&b");
  CHECK(s.has_query);
  CHECK(s.version_minor == 1);
  CHECK(s.host == "gw.test");
  CHECK(s.body == int(BodyKind::none));
  CHECK(s.keep_alive);
  CHECK_FALSE(s.expect_continue);
  CHECK(s.head_bytes == std::string_view("GET /index.html?a=1&b HTTP/1.1\r\nHost: gw.test\r\n"
                                         "User-Agent: t\r\nAccept:*/*\r\n\r\n")
                            .size());
  REQUIRE(s.headers.size() == 3);
  CHECK(s.headers[0] == std::pair<std::string, std::string>("Host", "gw.test"));
  CHECK(s.headers[2] == std::pair<std::string, std::string>("Accept", "*/*"));
}

TEST_CASE("request: incomplete until the empty line", "[http]") {
  const std::string full = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t n = 0; n < full.size(); ++n) {
    INFO(n);
    CHECK(parse_once(full.substr(0, n), test_limits()).kind == ParseResult::incomplete);
  }
  CHECK(parse_once(full, test_limits()).kind == ParseResult::complete);
}

TEST_CASE("request: scanning resumes where it stopped", "[http]") {
  std::vector<Header> hv;
  RequestHead h;
  h.headers = &hv;
  HeadScan scan;
  std::string buf = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: abc";
  REQUIRE(parse_request_head(buf, test_limits(), scan, h).kind == ParseResult::incomplete);
  CHECK(scan.scanned == buf.size());
  CHECK(scan.line_start == std::string_view("GET / HTTP/1.1\r\nHost: a\r\n").size());
  buf += "def\r";
  REQUIRE(parse_request_head(buf, test_limits(), scan, h).kind == ParseResult::incomplete);
  CHECK(scan.scanned == buf.size());
  buf += "\n\r\n";
  REQUIRE(parse_request_head(buf, test_limits(), scan, h).kind == ParseResult::complete);
  CHECK(scan.head_end == buf.size());
  CHECK(h.head_bytes == buf.size());
  REQUIRE(hv.size() == 2);
  CHECK(hv[1].value == "abcdef");
  scan.reset();
  CHECK(scan.scanned == 0);
  CHECK(scan.head_end == 0);
}

TEST_CASE("request: same RequestHead reused for a second request", "[http]") {
  std::vector<Header> hv;
  RequestHead h;
  h.headers = &hv;
  HeadScan scan;
  std::string a =
      "GET http://abs.test/x?q HTTP/1.1\r\nHost: abs.test\r\nConnection: close\r\n"
      "Content-Length: 3\r\n\r\n";
  REQUIRE(parse_request_head(a, test_limits(), scan, h).kind == ParseResult::complete);
  CHECK(h.host == "abs.test");
  CHECK_FALSE(h.keep_alive);
  scan.reset();
  std::string b = "GET /y HTTP/1.1\r\nHost: other.test\r\n\r\n";
  REQUIRE(parse_request_head(b, test_limits(), scan, h).kind == ParseResult::complete);
  CHECK(h.host == "other.test");
  CHECK(h.path == "/y");
  CHECK_FALSE(h.has_query);
  CHECK(h.keep_alive);
  CHECK(h.body == BodyKind::none);
  CHECK(h.connection.empty());
  CHECK(hv.size() == 1);
}

TEST_CASE("request: headers pointer may be null", "[http]") {
  RequestHead h;
  HeadScan scan;
  CHECK(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n", test_limits(), scan, h).kind ==
        ParseResult::complete);
  CHECK(h.host == "a");
}

TEST_CASE("request: leading empty lines", "[http]") {
  Summary s = req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(s.kind == ParseResult::complete);
  CHECK(s.head_bytes == 4 + 27);
  CHECK(s.path == "/");
  CHECK(status_of("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(status_of("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
}

TEST_CASE("request: bare LF is rejected at once", "[http]") {
  CHECK(status_of("GET / HTTP/1.1\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nX: a\nHost: a\r\n\r\n") == 400);
  // Incomplete head: no need to wait for the rest.
  Summary s = parse_once("GET / HTTP/1.1\r\nX: y\n", test_limits());
  CHECK(s.kind == ParseResult::error);
  CHECK(s.status == 400);
}

TEST_CASE("request: bare CR is rejected", "[http]") {
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rX-B: b\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n") == 400);
  CHECK(status_of("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n") == 400);
}

TEST_CASE("request: request-line separators", "[http]") {
  CHECK(status_of("GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET /  HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of(" GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
}

TEST_CASE("request: methods", "[http]") {
  const std::pair<const char*, std::uint16_t> known[] = {
      {"GET", lg::M_GET},         {"HEAD", lg::M_HEAD},     {"POST", lg::M_POST},
      {"PUT", lg::M_PUT},         {"DELETE", lg::M_DELETE}, {"PATCH", lg::M_PATCH},
      {"OPTIONS", lg::M_OPTIONS}, {"TRACE", lg::M_TRACE}};
  for (auto [name, bit] : known) {
    Summary s = req(std::string(name) + " / HTTP/1.1\r\nHost: a\r\n\r\n");
    INFO(name);
    REQUIRE(s.kind == ParseResult::complete);
    CHECK(s.method == name);
    CHECK(s.method_bit == bit);
  }
  CHECK(status_of("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n") == 501);
  CHECK(status_of("FOOBAR / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  CHECK(status_of("get / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  CHECK(status_of("Get / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  CHECK(status_of("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GE\xC3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of(lit("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n")) == 400);
  CHECK(status_of(std::string(32, 'X') + " / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  CHECK(status_of(std::string(33, 'X') + " / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  CHECK(status_of(std::string(1024, 'G') + " / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
  // The request line fails as soon as it is complete, before the head ends.
  Summary s = parse_once("FOO / HTTP/1.1\r\nHost: a\r\n", test_limits());
  CHECK(s.kind == ParseResult::error);
  CHECK(s.status == 501);
}

TEST_CASE("request: HTTP version", "[http]") {
  Summary s10 = req("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(s10.kind == ParseResult::complete);
  CHECK(s10.version_minor == 0);
  for (const char* v : {"HTTP/1.2", "HTTP/1.9"}) {
    Summary s = req("GET / "s + v + "\r\nHost: a\r\n\r\n");
    INFO(v);
    REQUIRE(s.kind == ParseResult::complete);
    CHECK(s.version_minor == 1);
  }
  CHECK(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(status_of("GET / HTTP/0.9\r\nHost: a\r\n\r\n") == 505);
  CHECK(status_of("GET / HTTP/3.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(status_of("GET / http/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.10\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/2\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.x\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  // HTTP/0.9 simple request: rejected as soon as its line is complete.
  Summary s09 = parse_once("GET /\r\n", test_limits());
  CHECK(s09.kind == ParseResult::error);
  CHECK(s09.status == 400);
}

TEST_CASE("request: request-target length and bytes", "[http]") {
  RequestLimits lim = test_limits();
  lim.max_uri_bytes = 100;
  const std::string ok_target = "/" + std::string(99, 'a');
  CHECK(status_of("GET " + ok_target + " HTTP/1.1\r\nHost: a\r\n\r\n", lim) == 0);
  CHECK(status_of("GET " + ok_target + "b HTTP/1.1\r\nHost: a\r\n\r\n", lim) == 414);
  // A long target fails with 414 before its end arrives.
  Summary partial = parse_once("GET /" + std::string(200, 'a'), lim);
  CHECK(partial.kind == ParseResult::error);
  CHECK(partial.status == 414);
  CHECK(parse_once("GET /" + std::string(150, 'a'), lim).kind == ParseResult::incomplete);
  // Default limits: 8 KiB.
  CHECK(status_of("GET /" + std::string(8 * 1024, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n") == 414);
  Summary big = parse_once("GET /" + std::string(9 * 1024, 'a'), test_limits());
  CHECK(big.status == 414);

  for (std::string bad : {"/a\x01", "/a\x7f", "/a\x80", "/a\xff", "/a#frag", "/a\x0b"}) {
    INFO(bad);
    CHECK(status_of("GET " + bad + " HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  }
  CHECK(status_of(lit("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n")) == 400);
  // Percent-encoding and odd-but-legal bytes are the router's business.
  CHECK(status_of("GET /a%00b/%2e%2e/..//x|{}?q=\"v\" HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
}

TEST_CASE("request: target forms", "[http]") {
  Summary q = req("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(q.path == "/p");
  CHECK(q.has_query);
  CHECK(q.query.empty());
  Summary nq = req("GET /p HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK_FALSE(nq.has_query);

  Summary star = req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(star.kind == ParseResult::complete);
  CHECK(star.path == "*");
  CHECK(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n") == 400);

  Summary abs = req("GET HTTP://Example.Test:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
  REQUIRE(abs.kind == ParseResult::complete);
  CHECK(abs.host == "Example.Test:8080");
  CHECK(abs.path == "/a/b");
  CHECK(abs.query == "x=1");
  Summary abs2 = req("GET https://h.test HTTP/1.1\r\nHost: h.test\r\n\r\n");
  REQUIRE(abs2.kind == ParseResult::complete);
  CHECK(abs2.path == "/");
  CHECK(abs2.host == "h.test");
  Summary abs3 = req("GET http://h.test?k HTTP/1.1\r\nHost: h.test\r\n\r\n");
  REQUIRE(abs3.kind == ParseResult::complete);
  CHECK(abs3.path == "/");
  CHECK(abs3.query == "k");
  // Host must still be present (HTTP/1.1) and valid; optional in 1.0.
  CHECK(status_of("GET http://h.test/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET http://h.test/ HTTP/1.1\r\nHost: a b\r\n\r\n") == 400);
  CHECK(req("GET http://h.test/ HTTP/1.0\r\n\r\n").host == "h.test");
  CHECK(status_of("GET http://user@h.test/ HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
  CHECK(status_of("GET http:///p HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
  CHECK(status_of("GET http://h.test:x/ HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
  CHECK(status_of("GET ftp://h.test/ HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
  CHECK(status_of("GET h.test:443 HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
  CHECK(status_of("GET a/b HTTP/1.1\r\nHost: h.test\r\n\r\n") == 400);
}

TEST_CASE("request: field-line syntax", "[http]") {
  auto st = [](std::string_view field) {
    return status_of(get_with("Host: a\r\n"s + std::string(field)));
  };
  CHECK(st("X-A: b\r\n") == 0);
  CHECK(st(lit("X-\0A: b\r\n")) == 400);
  CHECK(st("X-\xC3\xA9: v\r\n") == 400);
  CHECK(st("X A: b\r\n") == 400);
  CHECK(st("X-A : b\r\n") == 400);
  CHECK(st("X-A\t: b\r\n") == 400);
  CHECK(st("NoColonHere\r\n") == 400);
  CHECK(st(": b\r\n") == 400);
  CHECK(st("X-A: a\r\n b\r\n") == 400);   // obs-fold
  CHECK(st("X-A: a\r\n\tb\r\n") == 400);  // obs-fold with HTAB
  CHECK(st(lit("X-A: a\0b\r\n")) == 400);
  CHECK(st("X-A: a\x0b"
           "b\r\n") == 400);
  CHECK(st("X-A: a\x01"
           "b\r\n") == 400);
  CHECK(st("X-A: a\x7f"
           "b\r\n") == 400);
  CHECK(st("X-A: a\x1f"
           "b\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n") == 400);

  Summary s =
      req(get_with("Host: a\r\nX-T: \t a \t b \t \r\nX-E:\r\nX-O: caf\xC3\xA9\r\n"
                   "x-lower: \"q\"\r\n"));
  REQUIRE(s.kind == ParseResult::complete);
  REQUIRE(s.headers.size() == 5);
  CHECK(s.headers[1].second == "a \t b");
  CHECK(s.headers[2].second.empty());
  CHECK(s.headers[3].second == "caf\xC3\xA9");
  CHECK(s.headers[4].first == "x-lower");
}

TEST_CASE("request: bad value bytes are found at every position of a long value", "[http]") {
  const std::string value(41, 'v');
  for (std::size_t pos = 0; pos < value.size(); ++pos) {
    for (char bad : {'\0', '\x01', '\x0b', '\x1f', '\x7f', '\r', '\n'}) {
      std::string v = value;
      v[pos] = bad;
      INFO("byte " << int(bad) << " at " << pos);
      CHECK(parse_once(get_with("Host: a\r\nX-Long: " + v + "\r\n"), test_limits()).status == 400);
    }
    for (char fine : {'\t', ' ', '\x80', '\xff', '~', '"'}) {
      std::string v = value;
      v[pos] = fine;
      INFO("byte " << int(fine) << " at " << pos);
      Summary s = parse_once(get_with("Host: a\r\nX-Long: " + v + "\r\n"), test_limits());
      REQUIRE(s.kind == ParseResult::complete);
      const bool edge_ows = (fine == ' ' || fine == '\t') && (pos == 0 || pos + 1 == v.size());
      CHECK(s.headers[1].second.size() == value.size() - (edge_ows ? 1 : 0));
    }
  }
}

TEST_CASE("request: header count and size limits", "[http]") {
  std::string fields = "Host: a\r\n";
  for (int i = 1; i < 100; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  Summary s = req(get_with(fields));
  REQUIRE(s.kind == ParseResult::complete);
  CHECK(s.headers.size() == 100);
  CHECK(status_of(get_with(fields + "X-101: v\r\n")) == 431);

  // Head exactly at max_header_bytes is fine; one byte more is 431 even when complete.
  RequestLimits lim = test_limits();
  const std::string base = get_with("Host: a\r\nX-Pad: \r\n");
  const std::string exact = get_with(
      "Host: a\r\nX-Pad: " + std::string(lim.max_header_bytes - base.size(), 'p') + "\r\n");
  REQUIRE(exact.size() == lim.max_header_bytes);
  CHECK(status_of(exact) == 0);
  const std::string over = get_with(
      "Host: a\r\nX-Pad: " + std::string(lim.max_header_bytes - base.size() + 1, 'p') + "\r\n");
  CHECK(status_of(over) == 431);
  CHECK(status_of(over + "BODY") == 431);
}

TEST_CASE("request: 10,000 header fields fail fast with 431", "[http]") {
  std::string in = "GET / HTTP/1.1\r\nHost: gw.test\r\n";
  for (int i = 1; i <= 10000; ++i) in += "X-H" + std::to_string(i) + ": v\r\n";
  in += "\r\n";
  std::vector<Header> hv;
  hv.reserve(128);
  RequestHead h;
  h.headers = &hv;
  HeadScan scan;
  const auto t0 = std::chrono::steady_clock::now();
  ParseResult r = parse_request_head(in, test_limits(), scan, h);
  const auto dt = std::chrono::steady_clock::now() - t0;
  CHECK(r.kind == ParseResult::error);
  CHECK(r.status == 431);
  CHECK(scan.scanned < 2048);  // stopped at the 101st field, did not look at the rest
  CHECK(dt < std::chrono::milliseconds(20));
  CHECK(hv.capacity() == 128);  // nothing pushed past the reservation
  CHECK(status_of(in) == 431);
}

TEST_CASE("request: 70 KiB header fails with 431 before its end arrives", "[http]") {
  std::string in =
      "GET / HTTP/1.1\r\nHost: gw.test\r\nX-Big: " + std::string(70 * 1024, 'b') + "\r\n\r\n";
  RequestHead h;
  HeadScan scan;
  std::string buf;
  ParseResult r = ParseResult::more();
  for (std::size_t i = 0; i < in.size() && r.kind == ParseResult::incomplete; i += 1024) {
    buf.append(in, i, 1024);
    r = parse_request_head(buf, test_limits(), scan, h);
  }
  CHECK(r.kind == ParseResult::error);
  CHECK(r.status == 431);
  CHECK(buf.size() <= 33 * 1024);
  CHECK(status_of(in) == 431);
}

TEST_CASE("request: Host", "[http]") {
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: \r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n") == 400);
  Summary s10 = req("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(s10.kind == ParseResult::complete);
  CHECK(s10.host.empty());
  CHECK(status_of("GET / HTTP/1.0\r\nHost: \r\n\r\n") == 0);

  for (const char* good : {"gw.test", "GW.Test:8080", "127.0.0.1", "127.0.0.1:1", "[::1]",
                           "[::1]:443", "[2001:db8::7]", "a-b.c_d~e", "x%41y", "h:65535"}) {
    INFO(good);
    Summary s = req("GET / HTTP/1.1\r\nHost: "s + good + "\r\n\r\n");
    REQUIRE(s.kind == ParseResult::complete);
    CHECK(s.host == good);
  }
  for (const char* bad : {"gw.test evil", "gw.test@internal.test",
                          "user@h",       "h/p",
                          "h?q",          "h#f",
                          "h\\x",         "h:",
                          "h:99999",      "h:123456",
                          "h:8a",         "[::1",
                          "[]",           "[::g]",
                          "[::1]x",       "h%zz",
                          "h%4",          ":80",
                          "h:80:80",      "h\tx",
                          "h,i"}) {
    INFO(bad);
    CHECK(status_of("GET / HTTP/1.1\r\nHost: "s + bad + "\r\n\r\n") == 400);
  }
}

TEST_CASE("request: Content-Length", "[http]") {
  auto post = [](std::string_view cl) {
    return "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "s + std::string(cl) + "\r\n\r\n";
  };
  Summary s = req(post("5"));
  REQUIRE(s.kind == ParseResult::complete);
  CHECK(s.body == int(BodyKind::content_length));
  CHECK(s.content_length == 5);
  CHECK(req(post("0005")).content_length == 5);
  Summary zero = req(post("0"));
  CHECK(zero.body == int(BodyKind::content_length));
  CHECK(zero.content_length == 0);
  CHECK(req(post("10485760")).content_length == 10485760);
  CHECK(req(post(" \t7\t ")).content_length == 7);  // OWS around the value is not part of it

  for (const char* bad : {"-1", "+5", "0x5", "5 5", "5,5", "5, 5", "", "5a", "a", "1e3", "5.0",
                          "99999999999999999999x"}) {
    INFO(bad);
    CHECK(status_of(post(bad)) == 400);
  }
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
        400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n") ==
        400);

  CHECK(status_of(post("10485761")) == 413);
  CHECK(status_of(post("1099511627776")) == 413);
  CHECK(status_of(post("18446744073709551615")) == 413);
  CHECK(status_of(post("18446744073709551621")) == 413);  // 2^64 + 5 must not wrap to 5
  CHECK(status_of(post("99999999999999999999")) == 413);
  CHECK(status_of(post("000000000000000000000000000005")) == 0);

  RequestLimits big = test_limits();
  big.max_body_bytes = UINT64_MAX;
  CHECK(req(post("18446744073709551615"), big).content_length == UINT64_MAX);
  CHECK(status_of(post("18446744073709551616"), big) == 413);

  // GET and HEAD may carry a body framed by Content-Length.
  Summary g = req("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(g.body == int(BodyKind::content_length));
  CHECK(g.content_length == 5);
  CHECK(req("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n").content_length == 1);
}

TEST_CASE("request: Transfer-Encoding", "[http]") {
  auto te = [](std::string_view fields) {
    return "POST / HTTP/1.1\r\nHost: a\r\n"s + std::string(fields) + "\r\n";
  };
  for (const char* ok : {"Transfer-Encoding: chunked\r\n", "Transfer-Encoding: Chunked\r\n",
                         "Transfer-Encoding:\tchunked\t\r\n", "transfer-encoding:  CHUNKED \r\n"}) {
    INFO(ok);
    Summary s = req(te(ok));
    REQUIRE(s.kind == ParseResult::complete);
    CHECK(s.body == int(BodyKind::chunked));
  }
  for (const char* bad :
       {"chunked, identity", "chunked, chunked", "identity, chunked", "gzip, chunked", "chunked,",
        ",chunked", "chunked, ,gzip", "", "chunked;q=1", "chunked\x0b", "\"chunked\""}) {
    INFO(bad);
    CHECK(status_of(te("Transfer-Encoding: "s + bad + "\r\n")) == 400);
  }
  CHECK(status_of(te("Transfer-Encoding:\x0b"
                     "chunked\r\n")) == 400);
  CHECK(status_of(te("Transfer-Encoding: gzip\r\n")) == 501);
  CHECK(status_of(te("Transfer-Encoding: identity\r\n")) == 501);
  CHECK(status_of(te("Transfer-Encoding: gzip, deflate\r\n")) == 501);
  // Field lines combine into one list.
  CHECK(status_of(te("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")) == 400);
  CHECK(status_of(te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")) == 400);
  CHECK(status_of(te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n")) == 400);
  // With Content-Length, in either order: 400.
  CHECK(status_of(te("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n")) == 400);
  CHECK(status_of(te("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n")) == 400);
  CHECK(status_of(te("Transfer-Encoding: gzip\r\nContent-Length: 4\r\n")) == 400);
  // HTTP/1.0 with TE: framing is faulty.
  CHECK(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
}

TEST_CASE("request: Connection and keep-alive", "[http]") {
  CHECK(req("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
  CHECK_FALSE(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
  CHECK_FALSE(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
  CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keep_alive);
  CHECK_FALSE(req("GET / HTTP/1.0\r\n\r\n").keep_alive);
  CHECK(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  CHECK(req("GET / HTTP/1.0\r\nConnection: X-Foo, Keep-Alive\r\n\r\n").keep_alive);
  Summary two =
      req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-a\r\n"
          "Connection: close\r\n\r\n");
  CHECK_FALSE(two.keep_alive);
  CHECK(two.connection == "keep-alive, x-a");  // the first line's value
}

TEST_CASE("request: Upgrade", "[http]") {
  const std::string ws = "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  Summary s = req(get_with(ws));
  CHECK(s.has_upgrade);
  CHECK(s.upgrade_websocket);
  CHECK(req(get_with("Host: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n"))
            .upgrade_websocket);
  CHECK_FALSE(req(get_with(ws, "POST / HTTP/1.1")).upgrade_websocket);
  CHECK_FALSE(req(get_with("Upgrade: websocket\r\nConnection: Upgrade\r\n", "GET / HTTP/1.0"))
                  .upgrade_websocket);
  Summary no_conn = req(get_with("Host: a\r\nUpgrade: websocket\r\n"));
  CHECK(no_conn.has_upgrade);
  CHECK_FALSE(no_conn.upgrade_websocket);
  Summary h2c =
      req(get_with("Host: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\nConnection: Upgrade, "
                   "HTTP2-Settings\r\n"));
  CHECK(h2c.has_upgrade);
  CHECK_FALSE(h2c.upgrade_websocket);
  CHECK_FALSE(req(get_with("Host: a\r\n")).has_upgrade);
}

TEST_CASE("request: Expect", "[http]") {
  const std::string body = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n";
  CHECK(req(body + "Expect: 100-continue\r\n\r\n").expect_continue);
  CHECK(req(body + "Expect: 100-Continue\r\n\r\n").expect_continue);
  CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: "
            "100-continue\r\n\r\n")
            .expect_continue);
  Summary no_body = req("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
  REQUIRE(no_body.kind == ParseResult::complete);
  CHECK_FALSE(no_body.expect_continue);  // nothing to wait for
  Summary v10 = req("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  REQUIRE(v10.kind == ParseResult::complete);
  CHECK_FALSE(v10.expect_continue);
  CHECK(status_of(body + "Expect: 200-ok\r\n\r\n") == 417);
  CHECK(status_of(body + "Expect: 100-continue, foo\r\n\r\n") == 417);
  CHECK(status_of(body + "Expect: 100-continue\r\nExpect: x\r\n\r\n") == 417);
  CHECK(status_of(body + "Expect:\r\n\r\n") == 417);
  CHECK(status_of("POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n") == 417);
}

TEST_CASE("request: pipelined requests", "[http]") {
  const std::string two =
      "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n";
  Summary first = req(two);
  REQUIRE(first.kind == ParseResult::complete);
  CHECK(first.path == "/one");
  Summary second = req(std::string_view(two).substr(first.head_bytes));
  REQUIRE(second.kind == ParseResult::complete);
  CHECK(second.path == "/two");
  CHECK(first.head_bytes + second.head_bytes == two.size());
}

// ---------------------------------------------------------------------------------------------
// The hostile corpus (/work/shared/corpus/http), replayed at the parser level.

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What the parser alone must decide for a case: an error status, or acceptance.
struct Expect {
  std::uint16_t status;       // 0 = accepted
  bool chunked_body = false;  // the error (or success) comes from the chunked body
  int requests = 1;           // pipelined requests that must all parse
};

const std::map<std::string, Expect>& corpus_expectations() {
  static const std::map<std::string, Expect> m = {
      {"001_ok_get.http", {0}},
      {"002_ok_post_cl.http", {0}},
      {"003_ok_post_chunked.http", {0, true}},
      {"004_ok_pipelined_two_gets.http", {0, false, 2}},
      {"007_ok_cl_leading_zeros.http", {0}},
      {"010_clte_basic.http", {400}},
      {"011_tecl_basic.http", {400}},
      {"014_te_tab_ows.http", {400}},
      {"017_te_chunked_identity.http", {400}},
      {"018_te_identity_chunked.http", {400}},
      {"019_te_duplicated_header.http", {400}},
      {"020_te_chunked_twice.http", {400}},
      {"021_te_obs_fold.http", {400}},
      {"022_te_in_http10.http", {400}},
      {"023_te_vertical_tab.http", {400}},
      {"027_te_cr_suffix.http", {400}},
      {"028_te_after_bare_lf_header.http", {400}},
      {"031_cl_duplicate_same_list.http", {400}},
      {"033_cl_negative.http", {400}},
      {"034_cl_hex.http", {400}},
      {"035_cl_inner_space.http", {400}},
      {"036_cl_overflow_20digits.http", {413}},
      {"037_cl_wraps_to_small.http", {413}},
      {"038_cl_huge_valid.http", {413}},
      {"040_get_with_body_pipelined.http", {0, false, 2}},
      {"050_chunk_size_ffffffffffffffff.http", {413, true}},
      {"051_chunk_size_wraps.http", {413, true}},
      {"053_chunk_size_leading_space.http", {400, true}},
      {"054_chunk_size_0x.http", {400, true}},
      {"055_chunk_ext_100k.http", {400, true}},
      {"056_chunk_ext_bare_lf.http", {400, true}},
      {"059_chunk_trailer_framing.http", {0, true}},
      {"071_bare_cr_in_value.http", {400}},
      {"072_bare_cr_line_end.http", {400}},
      {"073_obs_fold_header.http", {400}},
      {"075_nul_in_name.http", {400}},
      {"076_ctl_in_value.http", {400}},
      {"079_header_no_colon.http", {400}},
      {"080_ws_before_first_header.http", {400}},
      {"082_header_name_highbit.http", {400}},
      {"086_duplicate_host.http", {400}},
      {"087_host_invalid_chars.http", {400}},
      {"089_host_userinfo.http", {400}},
      {"090_host_empty_http11.http", {400}},
      {"092_long_header_70k.http", {431}},
      {"093_10k_headers.http", {431}},
      {"094_long_method_1k.http", {501}},
      {"095_invalid_method_token.http", {400}},
      {"096_unknown_method.http", {501}},
      {"097_lowercase_method.http", {501}},
      {"098_http09_request.http", {400}},
      {"102_version_lowercase.http", {400}},
      {"104_tab_request_line.http", {400}},
      {"106_asterisk_with_get.http", {400}},
      {"108_connect_method.http", {501}},
      {"110_expect_100_continue.http", {0}},
      {"111_expect_unknown.http", {417}},
      {"113_h2c_upgrade_smuggling.http", {0}},
      {"116_xff_spoof.http", {0}},
      // Path cases: the router normalises; the parser must only accept the raw bytes.
      {"120_path_dotdot_plain.http", {0}},
      {"121_path_dotdot_encoded.http", {0}},
      {"123_path_double_slash.http", {0}},
      {"124_path_dot_segment.http", {0}},
      {"125_path_uppercase.http", {0}},
      {"127_path_pct_unreserved.http", {0}},
      {"129_path_encoded_nul.http", {0}},
      {"134_path_overlong_utf8_dot.http", {0}},
      {"135_path_double_encoded.http", {0}},
      {"136_path_dotdot_above_root.http", {0}},
  };
  return m;
}

struct Outcome {
  ParseResult::Kind kind = ParseResult::incomplete;
  std::uint16_t status = 0;
  int requests = 0;  // requests fully parsed (head + body)
  std::string body;  // decoded body of the last request
};

ChunkedDecoder::Limits corpus_chunk_limits() {
  ChunkedDecoder::Limits l;
  l.max_body_bytes = test_limits().max_body_bytes;
  return l;
}

// Replays a raw case: heads through the request parser (in `step`-byte reads, 0 = all at once),
// bodies through Content-Length or the chunked decoder; stops at the first error.
Outcome replay(const std::string& data, std::size_t step) {
  Outcome o;
  std::size_t pos = 0;
  std::vector<Header> hv;
  hv.reserve(128);
  while (pos < data.size()) {
    RequestHead h;
    h.headers = &hv;
    HeadScan scan;
    ParseResult r = ParseResult::more();
    std::size_t avail = step ? 0 : data.size() - pos;
    for (;;) {
      if (step) avail = std::min(avail + step, data.size() - pos);
      r = parse_request_head(std::string_view(data).substr(pos, avail), test_limits(), scan, h);
      if (r.kind != ParseResult::incomplete || avail == data.size() - pos) break;
    }
    if (r.kind != ParseResult::complete) {
      o.kind = r.kind;
      o.status = r.status;
      return o;
    }
    pos += h.head_bytes;
    o.body.clear();
    if (h.body == BodyKind::content_length) {
      if (data.size() - pos < h.content_length) {
        o.kind = ParseResult::incomplete;
        return o;
      }
      o.body = data.substr(pos, h.content_length);
      pos += h.content_length;
    } else if (h.body == BodyKind::chunked) {
      ChunkedDecoder dec(corpus_chunk_limits());
      ParseResult cr = ParseResult::more();
      while (pos < data.size()) {
        const std::size_t n = step ? std::min(step, data.size() - pos) : data.size() - pos;
        std::size_t consumed = 0;
        std::string_view span;
        cr = dec.feed(std::string_view(data).substr(pos, n), consumed, span);
        o.body.append(span);
        pos += consumed;
        if (cr.kind != ParseResult::incomplete) break;
      }
      if (cr.kind != ParseResult::complete) {
        o.kind = cr.kind;
        o.status = cr.status;
        return o;
      }
    }
    ++o.requests;
    o.kind = ParseResult::complete;
  }
  return o;
}

std::vector<std::vector<std::string>> read_manifest(const std::filesystem::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_file(p));
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (;;) {
      std::size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(cols));
  }
  return rows;
}

}  // namespace

TEST_CASE("request: hostile corpus replayed at the parser level", "[http][corpus]") {
  const std::filesystem::path dir = std::filesystem::path(LG_SHARED_DIR) / "corpus/http";
  REQUIRE(std::filesystem::exists(dir / "MANIFEST.tsv"));
  const auto rows = read_manifest(dir / "MANIFEST.tsv");
  const auto& expect = corpus_expectations();
  std::size_t replayed = 0;
  for (const auto& row : rows) {
    REQUIRE(row.size() >= 4);
    const std::string& file = row[0];
    auto it = expect.find(file);
    if (it == expect.end()) {
      WARN("corpus case not classified for the parser: " << file);
      continue;
    }
    const Expect& e = it->second;
    const std::string data = read_file(dir / "cases" / file);
    REQUIRE_FALSE(data.empty());
    if (e.status != 0) {
      // Our status must be one the manifest allows.
      INFO(file << " expected: " << row[3]);
      CHECK(row[3].find(std::to_string(e.status)) != std::string::npos);
    }
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
      INFO(file << " read size " << step);
      Outcome o = replay(data, step);
      if (e.status != 0) {
        CHECK(o.kind == ParseResult::error);
        CHECK(o.status == e.status);
      } else {
        CHECK(o.kind == ParseResult::complete);
        CHECK(o.requests == e.requests);
      }
      if (file == "003_ok_post_chunked.http" || file == "059_chunk_trailer_framing.http" ||
          file == "002_ok_post_cl.http" || file == "007_ok_cl_leading_zeros.http") {
        CHECK(o.body == "hello");
      }
    }
    ++replayed;
  }
  CHECK(replayed == expect.size());  // every classified case is still in the corpus
}

TEST_CASE("request: corpus details beyond the status", "[http][corpus]") {
  const std::filesystem::path dir = std::filesystem::path(LG_SHARED_DIR) / "corpus/http/cases";
  auto head_of = [&](const char* file) { return req(read_file(dir / file)); };
  Summary e = head_of("110_expect_100_continue.http");
  CHECK(e.expect_continue);
  CHECK(e.content_length == 5);
  Summary h2c = head_of("113_h2c_upgrade_smuggling.http");
  CHECK(h2c.has_upgrade);
  CHECK_FALSE(h2c.upgrade_websocket);
  CHECK(head_of("129_path_encoded_nul.http").path == "/admin%00.css");
  CHECK(head_of("123_path_double_slash.http").path == "//admin");
  CHECK(head_of("007_ok_cl_leading_zeros.http").content_length == 5);
  Summary g = head_of("040_get_with_body_pipelined.http");
  CHECK(g.body == int(BodyKind::content_length));
  CHECK(g.content_length == 5);
}
