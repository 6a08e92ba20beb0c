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
