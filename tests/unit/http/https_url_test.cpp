// https:// URLs the gateway fetches itself (jwt jwks_url).
#include "http/https_url.hpp"

#include <catch2/catch.hpp>

using namespace lg::http;

namespace {
std::string why(std::string_view text) {
  HttpsUrl u;
  return parse_https_url(text, u);
}
}  // namespace

TEST_CASE("https url: host, port, target and Host field", "[http][url]") {
  HttpsUrl u;
  REQUIRE(parse_https_url("https://IdP.Example.com/.well-known/jwks.json", u).empty());
  CHECK(u.host == "idp.example.com");
  CHECK_FALSE(u.host_is_ip);
  CHECK(u.port == 443);
  CHECK(u.target == "/.well-known/jwks.json");
  CHECK(u.authority == "idp.example.com");

  REQUIRE(parse_https_url("HTTPS://127.0.0.1:8443/keys?tenant=a&x=1", u).empty());
  CHECK(u.host == "127.0.0.1");
  CHECK(u.host_is_ip);
  CHECK(u.port == 8443);
  CHECK(u.target == "/keys?tenant=a&x=1");
  CHECK(u.authority == "127.0.0.1:8443");

  REQUIRE(parse_https_url("https://[::1]:9443", u).empty());
  CHECK(u.host == "::1");
  CHECK(u.host_is_ip);
  CHECK(u.target == "/");
  CHECK(u.authority == "[::1]:9443");

  REQUIRE(parse_https_url("https://idp.test?x=1", u).empty());
  CHECK(u.target == "/?x=1");
  REQUIRE(parse_https_url("https://idp.test:443/", u).empty());
  CHECK(u.authority == "idp.test");
}

TEST_CASE("https url: anything else is refused with a reason", "[http][url]") {
  CHECK(why("http://idp.test/jwks") == "must be an https:// URL (keys are only fetched over TLS)");
  CHECK(why("ftp://idp.test/") != "");
  CHECK(why("idp.test/jwks") != "");
  CHECK(why("https://") == "no host");
  CHECK(why("https:///jwks") == "no host");
  CHECK(why("https://user:pw@idp.test/") == "credentials in the URL are not supported");
  CHECK(why("https://idp.test/a#frag") == "a URL fragment is not allowed");
  CHECK(why("https://idp.test/a b") == "invalid byte in the URL");
  CHECK(why("https://idp.test/\x01") == "invalid byte in the URL");
  CHECK(why("https://idp.test:/") == "empty port");
  CHECK(why("https://idp.test:0/") == "invalid port");
  CHECK(why("https://idp.test:65536/") == "invalid port");
  CHECK(why("https://idp.test:80a/") == "invalid port");
  CHECK(why("https://idp.test:000443/") == "invalid port");
  CHECK(why("https://[::1/") == "unterminated IPv6 address");
  CHECK(why("https://[::1]x/") == "invalid authority");
  CHECK(why("https://[zz::1]/") == "invalid IPv6 address");
  CHECK(why("https://[::1]:/") == "invalid port");
  CHECK(why("https://-idp.test/") == "invalid host name");
  CHECK(why("https://idp-.test/") == "invalid host name");
  CHECK(why("https://idp..test/") == "invalid host name");
  CHECK(why("https://idp_x.test/") == "invalid host name");
  CHECK(why("https://" + std::string(64, 'a') + ".test/") == "invalid host name");
}
