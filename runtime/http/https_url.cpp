#include "http/https_url.hpp"

#include <arpa/inet.h>

#include "http/message.hpp"

namespace lg::http {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool ip_literal(const std::string& s, int family) {
  unsigned char buf[16];
  return inet_pton(family, s.c_str(), buf) == 1;
}

// A DNS name: labels of letters, digits and '-', not starting or ending with '-'.
bool dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t label = 0;
  char prev = '.';
  for (char c : s) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0);
      if (!ok || ++label > 63) return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

}  // namespace

std::string parse_https_url(std::string_view text, HttpsUrl& out) {
  out = HttpsUrl{};
  out.text.assign(text);
  constexpr std::string_view scheme = "https://";
  if (text.size() < scheme.size() || !iequals(text.substr(0, scheme.size()), scheme))
    return "must be an https:// URL (keys are only fetched over TLS)";
  text.remove_prefix(scheme.size());
  for (char c : text)
    if (!detail::has_class(c, detail::kTargetChar)) return c == '#' ? "a URL fragment is not allowed" : "invalid byte in the URL";
  const std::size_t end = text.find_first_of("/?");
  std::string_view authority = text.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view{} : text.substr(end);
  if (authority.find('@') != std::string_view::npos) return "credentials in the URL are not supported";
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return "unterminated IPv6 address";
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return "invalid authority";
    if (!rest.empty()) port = rest.substr(1);
    out.host.assign(host);
    if (!ip_literal(out.host, AF_INET6)) return "invalid IPv6 address";
    out.host_is_ip = true;
  } else {
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return "empty port";
    }
    for (char c : host) out.host.push_back(lower(c));
    if (out.host.empty()) return "no host";
    out.host_is_ip = ip_literal(out.host, AF_INET);
    if (!out.host_is_ip && !dns_name(out.host)) return "invalid host name";
  }
  if (!port.empty() || authority.ends_with(":")) {
    std::uint64_t n = 0;
    if (port.size() > 5 || detail::parse_decimal(port, n) != detail::NumParse::ok || n == 0 || n > 65535)
      return "invalid port";
    out.port = static_cast<std::uint16_t>(n);
  }
  out.target = target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
  out.authority = out.host_is_ip && host.find(':') != std::string_view::npos ? "[" + out.host + "]" : out.host;
  if (out.port != 443) out.authority += ":" + std::to_string(out.port);
  return {};
}

}  // namespace lg::http
