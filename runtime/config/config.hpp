// The parsed configuration: plain data, validated by config_loader, frozen into a Snapshot.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/conf_value.hpp"
#include "core/units.hpp"

#include "config/policies.hpp"

namespace lg {

struct Endpoint {
  std::string host;  // numeric IPv4/IPv6 literal after resolution
  std::uint16_t port = 0;
  std::string text;  // as written, "127.0.0.1:8080"
};

// A file named in the config, resolved against the config file's folder, and where it was
// named ("conf.yaml:7: listen[0].tls.certificates[0].cert") for messages about its contents.
struct ConfigFile {
  std::string path;
  std::string origin;
};

struct TlsCertificateConfig {
  ConfigFile cert;  // PEM chain, leaf first
  ConfigFile key;   // PEM private key
};

// TLS termination on a listener (net/tls_context.cpp builds it into SSL_CTXs per snapshot).
struct TlsConfig {
  std::vector<TlsCertificateConfig> certificates;  // chosen by SNI; the first is the default
  std::optional<ConfigFile> client_ca;             // verify client certificates against these CAs
  bool client_verify_required = true;              // client_verify: required | optional
  Millis handshake_timeout{10'000};
};

struct ListenConfig {
  Endpoint address;
  int backlog = 4096;
  std::optional<TlsConfig> tls;
};

struct AdminConfig {
  Endpoint address;
  bool enabled = false;
};

struct LimitsConfig {
  std::uint64_t max_header_bytes = 32 * 1024;   // whole request head -> 431
  std::uint64_t max_uri_bytes = 8 * 1024;       // request-target -> 414
  std::uint32_t max_headers = 100;              // field lines -> 431
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;  // request body -> 413
  std::uint64_t max_chunk_ext_bytes = 4096;     // one chunk line's extensions -> 400
  std::uint64_t max_response_header_bytes = 64 * 1024;  // upstream head -> 502
  std::uint32_t max_pipelined = 16;             // requests parsed ahead on one connection
  std::uint32_t max_connections = 65536;        // per worker
  Millis client_header_timeout{10'000};         // first byte to end of head -> 408
  Millis client_body_timeout{60'000};           // between body reads -> 408
  Millis send_timeout{60'000};                  // a stalled write to the client -> close
  Millis idle_timeout{60'000};                  // keep-alive between requests -> close
  Millis drain_timeout{30'000};                 // SIGTERM: in-flight requests get this long
};

struct LogConfig {
  std::string access = "stdout";  // stdout | stderr | off | a file path
  std::string error = "stderr";   // stderr | stdout | a file path
  std::string level = "info";     // trace | debug | info | warn | error
};

struct UpstreamTimeouts {
  Millis connect{1'000};
  Millis read{60'000};
  Millis write{60'000};
};

struct OptionalTimeouts {
  std::optional<Millis> connect, read, write;
};

enum class BalanceKind { round_robin, least_conn, consistent_hash };
enum class HashSource { header, cookie, client_ip };

struct TargetConfig {
  Endpoint address;
  std::uint32_t weight = 1;
};

// `upstreams.<name>.tls`: TLS to the targets (net/tls_context.cpp builds the client SSL_CTX per
// snapshot).
struct UpstreamTlsConfig {
  enum class SniMode : std::uint8_t { automatic, name, host };
  bool verify = true;                 // chain and host name (or IP) of the target's certificate
  std::optional<ConfigFile> ca;       // absent: the system store
  SniMode sni_mode = SniMode::automatic;  // automatic: the target's host if it is a name, else none
  std::string sni;                    // SniMode::name
  std::optional<ConfigFile> cert;     // client certificate (mTLS to the upstream), with key
  std::optional<ConfigFile> key;
  std::string origin;                 // "gw.yaml:12: upstreams.app.tls", for messages
};

struct UpstreamConfig {
  std::string name;
  std::vector<TargetConfig> targets;
  BalanceKind balance = BalanceKind::round_robin;
  HashSource hash_on = HashSource::client_ip;  // consistent_hash only
  std::string hash_key;                        // header or cookie name
  UpstreamTimeouts timeouts;
  std::uint32_t keepalive_max_idle = 64;       // idle pooled connections per target per worker
  Millis keepalive_idle_timeout{60'000};
  std::uint32_t keepalive_max_requests = 10000;
  std::uint32_t passive_failures = 3;          // consecutive failures that mark a target down
  Millis passive_down_for{10'000};
  std::optional<UpstreamTlsConfig> tls;
};

enum Method : std::uint16_t {
  M_GET = 1 << 0, M_HEAD = 1 << 1, M_POST = 1 << 2, M_PUT = 1 << 3, M_DELETE = 1 << 4,
  M_PATCH = 1 << 5, M_OPTIONS = 1 << 6, M_TRACE = 1 << 7,
};
constexpr std::uint16_t kAllMethods = 0xff;

struct RouteMatch {
  std::vector<std::string> hosts;  // empty = any host; "*.example.com" = wildcard
  std::vector<std::string> paths;  // "/exact", "/users/:id", "/v1/users/*"
  std::uint16_t methods = kAllMethods;
};

// A script attached to a route (or globally), by name: scripts/<name>.lua.
struct ScriptRef {
  std::string name;
  ConfValue config;                   // the per-route config table handed to the handlers
  std::optional<Millis> cpu;          // budget overrides for this attachment
  std::optional<std::uint64_t> memory;
  int line = 0;
};

struct ScriptsConfig {
  std::string dir = "scripts";        // relative to the config file's folder
  bool watch = true;                  // reload when a script or the config changes (inotify)
  Millis cpu{50};                     // per request and phase handler
  std::uint64_t memory = 32u << 20;   // per request
  Millis wait_limit{60'000};          // what a request's handlers may spend waiting, in all
  std::vector<ScriptRef> global;      // run on every route, before the route's own scripts
};

struct RouteConfig {
  std::string name;
  int line = 0;  // where it was declared, for error messages
  RouteMatch match;
  std::string upstream;
  std::string strip_prefix;      // removed from the normalized path before forwarding
  std::string rewrite;           // path template: "{name}" = a :param, "{*}" = the prefix remainder
  bool preserve_host = true;     // forward the client's Host (false: the target's address)
  bool websocket = true;         // allow Upgrade: websocket
  OptionalTimeouts timeouts;     // override the upstream's
  std::optional<std::uint64_t> max_body_bytes;  // override limits.max_body_bytes
  std::vector<ScriptRef> scripts;  // run in order after the global scripts
  std::vector<PolicyConfig> policies;  // native policies, in order, before the scripts
};

// `redis:` — the store shared by several instances (Redis-backed rate limits). One connection
// per worker; commands issued in one loop turn go out together (pipelining).
struct RedisConfig {
  enum class OnFailure : std::uint8_t { open, closed };
  Endpoint address;
  Millis timeout{50};                      // per command, then the request passes (open) or gets 503 (closed)
  OnFailure on_failure = OnFailure::open;
  std::uint32_t max_pending = 10000;       // commands in flight per worker before new ones fail at once
  Millis reconnect_min{50}, reconnect_max{2000};  // backoff after a lost connection, doubling
  int line = 0;
};

struct Config {
  std::string path;  // the file it was loaded from
  unsigned workers = 0;  // 0 = auto (resolved to the core count by the loader)
  std::vector<ListenConfig> listen;
  AdminConfig admin;
  LimitsConfig limits;
  LogConfig log;
  ScriptsConfig scripts;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  std::vector<ConsumerConfig> consumers;
  std::optional<RedisConfig> redis;  // absent: rate limits live in the process only
};

}  // namespace lg
