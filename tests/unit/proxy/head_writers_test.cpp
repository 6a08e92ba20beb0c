// Head serializers: the request sent upstream, the response head for the client, and the
// gateway's own error responses. Inputs come from the real parsers on literal message text.
#include "proxy/head_writers.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/request_parser.hpp"
#include "http/response_parser.hpp"

using namespace lg;
using namespace std::string_literals;

namespace {

// Owns the request text and the header vector the parsed head's views point into.
struct ParsedRequest {
  std::string text;
  std::vector<http::Header> headers;
  http::RequestHead head;
};

std::unique_ptr<ParsedRequest> parse_req(std::string text) {
  auto p = std::make_unique<ParsedRequest>();
  p->text = std::move(text);
  p->head.headers = &p->headers;
  http::HeadScan scan;
  http::ParseResult r = http::parse_request_head(p->text, http::RequestLimits{}, scan, p->head);
  INFO("request parse status " << r.status << " " << r.reason);
  REQUIRE(r.kind == http::ParseResult::complete);
  return p;
}

struct ParsedResponse {
  std::string text;
  std::vector<http::Header> headers;
  http::ResponseHead head;
};

std::unique_ptr<ParsedResponse> parse_resp(std::string text, bool request_was_head = false) {
  auto p = std::make_unique<ParsedResponse>();
  p->text = std::move(text);
  p->head.headers = &p->headers;
  http::HeadScan scan;
  http::ParseResult r = http::parse_response_head(p->text, 64 * 1024, 100, request_was_head, scan, p->head);
  INFO("response parse status " << r.status << " " << r.reason);
  REQUIRE(r.kind == http::ParseResult::complete);
  return p;
}

struct StartResult {
  std::string out;
  std::string request_id, traceparent, forwarded_for, hash_value;
};

StartResult start(const std::string& text, RequestHeadOptions opts = {}, std::string_view path = {}) {
  auto p = parse_req(text);
  StartResult s;
  ClientRequestFacts facts;
  write_upstream_request_start(s.out, p->head, path.empty() ? p->head.path : path, opts, facts);
  s.request_id = std::string(facts.request_id);
  s.traceparent = std::string(facts.traceparent);
  for (int i = 0; i < facts.forwarded_for_count; ++i)
    s.forwarded_for += (i ? ", " : "") + std::string(facts.forwarded_for[i]);
  s.hash_value = std::string(facts.hash_value);
  return s;
}

std::string client_head(const std::string& text, const ClientResponseOptions& o, bool request_was_head = false) {
  auto p = parse_resp(text, request_was_head);
  std::string out;
  write_client_response_head(out, p->head, o);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// write_upstream_request_start

TEST_CASE("upstream request: start line and end-to-end headers kept in order", "[proxy]") {
  StartResult s = start(
      "GET /a/b?x=1&y=2 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "Accept: */*\r\n"
      "User-Agent: t/1\r\n"
      "X-Custom:  spaced value  \r\n"
      "\r\n");
  CHECK(s.out ==
        "GET /a/b?x=1&y=2 HTTP/1.1\r\n"
        "Accept: */*\r\n"
        "User-Agent: t/1\r\n"
        "X-Custom: spaced value\r\n");
  CHECK(s.request_id.empty());
  CHECK(s.traceparent.empty());
  CHECK(s.forwarded_for.empty());
  CHECK(s.hash_value.empty());
}

TEST_CASE("upstream request: rewritten path, empty query kept, HTTP/1.0 upgraded to 1.1", "[proxy]") {
  SECTION("path replaced, query kept") {
    StartResult s = start("POST /api/v1/items?q=z HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", {},
                          "/items");
    CHECK(s.out == "POST /items?q=z HTTP/1.1\r\n");
  }
  SECTION("a bare '?' keeps an empty query") {
    StartResult s = start("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(s.out == "GET /p? HTTP/1.1\r\n");
  }
  SECTION("no query") {
    StartResult s = start("GET /p HTTP/1.0\r\n\r\n");
    CHECK(s.out == "GET /p HTTP/1.1\r\n");
  }
}

TEST_CASE("upstream request: hop-by-hop fields are dropped", "[proxy]") {
  StartResult s = start(
      "GET /ws HTTP/1.1\r\n"
      "Host: h\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Trailer: X-Checksum\r\n"
      "Upgrade: websocket\r\n"
      "HTTP2-Settings: AAMAAABkAAQAAP__\r\n"
      "A: 1\r\n"
      "\r\n");
  CHECK(s.out == "GET /ws HTTP/1.1\r\nA: 1\r\n");
}

TEST_CASE("upstream request: hop-by-hop names match case-insensitively", "[proxy]") {
  StartResult s = start(
      "GET / HTTP/1.1\r\n"
      "hOsT: h\r\n"
      "CONNECTION: close\r\n"
      "keep-ALIVE: 1\r\n"
      "proxy-CONNECTION: x\r\n"
      "te: trailers\r\n"
      "TRAILER: x\r\n"
      "uPgRaDe: h2c\r\n"
      "http2-settings: x\r\n"
      "X-REQUEST-ID: id-1\r\n"
      "TRACEPARENT: tp\r\n"
      "x-forwarded-FOR: 1.1.1.1\r\n"
      "X-FORWARDED-PROTO: https\r\n"
      "x-forwarded-host: evil\r\n"
      "X-REAL-IP: 6.6.6.6\r\n"
      "B: 2\r\n"
      "\r\n");
  CHECK(s.out == "GET / HTTP/1.1\r\nB: 2\r\n");
  CHECK(s.request_id == "id-1");
  CHECK(s.traceparent == "tp");
  CHECK(s.forwarded_for == "1.1.1.1");
}

TEST_CASE("upstream request: framing, expectation and identity fields are dropped", "[proxy]") {
  SECTION("Content-Length and Expect") {
    StartResult s = start(
        "PUT /u HTTP/1.1\r\n"
        "Host: h\r\n"
        "Content-Length: 5\r\n"
        "Expect: 100-continue\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n");
    CHECK(s.out == "PUT /u HTTP/1.1\r\nContent-Type: text/plain\r\n");
  }
  SECTION("Transfer-Encoding") {
    StartResult s = start(
        "POST /u HTTP/1.1\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Host: h\r\n"
        "Z: z\r\n"
        "\r\n");
    CHECK(s.out == "POST /u HTTP/1.1\r\nZ: z\r\n");
  }
  SECTION("identity fields: spoofing attempts never reach the upstream") {
    StartResult s = start(
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: admin.internal\r\n"
        "X-Real-IP: 10.0.0.1\r\n"
        "X-Forwarded-Port: 443\r\n"
        "X-Request-IDs: not-the-same-name\r\n"
        "\r\n");
    // X-Forwarded-Port and X-Request-IDs are not identity fields the gateway sets: forwarded.
    CHECK(s.out ==
          "GET / HTTP/1.1\r\n"
          "X-Forwarded-Port: 443\r\n"
          "X-Request-IDs: not-the-same-name\r\n");
    CHECK(s.request_id.empty());
    CHECK(s.forwarded_for.empty());
  }
}

TEST_CASE("upstream request: identity fields are captured, first line wins", "[proxy]") {
  StartResult s = start(
      "GET / HTTP/1.1\r\n"
      "Host: h\r\n"
      "X-Request-ID: client-id-1\r\n"
      "X-Request-ID: client-id-2\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n"
      "X-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n"
      "X-Forwarded-For: 10.0.0.3\r\n"
      "Accept: x\r\n"
      "\r\n");
  CHECK(s.out == "GET / HTTP/1.1\r\nAccept: x\r\n");
  CHECK(s.request_id == "client-id-1");
  CHECK(s.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(s.forwarded_for == "203.0.113.7, 10.0.0.2, 10.0.0.3");  // every field line, in order
}

TEST_CASE("upstream request: facts already set by the caller are not overwritten", "[proxy]") {
  auto p = parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: from-client\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
  ClientRequestFacts facts;
  facts.request_id = "preset";
  std::string out;
  write_upstream_request_start(out, p->head, p->head.path, {}, facts);
  CHECK(facts.request_id == "preset");
  REQUIRE(facts.forwarded_for_count == 1);
  CHECK(facts.forwarded_for[0] == "1.2.3.4");
  CHECK(out == "GET / HTTP/1.1\r\n");
}

TEST_CASE("upstream request: custom fields named by Connection are dropped", "[proxy]") {
  SECTION("listed names dropped, others kept") {
    StartResult s = start(
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "X-Secret: s\r\n"
        "Connection: keep-alive, X-Secret ,x-other\r\n"
        "X-Other: o\r\n"
        "X-Kept: k\r\n"
        "\r\n");
    CHECK(s.out == "GET / HTTP/1.1\r\nX-Kept: k\r\n");
  }
  SECTION("only the standard tokens: other fields kept") {
    StartResult s = start(
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "Connection: close, keep-alive\r\n"
        "X-Other: o\r\n"
        "\r\n");
    CHECK(s.out == "GET / HTTP/1.1\r\nX-Other: o\r\n");
  }
}

TEST_CASE("upstream request: consistent-hash key captured from a header", "[proxy]") {
  RequestHeadOptions o;
  o.hash_header = "x-user";
  StartResult s = start(
      "GET / HTTP/1.1\r\n"
      "Host: h\r\n"
      "X-User: alice\r\n"
      "X-User: bob\r\n"
      "\r\n",
      o);
  CHECK(s.hash_value == "alice");
  // Captured, but still forwarded.
  CHECK(s.out == "GET / HTTP/1.1\r\nX-User: alice\r\nX-User: bob\r\n");
}

TEST_CASE("upstream request: consistent-hash key captured from a cookie", "[proxy]") {
  RequestHeadOptions o;
  o.hash_cookie = "session";
  SECTION("cookie among several") {
    StartResult s = start(
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "Cookie: theme=dark; session=abc123; lang=en\r\n"
        "\r\n",
        o);
    CHECK(s.hash_value == "abc123");
    CHECK(s.out == "GET / HTTP/1.1\r\nCookie: theme=dark; session=abc123; lang=en\r\n");
  }
  SECTION("first cookie, last cookie") {
    CHECK(start("GET / HTTP/1.1\r\nHost: h\r\ncookie: session=first\r\n\r\n", o).hash_value == "first");
    CHECK(start("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1;session=last\r\n\r\n", o).hash_value == "last");
  }
  SECTION("a name that only ends with the cookie name does not match") {
    StartResult s = start("GET / HTTP/1.1\r\nHost: h\r\nCookie: mysession=x; session=y\r\n\r\n", o);
    CHECK(s.hash_value == "y");
  }
  SECTION("absent cookie: no key") {
    StartResult s = start("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n", o);
    CHECK(s.hash_value.empty());
  }
  SECTION("a header named like the cookie is not a cookie") {
    StartResult s = start("GET / HTTP/1.1\r\nHost: h\r\nSession: hdr\r\n\r\n", o);
    CHECK(s.hash_value.empty());
  }
}

// ---------------------------------------------------------------------------------------------
// finish_upstream_request / write_host_line

TEST_CASE("finish_upstream_request: minimal, no body", "[proxy]") {
  GatewayRequestHeaders h;
  h.request_id = "rid-1";
  h.client_ip = "192.0.2.10";
  std::string out = "START\r\n";
  finish_upstream_request(out, h);
  CHECK(out ==
        "START\r\n"
        "X-Request-ID: rid-1\r\n"
        "X-Forwarded-For: 192.0.2.10\r\n"
        "X-Real-IP: 192.0.2.10\r\n"
        "X-Forwarded-Proto: http\r\n");
}

TEST_CASE("finish_upstream_request: X-Forwarded-For appends the peer, traceparent, host", "[proxy]") {
  GatewayRequestHeaders h;
  h.request_id = "rid-2";
  h.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  h.client_ip = "198.51.100.5";
  const std::string_view lines[] = {"203.0.113.1", "10.1.1.1"};
  h.forwarded_for = lines;
  h.forwarded_for_count = 2;
  h.forwarded_host = "api.example.com";
  h.proto = "https";
  std::string out;
  finish_upstream_request(out, h);
  CHECK(out ==
        "X-Request-ID: rid-2\r\n"
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
        "X-Forwarded-For: 203.0.113.1, 10.1.1.1, 198.51.100.5\r\n"
        "X-Real-IP: 198.51.100.5\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: api.example.com\r\n");
}

TEST_CASE("finish_upstream_request: body framing", "[proxy]") {
  GatewayRequestHeaders h;
  h.request_id = "r";
  h.client_ip = "::1";
  const std::string common =
      "X-Request-ID: r\r\n"
      "X-Forwarded-For: ::1\r\n"
      "X-Real-IP: ::1\r\n"
      "X-Forwarded-Proto: http\r\n";
  SECTION("Content-Length 0") {
    h.body = http::BodyKind::content_length;
    h.content_length = 0;
    std::string out;
    finish_upstream_request(out, h);
    CHECK(out == common + "Content-Length: 0\r\n");
  }
  SECTION("Content-Length large") {
    h.body = http::BodyKind::content_length;
    h.content_length = 18446744073709551615ull;
    std::string out;
    finish_upstream_request(out, h);
    CHECK(out == common + "Content-Length: 18446744073709551615\r\n");
  }
  SECTION("Content-Length 1234567") {
    h.body = http::BodyKind::content_length;
    h.content_length = 1234567;
    std::string out;
    finish_upstream_request(out, h);
    CHECK(out == common + "Content-Length: 1234567\r\n");
  }
  SECTION("chunked") {
    h.body = http::BodyKind::chunked;
    h.content_length = 99;  // ignored
    std::string out;
    finish_upstream_request(out, h);
    CHECK(out == common + "Transfer-Encoding: chunked\r\n");
  }
  SECTION("no body: neither field even with a stale length") {
    h.body = http::BodyKind::none;
    h.content_length = 42;
    std::string out;
    finish_upstream_request(out, h);
    CHECK(out == common);
  }
}

TEST_CASE("finish_upstream_request: websocket upgrade lines", "[proxy]") {
  GatewayRequestHeaders h;
  h.request_id = "w";
  h.client_ip = "10.0.0.9";
  h.websocket = true;
  std::string out;
  finish_upstream_request(out, h);
  CHECK(out ==
        "X-Request-ID: w\r\n"
        "X-Forwarded-For: 10.0.0.9\r\n"
        "X-Real-IP: 10.0.0.9\r\n"
        "X-Forwarded-Proto: http\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n");
}

TEST_CASE("upstream request: a full websocket head end to end", "[proxy]") {
  auto p = parse_req(
      "GET /chat HTTP/1.1\r\n"
      "Host: chat.example.com\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n");
  REQUIRE(p->head.upgrade_websocket);
  ClientRequestFacts facts;
  std::string out;
  write_upstream_request_start(out, p->head, p->head.path, {}, facts);
  GatewayRequestHeaders g;
  g.request_id = "id";
  g.client_ip = "1.2.3.4";
  g.forwarded_host = p->head.host;
  g.body = p->head.body;
  g.websocket = true;
  finish_upstream_request(out, g);
  std::string host;
  write_host_line(host, "10.0.0.1:8080");
  CHECK(out + host ==
        "GET /chat HTTP/1.1\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "X-Request-ID: id\r\n"
        "X-Forwarded-For: 1.2.3.4\r\n"
        "X-Real-IP: 1.2.3.4\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: chat.example.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Host: 10.0.0.1:8080\r\n"
        "\r\n");
}

TEST_CASE("write_host_line: replaces the buffer with the Host line and the empty line", "[proxy]") {
  std::string out = "stale contents";
  write_host_line(out, "backend.local:9000");
  CHECK(out == "Host: backend.local:9000\r\n\r\n");
  write_host_line(out, "[::1]:80");
  CHECK(out == "Host: [::1]:80\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// write_client_response_head

TEST_CASE("client response: hop-by-hop dropped, Content-Length re-derived, X-Request-ID set", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "gw-id";
  std::string out = client_head(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/plain\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Trailer: X-Sum\r\n"
      "Upgrade: h2c\r\n"
      "X-Request-ID: upstream-id\r\n"
      "Content-Length: 0012\r\n"
      "Set-Cookie: a=1\r\n"
      "\r\n",
      o);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Set-Cookie: a=1\r\n"
        "Content-Length: 12\r\n"
        "X-Request-ID: gw-id\r\n"
        "\r\n");
}

TEST_CASE("client response: upstream HTTP/1.0 status line becomes 1.1, reason kept", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "r";
  CHECK(client_head("HTTP/1.0 404 Nope Not Here\r\nContent-Length: 3\r\n\r\n", o) ==
        "HTTP/1.1 404 Nope Not Here\r\nContent-Length: 3\r\nX-Request-ID: r\r\n\r\n");
  CHECK(client_head("HTTP/1.1 299\r\nContent-Length: 0\r\n\r\n", o) ==
        "HTTP/1.1 299 \r\nContent-Length: 0\r\nX-Request-ID: r\r\n\r\n");
}

TEST_CASE("client response: custom fields named by Connection are dropped", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "r";
  CHECK(client_head(
            "HTTP/1.1 200 OK\r\n"
            "Connection: X-Internal, close\r\n"
            "X-Internal: secret\r\n"
            "X-Public: ok\r\n"
            "Content-Length: 1\r\n"
            "\r\n",
            o) ==
        "HTTP/1.1 200 OK\r\n"
        "X-Public: ok\r\n"
        "Content-Length: 1\r\n"
        "X-Request-ID: r\r\n"
        "\r\n");
}

TEST_CASE("client response: chunked re-framing only when asked", "[proxy]") {
  const std::string chunked_resp =
      "HTTP/1.1 200 OK\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Content-Type: application/json\r\n"
      "\r\n";
  ClientResponseOptions o;
  o.request_id = "r";
  SECTION("chunked for a 1.1 client") {
    o.chunked = true;
    CHECK(client_head(chunked_resp, o) ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: application/json\r\n"
          "Transfer-Encoding: chunked\r\n"
          "X-Request-ID: r\r\n"
          "\r\n");
  }
  SECTION("not chunked (1.0 client, body until close)") {
    o.chunked = false;
    o.keep_alive = false;
    o.client_http10 = true;
    CHECK(client_head(chunked_resp, o) ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: application/json\r\n"
          "X-Request-ID: r\r\n"
          "Connection: close\r\n"
          "\r\n");
  }
  SECTION("until-close upstream body re-framed as chunked") {
    o.chunked = true;
    CHECK(client_head("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", o) ==
          "HTTP/1.1 200 OK\r\nX: y\r\nTransfer-Encoding: chunked\r\nX-Request-ID: r\r\n\r\n");
  }
  SECTION("a Content-Length body is never chunked") {
    o.chunked = true;
    CHECK(client_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", o) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-ID: r\r\n\r\n");
  }
}

TEST_CASE("client response: passthrough Content-Length for HEAD and 304, never for 204", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "r";
  o.chunked = true;  // must not add chunked to a bodiless response that has a length to pass
  SECTION("response to HEAD") {
    CHECK(client_head("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nETag: \"x\"\r\n\r\n", o, true) ==
          "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 1024\r\nX-Request-ID: r\r\n\r\n");
  }
  SECTION("304") {
    CHECK(client_head("HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\n\r\n", o) ==
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\nX-Request-ID: r\r\n\r\n");
  }
  SECTION("204 never carries Content-Length") {
    o.chunked = false;
    CHECK(client_head("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX: 1\r\n\r\n", o) ==
          "HTTP/1.1 204 No Content\r\nX: 1\r\nX-Request-ID: r\r\n\r\n");
  }
  SECTION("HEAD response without a length: nothing") {
    o.chunked = false;
    CHECK(client_head("HTTP/1.1 200 OK\r\n\r\n", o, true) == "HTTP/1.1 200 OK\r\nX-Request-ID: r\r\n\r\n");
  }
}

TEST_CASE("client response: connection management lines", "[proxy]") {
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  ClientResponseOptions o;
  o.request_id = "r";
  SECTION("keep-alive to 1.1: nothing") {
    CHECK(client_head(resp, o) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r\r\n\r\n");
  }
  SECTION("close") {
    o.keep_alive = false;
    CHECK(client_head(resp, o) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r\r\nConnection: close\r\n\r\n");
  }
  SECTION("keep-alive announced to 1.0") {
    o.client_http10 = true;
    CHECK(client_head(resp, o) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r\r\nConnection: keep-alive\r\n\r\n");
  }
  SECTION("close wins over 1.0 keep-alive") {
    o.client_http10 = true;
    o.keep_alive = false;
    CHECK(client_head(resp, o) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r\r\nConnection: close\r\n\r\n");
  }
}

TEST_CASE("client response: 101 keeps Upgrade and announces Connection: Upgrade", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "r";
  o.upgrade = true;
  o.keep_alive = false;
  std::string out = client_head(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n",
      o);
  CHECK(out ==
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "X-Request-ID: r\r\n"
        "Connection: Upgrade\r\n"
        "\r\n");
}

TEST_CASE("client response: 101 without a Connection field keeps Upgrade", "[proxy]") {
  ClientResponseOptions o;
  o.request_id = "r";
  o.upgrade = true;
  CHECK(client_head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", o) ==
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Request-ID: r\r\nConnection: Upgrade\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// write_error_response / append_allow_list

TEST_CASE("write_error_response: exact 404", "[proxy]") {
  std::string out;
  write_error_response(out, 404, "no route", "abc-123", false);
  const std::string body = "{\"error\":\"no route\",\"status\":404,\"request_id\":\"abc-123\"}\n";
  REQUIRE(body.size() == 57);
  CHECK(out ==
        "HTTP/1.1 404 Not Found\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 57\r\n"
        "X-Request-ID: abc-123\r\n"
        "\r\n" +
            body);
}

TEST_CASE("write_error_response: 405 Allow list and Connection: close", "[proxy]") {
  std::string out = "prefix|";
  write_error_response(out, 405, "method not allowed", "r1", true, M_GET | M_HEAD | M_POST);
  const std::string body = "{\"error\":\"method not allowed\",\"status\":405,\"request_id\":\"r1\"}\n";
  CHECK(out ==
        "prefix|"
        "HTTP/1.1 405 Method Not Allowed\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: " +
            std::to_string(body.size()) +
            "\r\n"
            "X-Request-ID: r1\r\n"
            "Allow: GET, HEAD, POST\r\n"
            "Connection: close\r\n"
            "\r\n" +
            body);
}

TEST_CASE("write_error_response: 503 carries Retry-After", "[proxy]") {
  std::string out;
  write_error_response(out, 503, "no upstream target available", "x", false);
  const std::string body = "{\"error\":\"no upstream target available\",\"status\":503,\"request_id\":\"x\"}\n";
  CHECK(out ==
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: " +
            std::to_string(body.size()) +
            "\r\n"
            "X-Request-ID: x\r\n"
            "Retry-After: 1\r\n"
            "\r\n" +
            body);
  SECTION("and with close") {
    std::string o2;
    write_error_response(o2, 503, "m", "x", true);
    CHECK(o2.find("Connection: close\r\nRetry-After: 1\r\n\r\n") != std::string::npos);
  }
  SECTION("other 5xx do not") {
    std::string o2;
    write_error_response(o2, 502, "m", "x", true);
    CHECK(o2.find("Retry-After") == std::string::npos);
    CHECK(o2.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0) == 0);
  }
}

TEST_CASE("write_error_response: JSON escaping, Content-Length matches the body", "[proxy]") {
  std::string out;
  write_error_response(out, 400, "bad \"quote\" \\ and\nnewline", "", true);
  const std::string body =
      "{\"error\":\"bad \\\"quote\\\" \\\\ and\\nnewline\",\"status\":400,\"request_id\":\"\"}\n";
  CHECK(out ==
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: " +
            std::to_string(body.size()) +
            "\r\n"
            "X-Request-ID: \r\n"
            "Connection: close\r\n"
            "\r\n" +
            body);
  // Re-derive the length from the output itself.
  const std::size_t sep = out.find("\r\n\r\n");
  REQUIRE(sep != std::string::npos);
  const std::size_t cl_at = out.find("Content-Length: ") + 16;
  const std::size_t cl = std::stoul(out.substr(cl_at, out.find("\r\n", cl_at) - cl_at));
  CHECK(cl == out.size() - (sep + 4));
}

TEST_CASE("append_allow_list: canonical order and separators", "[proxy]") {
  auto allow = [](std::uint16_t m) {
    std::string s;
    append_allow_list(s, m);
    return s;
  };
  CHECK(allow(0).empty());
  CHECK(allow(M_DELETE) == "DELETE");
  CHECK(allow(M_TRACE | M_GET) == "GET, TRACE");
  CHECK(allow(kAllMethods) == "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE");
  CHECK(allow(M_OPTIONS | M_PATCH | M_PUT) == "PUT, PATCH, OPTIONS");
}
