#include "config/config_loader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "config/config_checks.hpp"
#include "config/readers.hpp"
#include "config/yaml_reader.hpp"

namespace lg {
namespace {

using namespace yaml_reader;
using namespace config_checks;
using namespace config_readers;

constexpr unsigned kMaxWorkers = 256;

bool read_endpoint(Problems& p, const Value& v, Endpoint& out) {
  std::string text;
  if (!read_string(p, v, text)) return false;
  const std::string err = parse_endpoint(text, out);
  if (!err.empty()) p.add(v.line, v.path, err);
  return err.empty();
}

// ---- sections -------------------------------------------------------------------------------

void read_workers(Problems& p, const Value& v, Config& cfg) {
  if (v.node.IsScalar() && v.node.Scalar() == "auto") return;  // resolved at the end
  if (v.node.IsScalar() && !v.node.Scalar().empty() && !is_digit(v.node.Scalar()[0]) &&
      v.node.Scalar()[0] != '-') {
    p.add(v.line, v.path, "expected an integer 1..256 or auto, got " + describe(v.node));
    return;
  }
  read_uint(p, v, 1, cfg.workers, kMaxWorkers);
}

// A file path, relative to the config file's folder unless absolute.
bool read_file_ref(Problems& p, const Value& v, const std::string& config_path, ConfigFile& out) {
  std::string text;
  if (!read_string(p, v, text)) return false;
  // (no <filesystem> here: its std::quoted would clash with yaml_reader's quoted by ADL)
  out.path = config_relative(config_path, text);
  out.origin = fmt::format("{}:{}: {}", config_path, v.line, v.path);
  return true;
}

void read_tls(Problems& p, const Value& v, const std::string& config_path, TlsConfig& tls) {
  MapReader m(p, v);
  if (auto c = m.required("certificates")) {
    std::vector<Value> items;
    if (list_items(p, *c, items)) {
      if (items.empty()) p.add(c->line, c->path, "must list at least one certificate");
      for (const auto& item : items) {
        MapReader cm(p, item);
        TlsCertificateConfig cert;
        bool ok = true;
        if (auto f = cm.required("cert")) ok &= read_file_ref(p, *f, config_path, cert.cert);
        else ok = false;
        if (auto f = cm.required("key")) ok &= read_file_ref(p, *f, config_path, cert.key);
        else ok = false;
        cm.finish();
        if (ok) tls.certificates.push_back(std::move(cert));
      }
    }
  }
  if (auto ca = m.get("client_ca")) {
    ConfigFile f;
    if (read_file_ref(p, *ca, config_path, f)) tls.client_ca = std::move(f);
  }
  if (auto cv = m.get("client_verify")) {
    const int i = read_choice(p, *cv, {"required", "optional"});
    if (i >= 0) tls.client_verify_required = i == 0;
    if (!m.get("client_ca")) p.add(cv->line, cv->path, "needs client_ca (the CAs to verify client certificates against)");
  }
  if (auto t = m.get("handshake_timeout")) read_duration(p, *t, tls.handshake_timeout);
  m.finish();
}

void read_listen(Problems& p, const Value& v, Config& cfg) {
  std::vector<Value> items;
  if (!list_items(p, v, items)) return;
  if (items.empty()) p.add(v.line, v.path, "must list at least one address");
  for (const auto& item : items) {
    MapReader m(p, item);
    ListenConfig l;
    bool ok = false;
    if (auto a = m.required("address")) ok = read_endpoint(p, *a, l.address);
    if (auto b = m.get("backlog")) read_uint(p, *b, 1, l.backlog, 65535);
    if (auto t = m.get("tls")) read_tls(p, *t, cfg.path, l.tls.emplace());
    m.finish();
    if (!ok) continue;
    for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
      if (overlaps(cfg.listen[i].address, l.address)) {
        p.add(item.line, item.path + ".address",
              fmt::format("{} conflicts with listen[{}] ({})", quoted(l.address.text), i,
                          cfg.listen[i].address.text));
        ok = false;
        break;
      }
    }
    if (ok) cfg.listen.push_back(std::move(l));
  }
}

void read_admin(Problems& p, const Value& v, Config& cfg) {
  MapReader m(p, v);
  bool enabled = true;
  bool ok = false;
  Endpoint ep;
  std::optional<Value> addr = m.required("address");
  if (addr) ok = read_endpoint(p, *addr, ep);
  if (auto e = m.get("enabled")) read_bool(p, *e, enabled);
  m.finish();
  if (!ok) return;
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    if (overlaps(cfg.listen[i].address, ep)) {
      p.add(addr->line, addr->path,
            fmt::format("{} conflicts with listen[{}] ({})", quoted(ep.text), i,
                        cfg.listen[i].address.text));
      return;
    }
  }
  cfg.admin.address = ep;
  cfg.admin.enabled = enabled;
}

void read_limits(Problems& p, const Value& v, LimitsConfig& l) {
  MapReader m(p, v);
  const auto size = [&](const char* key, std::uint64_t& out, std::uint64_t min) {
    if (auto f = m.get(key)) read_size(p, *f, min, out);
  };
  const auto count = [&](const char* key, std::uint32_t& out) {
    if (auto f = m.get(key)) read_uint(p, *f, 1, out);
  };
  const auto duration = [&](const char* key, Millis& out) {
    if (auto f = m.get(key)) read_duration(p, *f, out);
  };
  size("max_header_bytes", l.max_header_bytes, 1);
  size("max_uri_bytes", l.max_uri_bytes, 1);
  count("max_headers", l.max_headers);
  size("max_body_bytes", l.max_body_bytes, 0);  // 0: requests may not carry a body
  size("max_chunk_ext_bytes", l.max_chunk_ext_bytes, 0);  // 0: no chunk extensions
  size("max_response_header_bytes", l.max_response_header_bytes, 1);
  count("max_pipelined", l.max_pipelined);
  count("max_connections", l.max_connections);
  duration("client_header_timeout", l.client_header_timeout);
  duration("client_body_timeout", l.client_body_timeout);
  duration("send_timeout", l.send_timeout);
  duration("idle_timeout", l.idle_timeout);
  duration("drain_timeout", l.drain_timeout);
  m.finish();
}

void read_log(Problems& p, const Value& v, LogConfig& log) {
  MapReader m(p, v);
  if (auto a = m.get("access")) read_string(p, *a, log.access);
  if (auto e = m.get("error")) {
    std::string s;
    if (read_string(p, *e, s)) {
      if (s == "off") p.add(e->line, e->path, "the error log cannot be off (use stderr, stdout or a file path)");
      else log.error = s;
    }
  }
  if (auto l = m.get("level")) {
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    const int i = read_choice(p, *l, {kLevels[0], kLevels[1], kLevels[2], kLevels[3], kLevels[4]});
    if (i >= 0) log.level = kLevels[i];
  }
  m.finish();
}


void read_redis(Problems& p, const Value& v, Config& cfg) {
  MapReader m(p, v);
  if (!m.ok()) return;
  RedisConfig r;
  r.line = v.line;
  bool ok = false;
  if (auto a = m.required("address")) ok = read_endpoint(p, *a, r.address);
  if (auto t = m.get("timeout")) {
    if (read_duration(p, *t, r.timeout) && r.timeout.count() <= 0) p.add(t->line, t->path, "must be above 0");
  }
  if (auto f = m.get("on_failure")) {
    const int i = read_choice(p, *f, {"open", "closed"});
    if (i >= 0) r.on_failure = static_cast<RedisConfig::OnFailure>(i);
  }
  if (auto mp = m.get("max_pending")) read_uint(p, *mp, 1, r.max_pending, 1000000);
  if (auto rc = m.get("reconnect")) {  // { min: 50ms, max: 2s }
    MapReader rm(p, *rc);
    if (auto a = rm.get("min")) read_duration(p, *a, r.reconnect_min);
    if (auto b = rm.get("max")) read_duration(p, *b, r.reconnect_max);
    rm.finish();
    if (r.reconnect_min.count() <= 0 || r.reconnect_max < r.reconnect_min)
      p.add(rc->line, rc->path, "needs 0 < min <= max");
  }
  m.finish();
  if (ok) cfg.redis = r;
}

// store: redis and revocation: redis need the top-level redis section; an unset revocation
// follows it (Redis when there is one).
void check_redis_users(Problems& p, Config& cfg) {
  for (RouteConfig& route : cfg.routes)
    for (PolicyConfig& pc : route.policies) {
      if (const auto* rl = std::get_if<RateLimitConfig>(&pc.spec);
          rl && rl->store == RateLimitConfig::Store::redis && !cfg.redis)
        p.add(rl->store_line ? rl->store_line : pc.line, pc.path + ".rate-limit.store",
              "store: redis needs a top-level redis section");
      auto* jwt = std::get_if<JwtConfig>(&pc.spec);
      if (!jwt) continue;
      if (jwt->revocation == JwtConfig::Revocation::redis && !cfg.redis)
        p.add(jwt->revocation_line ? jwt->revocation_line : pc.line, pc.path + ".jwt.revocation",
              "revocation: redis needs a top-level redis section");
      if (jwt->revocation == JwtConfig::Revocation::unset)
        jwt->revocation = cfg.redis ? JwtConfig::Revocation::redis : JwtConfig::Revocation::local;
    }
}

void read_hash_on(Problems& p, const Value& v, UpstreamConfig& u) {
  constexpr std::string_view kExpected = "client_ip, {header: NAME} or {cookie: NAME}";
  if (v.node.IsScalar()) {
    if (v.node.Scalar() == "client_ip") u.hash_on = HashSource::client_ip;
    else p.add(v.line, v.path, fmt::format("invalid value {} (expected {})", quoted(v.node.Scalar()), kExpected));
    return;
  }
  if (!v.node.IsMap()) {
    p.add(v.line, v.path, fmt::format("expected {}, got {}", kExpected, describe(v.node)));
    return;
  }
  MapReader m(p, v);
  auto header = m.get("header");
  auto cookie = m.get("cookie");
  m.finish();
  if (header.has_value() == cookie.has_value()) {
    p.add(v.line, v.path, "expected exactly one of header or cookie");
    return;
  }
  const Value& f = header ? *header : *cookie;
  std::string name;
  if (!read_string(p, f, name)) return;
  if (!is_token(name)) {
    p.add(f.line, f.path, fmt::format("invalid {} name {}", header ? "header" : "cookie", quoted(name)));
    return;
  }
  u.hash_on = header ? HashSource::header : HashSource::cookie;
  u.hash_key = header ? lower(name) : name;  // header names are case-insensitive, cookies not
}

void read_target(Problems& p, const Value& v, TargetConfig& t, bool& ok) {
  ok = false;
  if (v.node.IsScalar()) {
    ok = read_endpoint(p, v, t.address);
    return;
  }
  if (!v.node.IsMap()) {
    p.add(v.line, v.path, "expected an address string or a map {address, weight}, got " + describe(v.node));
    return;
  }
  MapReader m(p, v);
  if (auto a = m.required("address")) ok = read_endpoint(p, *a, t.address);
  if (auto w = m.get("weight")) ok = read_uint(p, *w, 1, t.weight, 1000) && ok;
  m.finish();
}

void read_upstream_tls(Problems& p, const Value& v, const std::string& config_path, UpstreamTlsConfig& tls) {
  MapReader m(p, v);
  tls.origin = fmt::format("{}:{}: {}", config_path, v.line, v.path);
  if (auto f = m.get("verify")) read_bool(p, *f, tls.verify);
  if (auto f = m.get("ca")) {
    ConfigFile cf;
    if (read_file_ref(p, *f, config_path, cf)) tls.ca = std::move(cf);
  }
  if (auto f = m.get("sni")) {
    std::string s;
    if (read_string(p, *f, s)) {
      if (s == "host") {
        tls.sni_mode = UpstreamTlsConfig::SniMode::host;
      } else if (s.empty() || s.size() > 253 || s.find_first_of(" \t/:[]@") != std::string::npos) {
        p.add(f->line, f->path, fmt::format("expected a host name or host, got {}", quoted(s)));
      } else {
        tls.sni_mode = UpstreamTlsConfig::SniMode::name;
        tls.sni = s;
      }
    }
  }
  auto cert = m.get("cert");
  auto key = m.get("key");
  if (cert) {
    ConfigFile cf;
    if (read_file_ref(p, *cert, config_path, cf)) tls.cert = std::move(cf);
  }
  if (key) {
    ConfigFile cf;
    if (read_file_ref(p, *key, config_path, cf)) tls.key = std::move(cf);
  }
  if (cert && !key) p.add(cert->line, cert->path, "needs key (the client certificate's private key)");
  if (key && !cert) p.add(key->line, key->path, "needs cert (the client certificate)");
  m.finish();
}

void read_upstream(Problems& p, const Value& v, const std::string& config_path, UpstreamConfig& u) {
  MapReader m(p, v);
  if (auto tv = m.required("targets")) {
    std::vector<Value> items;
    if (list_items(p, *tv, items) && items.empty()) p.add(tv->line, tv->path, "must list at least one target");
    for (const auto& item : items) {
      TargetConfig t;
      bool ok = false;
      read_target(p, item, t, ok);
      if (!ok) continue;
      const auto dup = std::find_if(u.targets.begin(), u.targets.end(), [&](const TargetConfig& o) {
        return o.address.host == t.address.host && o.address.port == t.address.port;
      });
      if (dup != u.targets.end()) {
        p.add(item.line, item.path,
              fmt::format("duplicate target {} (use weight instead)", quoted(t.address.text)));
        continue;
      }
      u.targets.push_back(std::move(t));
    }
  }
  bool balance_ok = true;
  if (auto b = m.get("balance")) {
    const int i = read_choice(p, *b, {"round_robin", "least_conn", "consistent_hash"});
    balance_ok = i >= 0;
    if (balance_ok) u.balance = static_cast<BalanceKind>(i);
  }
  if (auto h = m.get("hash_on")) {
    read_hash_on(p, *h, u);
    if (balance_ok && u.balance != BalanceKind::consistent_hash)
      p.add(h->line, h->path, "only valid with balance: consistent_hash");
  } else if (u.balance == BalanceKind::consistent_hash) {
    p.add(v.line, join_path(v.path, "hash_on"), "required with balance: consistent_hash");
  }
  if (auto t = m.get("timeouts")) {
    OptionalTimeouts o;
    read_timeouts(p, *t, o);
    u.timeouts.connect = o.connect.value_or(u.timeouts.connect);
    u.timeouts.read = o.read.value_or(u.timeouts.read);
    u.timeouts.write = o.write.value_or(u.timeouts.write);
  }
  if (auto k = m.get("keepalive")) {
    MapReader km(p, *k);
    if (auto f = km.get("max_idle")) read_uint(p, *f, 0, u.keepalive_max_idle);  // 0: no pooling
    if (auto f = km.get("idle_timeout")) read_duration(p, *f, u.keepalive_idle_timeout);
    if (auto f = km.get("max_requests")) read_uint(p, *f, 1, u.keepalive_max_requests);
    km.finish();
  }
  if (auto h = m.get("health")) {
    MapReader hm(p, *h);
    if (auto pv = hm.get("passive")) {
      MapReader pm(p, *pv);
      if (auto f = pm.get("failures")) read_uint(p, *f, 1, u.passive_failures);
      if (auto f = pm.get("down_for")) read_duration(p, *f, u.passive_down_for);
      pm.finish();
    }
    hm.unsupported("active", "health.active");
    hm.finish();
  }
  if (auto t = m.get("tls")) read_upstream_tls(p, *t, config_path, u.tls.emplace());
  m.unsupported("circuit_breaker");
  m.unsupported("retries");
  m.finish();
}

void read_upstreams(Problems& p, const Value& v, Config& cfg, std::set<std::string>& declared) {
  MapReader m(p, v);
  for (auto& [name, uv] : m.all()) {
    declared.insert(name);  // even if invalid: routes naming it are not "unknown upstream"
    const bool name_ok = valid_name(name);
    if (!name_ok) p.add(uv.line, uv.path, "invalid upstream name (use letters, digits, '_', '.', '-')");
    UpstreamConfig u;
    u.name = name;
    read_upstream(p, uv, cfg.path, u);  // still checked, so all problems show up in one run
    if (name_ok) cfg.upstreams.push_back(std::move(u));
  }
}

Config load_root(Problems& p, const YAML::Node& root, const std::string& path) {
  Config cfg;
  cfg.path = path;
  MapReader top(p, Value{root, "", line_of(root)});
  if (!top.ok()) return cfg;
  if (auto w = top.get("workers")) read_workers(p, *w, cfg);
  if (auto l = top.required("listen")) read_listen(p, *l, cfg);
  if (auto a = top.get("admin")) read_admin(p, *a, cfg);
  if (auto l = top.get("limits")) read_limits(p, *l, cfg.limits);
  if (auto l = top.get("log")) read_log(p, *l, cfg.log);
  std::set<std::string> declared;
  if (auto u = top.get("upstreams")) read_upstreams(p, *u, cfg, declared);
  if (auto r = top.get("routes")) read_routes(p, *r, cfg, declared);
  if (auto sc = top.get("scripts")) read_scripts_section(p, *sc, cfg.scripts);
  if (auto r = top.get("redis")) read_redis(p, *r, cfg);
  check_redis_users(p, cfg);
  if (auto c = top.get("consumers")) read_consumers(p, *c, cfg.consumers);
  top.finish();
  if (cfg.workers == 0)
    cfg.workers = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
  return cfg;
}

}  // namespace

Config load_config_text(const std::string& text, const std::string& path) {
  const auto yaml_error = [&](const YAML::Exception& e) {
    return e.mark.line >= 0 ? ConfigError(fmt::format("{}:{}: yaml: {}", path, e.mark.line + 1, e.msg))
                            : ConfigError(fmt::format("{}: yaml: {}", path, e.msg));
  };
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    throw yaml_error(e);
  }
  Problems p(path);
  Config cfg;
  try {
    if (docs.size() > 1) p.add(line_of(docs[1]), "yaml", "only one document is allowed per file");
    cfg = load_root(p, docs.empty() ? YAML::Node() : docs[0], path);
  } catch (const YAML::Exception& e) {  // not expected: the readers check types before access
    throw yaml_error(e);
  }
  if (!p.empty()) throw ConfigError(p.joined());
  return cfg;
}

Config load_config_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      throw ConfigError(fmt::format("{}: cannot read: {}", path, std::strerror(err)));
    }
  }
  ::close(fd);
  return load_config_text(text, path);
}

}  // namespace lg
