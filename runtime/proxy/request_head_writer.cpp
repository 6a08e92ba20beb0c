#include "proxy/head_writers.hpp"

namespace lg {
namespace {

using http::iequals;

enum class Fate : std::uint8_t { forward, drop, request_id, traceparent, forwarded_for };

// Classifies a request field name with one length switch and at most two comparisons.
// Case-insensitive, with '_' standing for '-': CGI-style upstreams (PHP, Rack, WSGI) read
// X_Consumer_ID and X-Consumer-ID as the same HTTP_X_CONSUMER_ID.
bool identity_name(std::string_view n, std::string_view want) {
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    if (c == '_') c = '-';
    else if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != want[i]) return false;
  }
  return true;
}

// Identity fields the gateway sets itself (X-Consumer-ID, X-Consumer-Groups, X-Tenant-ID,
// X-Scopes), in either spelling, are dropped from client input on every route, so they cannot be
// spoofed.
Fate classify(std::string_view n) {
  switch (n.size()) {
    case 2: return iequals(n, "te") ? Fate::drop : Fate::forward;
    case 8: return identity_name(n, "x-scopes") ? Fate::drop : Fate::forward;
    case 13: return identity_name(n, "x-consumer-id") ? Fate::drop : Fate::forward;
    case 4: return iequals(n, "host") ? Fate::drop : Fate::forward;
    case 6: return iequals(n, "expect") ? Fate::drop : Fate::forward;
    case 7: return (iequals(n, "upgrade") || iequals(n, "trailer")) ? Fate::drop : Fate::forward;
    case 9: return iequals(n, "x-real-ip") ? Fate::drop : Fate::forward;
    case 10: return (iequals(n, "connection") || iequals(n, "keep-alive")) ? Fate::drop : Fate::forward;
    case 11: return iequals(n, "traceparent") ? Fate::traceparent : identity_name(n, "x-tenant-id") ? Fate::drop : Fate::forward;
    case 12: return iequals(n, "x-request-id") ? Fate::request_id : Fate::forward;
    case 14: return (iequals(n, "content-length") || iequals(n, "http2-settings")) ? Fate::drop : Fate::forward;
    case 15: return iequals(n, "x-forwarded-for") ? Fate::forwarded_for : Fate::forward;
    case 16: return (iequals(n, "proxy-connection") || iequals(n, "x-forwarded-host")) ? Fate::drop : Fate::forward;
    case 17:
      return (iequals(n, "transfer-encoding") || iequals(n, "x-forwarded-proto") || identity_name(n, "x-consumer-groups"))
                 ? Fate::drop
                 : Fate::forward;
    default: return Fate::forward;
  }
}

// True when Connection names fields beyond the ones we drop anyway (rare): only then is every
// header checked against its list.
bool lists_custom_fields(std::string_view connection) {
  std::size_t i = 0;
  while (i < connection.size()) {
    std::size_t j = connection.find(',', i);
    if (j == std::string_view::npos) j = connection.size();
    std::string_view tok = connection.substr(i, j - i);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    if (!tok.empty() && !iequals(tok, "close") && !iequals(tok, "keep-alive") && !iequals(tok, "upgrade"))
      return true;
    i = j + 1;
  }
  return false;
}

std::string_view cookie_value(std::string_view cookies, std::string_view name) {
  std::size_t i = 0;
  while (i < cookies.size()) {
    std::size_t j = cookies.find(';', i);
    if (j == std::string_view::npos) j = cookies.size();
    std::string_view pair = cookies.substr(i, j - i);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    i = j + 1;
  }
  return {};
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

}  // namespace

bool HeaderEdits::drops(std::string_view name) const {
  for (const auto& n : remove)
    if (iequals(n, name)) return true;
  for (const auto& [n, v] : set)
    if (iequals(n, name)) return true;
  return false;
}

void append_fields(std::string& out, const std::vector<std::pair<std::string, std::string>>& fields) {
  for (const auto& [n, v] : fields) append_field(out, n, v);
}

void append_header_edits(std::string& out, const HeaderEdits& e) {
  for (const auto& [n, v] : e.set) append_field(out, n, v);
  for (const auto& [n, v] : e.add) append_field(out, n, v);
}

void write_upstream_request_start(std::string& out, const http::RequestHead& req, std::string_view path,
                                  const RequestHeadOptions& opts, ClientRequestFacts& facts) {
  out.append(opts.method_override.empty() ? req.method : opts.method_override);
  out.push_back(' ');
  out.append(path);
  if (opts.query_override) {
    if (!opts.query_override->empty()) {
      out.push_back('?');
      out.append(*opts.query_override);
    }
  } else if (req.has_query) {
    out.push_back('?');
    out.append(req.query);
  }
  out.append(" HTTP/1.1\r\n", 11);
  const bool custom = !req.connection.empty() && lists_custom_fields(req.connection);
  for (const http::Header& h : *req.headers) {
    switch (classify(h.name)) {
      case Fate::drop: continue;
      case Fate::request_id:
        if (facts.request_id.empty()) facts.request_id = h.value;
        continue;
      case Fate::traceparent:
        if (facts.traceparent.empty()) facts.traceparent = h.value;
        continue;
      case Fate::forwarded_for:
        if (h.value.empty()) break;
        // More lines than we keep: the last ones (the hops nearest to us) are the ones a
        // right-to-left walk trusts, so the oldest are dropped.
        if (facts.forwarded_for_count == ClientRequestFacts::kMaxForwardedFor) {
          for (int k = 1; k < facts.forwarded_for_count; ++k) facts.forwarded_for[k - 1] = facts.forwarded_for[k];
          --facts.forwarded_for_count;
        }
        facts.forwarded_for[facts.forwarded_for_count++] = h.value;
        continue;
      case Fate::forward: break;
    }
    if (custom && http::list_contains_token(req.connection, h.name)) continue;
    if (opts.edits && opts.edits->drops(h.name)) continue;
    if (opts.policy_edits && opts.policy_edits->drops(h.name)) continue;
    if (!opts.hash_header.empty() && facts.hash_value.empty() && iequals(h.name, opts.hash_header))
      facts.hash_value = h.value;
    else if (!opts.hash_cookie.empty() && facts.hash_value.empty() && iequals(h.name, "cookie"))
      facts.hash_value = cookie_value(h.value, opts.hash_cookie);
    append_field(out, h.name, h.value);
  }
  if (opts.policy_edits) append_header_edits(out, *opts.policy_edits);
  if (opts.edits) append_header_edits(out, *opts.edits);
}

void finish_upstream_request(std::string& out, const GatewayRequestHeaders& h) {
  append_field(out, "X-Request-ID", h.request_id);
  if (!h.traceparent.empty()) append_field(out, "traceparent", h.traceparent);
  out.append("X-Forwarded-For: ", 17);
  for (int i = 0; i < h.forwarded_for_count; ++i) {  // field lines combine as one list (RFC 9110 §5.3)
    out.append(h.forwarded_for[i]);
    out.append(", ", 2);
  }
  out.append(h.client_ip);
  out.append("\r\n", 2);
  append_field(out, "X-Real-IP", h.client_ip);
  append_field(out, "X-Forwarded-Proto", h.proto);
  if (!h.forwarded_host.empty()) append_field(out, "X-Forwarded-Host", h.forwarded_host);
  if (h.body == http::BodyKind::content_length) {
    char digits[24];
    int n = 0;
    std::uint64_t v = h.content_length;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    out.append("Content-Length: ", 16);
    while (n) out.push_back(digits[--n]);
    out.append("\r\n", 2);
  } else if (h.body == http::BodyKind::chunked) {
    out.append("Transfer-Encoding: chunked\r\n", 28);
  }
  if (h.websocket) out.append("Upgrade: websocket\r\nConnection: Upgrade\r\n");
}

void write_host_line(std::string& out, std::string_view host) {
  out.clear();
  out.append("Host: ", 6);
  out.append(host);
  out.append("\r\n\r\n", 4);
}

}  // namespace lg
