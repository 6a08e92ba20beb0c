// Parsed HTTP/1.x message heads. Every string_view points into the caller's read buffer and dies
// when that buffer is compacted or reused.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace lg::http {

struct Header {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // OWS trimmed
};

// Outcome of a parse step. `status` is the HTTP status to answer with when kind == error
// (400, 413, 414, 431, 501, 505, 417 for requests; 502 for upstream responses).
struct ParseResult {
  enum Kind : std::uint8_t { complete, incomplete, error } kind = incomplete;
  std::uint16_t status = 0;
  const char* reason = "";  // static string, safe to log
  static ParseResult ok() { return {complete, 0, ""}; }
  static ParseResult more() { return {incomplete, 0, ""}; }
  static ParseResult fail(std::uint16_t s, const char* why) { return {error, s, why}; }
};

enum class BodyKind : std::uint8_t {
  none,            // no body
  content_length,  // exactly `content_length` bytes
  chunked,         // chunked transfer coding (only `chunked`, validated)
  until_close,     // responses only: read until the upstream closes
};

struct RequestHead {
  std::string_view method;
  std::uint16_t method_bit = 0;  // lg::Method bit; 0 = not one we implement
  std::string_view target;       // request-target as received
  std::string_view path;         // origin-form path part of target (before '?'), or from absolute-form
  std::string_view query;        // after '?', without it; empty if none
  bool has_query = false;
  std::uint8_t version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  std::vector<Header>* headers = nullptr;  // caller-owned, cleared and filled by the parser
  std::size_t head_bytes = 0;  // bytes from the start of the buffer through the empty line

  // Semantics extracted while parsing.
  std::string_view host;  // from Host (or absolute-form authority); validated
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;         // after Connection tokens and version
  bool expect_continue = false;   // Expect: 100-continue on HTTP/1.1 with a body
  bool upgrade_websocket = false; // Upgrade: websocket and Connection: upgrade
  bool has_upgrade = false;       // any Upgrade header (stripped unless websocket is allowed)
  std::string_view connection;    // raw Connection value(s) of the first line, for hop-by-hop names
};

struct ResponseHead {
  std::uint16_t status = 0;
  std::uint8_t version_minor = 1;
  std::string_view reason;
  std::vector<Header>* headers = nullptr;
  std::size_t head_bytes = 0;
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  // upstream connection reusable after this response
  std::string_view connection;
};

// Case-insensitive ASCII comparison for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

// True if `token` appears in the comma-separated list `list` (case-insensitive, OWS trimmed).
bool list_contains_token(std::string_view list, std::string_view token);

}  // namespace lg::http
