// `consumers:` and the `policies:` lists of routes (config/policies.hpp).
#include <algorithm>
#include <cctype>
#include <set>

#include "config/policies.hpp"
#include "config/readers.hpp"
#include "http/https_url.hpp"
#include "http/message.hpp"

namespace lg::config_readers {

using namespace yaml_reader;

namespace {

// A file path, resolved against the config file's folder unless absolute.
void read_path(Problems& p, const Value& v, const std::string& config_path, std::string& out) {
  if (read_string(p, v, out)) out = config_relative(config_path, out);
}

void read_strings(Problems& p, const Value& v, std::vector<std::string>& out) {
  std::vector<Value> items;
  if (!read_string_or_list(p, v, items)) return;
  for (const Value& item : items) out.push_back(item.node.Scalar());
}

void read_string_map(Problems& p, const Value& v, std::map<std::string, std::string>& out) {
  MapReader m(p, v);
  if (!m.ok()) return;
  for (const auto& [key, value] : m.all()) {
    std::string s;
    if (read_string(p, value, s, true)) out[key] = s;
  }
}

bool valid_header_name(std::string_view n) { return n.size() <= 256 && http::detail::is_token(n); }

void read_header_name(Problems& p, const Value& v, std::string& out) {
  if (read_string(p, v, out) && !valid_header_name(out)) p.add(v.line, v.path, "invalid header name " + quoted(out));
}

// Fields a policy may not set: framing, hop-by-hop and the gateway's own (a second
// Content-Length or Host would desynchronize the upstream).
bool gateway_owned(std::string_view n) {
  for (std::string_view f : {"content-length", "transfer-encoding", "host", "connection", "keep-alive",
                             "proxy-connection", "te", "trailer", "upgrade", "expect", "x-request-id", "traceparent",
                             "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"}) {
    if (http::detail::iequals_lower(n, f)) return true;
  }
  return false;
}

// An identity value (consumer id, group, tenant, scope): printable, no separators that would
// change its meaning in a header (',' separates groups, '"' ends a quoted string).
bool valid_identity(std::string_view v) {
  return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
    return c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\';
  });
}

bool valid_key(std::string_view k) {
  if (k.starts_with("sha256:")) {
    const std::string_view hex = k.substr(7);
    return hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c); });
  }
  return k.size() >= 8 && k.size() <= 256 && std::all_of(k.begin(), k.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

void read_key_auth(Problems& p, const Value& v, KeyAuthConfig& c) {
  MapReader m(p, v);
  if (auto h = m.get("header")) read_header_name(p, *h, c.header);
  if (auto q = m.get("query")) read_string(p, *q, c.query);
  if (auto h = m.get("hide_credentials")) read_bool(p, *h, c.hide_credentials);
  m.finish();
}

// A duration within [min_ms, max_ms].
void read_bounded_duration(Problems& p, const Value& v, std::int64_t min_ms, std::int64_t max_ms, Millis& out) {
  Millis d{0};
  if (!read_duration(p, v, d)) return;
  if (d.count() < min_ms || d.count() > max_ms)
    p.add(v.line, v.path, fmt::format("must be between {} ms and {} ms", min_ms, max_ms));
  else out = d;
}

// jwks_url and the fields that only mean something with it.
void read_jwks_url(Problems& p, MapReader& m, const std::string& config_path, JwtConfig& c) {
  if (auto u = m.get("jwks_url")) {
    http::HttpsUrl url;
    if (read_string(p, *u, c.jwks_url))
      if (const std::string why = http::parse_https_url(c.jwks_url, url); !why.empty())
        p.add(u->line, u->path, why + ", got " + quoted(c.jwks_url));
  }
  const bool url = !c.jwks_url.empty();
  const auto only_with_url = [&](const Value& f) {
    if (!url) p.add(f.line, f.path, "needs jwks_url");
    return url;
  };
  if (auto f = m.get("jwks_ca_file"); f && only_with_url(*f))
    read_path(p, *f, config_path, c.jwks_ca_file);
  if (auto f = m.get("jwks_refresh"); f && only_with_url(*f)) read_bounded_duration(p, *f, 1'000, 86'400'000, c.jwks_refresh);
  if (auto f = m.get("jwks_timeout"); f && only_with_url(*f)) read_bounded_duration(p, *f, 1, 60'000, c.jwks_timeout);
  if (auto f = m.get("jwks_min_refresh_interval"); f && only_with_url(*f))
    read_bounded_duration(p, *f, 1'000, 86'400'000, c.jwks_min_refresh_interval);
  if (auto f = m.get("jwks_allow_symmetric"); f && only_with_url(*f)) read_bool(p, *f, c.jwks_allow_symmetric);
}

void read_jwt(Problems& p, const Value& v, const std::string& config_path, JwtConfig& c) {
  MapReader m(p, v);
  if (auto i = m.get("issuer")) read_string(p, *i, c.issuer);
  if (auto a = m.get("audience")) read_strings(p, *a, c.audiences);
  if (auto l = m.get("leeway")) read_duration(p, *l, c.leeway);
  if (auto l = m.get("max_lifetime")) read_duration(p, *l, c.max_lifetime);
  if (auto f = m.get("jwks_file")) read_path(p, *f, config_path, c.jwks_file);
  if (auto ks = m.get("keys")) {
    std::vector<Value> items;
    list_items(p, *ks, items);
    for (const Value& item : items) {
      JwtKeyConfig k;
      k.line = item.line;
      MapReader km(p, item);
      if (auto x = km.required("kid")) read_string(p, *x, k.kid);
      if (auto x = km.required("alg")) read_string(p, *x, k.alg);
      if (auto x = km.get("secret")) read_string(p, *x, k.secret);
      if (auto x = km.get("pem")) read_string(p, *x, k.pem);
      if (auto x = km.get("pem_file")) read_path(p, *x, config_path, k.pem_file);
      km.finish();
      const int sources = !k.secret.empty() + !k.pem.empty() + !k.pem_file.empty();
      if (sources != 1) p.add(item.line, item.path, "a key needs exactly one of secret, pem, pem_file");
      c.keys.push_back(std::move(k));
    }
  }
  read_jwks_url(p, m, config_path, c);
  if (c.keys.empty() && c.jwks_file.empty() && c.jwks_url.empty())
    p.add(v.line, v.path, "jwt needs keys, jwks_file or jwks_url");
  if (auto h = m.get("header")) read_header_name(p, *h, c.header);
  if (auto q = m.get("query")) read_string(p, *q, c.query);
  if (auto ch = m.get("claims_to_headers")) {
    read_string_map(p, *ch, c.claims_to_headers);
    for (const auto& [claim, header] : c.claims_to_headers)
      if (!valid_header_name(header) || gateway_owned(header))
        p.add(ch->line, ch->path + "." + claim, "invalid header name " + quoted(header) + " (framing, hop-by-hop and gateway fields cannot be set)");
  }
  if (auto r = m.get("required_claims")) read_strings(p, *r, c.required_claims);
  if (auto r = m.get("required_scopes")) {
    read_strings(p, *r, c.required_scopes);
    for (const std::string& s : c.required_scopes)
      if (!valid_identity(s)) p.add(r->line, r->path, "invalid scope " + quoted(s));
  }
  if (auto r = m.get("consumer_claim")) read_string(p, *r, c.consumer_claim);
  if (auto r = m.get("revocation")) {
    const int i = read_choice(p, *r, {"local", "redis"});
    if (i >= 0) c.revocation = i == 0 ? JwtConfig::Revocation::local : JwtConfig::Revocation::redis;
    c.revocation_line = r->line;
  }
  m.finish();
}

void read_acl(Problems& p, const Value& v, AclConfig& c) {
  MapReader m(p, v);
  if (auto a = m.get("allow")) read_strings(p, *a, c.allow);
  if (auto d = m.get("deny")) read_strings(p, *d, c.deny);
  if (auto s = m.get("subjects")) read_strings(p, *s, c.subjects);
  m.finish();
  if (c.allow.empty() && c.deny.empty() && c.subjects.empty()) p.add(v.line, v.path, "acl needs allow, deny or subjects");
}

void read_ip(Problems& p, const Value& v, IpRestrictionConfig& c) {
  c.line = v.line;
  MapReader m(p, v);
  if (auto a = m.get("allow")) read_strings(p, *a, c.allow);
  if (auto d = m.get("deny")) read_strings(p, *d, c.deny);
  if (auto t = m.get("trusted_proxies")) read_strings(p, *t, c.trusted_proxies);
  m.finish();
  if (c.allow.empty() && c.deny.empty()) p.add(v.line, v.path, "ip-restriction needs allow or deny");
}

void read_cors(Problems& p, const Value& v, CorsConfig& c) {
  MapReader m(p, v);
  if (auto o = m.required("origins")) read_strings(p, *o, c.origins);
  if (auto x = m.get("methods")) {
    c.methods.clear();
    read_strings(p, *x, c.methods);
  }
  if (auto x = m.get("headers")) read_strings(p, *x, c.headers);
  if (auto x = m.get("expose")) read_strings(p, *x, c.expose);
  if (auto x = m.get("credentials")) read_bool(p, *x, c.credentials);
  if (auto x = m.get("max_age")) read_duration(p, *x, c.max_age);
  m.finish();
  if (c.credentials && std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end())
    p.add(v.line, v.path, "credentials: true cannot be combined with origin '*' (the Fetch standard forbids it)");
}

// Two limits with the same window would share one counter: refused.
void check_windows(Problems& p, const Value& v, const std::vector<RateLimitConfig::Limit>& limits) {
  for (std::size_t i = 0; i < limits.size(); ++i)
    for (std::size_t j = i + 1; j < limits.size(); ++j)
      if (limits[i].per == limits[j].per) p.add(v.line, v.path, "two limits with the same `per`: merge them");
}

bool read_limit(Problems& p, MapReader& m, RateLimitConfig::Limit& l) {
  std::int64_t n = 0;
  bool ok = true;
  if (auto x = m.required("limit")) ok &= read_int(p, *x, 1, 1'000'000'000, n);
  l.limit = static_cast<double>(n);
  if (auto x = m.required("per")) {
    ok &= read_duration(p, *x, l.per);
    if (l.per.count() <= 0) {
      p.add(x->line, x->path, "must be positive");
      ok = false;
    }
  }
  l.burst = l.limit;
  if (auto x = m.get("burst")) {
    std::int64_t b = 0;
    if (read_int(p, *x, 1, 1'000'000'000, b)) l.burst = static_cast<double>(b);
  }
  return ok;
}

void read_limit_list(Problems& p, const Value& v, std::vector<RateLimitConfig::Limit>& out) {
  std::vector<Value> items;
  list_items(p, v, items);
  for (const Value& item : items) {
    MapReader lm(p, item);
    RateLimitConfig::Limit l;
    if (read_limit(p, lm, l)) out.push_back(l);
    lm.finish();
  }
  check_windows(p, v, out);
}

void read_rate_limit(Problems& p, const Value& v, RateLimitConfig& c) {
  MapReader m(p, v);
  if (auto ls = m.get("limits")) {
    read_limit_list(p, *ls, c.limits);
  } else {
    RateLimitConfig::Limit l;
    if (read_limit(p, m, l)) c.limits.push_back(l);
  }
  if (auto cl = m.get("consumers")) {  // { consumer-id: [ { limit, per, burst }, ... ] }
    MapReader cm(p, *cl);
    for (auto& [id, lv] : cm.all()) read_limit_list(p, lv, c.consumer_limits[id]);
  }
  if (auto t = m.get("trusted_proxies")) read_strings(p, *t, c.trusted_proxies);
  if (auto a = m.get("algorithm")) {
    const int i = read_choice(p, *a, {"token_bucket", "sliding_window"});
    if (i >= 0) c.algorithm = static_cast<RateLimitConfig::Algorithm>(i);
  }
  if (auto b = m.get("by")) {
    const int i = read_choice(p, *b, {"consumer", "ip", "route", "header"});
    if (i >= 0) c.by = static_cast<RateLimitConfig::Key>(i);
  }
  if (auto h = m.get("header")) read_header_name(p, *h, c.header);
  if (c.by == RateLimitConfig::Key::header && c.header.empty()) p.add(v.line, v.path, "by: header needs header");
  if (auto l = m.get("legacy_headers")) read_bool(p, *l, c.legacy_headers);
  if (auto s = m.get("store")) {
    const int i = read_choice(p, *s, {"local", "redis"});
    if (i >= 0) c.store = static_cast<RateLimitConfig::Store>(i);
    c.store_line = s->line;
  }
  if (auto md = m.get("mode")) {
    const int i = read_choice(p, *md, {"exact", "batch"});
    if (i >= 0) c.mode = static_cast<RateLimitConfig::Mode>(i);
    if (c.store != RateLimitConfig::Store::redis) p.add(md->line, md->path, "mode needs store: redis");
  }
  if (auto b = m.get("batch")) {
    read_uint(p, *b, 1, c.batch, 1000000);
    if (c.mode != RateLimitConfig::Mode::batch) p.add(b->line, b->path, "batch needs mode: batch");
  }
  // A batch is reserved from every limit of a list at once and expires with the shortest
  // window: what it did not use would stay counted against the longer windows (a daily limit
  // used up by reserves of a per-second one). Batch mode therefore takes one limit per list.
  if (c.mode == RateLimitConfig::Mode::batch) {
    bool several = c.limits.size() > 1;
    for (const auto& [id, list] : c.consumer_limits) several = several || list.size() > 1;
    if (several)
      p.add(v.line, v.path, "mode: batch takes one limit per list (reserves from several windows would stay "
                            "counted against the longer ones); use mode: exact for several limits");
  }
  m.finish();
}

bool valid_header_value(std::string_view v) {
  return v.size() <= 8192 && http::detail::valid_field_value(v.data(), v.data() + v.size());
}

void read_header_pairs(Problems& p, const Value& v, std::vector<std::pair<std::string, std::string>>& out) {
  MapReader m(p, v);
  for (auto& [name, value] : m.all()) {
    std::string s;
    if (!valid_header_name(name) || gateway_owned(name))
      p.add(value.line, value.path, "invalid header name " + quoted(name) + " (framing, hop-by-hop and gateway fields cannot be set)");
    else if (read_string(p, value, s, true) && !valid_header_value(s)) p.add(value.line, value.path, "control characters in a header value");
    else out.emplace_back(name, s);
  }
}

void read_headers(Problems& p, const Value& v, HeadersConfig& c) {
  MapReader m(p, v);
  if (auto rq = m.get("request")) {
    MapReader r(p, *rq);
    if (auto x = r.get("set")) read_header_pairs(p, *x, c.request_set);
    if (auto x = r.get("add")) read_header_pairs(p, *x, c.request_add);
    if (auto x = r.get("remove")) {
      read_strings(p, *x, c.request_remove);
      for (const std::string& n : c.request_remove)
        if (!valid_header_name(n)) p.add(x->line, x->path, "invalid header name " + quoted(n));
    }
    r.finish();
  }
  if (auto rs = m.get("response")) {
    MapReader r(p, *rs);
    if (auto x = r.get("set")) read_header_pairs(p, *x, c.response_set);
    r.finish();
  }
  m.finish();
}

}  // namespace

void read_consumers(Problems& p, const Value& v, std::vector<ConsumerConfig>& out) {
  std::vector<Value> items;
  list_items(p, v, items);
  std::set<std::string> ids, keys;
  for (const Value& item : items) {
    ConsumerConfig c;
    c.line = item.line;
    MapReader m(p, item);
    if (auto id = m.required("id")) {
      if (read_string(p, *id, c.id) && !ids.insert(c.id).second) p.add(id->line, id->path, "duplicate consumer id " + quoted(c.id));
      if (!valid_identity(c.id)) p.add(id->line, id->path, "a consumer id is 1..128 printable bytes without spaces, ',', '\"' or '\\'");
    }
    if (auto ks = m.get("keys")) {
      std::vector<Value> kv;
      if (read_string_or_list(p, *ks, kv))
        for (const Value& k : kv) {
          const std::string& s = k.node.Scalar();
          if (!valid_key(s)) p.add(k.line, k.path, "a key is 8..256 printable bytes, or sha256:<64 hex digits>");
          else if (!keys.insert(s).second) p.add(k.line, k.path, "this key belongs to another consumer too");
          else c.keys.push_back(s);
        }
    }
    if (auto g = m.get("groups")) {
      read_strings(p, *g, c.groups);
      for (const std::string& x : c.groups)
        if (!valid_identity(x)) p.add(g->line, g->path, "invalid group " + quoted(x));
    }
    if (auto t = m.get("tenant")) {
      if (read_string(p, *t, c.tenant) && !valid_identity(c.tenant)) p.add(t->line, t->path, "invalid tenant " + quoted(c.tenant));
    }
    if (auto f = m.get("fields")) read_string_map(p, *f, c.fields);
    m.finish();
    out.push_back(std::move(c));
  }
}

void read_policies(Problems& p, const Value& v, const std::string& config_path, std::vector<PolicyConfig>& out) {
  std::vector<Value> items;
  list_items(p, v, items);
  for (const Value& item : items) {
    if (!item.node.IsMap() || item.node.size() != 1) {
      p.add(item.line, item.path, "a policy is a map with one key: its name (key-auth, jwt, acl, ip-restriction, cors, rate-limit, headers)");
      continue;
    }
    const auto it = item.node.begin();
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
    const Value body{it->second, join_path(item.path, name), line_of(it->second, item.line)};
    PolicyConfig pc;
    pc.name = name;
    pc.line = item.line;
    pc.path = item.path;
    if (name == "key-auth") read_key_auth(p, body, pc.spec.emplace<KeyAuthConfig>());
    else if (name == "jwt") read_jwt(p, body, config_path, pc.spec.emplace<JwtConfig>());
    else if (name == "acl") read_acl(p, body, pc.spec.emplace<AclConfig>());
    else if (name == "ip-restriction") read_ip(p, body, pc.spec.emplace<IpRestrictionConfig>());
    else if (name == "cors") read_cors(p, body, pc.spec.emplace<CorsConfig>());
    else if (name == "rate-limit") read_rate_limit(p, body, pc.spec.emplace<RateLimitConfig>());
    else if (name == "headers") read_headers(p, body, pc.spec.emplace<HeadersConfig>());
    else {
      p.add(item.line, item.path, "unknown policy " + quoted(name) +
                                      " (key-auth, jwt, acl, ip-restriction, cors, rate-limit, headers)");
      continue;
    }
    out.push_back(std::move(pc));
  }
}

}  // namespace lg::config_readers
