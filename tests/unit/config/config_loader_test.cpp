#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "config/config_loader.hpp"

using namespace lg;
using namespace std::chrono_literals;

namespace {

// The ConfigError text for `yaml` loaded as "gw.yaml", or "<no error>".
std::string errors(const std::string& yaml) {
  try {
    load_config_text(yaml, "gw.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

Config load(const std::string& yaml) { return load_config_text(yaml, "gw.yaml"); }

// Lines 1-2 of most test documents.
const std::string kListen = "listen:\n  - address: 127.0.0.1:8080\n";

}  // namespace

// ---- valid configs --------------------------------------------------------------------------

TEST_CASE("config: minimal file gets every default", "[config]") {
  const Config c = load(kListen);
  CHECK(c.path == "gw.yaml");
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].address.host == "127.0.0.1");
  CHECK(c.listen[0].address.port == 8080);
  CHECK(c.listen[0].address.text == "127.0.0.1:8080");
  CHECK(c.listen[0].backlog == 4096);
  CHECK_FALSE(c.admin.enabled);
  const LimitsConfig d;
  CHECK(c.limits.max_header_bytes == 32 * 1024);
  CHECK(c.limits.max_uri_bytes == d.max_uri_bytes);
  CHECK(c.limits.max_headers == 100);
  CHECK(c.limits.max_body_bytes == 10 * 1024 * 1024);
  CHECK(c.limits.max_chunk_ext_bytes == d.max_chunk_ext_bytes);
  CHECK(c.limits.max_response_header_bytes == d.max_response_header_bytes);
  CHECK(c.limits.max_pipelined == d.max_pipelined);
  CHECK(c.limits.max_connections == d.max_connections);
  CHECK(c.limits.client_header_timeout == 10s);
  CHECK(c.limits.client_body_timeout == d.client_body_timeout);
  CHECK(c.limits.send_timeout == d.send_timeout);
  CHECK(c.limits.idle_timeout == 60s);
  CHECK(c.limits.drain_timeout == 30s);
  CHECK(c.log.access == "stdout");
  CHECK(c.log.error == "stderr");
  CHECK(c.log.level == "info");
  CHECK(c.upstreams.empty());
  CHECK(c.routes.empty());
}

TEST_CASE("config: workers default and auto resolve to the core count", "[config]") {
  const unsigned cores = std::max(1u, std::min(256u, std::thread::hardware_concurrency()));
  CHECK(load(kListen).workers == cores);
  CHECK(load("workers: auto\n" + kListen).workers == cores);
  CHECK(load("workers: 3\n" + kListen).workers == 3);
  CHECK(load("workers: 256\n" + kListen).workers == 256);
}

TEST_CASE("config: a full file parses into the expected values", "[config]") {
  const Config c = load(R"(workers: 4
listen:
  - address: "127.0.0.1:8080"
    backlog: 128
  - address: "[::1]:8443"
  - address: localhost:8081
admin:
  address: 127.0.0.1:9901
limits:
  max_header_bytes: 16k
  max_uri_bytes: 4096
  max_headers: 50
  max_body_bytes: 1M
  max_chunk_ext_bytes: 0
  max_response_header_bytes: 128k
  max_pipelined: 4
  max_connections: 1000
  client_header_timeout: 5s
  client_body_timeout: 30s
  send_timeout: 45s
  idle_timeout: 2m
  drain_timeout: 1h
log: { access: /var/log/lunagate/access.log, error: stdout, level: debug }
upstreams:
  users:
    targets: [ "127.0.0.1:9001", { address: "127.0.0.1:9002", weight: 2 } ]
    balance: consistent_hash
    hash_on: { header: X-User }
    timeouts: { connect: 250ms, read: 10s, write: 20s }
    keepalive: { max_idle: 8, idle_timeout: 30s, max_requests: 500 }
    health: { passive: { failures: 5, down_for: 1m } }
  orders.v2:
    targets: ["[::1]:9003"]
    balance: least_conn
  by-cookie:
    targets: ["127.0.0.1:9004"]
    balance: consistent_hash
    hash_on: { cookie: Session }
  by-ip:
    targets: ["127.0.0.1:9005"]
    balance: consistent_hash
    hash_on: client_ip
routes:
  - name: users
    match:
      host: [API.Example.com, "*.example.org"]
      path: [/v1/users/*, /v1/people/:id]
      methods: [GET, POST]
    upstream: users
    strip_prefix: /v1
    preserve_host: false
    websocket: false
    timeouts: { read: 2s }
    max_body_bytes: 64k
  - name: orders
    match:
      path: /orders/:id/items/:item
    upstream: orders.v2
    rewrite: /internal/{id}/{item}
  - name: files
    match: { host: files.example.com, path: /files/*, methods: HEAD }
    upstream: by-ip
    rewrite: /{*}
)");
  CHECK(c.workers == 4);
  REQUIRE(c.listen.size() == 3);
  CHECK(c.listen[0].backlog == 128);
  CHECK(c.listen[1].address.host == "::1");
  CHECK(c.listen[1].address.port == 8443);
  CHECK(c.listen[1].address.text == "[::1]:8443");
  CHECK(c.listen[2].address.host == "127.0.0.1");
  CHECK(c.listen[2].address.port == 8081);
  CHECK(c.listen[2].address.text == "localhost:8081");
  CHECK(c.admin.enabled);
  CHECK(c.admin.address.host == "127.0.0.1");
  CHECK(c.admin.address.port == 9901);

  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_uri_bytes == 4096);
  CHECK(c.limits.max_headers == 50);
  CHECK(c.limits.max_body_bytes == 1048576);
  CHECK(c.limits.max_chunk_ext_bytes == 0);
  CHECK(c.limits.max_response_header_bytes == 131072);
  CHECK(c.limits.max_pipelined == 4);
  CHECK(c.limits.max_connections == 1000);
  CHECK(c.limits.client_header_timeout == 5s);
  CHECK(c.limits.client_body_timeout == 30s);
  CHECK(c.limits.send_timeout == 45s);
  CHECK(c.limits.idle_timeout == 2min);
  CHECK(c.limits.drain_timeout == 1h);
  CHECK(c.log.access == "/var/log/lunagate/access.log");
  CHECK(c.log.error == "stdout");
  CHECK(c.log.level == "debug");

  REQUIRE(c.upstreams.size() == 4);
  const UpstreamConfig& u = c.upstreams[0];
  CHECK(u.name == "users");
  REQUIRE(u.targets.size() == 2);
  CHECK(u.targets[0].address.text == "127.0.0.1:9001");
  CHECK(u.targets[0].address.port == 9001);
  CHECK(u.targets[0].weight == 1);
  CHECK(u.targets[1].address.port == 9002);
  CHECK(u.targets[1].weight == 2);
  CHECK(u.balance == BalanceKind::consistent_hash);
  CHECK(u.hash_on == HashSource::header);
  CHECK(u.hash_key == "x-user");
  CHECK(u.timeouts.connect == 250ms);
  CHECK(u.timeouts.read == 10s);
  CHECK(u.timeouts.write == 20s);
  CHECK(u.keepalive_max_idle == 8);
  CHECK(u.keepalive_idle_timeout == 30s);
  CHECK(u.keepalive_max_requests == 500);
  CHECK(u.passive_failures == 5);
  CHECK(u.passive_down_for == 1min);
  CHECK(c.upstreams[1].name == "orders.v2");
  CHECK(c.upstreams[1].balance == BalanceKind::least_conn);
  CHECK(c.upstreams[1].targets[0].address.host == "::1");
  CHECK(c.upstreams[1].timeouts.connect == 1s);  // defaults
  CHECK(c.upstreams[1].keepalive_max_idle == 64);
  CHECK(c.upstreams[1].passive_down_for == 10s);
  CHECK(c.upstreams[2].hash_on == HashSource::cookie);
  CHECK(c.upstreams[2].hash_key == "Session");
  CHECK(c.upstreams[3].hash_on == HashSource::client_ip);
  CHECK(c.upstreams[3].hash_key.empty());

  REQUIRE(c.routes.size() == 3);
  const RouteConfig& r = c.routes[0];
  CHECK(r.name == "users");
  CHECK(r.line == 44);
  CHECK(r.match.hosts == std::vector<std::string>{"api.example.com", "*.example.org"});
  CHECK(r.match.paths == std::vector<std::string>{"/v1/users/*", "/v1/people/:id"});
  CHECK(r.match.methods == (M_GET | M_POST));
  CHECK(r.upstream == "users");
  CHECK(r.strip_prefix == "/v1");
  CHECK(r.rewrite.empty());
  CHECK_FALSE(r.preserve_host);
  CHECK_FALSE(r.websocket);
  CHECK_FALSE(r.timeouts.connect.has_value());
  CHECK(r.timeouts.read == 2s);
  CHECK_FALSE(r.timeouts.write.has_value());
  CHECK(r.max_body_bytes == 65536u);
  CHECK(c.routes[1].line == 55);
  CHECK(c.routes[1].match.hosts.empty());
  CHECK(c.routes[1].match.methods == kAllMethods);
  CHECK(c.routes[1].rewrite == "/internal/{id}/{item}");
  CHECK(c.routes[1].preserve_host);
  CHECK(c.routes[1].websocket);
  CHECK_FALSE(c.routes[1].max_body_bytes.has_value());
  CHECK(c.routes[2].line == 60);
  CHECK(c.routes[2].match.hosts == std::vector<std::string>{"files.example.com"});
  CHECK(c.routes[2].match.methods == M_HEAD);
}

TEST_CASE("config: the quickstart example loads", "[config]") {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "../../../examples/quickstart/gateway.yaml";
  const Config c = load_config_file(path.lexically_normal().string());
  CHECK(c.workers == 2);
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].address.text == "127.0.0.1:8080");
  CHECK(c.admin.enabled);
  CHECK(c.admin.address.text == "127.0.0.1:9901");
  REQUIRE(c.upstreams.size() == 2);
  CHECK(c.upstreams[0].name == "users");
  CHECK(c.upstreams[0].targets.size() == 2);
  CHECK(c.upstreams[0].balance == BalanceKind::round_robin);
  CHECK(c.upstreams[1].name == "orders");
  CHECK(c.upstreams[1].balance == BalanceKind::least_conn);
  REQUIRE(c.routes.size() == 5);
  CHECK(c.routes[0].name == "users");
  CHECK(c.routes[0].strip_prefix == "/v1");
  CHECK(c.routes[1].name == "user-by-id");
  CHECK(c.routes[1].match.paths == std::vector<std::string>{"/v1/users/:id"});
  CHECK(c.routes[1].match.methods == M_GET);
  CHECK(c.routes[2].match.paths == std::vector<std::string>{"/v1/orders/*"});
  CHECK(c.routes[3].match.paths == std::vector<std::string>{"/ws"});
  CHECK(c.routes[3].websocket);
  CHECK(c.routes[4].name == "echo");
  CHECK(c.routes[4].rewrite == "/echo");
}

TEST_CASE("config: load_config_file reads the file and keeps its path", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("lg-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "gw.yaml").string();
  {
    std::ofstream out(file);
    out << kListen << "limits:\n  idle_timeout: 5 sec\n";
  }
  std::string msg;
  try {
    load_config_file(file);
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  CHECK(msg == file + ":4: limits.idle_timeout: invalid duration '5 sec' (use e.g. 250ms, 5s, 1m)");
  {
    std::ofstream out(file);
    out << kListen;
  }
  CHECK(load_config_file(file).path == file);
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: a missing file", "[config]") {
  CHECK_THROWS_WITH(load_config_file("/nonexistent/gw.yaml"),
                    "/nonexistent/gw.yaml: cannot read: No such file or directory");
  CHECK_THROWS_WITH(load_config_file("/"), "/: cannot read: Is a directory");
}

TEST_CASE("config: null sections read as empty", "[config]") {
  const Config c = load(kListen + "limits:\nlog:\nupstreams:\nroutes:\n");
  CHECK(c.limits.idle_timeout == 60s);
  CHECK(c.routes.empty());
}

// ---- YAML-level errors ----------------------------------------------------------------------

TEST_CASE("config: YAML syntax errors", "[config]") {
  CHECK(errors("listen: [a, b\nworkers: 2\n") == "gw.yaml:2: yaml: end of sequence flow not found");
  CHECK(errors("listen:\n\t- address: x\n").rfind("gw.yaml:2: yaml: ", 0) == 0);
  CHECK(errors(kListen + "x: *nope\n") == "gw.yaml:3: yaml: the referenced anchor is not defined");
}

TEST_CASE("config: the top level must be one map", "[config]") {
  CHECK(errors("") == "gw.yaml:1: listen: missing required key");
  CHECK(errors("# nothing\n") == "gw.yaml:1: listen: missing required key");
  CHECK(errors("- a\n- b\n") == "gw.yaml:1: (root): expected a map, got a list");
  CHECK(errors("hello\n") == "gw.yaml:1: (root): expected a map, got 'hello'");
  CHECK(errors(kListen + "---\n" + kListen) == "gw.yaml:4: yaml: only one document is allowed per file");
}

TEST_CASE("config: duplicate keys", "[config]") {
  CHECK(errors(kListen + "workers: 2\nworkers: 3\n") ==
        "gw.yaml:4: workers: duplicate key (first at line 3)");
  CHECK(errors(kListen + "limits:\n  idle_timeout: 5s\n  idle_timeout: 6s\n") ==
        "gw.yaml:5: limits.idle_timeout: duplicate key (first at line 4)");
  CHECK(errors(kListen + "log: { level: info, level: warn }\n") ==
        "gw.yaml:3: log.level: duplicate key (first at line 3)");
  // Two upstreams with one name: a duplicate key of the upstreams map.
  CHECK(errors(kListen + R"(upstreams:
  a: { targets: ["127.0.0.1:1"] }
  a: { targets: ["127.0.0.1:2"] }
)") == "gw.yaml:5: upstreams.a: duplicate key (first at line 4)");
}

TEST_CASE("config: keys must be strings; merge keys are not supported", "[config]") {
  CHECK(errors(kListen + "? [a, b]\n: 1\n") == "gw.yaml:3: (root): map keys must be strings, got a list");
  CHECK(errors(kListen + R"(base: &b { idle_timeout: 5s }
limits:
  <<: *b
)") == "gw.yaml:3: base: unknown key\ngw.yaml:5: limits.<<: merge keys (<<) are not supported");
}

// ---- unknown and unsupported keys -----------------------------------------------------------

TEST_CASE("config: unknown keys at every level", "[config]") {
  CHECK(errors(kListen + "wrokers: 2\n") == "gw.yaml:3: wrokers: unknown key");
  CHECK(errors("listen:\n  - address: 127.0.0.1:8080\n    backlgo: 5\n") ==
        "gw.yaml:3: listen[0].backlgo: unknown key");
  CHECK(errors(kListen + "admin: { address: 127.0.0.1:9901, port: 1 }\n") ==
        "gw.yaml:3: admin.port: unknown key");
  CHECK(errors(kListen + "limits:\n  max_body: 1m\n") == "gw.yaml:4: limits.max_body: unknown key");
  CHECK(errors(kListen + "log:\n  format: json\n") == "gw.yaml:4: log.format: unknown key");
  CHECK(errors(kListen + R"(upstreams:
  users:
    targets: ["127.0.0.1:9001"]
    balanse: least_conn
    timeouts: { conect: 1s }
    keepalive: { idle: 3 }
    health: { passive: { fails: 3 }, passiv: {} }
)") == "gw.yaml:6: upstreams.users.balanse: unknown key\n"
       "gw.yaml:7: upstreams.users.timeouts.conect: unknown key\n"
       "gw.yaml:8: upstreams.users.keepalive.idle: unknown key\n"
       "gw.yaml:9: upstreams.users.health.passive.fails: unknown key\n"
       "gw.yaml:9: upstreams.users.health.passiv: unknown key");
  CHECK(errors(kListen + R"(upstreams:
  u: { targets: [{ address: "127.0.0.1:1", wieght: 2 }] }
routes:
  - name: r
    match: { path: /, method: GET }
    upstream: u
    strip: /v1
)") == "gw.yaml:4: upstreams.u.targets[0].wieght: unknown key\n"
       "gw.yaml:7: routes[0].match.method: unknown key\n"
       "gw.yaml:9: routes[0].strip: unknown key");
}

TEST_CASE("config: keys of later features are rejected by name", "[config]") {
  CHECK(errors(kListen + "redis: {}\n") == "gw.yaml:3: redis.address: missing required key");  // supported now
  CHECK_THAT(errors("listen:\n  - address: 127.0.0.1:8443\n    tls: { cert: a.pem }\n"),  // supported now
             Catch::Contains("gw.yaml:3: listen[0].tls.certificates: missing required key"));
  CHECK(errors(kListen + R"(upstreams:
  u:
    targets: ["127.0.0.1:1"]
    circuit_breaker: {}
    retries: 2
    health: { active: { path: /health } }
routes:
  - name: r
    match: { path: / }
    upstream: u
    policies: [ { auth: {} } ]
    scripts: [x.lua]
)") == "gw.yaml:6: upstreams.u.circuit_breaker: circuit_breaker is not supported by this version of lunagate\n"
       "gw.yaml:7: upstreams.u.retries: retries is not supported by this version of lunagate\n"
       "gw.yaml:8: upstreams.u.health.active: health.active is not supported by this version of lunagate\n"
       "gw.yaml:13: routes[0].policies[0]: unknown policy 'auth' (key-auth, jwt, acl, ip-restriction, cors, rate-limit, headers)\n"
       "gw.yaml:14: routes[0].scripts[0]: script 'x.lua': name it without \".lua\" (the file is <dir>/<name>.lua)");
}

// ---- wrong types ----------------------------------------------------------------------------

TEST_CASE("config: wrong types name the expected type", "[config]") {
  CHECK(errors(kListen + "limits:\n  - idle_timeout: 5s\n") == "gw.yaml:3: limits: expected a map, got a list");
  CHECK(errors(kListen + "log: stdout\n") == "gw.yaml:3: log: expected a map, got 'stdout'");
  CHECK(errors("listen:\n  address: 127.0.0.1:8080\n") == "gw.yaml:1: listen: expected a list, got a map");
  CHECK(errors("listen:\n  - 127.0.0.1:8080\n") == "gw.yaml:2: listen[0]: expected a map, got '127.0.0.1:8080'");
  CHECK(errors(kListen + "limits:\n  max_headers: abc\n") ==
        "gw.yaml:4: limits.max_headers: expected an integer, got 'abc'");
  CHECK(errors(kListen + "limits:\n  max_headers: 1.5\n") ==
        "gw.yaml:4: limits.max_headers: expected an integer, got '1.5'");
  CHECK(errors(kListen + "limits:\n  max_headers: [1]\n") ==
        "gw.yaml:4: limits.max_headers: expected an integer, got a list");
  CHECK(errors(kListen + "log:\n  access: { file: x }\n") ==
        "gw.yaml:4: log.access: expected a string, got a map");
  CHECK(errors(kListen + "log:\n  access:\n") == "gw.yaml:4: log.access: expected a string, got null");
  CHECK(errors(kListen + "limits:\n  idle_timeout: { s: 5 }\n") ==
        "gw.yaml:4: limits.idle_timeout: expected a duration (e.g. 250ms, 5s, 1m), got a map");
  CHECK(errors(kListen + "limits:\n  max_body_bytes: [1m]\n") ==
        "gw.yaml:4: limits.max_body_bytes: expected a size (e.g. 512, 64k, 10m, 1g), got a list");
  CHECK(errors(kListen + "upstreams: [a]\n") == "gw.yaml:3: upstreams: expected a map, got a list");
  CHECK(errors(kListen + "routes: { a: 1 }\n") == "gw.yaml:3: routes: expected a list, got a map");
  CHECK(errors(kListen + "upstreams:\n  u: 127.0.0.1:1\n") ==
        "gw.yaml:4: upstreams.u: expected a map, got '127.0.0.1:1'");
}

TEST_CASE("config: booleans are true or false only", "[config]") {
  const std::string head = kListen + "upstreams: { u: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n"
                                     "  - { name: r, match: { path: / }, upstream: u, websocket: ";
  CHECK(load(head + "false }\n").routes[0].websocket == false);
  CHECK(load(head + "True }\n").routes[0].websocket == true);
  CHECK(errors(head + "yes }\n") ==
        "gw.yaml:5: routes[0].websocket: expected a boolean (true or false), got 'yes'");
  CHECK(errors(head + "1 }\n") ==
        "gw.yaml:5: routes[0].websocket: expected a boolean (true or false), got '1'");
}

TEST_CASE("config: integer ranges", "[config]") {
  CHECK(errors(kListen + "workers: 0\n") == "gw.yaml:3: workers: must be between 1 and 256, got 0");
  CHECK(errors(kListen + "workers: 257\n") == "gw.yaml:3: workers: must be between 1 and 256, got 257");
  CHECK(errors(kListen + "workers: -2\n") == "gw.yaml:3: workers: must be between 1 and 256, got -2");
  CHECK(errors(kListen + "workers: many\n") == "gw.yaml:3: workers: expected an integer 1..256 or auto, got 'many'");
  CHECK(errors(kListen + "workers: [2]\n") == "gw.yaml:3: workers: expected an integer, got a list");
  CHECK(errors(kListen + "limits:\n  max_headers: 0\n") ==
        "gw.yaml:4: limits.max_headers: must be between 1 and 4294967295, got 0");
  CHECK(errors(kListen + "limits:\n  max_connections: 99999999999999999999\n") ==
        "gw.yaml:4: limits.max_connections: must be between 1 and 4294967295, got 99999999999999999999");
  CHECK(errors("listen:\n  - { address: 127.0.0.1:8080, backlog: 0 }\n") ==
        "gw.yaml:2: listen[0].backlog: must be between 1 and 65535, got 0");
}

// ---- durations and sizes --------------------------------------------------------------------

TEST_CASE("config: bad durations quote the value", "[config]") {
  for (const char* bad : {"5 sec", "5 s", "-1s", "10x", "1.5s", "5", "5S"}) {
    INFO(bad);
    CHECK(errors(kListen + "limits:\n  idle_timeout: \"" + bad + "\"\n") ==
          std::string("gw.yaml:4: limits.idle_timeout: invalid duration '") + bad +
              "' (use e.g. 250ms, 5s, 1m)");
  }
  CHECK(errors(kListen + "limits:\n  idle_timeout: 5 sec\n") ==
        "gw.yaml:4: limits.idle_timeout: invalid duration '5 sec' (use e.g. 250ms, 5s, 1m)");
  CHECK(errors(kListen + "limits:\n  drain_timeout: 0s\n") ==
        "gw.yaml:4: limits.drain_timeout: must be greater than 0, got '0s'");
  CHECK(errors(kListen + "upstreams:\n  u:\n    targets: [\"127.0.0.1:1\"]\n    timeouts: { connect: 0ms }\n") ==
        "gw.yaml:6: upstreams.u.timeouts.connect: must be greater than 0, got '0ms'");
}

TEST_CASE("config: bad sizes quote the value", "[config]") {
  for (const char* bad : {"10x", "1.5m", "-1", "10 k", "10kb"}) {
    INFO(bad);
    CHECK(errors(kListen + "limits:\n  max_body_bytes: " + bad + "\n") ==
          std::string("gw.yaml:4: limits.max_body_bytes: invalid size '") + bad +
              "' (use e.g. 512, 64k, 10m, 1g)");
  }
  CHECK(errors(kListen + "limits:\n  max_header_bytes: 0\n") ==
        "gw.yaml:4: limits.max_header_bytes: must be at least 1, got '0'");
  CHECK(load(kListen + "limits:\n  max_body_bytes: 0\n").limits.max_body_bytes == 0);
}

// ---- listen / admin / log -------------------------------------------------------------------

TEST_CASE("config: listen is required and not empty", "[config]") {
  CHECK(errors("workers: 2\n") == "gw.yaml:1: listen: missing required key");
  CHECK(errors("listen: []\n") == "gw.yaml:1: listen: must list at least one address");
  CHECK(errors("listen:\n") == "gw.yaml:1: listen: must list at least one address");
  CHECK(errors("listen:\n  - backlog: 5\n") == "gw.yaml:2: listen[0].address: missing required key");
}

TEST_CASE("config: address errors", "[config]") {
  const auto err = [](const std::string& addr) {
    return errors("listen:\n  - address: \"" + addr + "\"\n");
  };
  CHECK(err("127.0.0.1") ==
        "gw.yaml:2: listen[0].address: invalid address '127.0.0.1': expected host:port (e.g. 127.0.0.1:8080)");
  CHECK(err("127.0.0.1:0") == "gw.yaml:2: listen[0].address: invalid address '127.0.0.1:0': port must be 1..65535");
  CHECK(err("127.0.0.1:65536") ==
        "gw.yaml:2: listen[0].address: invalid address '127.0.0.1:65536': port must be 1..65535");
  CHECK(err("127.0.0.1:http") ==
        "gw.yaml:2: listen[0].address: invalid address '127.0.0.1:http': port must be 1..65535");
  CHECK(err(":8080") == "gw.yaml:2: listen[0].address: invalid address ':8080': missing host");
  CHECK(err("::1:8080") ==
        "gw.yaml:2: listen[0].address: invalid address '::1:8080': IPv6 addresses must be in brackets (e.g. [::1]:8080)");
  CHECK(err("[::1]") == "gw.yaml:2: listen[0].address: invalid address '[::1]': expected [IPv6]:port (e.g. [::1]:8080)");
  CHECK(err("[::g]:80") == "gw.yaml:2: listen[0].address: invalid address '[::g]:80': invalid IPv6 address");
  CHECK(err("300.1.1.1:80") == "gw.yaml:2: listen[0].address: invalid address '300.1.1.1:80': invalid IPv4 address");
  CHECK(err("bad host:80") == "gw.yaml:2: listen[0].address: invalid address 'bad host:80': invalid host name");
  // Names are resolved at load; .invalid never resolves (RFC 6761).
  CHECK(err("nope.invalid:80").rfind("gw.yaml:2: listen[0].address: cannot resolve host 'nope.invalid': ", 0) == 0);
}

TEST_CASE("config: addresses are normalized", "[config]") {
  const Config c = load("listen:\n  - address: \"[0:0::1]:80\"\n  - address: LOCALHOST:81\n  - address: 0.0.0.0:82\n");
  CHECK(c.listen[0].address.host == "::1");
  CHECK(c.listen[1].address.host == "127.0.0.1");
  CHECK(c.listen[2].address.host == "0.0.0.0");
}

TEST_CASE("config: listeners and admin may not share a socket", "[config]") {
  CHECK(errors("listen:\n  - address: 127.0.0.1:8080\n  - address: localhost:8080\n") ==
        "gw.yaml:3: listen[1].address: 'localhost:8080' conflicts with listen[0] (127.0.0.1:8080)");
  CHECK(errors("listen:\n  - address: 0.0.0.0:8080\n  - address: 127.0.0.1:8080\n") ==
        "gw.yaml:3: listen[1].address: '127.0.0.1:8080' conflicts with listen[0] (0.0.0.0:8080)");
  CHECK(errors(kListen + "admin:\n  address: 127.0.0.1:8080\n") ==
        "gw.yaml:4: admin.address: '127.0.0.1:8080' conflicts with listen[0] (127.0.0.1:8080)");
  CHECK(errors(kListen + "admin:\n") == "gw.yaml:3: admin.address: missing required key");
  const Config c = load(kListen + "admin: { address: 127.0.0.1:9901, enabled: false }\n");
  CHECK_FALSE(c.admin.enabled);
}

TEST_CASE("config: log values", "[config]") {
  CHECK(load(kListen + "log: { access: off, error: /tmp/e.log, level: trace }\n").log.access == "off");
  CHECK(errors(kListen + "log: { level: verbose }\n") ==
        "gw.yaml:3: log.level: invalid value 'verbose' (expected trace, debug, info, warn or error)");
  CHECK(errors(kListen + "log: { error: off }\n") ==
        "gw.yaml:3: log.error: the error log cannot be off (use stderr, stdout or a file path)");
  CHECK(errors(kListen + "log: { access: \"\" }\n") == "gw.yaml:3: log.access: must not be empty");
}

// ---- upstreams ------------------------------------------------------------------------------

TEST_CASE("config: upstream errors", "[config]") {
  CHECK(errors(kListen + "upstreams:\n  u: {}\n") == "gw.yaml:4: upstreams.u.targets: missing required key");
  CHECK(errors(kListen + "upstreams:\n  u: { targets: [] }\n") ==
        "gw.yaml:4: upstreams.u.targets: must list at least one target");
  CHECK(errors(kListen + "upstreams:\n  \"bad name\": { targets: [\"127.0.0.1:1\"] }\n") ==
        "gw.yaml:4: upstreams.bad name: invalid upstream name (use letters, digits, '_', '.', '-')");
  CHECK(errors(kListen + "upstreams:\n  u: { targets: [{ address: \"127.0.0.1:1\", weight: 1001 }] }\n") ==
        "gw.yaml:4: upstreams.u.targets[0].weight: must be between 1 and 1000, got 1001");
  CHECK(errors(kListen + "upstreams:\n  u: { targets: [{ weight: 2 }] }\n") ==
        "gw.yaml:4: upstreams.u.targets[0].address: missing required key");
  CHECK(errors(kListen + "upstreams:\n  u: { targets: [[1]] }\n") ==
        "gw.yaml:4: upstreams.u.targets[0]: expected an address string or a map {address, weight}, got a list");
  CHECK(errors(kListen + "upstreams:\n  u:\n    targets:\n      - 127.0.0.1:1\n      - localhost:1\n") ==
        "gw.yaml:7: upstreams.u.targets[1]: duplicate target 'localhost:1' (use weight instead)");
  CHECK(errors(kListen + "upstreams:\n  u: { targets: [\"127.0.0.1:1\"], balance: random }\n") ==
        "gw.yaml:4: upstreams.u.balance: invalid value 'random' (expected round_robin, least_conn or consistent_hash)");
}

TEST_CASE("config: hash_on goes with consistent_hash only", "[config]") {
  const std::string up = kListen + "upstreams:\n  u:\n    targets: [\"127.0.0.1:1\"]\n";  // lines 1-5
  CHECK(errors(up + "    balance: consistent_hash\n") ==
        "gw.yaml:4: upstreams.u.hash_on: required with balance: consistent_hash");
  CHECK(errors(up + "    hash_on: client_ip\n") ==
        "gw.yaml:6: upstreams.u.hash_on: only valid with balance: consistent_hash");
  CHECK(errors(up + "    balance: least_conn\n    hash_on: { header: X-User }\n") ==
        "gw.yaml:7: upstreams.u.hash_on: only valid with balance: consistent_hash");
  CHECK(errors(up + "    balance: consistent_hash\n    hash_on: { header: X-User, cookie: s }\n") ==
        "gw.yaml:7: upstreams.u.hash_on: expected exactly one of header or cookie");
  CHECK(errors(up + "    balance: consistent_hash\n    hash_on: { query: id }\n") ==
        "gw.yaml:7: upstreams.u.hash_on.query: unknown key\n"
        "gw.yaml:7: upstreams.u.hash_on: expected exactly one of header or cookie");
  CHECK(errors(up + "    balance: consistent_hash\n    hash_on: source_ip\n") ==
        "gw.yaml:7: upstreams.u.hash_on: invalid value 'source_ip' (expected client_ip, {header: NAME} or {cookie: NAME})");
  CHECK(errors(up + "    balance: consistent_hash\n    hash_on: { header: \"X User\" }\n") ==
        "gw.yaml:7: upstreams.u.hash_on.header: invalid header name 'X User'");
}

// ---- routes ---------------------------------------------------------------------------------

namespace {
// Lines 1-4: a listener and an upstream "users"; routes start on line 5.
const std::string kBase = kListen + "upstreams: { users: { targets: [\"127.0.0.1:9001\"] } }\nroutes:\n";
}  // namespace

TEST_CASE("config: route required keys", "[config]") {
  CHECK(errors(kBase + "  - match: { path: / }\n    upstream: users\n") ==
        "gw.yaml:5: routes[0].name: missing required key");
  CHECK(errors(kBase + "  - name: r\n    upstream: users\n") == "gw.yaml:5: routes[0].match: missing required key");
  CHECK(errors(kBase + "  - name: r\n    match: { host: a.com }\n    upstream: users\n") ==
        "gw.yaml:6: routes[0].match.path: missing required key");
  CHECK(errors(kBase + "  - name: r\n    match: { path: / }\n") == "gw.yaml:5: routes[0].upstream: missing required key");
  CHECK(errors(kBase + "  - just a string\n") == "gw.yaml:5: routes[0]: expected a map, got 'just a string'");
}

TEST_CASE("config: unknown upstream", "[config]") {
  CHECK(errors(kBase + R"(  - name: users
    match: { path: /v1/users/* }
    upstream: users
  - name: orders
    match: { path: /v1/orders/* }
    upstream: ordrs
)") == "gw.yaml:10: routes[1].upstream: unknown upstream 'ordrs'");
}

TEST_CASE("config: duplicate route names", "[config]") {
  CHECK(errors(kBase + R"(  - name: users
    match: { path: /a }
    upstream: users

  - name: users
    match: { path: /b }
    upstream: users
)") == "gw.yaml:9: routes[1].name: duplicate route name 'users' (first at line 5)");
  CHECK(errors(kBase + "  - { name: \"a b\", match: { path: / }, upstream: users }\n") ==
        "gw.yaml:5: routes[0].name: invalid route name (use letters, digits, '_', '.', '-')");
}

TEST_CASE("config: route match values", "[config]") {
  const auto route = [](const std::string& match) {
    return errors(kBase + "  - name: r\n    upstream: users\n    match: " + match + "\n");  // line 7
  };
  CHECK(route("{ path: v1/users }") == "gw.yaml:7: routes[0].match.path: path 'v1/users' must start with '/'");
  CHECK(route("{ path: [/a, b] }") == "gw.yaml:7: routes[0].match.path[1]: path 'b' must start with '/'");
  CHECK(route("{ path: [] }") == "gw.yaml:7: routes[0].match.path: must not be an empty list");
  CHECK(route("{ path: { a: 1 } }") ==
        "gw.yaml:7: routes[0].match.path: expected a string or a list of strings, got a map");
  CHECK(route("{ path: /a/*/b }") ==
        "gw.yaml:7: routes[0].match.path: path '/a/*/b': '*' must be the whole last segment (e.g. /v1/users/*)");
  CHECK(route("{ path: /a* }") ==
        "gw.yaml:7: routes[0].match.path: path '/a*': '*' must be the whole last segment (e.g. /v1/users/*)");
  CHECK(route("{ path: /a//b }") == "gw.yaml:7: routes[0].match.path: path '/a//b' has an empty segment");
  CHECK(route("{ path: /a/../b }") ==
        "gw.yaml:7: routes[0].match.path: path '/a/../b' has a '..' segment (request paths are normalized, it never matches)");
  CHECK(route("{ path: \"/a b\" }") ==
        "gw.yaml:7: routes[0].match.path: path '/a b' contains a character not allowed in a path");
  CHECK(route("{ path: /a/:id/:id }") == "gw.yaml:7: routes[0].match.path: path '/a/:id/:id': parameter ':id' appears twice");
  CHECK(route("{ path: \"/a/:\" }") ==
        "gw.yaml:7: routes[0].match.path: path '/a/:': invalid parameter name ':' (use letters, digits, '_')");
  CHECK(route("{ path: /, methods: [GET, get, BREW] }") ==
        "gw.yaml:7: routes[0].match.methods[1]: unknown method 'get' (expected GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or TRACE)\n"
        "gw.yaml:7: routes[0].match.methods[2]: unknown method 'BREW' (expected GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or TRACE)");
  CHECK(route("{ path: /, host: \"api.example.com:8080\" }") ==
        "gw.yaml:7: routes[0].match.host: invalid host 'api.example.com:8080' (expected a name like api.example.com or *.example.com, without port)");
  CHECK(route("{ path: /, host: [a.com, \"*\"] }") ==
        "gw.yaml:7: routes[0].match.host[1]: invalid host '*' (expected a name like api.example.com or *.example.com, without port)");
}

TEST_CASE("config: all methods by name", "[config]") {
  const Config c = load(kBase + "  - { name: r, upstream: users, match: { path: /, methods: "
                                "[GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE] } }\n");
  CHECK(c.routes[0].match.methods == kAllMethods);
}

TEST_CASE("config: strip_prefix and rewrite are checked against the paths", "[config]") {
  const auto route = [](const std::string& path, const std::string& extra) {
    return errors(kBase + "  - name: r\n    upstream: users\n    match: { path: " + path + " }\n    " + extra + "\n");
  };  // extra is on line 8
  CHECK(route("/v1/users/*", "strip_prefix: /v1") == "<no error>");
  CHECK(route("/v1", "strip_prefix: /v1") == "<no error>");
  CHECK(route("/v1/users/*", "strip_prefix: /v2") ==
        "gw.yaml:8: routes[0].strip_prefix: path '/v1/users/*' does not start with '/v2'");
  CHECK(route("/v10/users", "strip_prefix: /v1") ==
        "gw.yaml:8: routes[0].strip_prefix: path '/v10/users' does not start with '/v1'");
  CHECK(route("/v1/users", "strip_prefix: /v1/") ==
        "gw.yaml:8: routes[0].strip_prefix: invalid strip_prefix '/v1/' (expected e.g. /v1: starts with '/', no trailing '/')");
  CHECK(route("/v1/users", "strip_prefix: v1") ==
        "gw.yaml:8: routes[0].strip_prefix: invalid strip_prefix 'v1' (expected e.g. /v1: starts with '/', no trailing '/')");
  CHECK(route("/users/:id", "rewrite: /internal/{id}") == "<no error>");
  CHECK(route("/files/*", "rewrite: /static/{*}") == "<no error>");
  CHECK(route("/users/:id", "rewrite: /internal/{uid}") ==
        "gw.yaml:8: routes[0].rewrite: {uid} is not a parameter of path '/users/:id'");
  CHECK(route("/users/:id", "rewrite: /internal/{*}") ==
        "gw.yaml:8: routes[0].rewrite: {*} needs a path ending in /*, '/users/:id' does not");
  CHECK(route("/users/:id", "rewrite: /internal/{id") ==
        "gw.yaml:8: routes[0].rewrite: rewrite '/internal/{id' has an unbalanced '{' or '}'");
  CHECK(route("/users/:id", "rewrite: internal") == "gw.yaml:8: routes[0].rewrite: rewrite 'internal' must start with '/'");
}

TEST_CASE("config: route overrides", "[config]") {
  CHECK(errors(kBase + "  - { name: r, upstream: users, match: { path: / }, timeouts: { read: 1.5s } }\n") ==
        "gw.yaml:5: routes[0].timeouts.read: invalid duration '1.5s' (use e.g. 250ms, 5s, 1m)");
  CHECK(errors(kBase + "  - { name: r, upstream: users, match: { path: / }, max_body_bytes: 1t }\n") ==
        "gw.yaml:5: routes[0].max_body_bytes: invalid size '1t' (use e.g. 512, 64k, 10m, 1g)");
  const Config c = load(kBase + "  - { name: r, upstream: users, match: { path: / }, max_body_bytes: 0 }\n");
  CHECK(c.routes[0].max_body_bytes == 0u);
}

// ---- collecting ------------------------------------------------------------------------------

TEST_CASE("config: every problem is reported, in line order", "[config]") {
  CHECK(errors(R"(workers: 0
listen:
  - address: 127.0.0.1:99999
limits:
  idle_timeout: 5 sec
  max_body_bytes: 10x
upstreams:
  users:
    targets: ["127.0.0.1:9001"]
    balanse: least_conn
routes:
  - name: users
    match: { path: /v1/users/* }
    upstream: users
  - name: orders
    match: { path: /v1/orders/* }
    upstream: ordrs
  - name: users
    match: { path: /x }
    upstream: users
scripts: []
)") == "gw.yaml:1: workers: must be between 1 and 256, got 0\n"
       "gw.yaml:3: listen[0].address: invalid address '127.0.0.1:99999': port must be 1..65535\n"
       "gw.yaml:5: limits.idle_timeout: invalid duration '5 sec' (use e.g. 250ms, 5s, 1m)\n"
       "gw.yaml:6: limits.max_body_bytes: invalid size '10x' (use e.g. 512, 64k, 10m, 1g)\n"
       "gw.yaml:10: upstreams.users.balanse: unknown key\n"
       "gw.yaml:17: routes[1].upstream: unknown upstream 'ordrs'\n"
       "gw.yaml:18: routes[2].name: duplicate route name 'users' (first at line 12)\n"
       "gw.yaml:21: scripts: expected a map, got a list");
}

TEST_CASE("config: a route naming an upstream that has errors is not 'unknown'", "[config]") {
  CHECK(errors(kListen + R"(upstreams:
  users: { targets: [] }
routes:
  - { name: r, match: { path: / }, upstream: users }
)") == "gw.yaml:4: upstreams.users.targets: must list at least one target");
}

TEST_CASE("config: control characters in values do not break the one-line format", "[config]") {
  CHECK(errors(kListen + "log: { level: \"a\\nb\" }\n") ==
        "gw.yaml:3: log.level: invalid value 'a\\nb' (expected trace, debug, info, warn or error)");
}

TEST_CASE("config: scripts section, route scripts with config tables and budget overrides", "[config]") {
  const Config c = load_config_text(kListen + R"(scripts:
  dir: policies
  watch: false
  budget: { cpu: 20ms, memory: 8m }
  global: [ request-guard ]
upstreams:
  u: { targets: ["127.0.0.1:1"] }
routes:
  - name: r
    match: { path: /x }
    upstream: u
    scripts:
      - tenant-header
      - name: api-key
        config: { header: X-API-Key, keys: [a, b], strict: true, limit: 5, quoted: "7" }
        budget: { cpu: 200ms }
)", "gw.yaml");
  CHECK(c.scripts.dir == "policies");
  CHECK_FALSE(c.scripts.watch);
  CHECK(c.scripts.cpu == Millis{20});
  CHECK(c.scripts.memory == 8u << 20);
  REQUIRE(c.scripts.global.size() == 1);
  CHECK(c.scripts.global[0].name == "request-guard");
  REQUIRE(c.routes[0].scripts.size() == 2);
  CHECK(c.routes[0].scripts[0].name == "tenant-header");
  CHECK(c.routes[0].scripts[0].config.kind == ConfValue::Kind::null);
  const ScriptRef& k = c.routes[0].scripts[1];
  CHECK(k.name == "api-key");
  CHECK(k.cpu == Millis{200});
  CHECK_FALSE(k.memory.has_value());
  REQUIRE(k.config.kind == ConfValue::Kind::map);
  REQUIRE(k.config.fields.size() == 5);
  CHECK(k.config.fields[0].first == "header");
  CHECK(k.config.fields[0].second.s == "X-API-Key");
  CHECK(k.config.fields[1].second.kind == ConfValue::Kind::list);
  CHECK(k.config.fields[1].second.items.size() == 2);
  CHECK(k.config.fields[2].second.kind == ConfValue::Kind::boolean);
  CHECK(k.config.fields[2].second.b);
  CHECK(k.config.fields[3].second.kind == ConfValue::Kind::number);
  CHECK(k.config.fields[3].second.n == 5);
  CHECK(k.config.fields[4].second.kind == ConfValue::Kind::string);  // quoted stays a string
}

TEST_CASE("config: script list errors", "[config]") {
  CHECK(errors(kListen + "scripts:\n  global: [ a, a, 'b c' ]\n  budget: { cpu: 5 }\n") ==
        "gw.yaml:4: scripts.global[1]: script 'a' listed twice\n"
        "gw.yaml:4: scripts.global[2]: invalid script name 'b c' (letters, digits, '_', '.', '-'; the file is <dir>/<name>.lua)\n"
        "gw.yaml:5: scripts.budget.cpu: invalid duration '5' (use e.g. 250ms, 5s, 1m)");
}

// ---- jwt keys from a JWKS URL -------------------------------------------------------------

TEST_CASE("config: jwt jwks_url and its settings", "[config][jwks]") {
  const std::string head = kListen + "upstreams: { u: { targets: [\"127.0.0.1:1\"] } }\nroutes:\n"
                                     "  - name: r\n    match: { path: / }\n    upstream: u\n    policies:\n      - jwt: ";
  const Config d = load(head + "{ jwks_url: \"https://idp.test/jwks.json\" }\n");
  const auto& j = std::get<JwtConfig>(d.routes[0].policies[0].spec);
  CHECK(j.jwks_url == "https://idp.test/jwks.json");
  CHECK(j.jwks_ca_file.empty());
  CHECK(j.jwks_refresh == 300'000ms);
  CHECK(j.jwks_timeout == 5'000ms);
  CHECK(j.jwks_min_refresh_interval == 10'000ms);

  const Config c = load(head + "{ jwks_url: \"https://idp.test/k\", jwks_ca_file: certs/ca.pem, jwks_refresh: 1m, "
                               "jwks_timeout: 2s, jwks_min_refresh_interval: 30s, jwks_file: k.json }\n");
  const auto& k = std::get<JwtConfig>(c.routes[0].policies[0].spec);
  CHECK(k.jwks_ca_file == "certs/ca.pem");  // "gw.yaml" has no folder; relative to it
  CHECK(k.jwks_refresh == 60'000ms);
  CHECK(k.jwks_timeout == 2'000ms);
  CHECK(k.jwks_min_refresh_interval == 30'000ms);
  CHECK(k.jwks_file == "k.json");  // both sources together
  CHECK(std::get<JwtConfig>(load_config_text(head + "{ jwks_url: \"https://idp.test/k\", jwks_ca_file: ca.pem }\n",
                                             "/etc/lg/gw.yaml").routes[0].policies[0].spec)
            .jwks_ca_file == "/etc/lg/ca.pem");

  CHECK(errors(head + "{ jwks_url: \"http://idp.test/jwks.json\" }\n") ==
        "gw.yaml:9: routes[0].policies[0].jwt.jwks_url: must be an https:// URL (keys are only fetched over TLS), "
        "got 'http://idp.test/jwks.json'");
  CHECK(errors(head + "{ jwks_url: \"https://u:p@idp.test/\" }\n") ==
        "gw.yaml:9: routes[0].policies[0].jwt.jwks_url: credentials in the URL are not supported, got "
        "'https://u:p@idp.test/'");
  CHECK(errors(head + "{ jwks_file: k.json, jwks_timeout: 1s }\n") ==
        "gw.yaml:9: routes[0].policies[0].jwt.jwks_timeout: needs jwks_url");
  CHECK(errors(head + "{ jwks_url: \"https://idp.test/\", jwks_timeout: 2m }\n") ==
        "gw.yaml:9: routes[0].policies[0].jwt.jwks_timeout: must be between 1 ms and 60000 ms");
  CHECK(errors(head + "{ jwks_url: \"https://idp.test/\", jwks_min_refresh_interval: 500ms }\n") ==
        "gw.yaml:9: routes[0].policies[0].jwt.jwks_min_refresh_interval: must be between 1000 ms and 86400000 ms");
  CHECK(errors(head + "{ issuer: x }\n") == "gw.yaml:9: routes[0].policies[0].jwt: jwt needs keys, jwks_file or jwks_url");
}
