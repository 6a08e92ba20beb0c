#include "router/router.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <utility>

#include "config/config_loader.hpp"
#include "router/route_trie.hpp"

namespace lg {
namespace {

constexpr std::uint32_t kNoGroup = 0xffffffffu;
constexpr std::size_t kMaxHost = 255;

// Open-addressing map from a lower-case host name (or a wildcard suffix ".example.com") to its
// host group. Looked up without allocating.
class HostMap {
 public:
  void build(const std::map<std::string, std::uint32_t>& names) {
    std::size_t cap = 8;
    while (cap < names.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (const auto& [name, group] : names) {
      const std::uint32_t h = route_detail::hash_bytes(name.data(), name.size(), 0);
      std::size_t i = h & mask_;
      while (slots_[i].hash != 0) i = (i + 1) & mask_;
      slots_[i] = Slot{h, group, name};
      if (name.size() < 256) lengths_[name.size() / 64] |= std::uint64_t{1} << (name.size() % 64);
    }
  }
  bool has_length(std::size_t n) const {
    return n < 256 && (lengths_[n / 64] >> (n % 64) & 1) != 0;
  }
  std::uint32_t find(const char* p, std::size_t n) const {
    if (!has_length(n)) return kNoGroup;
    const std::uint32_t h = route_detail::hash_bytes(p, n, 0);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return kNoGroup;
      if (s.hash == h && s.name.size() == n && route_detail::same_bytes(s.name.data(), p, n)) {
        return s.group;
      }
    }
  }

 private:
  struct Slot {
    std::uint32_t hash = 0;  // 0: empty
    std::uint32_t group = kNoGroup;
    std::string name;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::uint64_t lengths_[4] = {};  // which name lengths occur: most lookups stop here
};

// Lower-cases ASCII letters eight bytes at a time.
std::uint64_t lower8(std::uint64_t w) {
  constexpr std::uint64_t k7f = 0x7f7f7f7f7f7f7f7full, kHigh = 0x8080808080808080ull;
  const std::uint64_t heptets = w & k7f;
  const std::uint64_t ge_a = heptets + 0x3f3f3f3f3f3f3f3full;  // high bit: byte >= 'A'
  const std::uint64_t gt_z = heptets + 0x2525252525252525ull;  // high bit: byte > 'Z'
  const std::uint64_t upper = ge_a & ~gt_z & ~w & kHigh;
  return w | (upper >> 2);  // 0x80 >> 2 == 0x20
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

const char* method_name(std::uint16_t bits) {
  static constexpr const char* kNames[] = {"GET",    "HEAD",  "POST",    "PUT",
                                           "DELETE", "PATCH", "OPTIONS", "TRACE"};
  for (int i = 0; i < 8; ++i) {
    if (bits & (1u << i)) return kNames[i];
  }
  return "?";
}

[[noreturn]] void fail(const RouteConfig& r, std::size_t index, const char* key,
                       const std::string& message) {
  throw ConfigError(std::to_string(r.line) + ": routes[" + std::to_string(index) + "]." + key +
                    ": " + message);
}

// "" when the host pattern is valid.
std::string host_error(std::string_view h) {
  if (h.empty()) return "empty host";
  if (h == "*") return "'*' alone is not a valid host pattern";
  if (h.find('*') != std::string_view::npos &&
      (h.size() < 3 || h[0] != '*' || h[1] != '.' || h.find('*', 1) != std::string_view::npos)) {
    return "'*' must be the whole leftmost label";
  }
  if (h[0] != '[' && h.find(':') != std::string_view::npos) return "host must not include a port";
  return {};
}

// Checks "{name}" / "{*}" references of a rewrite template against every path of the route.
void check_rewrite(const RouteConfig& r, std::size_t index,
                   const std::vector<std::string>& paths) {
  std::string_view t = r.rewrite;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') fail(r, index, "rewrite", "unmatched '}'");
    if (t[i] != '{') continue;
    const std::size_t close = t.find('}', i);
    if (close == std::string_view::npos) fail(r, index, "rewrite", "unclosed '{'");
    const std::string name(t.substr(i + 1, close - i - 1));
    for (const std::string& path : paths) {
      std::vector<std::string> params;
      bool prefix = false;
      RouteTrie::parse(path, &params, &prefix);
      if (name == "*" ? !prefix
                      : std::find(params.begin(), params.end(), name) == params.end()) {
        fail(r, index, "rewrite",
             name == "*" ? "'{*}' needs a path ending in '/*' (" + path + ")"
                         : "'{" + name + "}' is not a parameter of " + path);
      }
    }
    i = close;
  }
}

}  // namespace

struct Router::HostTable {
  std::vector<RouteTrie> groups;
  HostMap exact;     // "api.example.com"
  HostMap wildcard;  // "*.example.com" stored as ".example.com"
  std::vector<std::size_t> wildcard_lengths;  // distinct suffix lengths, longest first
  std::uint32_t any = kNoGroup;
};

Router::Router(const std::vector<RouteConfig>& routes) : hosts_(std::make_unique<HostTable>()) {
  HostTable& t = *hosts_;
  std::map<std::string, std::uint32_t> exact, wildcard;
  std::vector<std::string> group_label;  // for conflict messages
  auto group_for = [&](std::map<std::string, std::uint32_t>& index, const std::string& key,
                       std::string label) {
    auto [it, added] = index.emplace(key, static_cast<std::uint32_t>(t.groups.size()));
    if (added) {
      t.groups.emplace_back();
      group_label.push_back(std::move(label));
    }
    return it->second;
  };

  for (std::size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& r = routes[i];
    std::vector<std::uint32_t> groups;
    for (const std::string& host : r.match.hosts) {
      std::string h = host;
      std::transform(h.begin(), h.end(), h.begin(), ascii_lower);
      if (std::string err = host_error(h); !err.empty()) {
        fail(r, i, "match", "invalid host '" + host + "': " + err);
      }
      if (h.size() > 1 && h.back() == '.') h.pop_back();  // "example.com." is "example.com"
      groups.push_back(h[0] == '*' ? group_for(wildcard, h.substr(1), "host " + h)
                                   : group_for(exact, h, "host " + h));
    }
    if (groups.empty()) {
      if (t.any == kNoGroup) {
        t.any = static_cast<std::uint32_t>(t.groups.size());
        t.groups.emplace_back();
        group_label.push_back("any host");
      }
      groups.push_back(t.any);
    }
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());

    // No paths: the route matches every path, as no hosts matches every host.
    const std::vector<std::string> paths =
        r.match.paths.empty() ? std::vector<std::string>{"/*"} : r.match.paths;
    for (const std::string& path : paths) {
      for (std::uint32_t g : groups) {
        std::uint32_t other = RouteTrie::kNone;
        std::string err =
            t.groups[g].insert(path, static_cast<std::uint32_t>(i), r.match.methods, &other);
        if (!err.empty()) fail(r, i, "match", err);
        if (other != RouteTrie::kNone) {
          const auto both =
              static_cast<std::uint16_t>(routes[other].match.methods & r.match.methods);
          const std::string what =
              std::string(method_name(both)) + " " + path + " on " + group_label[g];
          if (other == i) fail(r, i, "match", "route '" + r.name + "' matches " + what + " twice");
          fail(r, i, "match",
               "routes '" + routes[other].name + "' and '" + r.name + "' both match " + what);
        }
      }
    }
    if (!r.rewrite.empty()) check_rewrite(r, i, paths);
  }

  for (RouteTrie& g : t.groups) g.freeze();
  t.exact.build(exact);
  t.wildcard.build(wildcard);
  for (const auto& [suffix, group] : wildcard) t.wildcard_lengths.push_back(suffix.size());
  std::sort(t.wildcard_lengths.begin(), t.wildcard_lengths.end(), std::greater<>());
  t.wildcard_lengths.erase(std::unique(t.wildcard_lengths.begin(), t.wildcard_lengths.end()),
                           t.wildcard_lengths.end());
}

Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

RouteMatchResult Router::match(std::string_view host, std::string_view path,
                               std::uint16_t method_bit) const {
  RouteMatchResult result;
  if (!hosts_ || path.empty() || path[0] != '/') return result;
  const HostTable& t = *hosts_;

  // Host: strip ":port" (after "]" for IPv6 literals) and one trailing dot, lower-case.
  std::string_view h = host;
  if (!h.empty() && h[0] == '[') {
    const std::size_t rb = h.find(']');
    if (rb != std::string_view::npos) h = h.substr(0, rb + 1);
  } else if (const std::size_t colon = h.find(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  if (h.size() > 1 && h.back() == '.') h.remove_suffix(1);
  if (h.size() > kMaxHost) return result;
  char buf[kMaxHost + 9];  // room to lower-case whole words
  const std::size_t len = h.size();
  if (len != 0) std::memcpy(buf, h.data(), len);
  std::memset(buf + len, 0, 8);
  for (std::size_t i = 0; i < len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, buf + i, 8);
    w = lower8(w);
    std::memcpy(buf + i, &w, 8);
  }

  TrieMatch m;
  m.path = path;
  m.method = method_bit;
  bool found = false;
  if (len != 0) {
    if (std::uint32_t g = t.exact.find(buf, len); g != kNoGroup) {
      t.groups[g].match(m);
      found = m.found;
    }
    // Wildcards, longest suffix first: "a.b.example.com" tries ".b.example.com", ".example.com", ".com".
    {
      // Only the suffix lengths some wildcard has, longest first; the suffix starts with '.'.
      for (std::size_t i = 0; !found && i < t.wildcard_lengths.size(); ++i) {
        const std::size_t n = t.wildcard_lengths[i];
        if (n >= len || buf[len - n] != '.') continue;
        if (std::uint32_t g = t.wildcard.find(buf + len - n, n); g != kNoGroup) {
          t.groups[g].match(m);
          found = m.found;
        }
      }
    }
  }
  if (!found && t.any != kNoGroup) {
    t.groups[t.any].match(m);
    found = m.found;
  }

  if (found) {
    result.kind = RouteMatchResult::found;
    result.route = m.route;
    result.param_count = m.param_count;
    for (int k = 0; k < m.param_count; ++k) {
      result.params[k].name = m.names[k];
      result.params[k].value = path.substr(m.value_off[k], m.value_len[k]);
    }
    if (m.rest_off != TrieMatch::kNone) result.prefix_rest = path.substr(m.rest_off);
  } else if (m.path_matched) {
    result.kind = RouteMatchResult::method_not_allowed;
    result.route = m.best_route;
    result.allow = m.allow;
  }
  return result;
}

void build_upstream_path(const RouteConfig& route, const RouteMatchResult& match,
                         std::string_view normalized_path, std::string& out) {
  if (route.rewrite.empty()) {
    std::string_view p = normalized_path;
    std::string_view prefix = route.strip_prefix;
    if (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
    if (prefix.size() > 1 && p.substr(0, prefix.size()) == prefix &&
        (p.size() == prefix.size() || p[prefix.size()] == '/')) {
      p.remove_prefix(prefix.size());
    }
    if (p.empty() || p[0] != '/') out.push_back('/');
    out.append(p);
    return;
  }

  std::string_view t = route.rewrite;
  if (t[0] != '/') out.push_back('/');
  while (!t.empty()) {
    const std::size_t open = t.find('{');
    out.append(t.substr(0, open));
    if (open == std::string_view::npos) break;
    const std::size_t close = t.find('}', open);
    if (close == std::string_view::npos) {  // rejected when the Router is built
      out.append(t.substr(open));
      break;
    }
    const std::string_view name = t.substr(open + 1, close - open - 1);
    if (name == "*") {
      std::string_view rest = match.prefix_rest;
      if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
      out.append(rest);
    } else {
      for (int k = 0; k < match.param_count; ++k) {
        if (match.params[k].name == name) {
          out.append(match.params[k].value);
          break;
        }
      }
    }
    t.remove_prefix(close + 1);
  }
}

}  // namespace lg
