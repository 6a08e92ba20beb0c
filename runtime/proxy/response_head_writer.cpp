#include "proxy/head_writers.hpp"

#include "config/config.hpp"

namespace lg {
namespace {

using http::iequals;

void append_uint(std::string& out, std::uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) out.push_back(digits[--n]);
}

// A policy's response field replaces the upstream's of the same name (a second
// Access-Control-Allow-Origin makes browsers refuse the response), except Vary, which adds up.
bool replaced_by(const std::vector<std::pair<std::string, std::string>>& extra, std::string_view name) {
  if (name.size() == 4 && iequals(name, "vary")) return false;
  for (const auto& kv : extra)
    if (kv.first.size() == name.size() && iequals(kv.first, name)) return true;
  return false;
}

// Response fields the gateway never copies: hop-by-hop ones and the ones it re-derives.
bool dropped(std::string_view n, bool upgrade) {
  switch (n.size()) {
    case 2: return iequals(n, "te");
    case 7: return iequals(n, "trailer") || (!upgrade && iequals(n, "upgrade"));
    case 10: return iequals(n, "connection") || iequals(n, "keep-alive");
    case 12: return iequals(n, "x-request-id");
    case 14: return iequals(n, "content-length");
    case 16: return iequals(n, "proxy-connection");
    case 17: return iequals(n, "transfer-encoding");
    default: return false;
  }
}

}  // namespace

bool gateway_owned_response_field(std::string_view name) { return dropped(name, false); }

void write_client_response_head(std::string& out, const http::ResponseHead& resp,
                                const ClientResponseOptions& opts) {
  out.append("HTTP/1.1 ", 9);
  append_uint(out, resp.status);
  out.push_back(' ');
  out.append(resp.reason);
  out.append("\r\n", 2);
  const bool custom = !resp.connection.empty();
  std::string_view passthrough_length;  // HEAD and 304 carry the length of a body not sent
  for (const http::Header& h : *resp.headers) {
    if (dropped(h.name, opts.upgrade)) {
      if (resp.body == http::BodyKind::none && h.name.size() == 14 && resp.status != 204 &&
          resp.status >= 200 && iequals(h.name, "content-length"))
        passthrough_length = h.value;
      continue;
    }
    if (custom && !(opts.upgrade && iequals(h.name, "upgrade")) && http::list_contains_token(resp.connection, h.name)) continue;
    if (opts.edits && opts.edits->drops(h.name)) continue;
    if (opts.extra && replaced_by(*opts.extra, h.name)) continue;
    out.append(h.name);
    out.append(": ", 2);
    out.append(h.value);
    out.append("\r\n", 2);
  }
  if (resp.body == http::BodyKind::content_length) {
    out.append("Content-Length: ", 16);
    append_uint(out, resp.content_length);
    out.append("\r\n", 2);
  } else if (!passthrough_length.empty()) {
    out.append("Content-Length: ", 16);
    out.append(passthrough_length);
    out.append("\r\n", 2);
  } else if (opts.chunked) {
    out.append("Transfer-Encoding: chunked\r\n", 28);
  }
  if (opts.edits) append_header_edits(out, *opts.edits);
  if (opts.extra) append_fields(out, *opts.extra);
  out.append("X-Request-ID: ", 14);
  out.append(opts.request_id);
  out.append("\r\n", 2);
  if (opts.upgrade) out.append("Connection: Upgrade\r\n");
  else if (!opts.keep_alive) out.append("Connection: close\r\n");
  else if (opts.client_http10) out.append("Connection: keep-alive\r\n");
  out.append("\r\n", 2);
}

void append_allow_list(std::string& out, std::uint16_t methods) {
  static const struct {
    std::uint16_t bit;
    const char* name;
  } kNames[] = {{M_GET, "GET"},         {M_HEAD, "HEAD"},       {M_POST, "POST"},   {M_PUT, "PUT"},
                {M_DELETE, "DELETE"},   {M_PATCH, "PATCH"},     {M_OPTIONS, "OPTIONS"}, {M_TRACE, "TRACE"}};
  bool first = true;
  for (const auto& m : kNames) {
    if (!(methods & m.bit)) continue;
    if (!first) out.append(", ", 2);
    out.append(m.name);
    first = false;
  }
}

}  // namespace lg
