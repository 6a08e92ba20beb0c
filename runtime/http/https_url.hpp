// An https:// URL the gateway fetches itself (a JWKS endpoint): parsed once, when the config is
// read, into what a connection needs (host, port, request-target, Host field). Pure logic.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lg::http {

struct HttpsUrl {
  std::string text;       // as configured, for messages
  std::string host;       // a DNS name (lower case) or an IP literal without brackets
  bool host_is_ip = false;
  std::uint16_t port = 443;
  std::string target;     // path and query: "/.well-known/jwks.json"
  std::string authority;  // the Host field: "idp.example", "[::1]:8443"
};

// "" on success, else why `text` is not a usable https URL. Only "https://host[:port][/path][?query]"
// is accepted: no user info (credentials would sit in the config and the logs), no fragment, no
// bytes outside a request-target's.
std::string parse_https_url(std::string_view text, HttpsUrl& out);

}  // namespace lg::http
