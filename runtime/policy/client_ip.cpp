#include "policy/client_ip.hpp"

namespace lg::policy {

namespace {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

}  // namespace

bool parse_forwarded_address(std::string_view e, IpAddress& out) {
  if (!e.empty() && e.front() == '[') {  // "[v6]" or "[v6]:port"
    const std::size_t close = e.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = e.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !is_port(rest.substr(1)))) return false;
    return parse_ip(e.substr(1, close - 1), out) && out.v6;
  }
  const std::size_t colon = e.find(':');
  if (colon != std::string_view::npos && e.find(':', colon + 1) == std::string_view::npos) {
    // One colon: "a.b.c.d:port" (IPv6 text always has at least two).
    return is_port(e.substr(colon + 1)) && parse_ip(e.substr(0, colon), out);
  }
  return parse_ip(e, out);
}

std::string_view real_client_ip(std::string_view peer_ip, std::span<const std::string_view> xff_values_in_order,
                                const CidrSet& trusted_proxies, std::span<char, kIpTextMax> scratch) {
  IpAddress hop;  // the left-most address vouched for so far
  if (!parse_ip(peer_ip, hop)) return peer_ip;
  if (!trusted_proxies.contains(hop)) return format_ip(hop, scratch);
  // Right to left over the lines, and over each line's elements.
  for (std::size_t i = xff_values_in_order.size(); i-- > 0;) {
    const std::string_view v = xff_values_in_order[i];
    std::size_t end = v.size();  // the element is v[start, end)
    for (;;) {
      const std::size_t comma = end == 0 ? std::string_view::npos : v.rfind(',', end - 1);
      const std::size_t start = comma == std::string_view::npos ? 0 : comma + 1;
      const std::string_view el = trim_ows(v.substr(start, end - start));
      if (!el.empty()) {  // empty list elements ("a, , b") are allowed by RFC 9110 and skipped
        IpAddress a;
        if (!parse_forwarded_address(el, a)) return format_ip(hop, scratch);
        if (!trusted_proxies.contains(a)) return format_ip(a, scratch);
        hop = a;
      }
      if (comma == std::string_view::npos) break;
      end = comma;
    }
  }
  return format_ip(hop, scratch);
}

}  // namespace lg::policy
