// Strict upstream response-head parser: every malformed or ambiguous head is a 502.
#include "http/response_parser.hpp"
#include "http/status.hpp"

#include <catch2/catch.hpp>
#include <ostream>
#include <string>
#include <vector>

using namespace lg::http;
using namespace std::string_literals;

namespace {

constexpr std::size_t kMaxBytes = 64 * 1024;
constexpr std::size_t kMaxHeaders = 100;

struct Resp {
  ParseResult::Kind kind = ParseResult::incomplete;
  std::uint16_t error = 0;
  std::uint16_t status = 0;
  int version_minor = 1;
  std::string reason;
  int body = 0;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  std::string connection;
  std::size_t head_bytes = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const Resp&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Resp& r) {
  return os << "{kind=" << int(r.kind) << " error=" << r.error << " status=" << r.status
            << " body=" << r.body << " cl=" << r.content_length << " ka=" << r.keep_alive
            << " hb=" << r.head_bytes << "}";
}

Resp summarize(const ParseResult& pr, const ResponseHead& h) {
  Resp r;
  r.kind = pr.kind;
  r.error = pr.status;
  if (pr.kind != ParseResult::complete) return r;
  r.status = h.status;
  r.version_minor = h.version_minor;
  r.reason = std::string(h.reason);
  r.body = static_cast<int>(h.body);
  r.content_length = h.content_length;
  r.keep_alive = h.keep_alive;
  r.connection = std::string(h.connection);
  r.head_bytes = h.head_bytes;
  for (const Header& x : *h.headers) r.headers.emplace_back(x.name, x.value);
  return r;
}

Resp parse_pieces(std::string_view in, bool head_request, std::size_t step,
                  std::size_t max_bytes = kMaxBytes) {
  std::vector<Header> hv;
  hv.reserve(128);
  ResponseHead h;
  h.headers = &hv;
  HeadScan scan;
  std::string buf;
  ParseResult r = ParseResult::more();
  std::size_t i = 0;
  do {
    const std::size_t n = step == 0 ? in.size() - i : std::min(step, in.size() - i);
    buf.append(in.substr(i, n));
    i += n;
    r = parse_response_head(buf, max_bytes, kMaxHeaders, head_request, scan, h);
  } while (r.kind == ParseResult::incomplete && i < in.size());
  return summarize(r, h);
}

// All at once and one byte at a time must agree.
Resp resp(std::string_view in, bool head_request = false) {
  Resp once = parse_pieces(in, head_request, 0);
  Resp bytewise = parse_pieces(in, head_request, 1);
  CHECK(bytewise == once);
  return once;
}

std::uint16_t error_of(std::string_view in, bool head_request = false) {
  Resp r = resp(in, head_request);
  return r.kind == ParseResult::error ? r.error : 0;
}

}  // namespace

TEST_CASE("response: simple 200 with Content-Length", "[http]") {
  Resp r = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello");
  REQUIRE(r.kind == ParseResult::complete);
  CHECK(r.status == 200);
  CHECK(r.reason == "OK");
  CHECK(r.version_minor == 1);
  CHECK(r.body == int(BodyKind::content_length));
  CHECK(r.content_length == 5);
  CHECK(r.keep_alive);
  CHECK(r.head_bytes == 64);
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[1] == std::pair<std::string, std::string>("Content-Type", "text/plain"));
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n").kind == ParseResult::incomplete);
}

TEST_CASE("response: status line", "[http]") {
  Resp empty_reason = resp("HTTP/1.1 204 \r\n\r\n");
  REQUIRE(empty_reason.kind == ParseResult::complete);
  CHECK(empty_reason.reason.empty());
  Resp no_sp = resp("HTTP/1.1 204\r\n\r\n");
  REQUIRE(no_sp.kind == ParseResult::complete);
  CHECK(no_sp.status == 204);
  Resp odd = resp("HTTP/1.1 404 Not\tFound caf\xC3\xA9 (x)\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(odd.kind == ParseResult::complete);
  CHECK(odd.reason == "Not\tFound caf\xC3\xA9 (x)");
  CHECK(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").version_minor == 0);
  CHECK(resp("HTTP/1.7 200 OK\r\nContent-Length: 0\r\n\r\n").version_minor == 1);
  CHECK(resp("HTTP/1.1 100 Continue\r\n\r\n").status == 100);
  CHECK(resp("HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n").status == 599);

  for (const char* bad :
       {"HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/2 200 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n", "HTTP/0.9 200 OK\r\n\r\n", "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1\t200 OK\r\n\r\n", "HTTP/1.1 200\tOK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n", "HTTP/1.1 200 O\x7fK\r\n\r\n", "HTTP/1.1 200 OK\rX\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1\r\n\r\n", "ICY 200 OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n"}) {
    INFO(bad);
    CHECK(error_of(bad) == 502);
  }
  // A bad status line fails as soon as it is complete.
  CHECK(parse_pieces("HTTP/1.1 999 X\r\nServer: s", false, 0).error == 502);
}

TEST_CASE("response: field-line strictness", "[http]") {
  auto with = [](std::string_view fields) {
    return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"s + std::string(fields) + "\r\n";
  };
  CHECK(error_of(with("X: a\r\n")) == 0);
  for (const char* bad : {"X: a\r\n b\r\n", " X: a\r\n", "X : a\r\n", "NoColon\r\n", ": a\r\n",
                          "X: a\x01\r\n", "X: a\rb\r\n", "X\xC3\xA9: a\r\n", "X: a\x0b\r\n"}) {
    INFO(bad);
    CHECK(error_of(with(bad)) == 502);
  }
  CHECK(error_of("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n") == 502);
  CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n") == 502);
  CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n") == 502);
  CHECK(parse_pieces("HTTP/1.1 200 OK\r\nX: a\n", false, 0).error == 502);  // before the end
}

TEST_CASE("response: limits", "[http]") {
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(error_of(many + "\r\n") == 0);
  CHECK(error_of(many + "X-Extra: v\r\n\r\n") == 502);
  const std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
  CHECK(parse_pieces(big, false, 0, big.size()).kind == ParseResult::complete);
  CHECK(parse_pieces(big, false, 0, big.size() - 1).error == 502);
  CHECK(parse_pieces(big, false, 1, big.size() - 1).error == 502);
  CHECK(parse_pieces(big.substr(0, 80), false, 0, 64).error == 502);  // incomplete but too big
}

TEST_CASE("response: body framing", "[http]") {
  auto body_of = [](std::string_view in, bool head = false) { return resp(in, head).body; };
  const int none = int(BodyKind::none), cl = int(BodyKind::content_length),
            chunked = int(BodyKind::chunked), close = int(BodyKind::until_close);

  CHECK(body_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true) == none);
  CHECK(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true) == none);
  CHECK(body_of("HTTP/1.1 100 Continue\r\n\r\n") == none);
  CHECK(body_of("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") == none);
  CHECK(body_of("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n") == none);
  CHECK(body_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n") == none);
  CHECK(resp("HTTP/1.1 304 Not Modified\r\n\r\n").keep_alive);

  CHECK(body_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == cl);
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n").content_length == 7);
  CHECK(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == chunked);
  CHECK(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n") == chunked);
  CHECK(body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == chunked);
  CHECK(
      body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n") ==
      chunked);

  Resp gz = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  CHECK(gz.body == close);
  CHECK_FALSE(gz.keep_alive);
  Resp plain = resp("HTTP/1.1 200 OK\r\nServer: s\r\n\r\n");
  CHECK(plain.body == close);
  CHECK_FALSE(plain.keep_alive);

  // Duplicate Content-Length: identical values are one value; differing ones are fatal.
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").content_length ==
        5);
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").content_length == 5);
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n").content_length ==
        5);

  for (const char* bad :
       {"Content-Length: 5\r\nContent-Length: 6\r\n", "Content-Length: 5, 6\r\n",
        "Content-Length: -1\r\n", "Content-Length: 0x5\r\n", "Content-Length: 5 5\r\n",
        "Content-Length: \r\n", "Content-Length: 5,\r\n",
        "Content-Length: 18446744073709551616\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked, gzip\r\n", "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, \r\n", "Transfer-Encoding: \r\n",
        "Transfer-Encoding: chunked;x=1\r\n"}) {
    INFO(bad);
    CHECK(error_of("HTTP/1.1 200 OK\r\n"s + bad + "\r\n") == 502);
  }
  // Framing is checked even when the status says there is no body.
  CHECK(error_of("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n") == 502);
  CHECK(error_of("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == 502);
}

TEST_CASE("response: keep-alive", "[http]") {
  CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  Resp c = resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n");
  CHECK_FALSE(c.keep_alive);
  CHECK(c.connection == "Close");
  CHECK_FALSE(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  CHECK(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  CHECK_FALSE(resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);  // until close
  CHECK_FALSE(
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x\r\nConnection: close\r\n\r\n")
          .keep_alive);
}

TEST_CASE("response: pipelined bytes after the head are left alone", "[http]") {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
  Resp r = resp(in);
  REQUIRE(r.kind == ParseResult::complete);
  CHECK(r.head_bytes == 38);
  Resp second = resp(std::string_view(in).substr(r.head_bytes + 2));
  CHECK(second.status == 204);
}

TEST_CASE("reason_phrase", "[http]") {
  CHECK(reason_phrase(100) == "Continue");
  CHECK(reason_phrase(101) == "Switching Protocols");
  CHECK(reason_phrase(200) == "OK");
  CHECK(reason_phrase(206) == "Partial Content");
  CHECK(reason_phrase(301) == "Moved Permanently");
  CHECK(reason_phrase(304) == "Not Modified");
  CHECK(reason_phrase(308) == "Permanent Redirect");
  CHECK(reason_phrase(400) == "Bad Request");
  CHECK(reason_phrase(413) == "Content Too Large");
  CHECK(reason_phrase(414) == "URI Too Long");
  CHECK(reason_phrase(417) == "Expectation Failed");
  CHECK(reason_phrase(429) == "Too Many Requests");
  CHECK(reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(reason_phrase(451) == "Unavailable For Legal Reasons");
  CHECK(reason_phrase(501) == "Not Implemented");
  CHECK(reason_phrase(502) == "Bad Gateway");
  CHECK(reason_phrase(505) == "HTTP Version Not Supported");
  const std::uint16_t standard[] = {100, 101, 200, 201, 202, 203, 204, 205, 206, 301, 302, 303,
                                    304, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
                                    409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
                                    428, 429, 431, 451, 500, 501, 502, 503, 504, 505};
  for (std::uint16_t code : standard) {
    INFO(code);
    CHECK(reason_phrase(code) != "Unknown");
  }
  CHECK(reason_phrase(0) == "Unknown");
  CHECK(reason_phrase(299) == "Unknown");
  CHECK(reason_phrase(599) == "Unknown");
  CHECK(reason_phrase(1000) == "Unknown");
}
