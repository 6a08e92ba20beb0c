#include "gateway.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/post.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <map>
#include <sstream>

#include "admin/admin_server.hpp"
#include "auth/jwks_fetcher.hpp"
#include "config_watcher.hpp"
#include "lua/engine.hpp"
#include "core/json_escape.hpp"
#include "config/config_loader.hpp"
#include "config/snapshot.hpp"
#include "log/logging.hpp"
#include "net/worker.hpp"
#include "redis/revocations.hpp"

namespace lg {

namespace asio = boost::asio;

namespace {
using lua::check_scripts;
constexpr std::int64_t kRevokeTimeoutMs = 1000;  // at least, for the admin's Redis write

void log_lines(spdlog::level::level_enum lvl, const std::string& prefix, const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) spdlog::log(lvl, "{}{}", prefix, line);
}

// Settings bound to sockets, threads or buffer sizes at startup.
std::string restart_only_change(const Config& a, const Config& b) {
  if (a.workers != b.workers) return "workers";
  if (a.listen.size() != b.listen.size()) return "listen";
  for (std::size_t i = 0; i < a.listen.size(); ++i)
    if (a.listen[i].address.text != b.listen[i].address.text || a.listen[i].backlog != b.listen[i].backlog) return "listen";
  if (a.admin.enabled != b.admin.enabled || a.admin.address.text != b.admin.address.text) return "admin";
  if (a.log.access != b.log.access || a.log.error != b.log.error) return "log";
  // Each worker's Redis connection is made at startup.
  if (a.redis.has_value() != b.redis.has_value() ||
      (a.redis && (a.redis->address.text != b.redis->address.text || a.redis->timeout != b.redis->timeout ||
                   a.redis->on_failure != b.redis->on_failure || a.redis->max_pending != b.redis->max_pending ||
                   a.redis->reconnect_min != b.redis->reconnect_min || a.redis->reconnect_max != b.redis->reconnect_max)))
    return "redis";
  if (b.limits.max_header_bytes > a.limits.max_header_bytes) return "limits.max_header_bytes (growing it)";
  if (b.limits.max_response_header_bytes > a.limits.max_response_header_bytes)
    return "limits.max_response_header_bytes (growing it)";
  if (b.limits.max_headers > a.limits.max_headers) return "limits.max_headers (growing it)";
  return {};
}
}  // namespace

struct Gateway::Impl final : AdminBackend {
  std::string path;
  asio::io_context io{1};
  asio::signal_set signals{io};
  asio::steady_timer drain_timer{io};
  std::shared_ptr<const Snapshot> snapshot;
  SharedState shared;  // gw.shared and gw.ratelimit, across workers
  std::vector<std::unique_ptr<Worker>> workers;
  // After the workers: destroyed (stopped) first, so it never posts to a destroyed reactor.
  std::unique_ptr<auth::JwksFetcher> jwks;
  std::unique_ptr<AdminServer> admin;
  bool draining = false;
  unsigned drained = 0;
  std::uint64_t reloads_ok = 0, reloads_failed = 0;
  std::uint64_t script_reloads_ok = 0, script_reloads_failed = 0;  // reloads that changed / broke a script
  std::string last_reload_error;
  struct ScriptInfo {
    std::string path, sha256, last_error;
    std::chrono::system_clock::time_point loaded_at{};
  };
  std::map<std::string, ScriptInfo> scripts;  // every script seen, by name
  std::unique_ptr<ConfigWatcher> watcher;

  bool ready() const override { return snapshot && !draining; }

  std::string config_json() const override {
    const Snapshot& s = *snapshot;
    auto t = std::chrono::time_point_cast<std::chrono::milliseconds>(s.loaded_at);
    return fmt::format(
        "{{\"version\":{},\"sha256\":\"{}\",\"loaded_at\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"path\":\"{}\","
        "\"routes\":{},\"upstreams\":{},\"workers\":{},\"reloads\":{{\"ok\":{},\"error\":{}}},\"draining\":{}}}\n",
        s.version, s.hash, t, s.config.path, s.config.routes.size(), s.config.upstreams.size(), workers.size(),
        reloads_ok, reloads_failed, draining ? "true" : "false");
  }

  std::string scripts_json() const override {
    std::string out = "{\"scripts\":[";
    bool first = true;
    for (const auto& [name, info] : scripts) {
      std::string err;
      json_escape_append(err, info.last_error);
      out += fmt::format("{}{{\"name\":\"{}\",\"path\":\"{}\",\"sha256\":\"{}\",\"loaded_at\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"last_error\":{}}}",
                         first ? "" : ",", name, info.path, info.sha256,
                         std::chrono::time_point_cast<std::chrono::seconds>(info.loaded_at),
                         info.last_error.empty() ? "null" : "\"" + err + "\"");
      first = false;
    }
    std::string last;
    json_escape_append(last, last_reload_error);
    out += fmt::format("],\"version\":{},\"last_reload_error\":{}}}\n", snapshot->version,
                       last_reload_error.empty() ? "null" : "\"" + last + "\"");
    return out;
  }

  std::string reload_now(bool& ok) override {
    ok = reload();
    if (ok) return fmt::format("{{\"result\":\"ok\",\"version\":{},\"sha256\":\"{}\"}}\n", snapshot->version, snapshot->hash);
    std::string err;
    json_escape_append(err, last_reload_error);
    return fmt::format("{{\"result\":\"error\",\"version\":{},\"error\":\"{}\"}}\n", snapshot->version, err);
  }

  std::string revoke_jti(std::string_view jti, std::int64_t ttl_s) override {
    const std::string key = std::string(policy::kRevokedJtiPrefix) + std::string(jti);
    SharedDict::Value v;
    v.is_number = true;
    v.number = 1;
    shared.dict.set(key, v, ttl_s * 1000, monotonic_ms(), /*at_least=*/true);  // this process at once, Redis or not
    const auto& redis = snapshot->config.redis;  // restart-only: the workers' one
    if (!redis) return {};
    // A blocking call on the main thread: revocations are rare, and the wait is bounded.
    const std::int64_t timeout = std::max<std::int64_t>(redis->timeout.count(), kRevokeTimeoutMs);
    std::string err = redis::write_revocation(*redis, key, ttl_s, timeout);
    if (!err.empty()) spdlog::warn("jwt revocation of {:?} not written to redis: {}", jti, err);
    return err;
  }

  // Records the scripts of a snapshot that was just published.
  void note_scripts(const Snapshot& s) {
    const auto now = std::chrono::system_clock::now();
    for (const ScriptSource& src : s.scripts) {
      ScriptInfo& info = scripts[src.name];
      if (info.sha256 != src.sha256) info.loaded_at = now;
      info.path = src.path;
      info.sha256 = src.sha256;
      info.last_error.clear();
    }
  }

  // Attributes each "file:line: message" line of a rejected reload to the script it names;
  // true if any line named a script.
  bool note_script_errors(const std::string& errors) {
    bool named = false;
    std::istringstream in(errors);
    for (std::string line; std::getline(in, line);)
      for (auto& [name, info] : scripts)
        if (!info.path.empty() && line.rfind(info.path + ":", 0) == 0) {
          info.last_error = line;
          named = true;
        }
    return named;
  }

  // Whether two snapshots run different script sources (one added, removed or edited).
  static bool scripts_differ(const Snapshot& a, const Snapshot& b) {
    auto shas = [](const Snapshot& s) {
      std::map<std::string, std::string> m;
      for (const ScriptSource& src : s.scripts) m.emplace(src.name, src.sha256);
      return m;
    };
    return shas(a) != shas(b);
  }

  void start_watch() {
    if (!snapshot->config.scripts.watch) {
      watcher.reset();
      return;
    }
    if (!watcher) watcher = std::make_unique<ConfigWatcher>(io, [this] { reload(); });
    std::string err;
    std::vector<std::string> files;  // TLS certificates, keys and CAs: a changed one is reloaded
    for (const ListenConfig& l : snapshot->config.listen) {
      if (!l.tls) continue;
      for (const TlsCertificateConfig& c : l.tls->certificates) {
        files.push_back(c.cert.path);
        files.push_back(c.key.path);
      }
      if (l.tls->client_ca) files.push_back(l.tls->client_ca->path);
    }
    for (const UpstreamConfig& u : snapshot->config.upstreams) {  // upstream CAs and client certificates
      if (!u.tls) continue;
      for (const auto* f : {&u.tls->ca, &u.tls->cert, &u.tls->key})
        if (*f) files.push_back((*f)->path);
    }
    if (!watcher->watch(path, snapshot->scripts_dir, err, files)) spdlog::warn("watching for changes: {}", err);
  }

  void collect_metrics(std::function<void(std::string)> done) override {
    struct Gather {
      std::vector<MetricsData> parts;
      std::size_t waiting;
      std::function<void(std::string)> done;
    };
    auto g = std::make_shared<Gather>();
    g->waiting = workers.size();
    g->done = std::move(done);
    for (auto& w : workers) {
      w->collect_metrics([this, g](MetricsData d) {
        asio::post(io, [this, g, d = std::move(d)]() mutable {
          g->parts.push_back(std::move(d));
          if (--g->waiting) return;
          std::string text = render_prometheus(g->parts);
          text += "# HELP gateway_config_reloads_total Config reloads by result.\n";
          text += "# TYPE gateway_config_reloads_total counter\n";
          text += fmt::format("gateway_config_reloads_total{{result=\"ok\"}} {}\n", reloads_ok);
          text += fmt::format("gateway_config_reloads_total{{result=\"error\"}} {}\n", reloads_failed);
          text += "# HELP gateway_script_reloads_total Reloads that changed a script (ok) or were rejected for one (error).\n";
          text += "# TYPE gateway_script_reloads_total counter\n";
          text += fmt::format("gateway_script_reloads_total{{result=\"ok\"}} {}\n", script_reloads_ok);
          text += fmt::format("gateway_script_reloads_total{{result=\"error\"}} {}\n", script_reloads_failed);
          jwks->append_metrics(text);
          g->done(std::move(text));
        });
      });
    }
  }

  void watch_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) reload();
      else drain();
      watch_signals();
    });
  }

  // Builds and validates a new snapshot (config and every script it uses), then publishes it.
  bool reload() {
    if (draining) return false;
    try {
      auto next = build_snapshot(path, snapshot->version + 1, jwks.get());
      std::string frozen = restart_only_change(snapshot->config, next->config);
      if (!frozen.empty()) throw ConfigError(path + ": " + frozen + ": changing this needs a restart");
      if (std::string e = check_scripts(*next); !e.empty()) throw ConfigError(e);
      if (scripts_differ(*snapshot, *next)) ++script_reloads_ok;
      snapshot = next;
      for (auto& w : workers) w->publish(snapshot);
      jwks->commit();
      ++reloads_ok;
      last_reload_error.clear();
      note_scripts(*snapshot);
      spdlog::info("config reloaded: version {} sha256 {}", snapshot->version, snapshot->hash);
      start_watch();
      return true;
    } catch (const std::exception& e) {
      jwks->discard();
      ++reloads_failed;
      last_reload_error = e.what();
      if (note_script_errors(last_reload_error)) ++script_reloads_failed;
      spdlog::error("config reload rejected; version {} keeps serving:", snapshot->version);
      log_lines(spdlog::level::err, "  ", e.what());
      return false;
    }
  }

  void drain() {
    if (draining) {  // a second signal: stop now
      spdlog::warn("second shutdown signal: stopping without waiting");
      shutdown();
      return;
    }
    draining = true;
    const auto timeout = snapshot->config.limits.drain_timeout;
    spdlog::info("draining: finishing in-flight requests (up to {} ms)", timeout.count());
    drain_timer.expires_after(timeout);
    drain_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      spdlog::warn("drain timeout: closing the remaining connections");
      shutdown();
    });
    for (auto& w : workers)
      w->begin_drain([this] {
        asio::post(io, [this] {
          if (++drained == workers.size()) shutdown();
        });
      });
  }

  void shutdown() {
    if (watcher) watcher->stop();
    drain_timer.cancel();
    signals.cancel();
    if (admin) admin->close();
    for (auto& w : workers) w->stop();
    io.stop();
  }
};

Gateway::Gateway(std::string config_path) : impl_(std::make_unique<Impl>()) { impl_->path = std::move(config_path); }
Gateway::~Gateway() = default;

int Gateway::run() {
  Impl& g = *impl_;
  try {
    g.jwks = std::make_unique<auth::JwksFetcher>();
    g.snapshot = build_snapshot(g.path, 1, g.jwks.get());
    if (std::string e = check_scripts(*g.snapshot); !e.empty()) throw ConfigError(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
  const Config& cfg = g.snapshot->config;
  int access_fd = -1;
  try {
    setup_error_log(cfg.log);
    access_fd = open_access_log_fd(cfg.log);
    std::signal(SIGPIPE, SIG_IGN);
    g.signals.add(SIGHUP);
    g.signals.add(SIGTERM);
    g.signals.add(SIGINT);
    for (unsigned i = 0; i < cfg.workers; ++i) g.workers.push_back(std::make_unique<Worker>(i, cfg, access_fd, &g.shared));
    if (cfg.admin.enabled) {
      g.admin = std::make_unique<AdminServer>(g.io, cfg.admin.address, g);
      g.admin->start();
    }
    std::vector<Reactor*> reactors;
    for (auto& w : g.workers) reactors.push_back(&w->reactor());
    g.jwks->attach_workers(std::move(reactors));
    g.jwks->start();  // the first keys, before the first request
    for (auto& w : g.workers) w->start(cfg.listen, g.snapshot);
  } catch (const std::exception& e) {
    spdlog::critical("startup failed: {}", e.what());
    for (auto& w : g.workers) w->stop();
    for (auto& w : g.workers) w->join();
    return 1;
  }
  std::string listen;
  for (const auto& l : cfg.listen) listen += (listen.empty() ? "" : ", ") + l.address.text;
  spdlog::info("lunagate {} serving on {} with {} workers; admin {}; config {} version 1 sha256 {}", LUNAGATE_VERSION,
               listen, cfg.workers, cfg.admin.enabled ? cfg.admin.address.text : "off", g.path, g.snapshot->hash);
  g.note_scripts(*g.snapshot);
  g.start_watch();
  g.watch_signals();
  g.io.run();
  g.jwks->stop();  // no more posts to the workers
  for (auto& w : g.workers) w->join();
  g.workers.clear();  // flushes every access log
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace lg
