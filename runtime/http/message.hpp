// Parsed HTTP/1.x message heads. Every string_view points into the caller's read buffer and dies
// when that buffer is compacted or reused.
#pragma once
#include <array>
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

// RFC 9110 §9.2.2: methods a client may repeat (a retry on a fresh connection is safe).
bool idempotent_method(std::string_view method);

// Case-insensitive ASCII comparison for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

// True if `token` appears in the comma-separated list `list` (case-insensitive, OWS trimmed).
bool list_contains_token(std::string_view list, std::string_view token);

// Building blocks shared by the request, response and chunked parsers (not a public API).
namespace detail {

// One 256-entry table of byte classes (RFC 9110 §5.6.2, §5.5; RFC 3986 for hosts).
enum ByteClass : std::uint8_t {
  kTchar = 1 << 0,       // token character
  kFieldVchar = 1 << 1,  // field-value byte: VCHAR, obs-text, SP, HTAB
  kTargetChar = 1 << 2,  // request-target byte: VCHAR except '#'
  kHexDigit = 1 << 3,
  kDigit = 1 << 4,
  kRegName = 1 << 5,     // reg-name / IPv4 byte: unreserved, sub-delims but ',', '%'
  kOws = 1 << 6,         // SP, HTAB
};

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> t{};
  constexpr std::string_view tspecial = "!#$%&'*+-.^_`|~";
  // ',' is a sub-delim but in a Host it would look like two merged Host lines: refused.
  constexpr std::string_view subdelim = "!$&'()*+;=-._~%";
  for (int c = 0; c < 256; ++c) {
    std::uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    const bool special = tspecial.find(static_cast<char>(c)) != std::string_view::npos;
    const bool sub = subdelim.find(static_cast<char>(c)) != std::string_view::npos;
    if (alpha || digit || special) v |= kTchar;
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t') v |= kFieldVchar;
    if (c >= 0x21 && c <= 0x7e && c != '#') v |= kTargetChar;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHexDigit;
    if (digit) v |= kDigit;
    if (alpha || digit || sub) v |= kRegName;
    if (c == ' ' || c == '\t') v |= kOws;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}
inline constexpr std::array<std::uint8_t, 256> kByteClass = make_byte_classes();

inline bool has_class(char c, std::uint8_t cls) {
  return (kByteClass[static_cast<unsigned char>(c)] & cls) != 0;
}

// Case-insensitive comparison against a lower-case ASCII literal.
bool iequals_lower(std::string_view s, std::string_view lower_literal);

// Parses one field line "name:OWS value OWS CRLF" starting at `p`, inside a head [.., end) already
// known to end in CRLF. On success fills `out`, moves `p` past the CRLF and returns nullptr;
// otherwise returns a static reason and leaves `p` unspecified.
const char* parse_field_line(const char*& p, const char* end, Header& out);

// True if every byte of [p, e) is a field-value byte (VCHAR, obs-text, SP, HTAB).
bool valid_field_value(const char* p, const char* e);

// Iterates the elements of a comma-separated list, OWS trimmed, empty elements included
// ("a, ,b" yields "a", "", "b"; "" yields one empty element).
class ListIter {
 public:
  explicit ListIter(std::string_view list) : rest_(list) {}
  bool next(std::string_view& element);

 private:
  std::string_view rest_;
  bool done_ = false;
};

// True if `s` is 1*tchar.
bool is_token(std::string_view s);

// 1*DIGIT to uint64 (leading zeros allowed). invalid: empty or a non-digit; overflow: > 2^64-1.
enum class NumParse : std::uint8_t { ok, invalid, overflow };
NumParse parse_decimal(std::string_view s, std::uint64_t& value);

}  // namespace detail

}  // namespace lg::http
