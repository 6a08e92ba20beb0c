// Pure validators for the config loader: addresses (with name resolution), names, route path
// and host patterns. Header-only; included by config_loader.cpp only.
#pragma once
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace lg::config_checks {

using yaml_reader::printable;
using yaml_reader::quoted;

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// "host:port" or "[v6]:port" -> a numeric host. Returns an error message, or "" on success.
inline std::string parse_endpoint(const std::string& text, Endpoint& out) {
  const auto bad = [&](std::string_view why) {
    return fmt::format("invalid address {}: {}", quoted(text), why);
  };
  std::string host, port;
  bool v6 = false;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("expected [IPv6]:port (e.g. [::1]:8080)");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    v6 = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return bad("expected host:port (e.g. 127.0.0.1:8080)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return bad("IPv6 addresses must be in brackets (e.g. [::1]:8080)");
  }
  if (host.empty()) return bad("missing host");
  const bool port_digits =
      !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), is_digit);
  const long port_num = port_digits ? std::stol(port) : 0;
  if (port_num < 1 || port_num > 65535) return bad("port must be 1..65535");

  char buf[INET6_ADDRSTRLEN] = {};
  if (v6) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return bad("invalid IPv6 address");
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    host = buf;
  } else if (lower(host) == "localhost") {
    host = "127.0.0.1";
  } else if (in_addr a4{}; inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    inet_ntop(AF_INET, &a4, buf, sizeof buf);
    host = buf;
  } else if (std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; })) {
    return bad("invalid IPv4 address");
  } else {
    const bool name_ok = std::all_of(host.begin(), host.end(), [](char c) {
      return is_alnum(c) || c == '-' || c == '.' || c == '_';
    });
    if (!name_ok) return bad("invalid host name");
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr)
      return fmt::format("cannot resolve host {}: {}", quoted(host),
                         rc != 0 ? gai_strerror(rc) : "no addresses");
    if (res->ai_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
    else
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
    freeaddrinfo(res);
    host = buf;
  }
  out.host = host;
  out.port = static_cast<std::uint16_t>(port_num);
  out.text = text;
  return {};
}

inline bool is_wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Two sockets that cannot both be bound (or that SO_REUSEPORT would silently share).
inline bool overlaps(const Endpoint& a, const Endpoint& b) {
  return a.port == b.port && (a.host == b.host || is_wildcard(a.host) || is_wildcard(b.host));
}

inline bool is_token(std::string_view s) {  // RFC 9110 token
  constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return is_alnum(c) || kExtra.find(c) != std::string_view::npos;
  });
}

inline bool valid_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alnum(c) || c == '_' || c == '.' || c == '-';
  });
}

// Checks a path pattern ("/exact", "/users/:id", "/v1/users/*"); collects its parameter names.
// Returns an error message or "".
inline std::string check_path(std::string_view path, std::vector<std::string>& params) {
  if (path.empty() || path[0] != '/') return fmt::format("path {} must start with '/'", quoted(path));
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '\\')
      return fmt::format("path {} contains a character not allowed in a path", quoted(path));
  }
  std::size_t pos = 1;
  while (pos <= path.size()) {
    const std::size_t end = std::min(path.find('/', pos), path.size());
    const std::string_view seg = path.substr(pos, end - pos);
    const bool last = end == path.size();
    if (seg.empty() && !last) return fmt::format("path {} has an empty segment", quoted(path));
    if (seg == "." || seg == "..")
      return fmt::format("path {} has a '{}' segment (request paths are normalized, it never matches)", quoted(path), seg);
    if (seg.find('*') != std::string_view::npos && (seg != "*" || !last))
      return fmt::format("path {}: '*' must be the whole last segment (e.g. /v1/users/*)", quoted(path));
    if (!seg.empty() && seg[0] == ':') {
      const std::string_view name = seg.substr(1);
      if (!valid_name(name) || name.find('.') != std::string_view::npos || name.find('-') != std::string_view::npos)
        return fmt::format("path {}: invalid parameter name {} (use letters, digits, '_')", quoted(path), quoted(seg));
      if (std::find(params.begin(), params.end(), name) != params.end())
        return fmt::format("path {}: parameter {} appears twice", quoted(path), quoted(seg));
      params.emplace_back(name);
    }
    pos = end + 1;
  }
  if (params.size() > 8) return fmt::format("path {} has more than 8 parameters", quoted(path));
  return {};
}

inline bool is_prefix_pattern(std::string_view path) { return path.size() >= 2 && path.substr(path.size() - 2) == "/*"; }

// Host pattern as written under match.host, already lower-cased: "api.example.com" or
// "*.example.com" (no port).
inline bool valid_host_pattern(std::string_view host) {
  if (host.substr(0, 2) == "*.") host.remove_prefix(2);
  const bool chars_ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
  });
  return chars_ok && host.front() != '.' && host.back() != '.' &&
         host.find("..") == std::string_view::npos;
}

}  // namespace lg::config_checks
