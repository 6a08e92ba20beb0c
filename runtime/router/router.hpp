// Immutable routing table built from the routes of one config snapshot.
//
// Host: exact names first, then wildcards ("*.example.com", longest suffix first), then routes
// without a host. Within a host the path trie prefers, per segment, an exact segment over a
// parameter (":id") over a prefix ("/v1/users/*", which also matches "/v1/users"); among prefixes
// the longest wins. Ties keep config order. When a path matches but no route on it allows the
// method, the result is method_not_allowed with the union of allowed methods (-> 405 + Allow).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace lg {

struct RouteParam {
  std::string_view name;   // from the route pattern (owned by the Router)
  std::string_view value;  // view into the normalized path passed to match()
};

struct RouteMatchResult {
  enum Kind : std::uint8_t { found, not_found, method_not_allowed } kind = not_found;
  std::uint32_t route = 0;        // index into the config's routes
  std::uint16_t allow = 0;        // method_not_allowed: Method bits allowed on this path
  static constexpr int kMaxParams = 8;
  RouteParam params[kMaxParams];
  int param_count = 0;
  std::string_view prefix_rest;  // prefix routes: the path after the prefix ("" or "/...")
};

class RouteTrie;

class Router {
 public:
  // Throws ConfigError (config/config_loader.hpp) for invalid patterns, e.g. two routes with the
  // same host, path and an overlapping method set, a '*' that is not the last segment, a
  // parameter name repeated in one pattern, or more than kMaxParams parameters.
  explicit Router(const std::vector<RouteConfig>& routes);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // `host` as received (any case, may carry ":port"); `path` already normalized.
  // Never allocates.
  RouteMatchResult match(std::string_view host, std::string_view path,
                         std::uint16_t method_bit) const;

 private:
  struct HostTable;
  std::unique_ptr<HostTable> hosts_;
};

// The path sent upstream: strip_prefix (only at a segment boundary) then the rewrite template
// ("{name}" -> a :param value, "{*}" -> prefix_rest without its leading '/'), or the normalized
// path unchanged. Appends to `out`; the result always starts with '/'.
void build_upstream_path(const RouteConfig& route, const RouteMatchResult& match,
                         std::string_view normalized_path, std::string& out);

}  // namespace lg
