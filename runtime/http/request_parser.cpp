// Strict, incremental, zero-copy HTTP/1.1 request-head parser (RFC 9112 §2-§6, RFC 9110 §5-§7).
//
// Two passes over the head, both linear: scan_head() looks for line ends with memchr (only in
// bytes not seen before) and enforces the size and line-count limits on partial input; once the
// empty line has arrived the field lines are validated byte by byte through the class table.
// The request line is validated as soon as it is complete, so a bad request line fails before
// the rest of the head arrives, in the same order whatever the read sizes were.
#include "http/request_parser.hpp"

#include <cstring>

#include "config/config.hpp"

namespace lg::http {

using detail::has_class;
using detail::iequals_lower;
using detail::kDigit;
using detail::kFieldVchar;
using detail::kHexDigit;
using detail::kOws;
using detail::kRegName;
using detail::kTargetChar;
using detail::kTchar;

namespace detail {

ScanStatus scan_head(std::string_view buf, std::size_t max_bytes, std::size_t max_lines,
                     std::size_t max_leading_empty, HeadScan& s) {
  if (s.head_end != 0) return ScanStatus::complete;
  const char* b = buf.data();
  const std::size_t end = buf.size() < max_bytes ? buf.size() : max_bytes;
  std::size_t pos = s.scanned;
  while (pos < end) {
    const void* hit = std::memchr(b + pos, '\n', end - pos);
    if (hit == nullptr) break;
    const auto i = static_cast<std::size_t>(static_cast<const char*>(hit) - b);
    // The line's CR is at i-1; b[line_start-1] is the previous LF, so i-1 >= line_start here.
    if (i == 0 || b[i - 1] != '\r') return ScanStatus::bare_lf;
    const std::size_t cr = i - 1;
    pos = i + 1;
    s.scanned = pos;
    if (cr == s.line_start) {  // empty line
      s.line_start = pos;
      if (s.lines == 0) {
        if (++s.leading_empty > max_leading_empty) return ScanStatus::too_many_leading_empty;
        continue;
      }
      s.head_end = pos;
      return ScanStatus::complete;
    }
    s.line_start = pos;
    if (++s.lines > max_lines) return ScanStatus::too_many_lines;
    if (s.lines == 1) {
      s.start_line_end = cr;
      return ScanStatus::start_line;
    }
  }
  s.scanned = end > s.scanned ? end : s.scanned;
  return ScanStatus::incomplete;
}

}  // namespace detail

namespace {

constexpr std::size_t kMaxMethodBytes = 32;
constexpr std::size_t kMaxLeadingEmptyLines = 4;  // RFC 9112 §2.2: ignore at least one

// Host = uri-host [ ":" port ]: reg-name / IPv4 (unreserved, sub-delims, %HH) or "[" IPv6 "]";
// port = 1*5DIGIT <= 65535. No userinfo, path, query, fragment, spaces or backslashes.
bool valid_host(std::string_view h) {
  std::size_t i = 0;
  const std::size_t n = h.size();
  if (n == 0) return false;
  if (h[0] == '[') {
    ++i;
    while (i < n && (has_class(h[i], kHexDigit) || h[i] == ':' || h[i] == '.')) ++i;
    if (i == 1 || i >= n || h[i] != ']') return false;
    ++i;
  } else {
    while (i < n && has_class(h[i], kRegName)) {
      if (h[i] == '%') {
        if (i + 2 >= n || !has_class(h[i + 1], kHexDigit) || !has_class(h[i + 2], kHexDigit)) {
          return false;
        }
        i += 2;
      }
      ++i;
    }
    if (i == 0) return false;
  }
  if (i == n) return true;
  if (h[i] != ':') return false;
  ++i;
  const std::size_t digits = n - i;
  if (digits == 0 || digits > 5) return false;
  std::uint32_t port = 0;
  for (; i < n; ++i) {
    if (!has_class(h[i], kDigit)) return false;
    port = port * 10 + static_cast<std::uint32_t>(h[i] - '0');
  }
  return port <= 65535;
}

struct KnownMethod {
  std::string_view name;
  std::uint16_t bit;
};
constexpr KnownMethod kKnownMethods[] = {
    {"GET", M_GET},       {"POST", M_POST},   {"HEAD", M_HEAD},     {"PUT", M_PUT},
    {"DELETE", M_DELETE}, {"PATCH", M_PATCH}, {"OPTIONS", M_OPTIONS}, {"TRACE", M_TRACE},
};

std::uint16_t method_bit(std::string_view m) {  // case-sensitive (RFC 9110 §9.1)
  for (const KnownMethod& k : kKnownMethods) {
    if (m == k.name) return k.bit;
  }
  return 0;
}

void split_query(const char* p, const char* e, RequestHead& out) {
  const void* q = std::memchr(p, '?', static_cast<std::size_t>(e - p));
  const char* path_end = q ? static_cast<const char*>(q) : e;
  out.path = std::string_view(p, static_cast<std::size_t>(path_end - p));
  if (q) {
    out.has_query = true;
    out.query = std::string_view(path_end + 1, static_cast<std::size_t>(e - path_end - 1));
  }
}

bool starts_with_ci(const char* p, const char* e, std::string_view lower_prefix) {
  if (static_cast<std::size_t>(e - p) < lower_prefix.size()) return false;
  return iequals_lower(std::string_view(p, lower_prefix.size()), lower_prefix);
}

// request-line = method SP request-target SP HTTP-version, [p, e) excluding the CRLF.
// `partial`: the line is still arriving and already longer than max_uri_bytes + 64; decides the
// error that the complete line would get (501 long method, 414 long target, 400 otherwise).
ParseResult parse_request_line(const char* p, const char* e, const RequestLimits& lim,
                               bool partial, RequestHead& out) {
  out.method = out.target = out.path = out.query = out.host = {};
  out.method_bit = 0;
  out.has_query = false;
  out.version_minor = 1;
  const char* m = p;
  while (p < e && has_class(*p, kTchar)) ++p;
  const auto mlen = static_cast<std::size_t>(p - m);
  if (p == e && partial) return ParseResult::fail(501, "method too long");
  if (mlen == 0) return ParseResult::fail(400, "invalid method");
  if (p == e || *p != ' ') return ParseResult::fail(400, "invalid method or separator");
  if (mlen > kMaxMethodBytes) return ParseResult::fail(501, "method too long");
  ++p;
  const char* t = p;
  while (p < e && has_class(*p, kTargetChar)) ++p;
  const auto tlen = static_cast<std::size_t>(p - t);
  if (tlen > lim.max_uri_bytes) return ParseResult::fail(414, "request-target too long");
  if (partial) return ParseResult::fail(400, "invalid request line");
  if (tlen == 0) return ParseResult::fail(400, "empty request-target or double space");
  if (p == e) return ParseResult::fail(400, "missing HTTP version");  // HTTP/0.9
  if (*p != ' ') return ParseResult::fail(400, "invalid byte in request-target");
  ++p;
  if (e - p != 8 || std::memcmp(p, "HTTP/", 5) != 0 || !has_class(p[5], kDigit) || p[6] != '.' ||
      !has_class(p[7], kDigit)) {
    return ParseResult::fail(400, "invalid HTTP version");
  }
  if (p[5] != '1') return ParseResult::fail(505, "HTTP version not supported");
  out.version_minor = p[7] == '0' ? 0 : 1;  // HTTP/1.2+ is handled as 1.1

  out.method = std::string_view(m, mlen);
  out.method_bit = method_bit(out.method);
  if (out.method_bit == 0) {
    return ParseResult::fail(501, out.method == "CONNECT" ? "CONNECT not supported"
                                                          : "method not implemented");
  }
  out.target = std::string_view(t, tlen);
  const char* te = t + tlen;
  if (*t == '/') {
    split_query(t, te, out);
  } else if (tlen == 1 && *t == '*') {
    if (out.method_bit != M_OPTIONS) return ParseResult::fail(400, "asterisk-form without OPTIONS");
    out.path = out.target;
  } else if (starts_with_ci(t, te, "http://") || starts_with_ci(t, te, "https://")) {
    const char* a = t + (t[4] == ':' ? 7 : 8);
    const char* ae = a;
    while (ae < te && *ae != '/' && *ae != '?') ++ae;
    std::string_view authority(a, static_cast<std::size_t>(ae - a));
    if (!valid_host(authority)) return ParseResult::fail(400, "invalid authority in absolute-form");
    out.host = authority;
    if (ae < te && *ae == '/') {
      split_query(ae, te, out);
    } else {
      out.path = "/";  // static: absolute-form with an empty path means "/"
      if (ae < te) {
        out.has_query = true;
        out.query = std::string_view(ae + 1, static_cast<std::size_t>(te - ae - 1));
      }
    }
  } else {
    return ParseResult::fail(400, "unsupported request-target form");
  }
  return ParseResult::ok();
}

// Decides the error for a request line still arriving (none if it may still be fine).
ParseResult check_partial_request_line(std::string_view buf, const RequestLimits& lim,
                                       const HeadScan& s, RequestHead& out) {
  // Only bytes the scan has looked at: beyond max_header_bytes the answer is 431 anyway.
  const std::size_t avail = s.scanned - s.line_start;
  if (avail <= lim.max_uri_bytes + 64) return ParseResult::more();
  const char* p = buf.data() + s.line_start;
  return parse_request_line(p, p + avail, lim, true, out);
}

// Everything learnt from the field lines, checked after the last one.
struct Fields {
  std::size_t host_lines = 0;
  std::string_view host;
  std::size_t cl_lines = 0;
  detail::NumParse cl_parse = detail::NumParse::ok;
  std::uint64_t cl = 0;
  bool te = false;
  const char* te_error = nullptr;  // first 400 found in the coding list
  std::size_t te_codings = 0;
  std::size_t te_chunked = 0;
  bool conn_close = false, conn_keep_alive = false, conn_upgrade = false;
  bool have_connection = false;
  bool upgrade = false, upgrade_websocket = false;
  bool expect_continue = false, expect_other = false;
};

void scan_connection(std::string_view v, Fields& f) {
  detail::ListIter it(v);
  std::string_view e;
  while (it.next(e)) {
    if (iequals_lower(e, "close")) f.conn_close = true;
    else if (iequals_lower(e, "keep-alive")) f.conn_keep_alive = true;
    else if (iequals_lower(e, "upgrade")) f.conn_upgrade = true;
  }
}

void scan_transfer_encoding(std::string_view v, Fields& f) {
  f.te = true;
  detail::ListIter it(v);
  std::string_view e;
  while (it.next(e)) {
    ++f.te_codings;
    if (e.empty()) {
      if (!f.te_error) f.te_error = "empty transfer-coding";
    } else if (!detail::is_token(e)) {
      if (!f.te_error) f.te_error = "invalid transfer-coding";
    } else if (iequals_lower(e, "chunked")) {
      ++f.te_chunked;
    }
  }
}

// Records the framing/routing fields; returns an error for a duplicate that is never allowed.
ParseResult note_field(const Header& h, Fields& f, RequestHead& out) {
  const std::string_view n = h.name;
  switch (n.size()) {
    case 4:
      if (iequals_lower(n, "host")) {
        if (++f.host_lines > 1) return ParseResult::fail(400, "duplicate Host");
        f.host = h.value;
      }
      break;
    case 6:
      if (iequals_lower(n, "expect")) {
        if (iequals_lower(h.value, "100-continue")) f.expect_continue = true;
        else f.expect_other = true;
      }
      break;
    case 7:
      if (iequals_lower(n, "upgrade")) {
        f.upgrade = true;
        if (list_contains_token(h.value, "websocket")) f.upgrade_websocket = true;
      }
      break;
    case 10:
      if (iequals_lower(n, "connection")) {
        if (!f.have_connection) out.connection = h.value;  // first line only (documented)
        f.have_connection = true;
        scan_connection(h.value, f);
      }
      break;
    case 14:
      if (iequals_lower(n, "content-length")) {
        if (++f.cl_lines > 1) return ParseResult::fail(400, "duplicate Content-Length");
        f.cl_parse = detail::parse_decimal(h.value, f.cl);
        if (f.cl_parse == detail::NumParse::invalid) {
          return ParseResult::fail(400, "invalid Content-Length");
        }
      }
      break;
    case 17:
      if (iequals_lower(n, "transfer-encoding")) scan_transfer_encoding(h.value, f);
      break;
    default:
      break;
  }
  return ParseResult::ok();
}

// Order: framing ambiguities (400), Host (400), unsupported coding (501), size (413), Expect (417).
ParseResult finish(const Fields& f, bool absolute_form, const RequestLimits& lim,
                   RequestHead& out) {
  const bool v11 = out.version_minor == 1;
  if (f.te) {
    if (!v11) return ParseResult::fail(400, "Transfer-Encoding in HTTP/1.0");
    if (f.cl_lines) return ParseResult::fail(400, "both Content-Length and Transfer-Encoding");
    if (f.te_error) return ParseResult::fail(400, f.te_error);
    if (f.te_chunked > 0 && f.te_codings > 1) {
      return ParseResult::fail(400, "chunked is not the only transfer-coding");
    }
  }
  if (f.host_lines == 0) {
    if (v11) return ParseResult::fail(400, "missing Host");
  } else if (f.host.empty()) {
    if (v11) return ParseResult::fail(400, "empty Host");
  } else if (!valid_host(f.host)) {
    return ParseResult::fail(400, "invalid Host");
  }
  if (f.te && f.te_chunked == 0) return ParseResult::fail(501, "transfer-coding not implemented");
  if (f.cl_lines) {
    if (f.cl_parse == detail::NumParse::overflow || f.cl > lim.max_body_bytes) {
      return ParseResult::fail(413, "Content-Length too large");
    }
    out.body = BodyKind::content_length;
    out.content_length = f.cl;
  } else if (f.te) {
    out.body = BodyKind::chunked;
  }
  if (f.expect_other) return ParseResult::fail(417, "unsupported Expect");

  if (!absolute_form) out.host = f.host;
  out.keep_alive = v11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.has_upgrade = f.upgrade;
  out.upgrade_websocket = f.upgrade_websocket && f.conn_upgrade && out.method_bit == M_GET && v11;
  out.expect_continue = f.expect_continue && v11 && out.body != BodyKind::none;
  return ParseResult::ok();
}

}  // namespace

ParseResult parse_request_head(std::string_view buf, const RequestLimits& limits, HeadScan& scan,
                               RequestHead& out) {
  using detail::ScanStatus;
  const bool start_seen_before = scan.start_line_end != 0;
  const std::size_t max_lines = limits.max_headers + 1;
  ScanStatus st;
  for (;;) {
    st = detail::scan_head(buf, limits.max_header_bytes, max_lines, kMaxLeadingEmptyLines, scan);
    if (st != ScanStatus::start_line) break;
    const char* b = buf.data();
    ParseResult r = parse_request_line(b + scan.leading_empty * 2, b + scan.start_line_end, limits,
                                       false, out);
    if (r.kind == ParseResult::error) return r;
  }
  switch (st) {
    case ScanStatus::bare_lf:
      return ParseResult::fail(400, "bare LF");
    case ScanStatus::too_many_lines:
      return ParseResult::fail(431, "too many header fields");
    case ScanStatus::too_many_leading_empty:
      return ParseResult::fail(400, "too many empty lines before the request line");
    case ScanStatus::incomplete:
      if (scan.start_line_end == 0) {
        ParseResult r = check_partial_request_line(buf, limits, scan, out);
        if (r.kind == ParseResult::error) return r;
      }
      if (buf.size() > limits.max_header_bytes) {
        return ParseResult::fail(431, "request header too large");
      }
      return ParseResult::more();
    default:
      break;
  }

  // Complete: the head is buf[0, head_end) and ends in CRLF CRLF.
  const char* b = buf.data();
  std::vector<Header>* headers = out.headers;
  if (start_seen_before) {  // the request line was parsed in an earlier call: refresh its views
    ParseResult r = parse_request_line(b + scan.leading_empty * 2, b + scan.start_line_end,
                                       limits, false, out);
    if (r.kind == ParseResult::error) return r;
  }
  const bool absolute_form = !out.host.empty();  // the request line set it from the authority
  out.head_bytes = scan.head_end;
  out.body = BodyKind::none;
  out.content_length = 0;
  out.keep_alive = true;
  out.expect_continue = out.upgrade_websocket = out.has_upgrade = false;
  out.connection = {};
  if (headers) headers->clear();

  Fields f;
  const char* const head_end = b + scan.head_end;
  const char* p = b + scan.start_line_end + 2;
  while (!(p[0] == '\r' && p[1] == '\n')) {
    Header h;
    if (const char* why = detail::parse_field_line(p, head_end, h)) {
      return ParseResult::fail(400, why);
    }
    if (headers) headers->push_back(h);
    ParseResult r = note_field(h, f, out);
    if (r.kind == ParseResult::error) return r;
  }
  return finish(f, absolute_form, limits, out);
}

}  // namespace lg::http
