#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config_loader.hpp"
#include "net/tls_context.hpp"

using namespace lg;

TEST_CASE("sni_name_matches: exact names, one-label wildcards, case and trailing dot", "[tls]") {
  CHECK(sni_name_matches("a.example.com", "a.example.com"));
  CHECK(sni_name_matches("a.example.com", "A.Example.COM"));
  CHECK(sni_name_matches("a.example.com", "a.example.com."));
  CHECK_FALSE(sni_name_matches("a.example.com", "b.example.com"));
  CHECK_FALSE(sni_name_matches("a.example.com", "a.example.com.evil"));
  CHECK_FALSE(sni_name_matches("a.example.com", ""));
  CHECK_FALSE(sni_name_matches("", "a.example.com"));

  CHECK(sni_name_matches("*.example.com", "a.example.com"));
  CHECK(sni_name_matches("*.example.com", "WWW.EXAMPLE.COM"));
  CHECK_FALSE(sni_name_matches("*.example.com", "example.com"));      // the wildcard needs a label
  CHECK_FALSE(sni_name_matches("*.example.com", ".example.com"));     // an empty label is not one
  CHECK_FALSE(sni_name_matches("*.example.com", "a.b.example.com"));  // exactly one label
  CHECK_FALSE(sni_name_matches("*.example.com", "aexample.com"));
  CHECK_FALSE(sni_name_matches("*.example.com", "a.example.org"));
  CHECK_FALSE(sni_name_matches("*", "a"));
}

TEST_CASE("pick_certificate: exact beats wildcard, else the first", "[tls]") {
  const std::vector<std::vector<std::string>> names = {
      {"a.test"}, {"b.test", "*.wild.test"}, {"exact.wild.test"}, {}};
  CHECK(pick_certificate(names, "") == 0);
  CHECK(pick_certificate(names, "a.test") == 0);
  CHECK(pick_certificate(names, "b.test") == 1);
  CHECK(pick_certificate(names, "x.wild.test") == 1);
  CHECK(pick_certificate(names, "exact.wild.test") == 2);  // exact, though cert 1's wildcard comes first
  CHECK(pick_certificate(names, "nothing.test") == 0);
  CHECK(pick_certificate(names, "y.x.wild.test") == 0);
  CHECK(pick_certificate({}, "a.test") == 0);
}

namespace {
std::string errors(const std::string& yaml, const std::string& path = "/etc/lg/gw.yaml") {
  try {
    load_config_text(yaml, path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

const std::string kTail = "upstreams:\n  app: { targets: [ \"127.0.0.1:2\" ] }\n"
                          "routes:\n  - { name: all, match: { path: \"/*\" }, upstream: app }\n";
}  // namespace

TEST_CASE("listen tls: parsing, paths relative to the config's folder", "[tls][config]") {
  const Config c = load_config_text("listen:\n  - address: 127.0.0.1:8443\n    tls:\n"
                                    "      certificates:\n        - { cert: a.pem, key: keys/a.key }\n"
                                    "        - { cert: /abs/b.pem, key: b.key }\n"
                                    "      client_ca: ca.pem\n      client_verify: optional\n"
                                    "      handshake_timeout: 3s\n" + kTail,
                                    "/etc/lg/gw.yaml");
  REQUIRE(c.listen.size() == 1);
  REQUIRE(c.listen[0].tls);
  const TlsConfig& t = *c.listen[0].tls;
  REQUIRE(t.certificates.size() == 2);
  CHECK(t.certificates[0].cert.path == "/etc/lg/a.pem");
  CHECK(t.certificates[0].key.path == "/etc/lg/keys/a.key");
  CHECK(t.certificates[1].cert.path == "/abs/b.pem");
  CHECK(t.certificates[0].cert.origin == "/etc/lg/gw.yaml:5: listen[0].tls.certificates[0].cert");
  REQUIRE(t.client_ca);
  CHECK(t.client_ca->path == "/etc/lg/ca.pem");
  CHECK_FALSE(t.client_verify_required);
  CHECK(t.handshake_timeout.count() == 3000);

  const Config plain = load_config_text("listen:\n  - address: 127.0.0.1:8080\n" + kTail, "gw.yaml");
  CHECK_FALSE(plain.listen[0].tls);
}

TEST_CASE("listen tls: config errors name file:line", "[tls][config]") {
  const std::string head = "listen:\n  - address: 127.0.0.1:8443\n    tls:\n";
  CHECK_THAT(errors(head + "      certificates: []\n" + kTail),
             Catch::Contains("gw.yaml:4: listen[0].tls.certificates: must list at least one certificate"));
  CHECK_THAT(errors(head + "      handshake_timeout: 1s\n" + kTail),
             Catch::Contains("gw.yaml:4: listen[0].tls: missing required key 'certificates'") ||
                 Catch::Contains("certificates"));
  CHECK_THAT(errors(head + "      certificates: [ { cert: a.pem } ]\n" + kTail), Catch::Contains("key"));
  CHECK_THAT(errors(head + "      certificates: [ { cert: a.pem, key: a.key } ]\n      client_verify: optional\n" + kTail),
             Catch::Contains("gw.yaml:5: listen[0].tls.client_verify: needs client_ca"));
  CHECK_THAT(errors(head + "      certificates: [ { cert: a.pem, key: a.key } ]\n      client_ca: ca.pem\n"
                           "      client_verify: sometimes\n" + kTail),
             Catch::Contains("gw.yaml:6: listen[0].tls.client_verify"));
  CHECK_THAT(errors(head + "      certificates: [ { cert: a.pem, key: a.key, chain: x } ]\n" + kTail),
             Catch::Contains("chain"));
}

TEST_CASE("TlsContext: unreadable and malformed files are ConfigErrors with their origin", "[tls][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("lg-tls-unit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "junk.pem") << "not a certificate\n"; }
  TlsConfig t;
  t.certificates.push_back({{(dir / "missing.pem").string(), "gw.yaml:5: listen[0].tls.certificates[0].cert"},
                            {(dir / "missing.key").string(), "gw.yaml:5: listen[0].tls.certificates[0].key"}});
  try {
    TlsContext ctx(t);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("gw.yaml:5: listen[0].tls.certificates[0].cert: ") &&
                             Catch::Contains("missing.pem: cannot read"));
  }
  t.certificates[0].cert.path = (dir / "junk.pem").string();
  t.certificates[0].key.path = (dir / "junk.pem").string();
  try {
    TlsContext ctx(t);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("listen[0].tls.certificates[0].key: ") &&
                             Catch::Contains("not a PEM private key"));
  }
  std::filesystem::remove_all(dir);
}

// ---- upstream TLS (client side) ---------------------------------------------------------------

namespace {
std::string upstream_tls(const std::string& block) {  // the tls map starts on line 5
  return "listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  app:\n    tls:\n" + block +
         "    targets: [ \"127.0.0.1:2\" ]\nroutes:\n  - { name: all, match: { path: \"/*\" }, upstream: app }\n";
}
}  // namespace

TEST_CASE("upstream tls: parsing and defaults, paths relative to the config's folder", "[tls][config]") {
  const Config c = load_config_text(upstream_tls("      ca: certs/ca.pem\n      sni: up.test\n"
                                                 "      cert: client.pem\n      key: /abs/client.key\n"),
                                    "/etc/lg/gw.yaml");
  REQUIRE(c.upstreams.size() == 1);
  REQUIRE(c.upstreams[0].tls);
  const UpstreamTlsConfig& t = *c.upstreams[0].tls;
  CHECK(t.verify);
  REQUIRE(t.ca);
  CHECK(t.ca->path == "/etc/lg/certs/ca.pem");
  CHECK(t.ca->origin == "/etc/lg/gw.yaml:6: upstreams.app.tls.ca");
  CHECK(t.sni_mode == UpstreamTlsConfig::SniMode::name);
  CHECK(t.sni == "up.test");
  REQUIRE(t.cert);
  CHECK(t.cert->path == "/etc/lg/client.pem");
  REQUIRE(t.key);
  CHECK(t.key->path == "/abs/client.key");

  const Config d = load_config_text(upstream_tls("      {}\n"), "gw.yaml");
  REQUIRE(d.upstreams[0].tls);
  CHECK(d.upstreams[0].tls->verify);
  CHECK_FALSE(d.upstreams[0].tls->ca);
  CHECK(d.upstreams[0].tls->sni_mode == UpstreamTlsConfig::SniMode::automatic);
  CHECK_FALSE(d.upstreams[0].tls->cert);

  const Config h = load_config_text(upstream_tls("      sni: host\n      verify: false\n"), "gw.yaml");
  CHECK(h.upstreams[0].tls->sni_mode == UpstreamTlsConfig::SniMode::host);
  CHECK_FALSE(h.upstreams[0].tls->verify);

  const Config plain = load_config_text("listen:\n  - address: 127.0.0.1:8080\n" + kTail, "gw.yaml");
  CHECK_FALSE(plain.upstreams[0].tls);
}

TEST_CASE("upstream tls: config errors name file:line", "[tls][config]") {
  CHECK_THAT(errors(upstream_tls("      cert: c.pem\n")),
             Catch::Contains("gw.yaml:6: upstreams.app.tls.cert: needs key"));
  CHECK_THAT(errors(upstream_tls("      key: c.key\n")),
             Catch::Contains("gw.yaml:6: upstreams.app.tls.key: needs cert"));
  CHECK_THAT(errors(upstream_tls("      verify: maybe\n")), Catch::Contains("gw.yaml:6: upstreams.app.tls.verify"));
  CHECK_THAT(errors(upstream_tls("      sni: \"a b\"\n")),
             Catch::Contains("gw.yaml:6: upstreams.app.tls.sni: expected a host name or host"));
  CHECK_THAT(errors(upstream_tls("      sni: [ a ]\n")), Catch::Contains("gw.yaml:6: upstreams.app.tls.sni"));
  CHECK_THAT(errors(upstream_tls("      ciphers: x\n")), Catch::Contains("gw.yaml:6: upstreams.app.tls") &&
                                                             Catch::Contains("ciphers"));
  CHECK_THAT(errors(upstream_tls("      ca: [ a ]\n")), Catch::Contains("gw.yaml:6: upstreams.app.tls.ca"));
}

TEST_CASE("TlsClientContext: files are checked with their origin", "[tls][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("lg-uptls-unit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "junk.pem") << "not a certificate\n"; }
  UpstreamTlsConfig t;
  t.origin = "gw.yaml:5: upstreams.app.tls";
  t.ca = ConfigFile{(dir / "missing.pem").string(), "gw.yaml:6: upstreams.app.tls.ca"};
  try {
    TlsClientContext ctx(t);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("gw.yaml:6: upstreams.app.tls.ca: ") && Catch::Contains("cannot read"));
  }
  t.ca->path = (dir / "junk.pem").string();
  try {
    TlsClientContext ctx(t);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("gw.yaml:6: upstreams.app.tls.ca: ") &&
                             Catch::Contains("no CA certificate could be loaded"));
  }
  t.ca.reset();
  t.cert = ConfigFile{(dir / "junk.pem").string(), "gw.yaml:7: upstreams.app.tls.cert"};
  t.key = ConfigFile{(dir / "junk.pem").string(), "gw.yaml:8: upstreams.app.tls.key"};
  try {
    TlsClientContext ctx(t);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("gw.yaml:8: upstreams.app.tls.key: ") &&
                             Catch::Contains("not a PEM private key"));
  }
  t.cert.reset();
  t.key.reset();
  t.verify = false;
  TlsClientContext ok(t);  // no files, no verification
  CHECK_FALSE(ok.verify());
  CHECK(ok.ctx() != nullptr);
  std::filesystem::remove_all(dir);
}

TEST_CASE("is_ip_literal", "[tls]") {
  CHECK(is_ip_literal("127.0.0.1"));
  CHECK(is_ip_literal("::1"));
  CHECK_FALSE(is_ip_literal("up.test"));
  CHECK_FALSE(is_ip_literal(""));
  CHECK_FALSE(is_ip_literal("1.2.3"));
}
