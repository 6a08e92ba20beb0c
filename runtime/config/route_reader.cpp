// The `routes` section: match (hosts, paths, methods), upstream reference, strip_prefix and
// rewrite checked against the paths' parameters, per-route overrides.
#include <map>
#include <set>

#include "config/config_checks.hpp"
#include "config/readers.hpp"

namespace lg::config_readers {

using namespace yaml_reader;
using namespace config_checks;

void read_timeouts(Problems& p, const Value& v, OptionalTimeouts& out) {
  MapReader m(p, v);
  const char* keys[] = {"connect", "read", "write"};
  std::optional<Millis>* dst[] = {&out.connect, &out.read, &out.write};
  for (int i = 0; i < 3; ++i) {
    if (auto f = m.get(keys[i])) {
      Millis d{};
      if (read_duration(p, *f, d)) *dst[i] = d;
    }
  }
  m.finish();
}

namespace {

void check_host(Problems& p, const Value& v, std::string& host) {
  host = lower(host);
  if (!valid_host_pattern(host))
    p.add(v.line, v.path,
          fmt::format("invalid host {} (expected a name like api.example.com or *.example.com, without port)",
                      quoted(v.node.Scalar())));
}

void read_match(Problems& p, const Value& v, RouteConfig& r, std::vector<std::vector<std::string>>& params) {
  MapReader m(p, v);
  if (auto h = m.get("host")) {
    std::vector<Value> items;
    read_string_or_list(p, *h, items);
    for (const auto& item : items) {
      std::string host = item.node.Scalar();
      check_host(p, item, host);
      r.match.hosts.push_back(std::move(host));
    }
  }
  if (auto pv = m.required("path")) {
    std::vector<Value> items;
    read_string_or_list(p, *pv, items);
    for (const auto& item : items) {
      std::vector<std::string> names;
      const std::string err = check_path(item.node.Scalar(), names);
      if (!err.empty()) {
        p.add(item.line, item.path, err);
        continue;
      }
      r.match.paths.push_back(item.node.Scalar());
      params.push_back(std::move(names));
    }
  }
  if (auto mv = m.get("methods")) {
    static constexpr std::pair<std::string_view, Method> kMethods[] = {
        {"GET", M_GET},     {"HEAD", M_HEAD},   {"POST", M_POST},       {"PUT", M_PUT},
        {"DELETE", M_DELETE}, {"PATCH", M_PATCH}, {"OPTIONS", M_OPTIONS}, {"TRACE", M_TRACE}};
    std::vector<Value> items;
    read_string_or_list(p, *mv, items);
    std::uint16_t bits = 0;
    for (const auto& item : items) {
      const auto it = std::find_if(std::begin(kMethods), std::end(kMethods),
                                   [&](const auto& e) { return e.first == item.node.Scalar(); });
      if (it == std::end(kMethods))
        p.add(item.line, item.path,
              fmt::format("unknown method {} (expected GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or TRACE)",
                          quoted(item.node.Scalar())));
      else
        bits |= it->second;
    }
    if (bits != 0) r.match.methods = bits;
  }
  m.finish();
}

void check_strip_prefix(Problems& p, const Value& v, const RouteConfig& r) {
  const std::string& s = r.strip_prefix;
  if (s[0] != '/' || s.size() < 2 || s.back() == '/') {
    p.add(v.line, v.path, fmt::format("invalid strip_prefix {} (expected e.g. /v1: starts with '/', no trailing '/')", quoted(s)));
    return;
  }
  for (const auto& path : r.match.paths) {
    const bool at_boundary = path.compare(0, s.size(), s) == 0 && (path.size() == s.size() || path[s.size()] == '/');
    if (!at_boundary)
      p.add(v.line, v.path, fmt::format("path {} does not start with {}", quoted(path), quoted(s)));
  }
}

void check_rewrite(Problems& p, const Value& v, const RouteConfig& r,
                   const std::vector<std::vector<std::string>>& params) {
  const std::string& t = r.rewrite;
  if (t[0] != '/') {
    p.add(v.line, v.path, fmt::format("rewrite {} must start with '/'", quoted(t)));
    return;
  }
  std::size_t pos = 0;
  while ((pos = t.find_first_of("{}", pos)) != std::string::npos) {
    const std::size_t close = t[pos] == '{' ? t.find('}', pos) : std::string::npos;
    if (close == std::string::npos || t.find('{', pos + 1) < close) {
      p.add(v.line, v.path, fmt::format("rewrite {} has an unbalanced '{{' or '}}'", quoted(t)));
      return;
    }
    const std::string name = t.substr(pos + 1, close - pos - 1);
    for (std::size_t i = 0; i < r.match.paths.size(); ++i) {
      const std::string& path = r.match.paths[i];
      if (name == "*" ? !is_prefix_pattern(path)
                      : std::find(params[i].begin(), params[i].end(), name) == params[i].end()) {
        p.add(v.line, v.path,
              name == "*" ? fmt::format("{{*}} needs a path ending in /*, {} does not", quoted(path))
                          : fmt::format("{{{}}} is not a parameter of path {}", printable(name), quoted(path)));
        return;
      }
    }
    pos = close + 1;
  }
}

struct RouteRef {  // where a route names its upstream, checked once all upstreams are known
  std::string upstream;
  Value at;
};

void read_route(Problems& p, const Value& v, const std::string& config_path, RouteConfig& r,
                std::vector<RouteRef>& refs, int& name_line) {
  MapReader m(p, v);
  r.line = line_of(v.node, v.line);
  if (auto n = m.required("name")) {
    name_line = n->line;
    if (read_string(p, *n, r.name) && !valid_name(r.name))
      p.add(n->line, n->path, "invalid route name (use letters, digits, '_', '.', '-')");
  }
  std::vector<std::vector<std::string>> params;  // per path
  if (auto mv = m.required("match")) read_match(p, *mv, r, params);
  if (auto u = m.required("upstream")) {
    if (read_string(p, *u, r.upstream)) refs.push_back({r.upstream, *u});
  }
  if (auto s = m.get("strip_prefix")) {
    if (read_string(p, *s, r.strip_prefix)) check_strip_prefix(p, *s, r);
  }
  if (auto rw = m.get("rewrite")) {
    if (read_string(p, *rw, r.rewrite)) check_rewrite(p, *rw, r, params);
  }
  if (auto b = m.get("preserve_host")) read_bool(p, *b, r.preserve_host);
  if (auto b = m.get("websocket")) read_bool(p, *b, r.websocket);
  if (auto t = m.get("timeouts")) read_timeouts(p, *t, r.timeouts);
  if (auto b = m.get("max_body_bytes")) {
    std::uint64_t n = 0;
    if (read_size(p, *b, 0, n)) r.max_body_bytes = n;
  }
  if (auto pv = m.get("policies")) read_policies(p, *pv, config_path, r.policies);
  if (auto sc = m.get("scripts")) read_script_refs(p, *sc, r.scripts);
  m.finish();
}

}  // namespace

void read_routes(Problems& p, const Value& v, Config& cfg, const std::set<std::string>& declared) {
  std::vector<Value> items;
  list_items(p, v, items);
  std::map<std::string, int> first_line;  // route name -> line of its first declaration
  std::vector<RouteRef> refs;
  for (const auto& item : items) {
    RouteConfig r;
    int name_line = item.line;
    read_route(p, item, cfg.path, r, refs, name_line);
    if (!r.name.empty()) {
      const auto [it, inserted] = first_line.emplace(r.name, r.line);
      if (!inserted)
        p.add(name_line, item.path + ".name",
              fmt::format("duplicate route name {} (first at line {})", quoted(r.name), it->second));
    }
    cfg.routes.push_back(std::move(r));
  }
  for (const auto& ref : refs) {
    if (!declared.count(ref.upstream))
      p.add(ref.at.line, ref.at.path, fmt::format("unknown upstream {}", quoted(ref.upstream)));
  }
}

}  // namespace lg::config_readers
