// Whole responses for the JWKS fetcher: framing by Content-Length, chunks or close; caps; 1xx.
#include "http/response_reader.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace lg::http;

namespace {

struct Read {
  ParseResult::Kind kind;
  std::string reason;
  std::uint16_t status = 0;
  std::string body;
};

// Feeds `raw` in pieces of `step` bytes (the caller's buffer only grows), then the close if
// `close`; stops at the first complete or error.
Read read(const std::string& raw, std::size_t step, bool close, std::size_t max_body = 1 << 20) {
  ResponseReader r(max_body);
  std::string buf;
  ParseResult res = ParseResult::more();
  for (std::size_t i = 0; i < raw.size() && res.kind == ParseResult::incomplete; i += step) {
    buf.append(raw, i, step);
    res = r.update(buf, false);
  }
  if (res.kind == ParseResult::incomplete && close) res = r.update(buf, true);
  return {res.kind, res.reason, r.status(), r.body()};
}

}  // namespace

TEST_CASE("response reader: the three framings, whole or byte by byte", "[http][response_reader]") {
  const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"keys\":[]}";
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ke\r\n7;x=y\r\nys\":[]}\r\n0\r\nT: v\r\n\r\n";
  const std::string closed = "HTTP/1.0 200 OK\r\n\r\n{\"keys\":[]}";
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{4096}}) {
    INFO("step " << step);
    for (const std::string* raw : {&cl, &chunked}) {
      const Read r = read(*raw, step, false);
      CHECK(r.kind == ParseResult::complete);
      CHECK(r.status == 200);
      CHECK(r.body == "{\"keys\":[]}");
    }
    const Read open = read(closed, step, false);
    CHECK(open.kind == ParseResult::incomplete);  // only the close ends it
    const Read r = read(closed, step, true);
    CHECK(r.kind == ParseResult::complete);
    CHECK(r.body == "{\"keys\":[]}");
  }
}

TEST_CASE("response reader: status, interim responses and bodiless answers", "[http][response_reader]") {
  Read r = read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1, false);
  CHECK(r.kind == ParseResult::complete);
  CHECK(r.status == 200);
  CHECK(r.body == "ok");
  r = read("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 5, false);
  CHECK(r.kind == ParseResult::complete);
  CHECK(r.status == 404);
  r = read("HTTP/1.1 204 No Content\r\n\r\n", 1, false);
  CHECK(r.kind == ParseResult::complete);
  CHECK(r.body.empty());
  r = read("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 64, false);
  CHECK(r.kind == ParseResult::error);
  CHECK(r.reason == std::string("unexpected 1xx response"));
  // At most 8 interim heads, however they arrive (whole, or one per read).
  std::string many;
  for (int i = 0; i < 9; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
  many += "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (std::size_t step : {std::size_t{25}, std::size_t{4096}}) {  // 25: one interim head per read
    INFO("step " << step);
    r = read(many, step, false);
    CHECK(r.kind == ParseResult::error);
    CHECK(r.reason == std::string("unexpected 1xx response"));
  }
}

TEST_CASE("response reader: truncation, caps and encodings are errors", "[http][response_reader]") {
  Read r = read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 4, true);
  CHECK(r.kind == ParseResult::error);
  CHECK(r.reason == std::string("connection closed before the end of the body"));
  r = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 4, true);
  CHECK(r.reason == std::string("connection closed before the last chunk"));
  r = read("HTTP/1.1 200 OK\r\nContent-Le", 4, true);
  CHECK(r.reason == std::string("connection closed before the response head"));
  r = read("", 1, true);
  CHECK(r.kind == ParseResult::error);

  r = read("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 64, false, 10);
  CHECK(r.reason == std::string("response body too large"));  // refused before the body
  r = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n", 7, false, 10);
  CHECK(r.reason == std::string("response body too large"));
  r = read("HTTP/1.1 200 OK\r\n\r\n" + std::string(11, 'x'), 3, false, 10);
  CHECK(r.reason == std::string("response body too large"));
  r = read("HTTP/1.1 200 OK\r\n\r\n" + std::string(10, 'x'), 3, true, 10);
  CHECK(r.kind == ParseResult::complete);

  r = read("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", 64, false);
  CHECK(r.reason == std::string("content-encoding not supported"));
  r = read("HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\nxx", 64, false);
  CHECK(r.kind == ParseResult::complete);
  r = read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 64, false);
  CHECK(r.kind == ParseResult::error);  // ambiguous framing, as for upstreams
  r = read("HTTP/1.1 200 OK\nContent-Length: 2\n\nxx", 64, false);
  CHECK(r.kind == ParseResult::error);
}
