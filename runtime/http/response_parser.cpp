// Strict, incremental, zero-copy parser for upstream response heads (RFC 9112 §4, §6).
// Every malformed or ambiguous head is a 502: the upstream connection is then closed.
#include "http/response_parser.hpp"

#include <cstring>

namespace lg::http {
namespace {

using detail::has_class;
using detail::iequals_lower;
using detail::kDigit;
using detail::kFieldVchar;

// status-line = HTTP-version SP status-code SP [ reason-phrase ], [p, e) without the CRLF.
// "HTTP/1.1 200" (no SP before an empty reason) is accepted: it cannot be misread.
ParseResult parse_status_line(const char* p, const char* e, ResponseHead& out) {
  out.status = 0;
  out.version_minor = 1;
  out.reason = {};
  if (e - p < 12 || std::memcmp(p, "HTTP/", 5) != 0 || !has_class(p[5], kDigit) || p[6] != '.' ||
      !has_class(p[7], kDigit) || p[8] != ' ') {
    return ParseResult::fail(502, "invalid status line");
  }
  if (p[5] != '1') return ParseResult::fail(502, "unsupported HTTP version from upstream");
  out.version_minor = p[7] == '0' ? 0 : 1;
  p += 9;
  if (!has_class(p[0], kDigit) || !has_class(p[1], kDigit) || !has_class(p[2], kDigit)) {
    return ParseResult::fail(502, "invalid status code");
  }
  const int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  if (code < 100 || code > 599) return ParseResult::fail(502, "status code out of range");
  p += 3;
  if (p < e) {
    if (*p != ' ') return ParseResult::fail(502, "invalid status line");
    ++p;
    const char* r = p;
    while (p < e && has_class(*p, kFieldVchar)) ++p;
    if (p != e) return ParseResult::fail(502, "invalid byte in reason phrase");
    out.reason = std::string_view(r, static_cast<std::size_t>(e - r));
  }
  out.status = static_cast<std::uint16_t>(code);
  return ParseResult::ok();
}

struct Fields {
  std::size_t cl_lines = 0;
  bool cl_bad = false;     // syntax or overflow
  bool cl_differ = false;  // several values that are not all equal
  std::uint64_t cl = 0;
  bool te = false;
  bool te_bad = false;  // empty or non-token element
  std::size_t te_codings = 0, te_chunked = 0;
  bool te_last_chunked = false;
  bool have_connection = false, conn_close = false, conn_keep_alive = false;
};

// Content-Length: 1*DIGIT, or a list of identical values (RFC 9110 §8.6), possibly on several
// lines; anything else makes the framing unknowable.
void scan_content_length(std::string_view v, Fields& f) {
  detail::ListIter it(v);
  std::string_view e;
  while (it.next(e)) {
    std::uint64_t n = 0;
    if (detail::parse_decimal(e, n) != detail::NumParse::ok) {
      f.cl_bad = true;
      return;
    }
    if (f.cl_lines++ == 0) f.cl = n;
    else if (n != f.cl) f.cl_differ = true;
  }
}

void scan_transfer_encoding(std::string_view v, Fields& f) {
  f.te = true;
  detail::ListIter it(v);
  std::string_view e;
  while (it.next(e)) {
    ++f.te_codings;
    if (!detail::is_token(e)) {
      f.te_bad = true;
      f.te_last_chunked = false;
    } else {
      f.te_last_chunked = iequals_lower(e, "chunked");
      if (f.te_last_chunked) ++f.te_chunked;
    }
  }
}

void note_field(const Header& h, Fields& f, ResponseHead& out) {
  const std::string_view n = h.name;
  if (n.size() == 14 && iequals_lower(n, "content-length")) {
    scan_content_length(h.value, f);
  } else if (n.size() == 17 && iequals_lower(n, "transfer-encoding")) {
    scan_transfer_encoding(h.value, f);
  } else if (n.size() == 10 && iequals_lower(n, "connection")) {
    if (!f.have_connection) out.connection = h.value;  // first line only
    f.have_connection = true;
    detail::ListIter it(h.value);
    std::string_view e;
    while (it.next(e)) {
      if (iequals_lower(e, "close")) f.conn_close = true;
      else if (iequals_lower(e, "keep-alive")) f.conn_keep_alive = true;
    }
  }
}

ParseResult finish(const Fields& f, bool request_was_head, ResponseHead& out) {
  const bool v11 = out.version_minor == 1;
  if (f.cl_bad) return ParseResult::fail(502, "invalid Content-Length from upstream");
  if (f.cl_differ) return ParseResult::fail(502, "conflicting Content-Length from upstream");
  if (f.te) {
    if (f.cl_lines) return ParseResult::fail(502, "Content-Length and Transfer-Encoding");
    if (!v11) return ParseResult::fail(502, "Transfer-Encoding in HTTP/1.0 response");
    if (f.te_bad) return ParseResult::fail(502, "invalid transfer-coding from upstream");
    if (f.te_chunked > 1 || (f.te_chunked == 1 && !f.te_last_chunked)) {
      return ParseResult::fail(502, "chunked is not the final transfer-coding");
    }
  }
  out.keep_alive = v11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  const std::uint16_t s = out.status;
  if (request_was_head || s < 200 || s == 204 || s == 304) {
    out.body = BodyKind::none;
  } else if (f.te && f.te_last_chunked) {
    out.body = BodyKind::chunked;
  } else if (f.te) {  // codings we cannot delimit: the body ends when the upstream closes
    out.body = BodyKind::until_close;
    out.keep_alive = false;
  } else if (f.cl_lines) {
    out.body = BodyKind::content_length;
    out.content_length = f.cl;
  } else {
    out.body = BodyKind::until_close;
    out.keep_alive = false;
  }
  return ParseResult::ok();
}

}  // namespace

ParseResult parse_response_head(std::string_view buf, std::size_t max_header_bytes,
                                std::size_t max_headers, bool request_was_head, HeadScan& scan,
                                ResponseHead& out) {
  using detail::ScanStatus;
  const bool start_seen_before = scan.start_line_end != 0;
  ScanStatus st;
  for (;;) {
    st = detail::scan_head(buf, max_header_bytes, max_headers + 1, 0, scan);
    if (st != ScanStatus::start_line) break;
    ParseResult r = parse_status_line(buf.data(), buf.data() + scan.start_line_end, out);
    if (r.kind == ParseResult::error) return r;
  }
  switch (st) {
    case ScanStatus::bare_lf:
      return ParseResult::fail(502, "bare LF from upstream");
    case ScanStatus::too_many_lines:
      return ParseResult::fail(502, "too many header fields from upstream");
    case ScanStatus::too_many_leading_empty:
      return ParseResult::fail(502, "empty line before the status line");
    case ScanStatus::incomplete:
      if (buf.size() > max_header_bytes) {
        return ParseResult::fail(502, "upstream response header too large");
      }
      return ParseResult::more();
    default:
      break;
  }

  const char* b = buf.data();
  if (start_seen_before) {  // parsed in an earlier call: refresh the views
    ParseResult r = parse_status_line(b, b + scan.start_line_end, out);
    if (r.kind == ParseResult::error) return r;
  }
  out.head_bytes = scan.head_end;
  out.body = BodyKind::none;
  out.content_length = 0;
  out.keep_alive = true;
  out.connection = {};
  std::vector<Header>* headers = out.headers;
  if (headers) headers->clear();

  Fields f;
  const char* const head_end = b + scan.head_end;
  const char* p = b + scan.start_line_end + 2;
  while (!(p[0] == '\r' && p[1] == '\n')) {
    Header h;
    if (const char* why = detail::parse_field_line(p, head_end, h)) {
      return ParseResult::fail(502, why);
    }
    if (headers) headers->push_back(h);
    note_field(h, f, out);
  }
  return finish(f, request_was_head, out);
}

}  // namespace lg::http
