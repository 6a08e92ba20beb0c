// real_client_ip: X-Forwarded-For is believed only as far as trusted proxies vouch for it.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "policy/client_ip.hpp"

using lg::policy::CidrSet;
using lg::policy::IpAddress;
using lg::policy::kIpTextMax;
using lg::policy::parse_forwarded_address;
using lg::policy::real_client_ip;

namespace {

CidrSet trusted() {
  CidrSet s;
  std::string err;
  const std::vector<std::string_view> proxies = {"10.0.0.0/8", "2001:db8:ffff::/48"};
  REQUIRE(s.parse(proxies, err));
  return s;
}

std::string client(std::string_view peer, std::vector<std::string_view> xff, const CidrSet& t = trusted()) {
  char scratch[kIpTextMax];
  return std::string(real_client_ip(peer, xff, t, scratch));
}

}  // namespace

TEST_CASE("client ip: an untrusted peer is the client, its X-Forwarded-For ignored", "[client-ip]") {
  CHECK(client("203.0.113.7", {}) == "203.0.113.7");
  CHECK(client("203.0.113.7", {"1.1.1.1"}) == "203.0.113.7");           // spoofing attempt
  CHECK(client("203.0.113.7", {"10.0.0.1, 1.1.1.1"}) == "203.0.113.7");
  CHECK(client("2001:db8::9", {"1.1.1.1"}) == "2001:db8::9");
  CHECK(client("10.0.0.1", {"1.1.1.1"}, CidrSet{}) == "10.0.0.1");      // nobody trusted
}

TEST_CASE("client ip: behind trusted proxies the right-most untrusted entry is the client", "[client-ip]") {
  CHECK(client("10.0.0.1", {}) == "10.0.0.1");  // a trusted peer and no header: the peer
  CHECK(client("10.0.0.1", {"203.0.113.7"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"203.0.113.7, 10.0.0.2"}) == "203.0.113.7");
  // A forged left-most entry (the client sent X-Forwarded-For itself) is not believed, even
  // when it names a trusted proxy.
  CHECK(client("10.0.0.1", {"6.6.6.6, 203.0.113.7, 10.0.0.2"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"10.9.9.9, 203.0.113.7"}) == "203.0.113.7");
  // Several header lines are one list, in order.
  CHECK(client("10.0.0.1", {"6.6.6.6", "203.0.113.7", "10.0.0.3, 10.0.0.2"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"6.6.6.6, 1.1.1.1", "10.0.0.3"}) == "1.1.1.1");
  // IPv6 proxies and clients.
  CHECK(client("2001:db8:ffff::1", {"2001:db8:1::5, 2001:db8:ffff::2"}) == "2001:db8:1::5");
}

TEST_CASE("client ip: list syntax (OWS, empty elements, ports, brackets)", "[client-ip]") {
  CHECK(client("10.0.0.1", {" \t203.0.113.7 \t,, 10.0.0.3 ,"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"", "203.0.113.7", ""}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"203.0.113.7:5555"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"[2001:db8::1]:443"}) == "2001:db8::1");
  CHECK(client("10.0.0.1", {"[2001:db8::1]"}) == "2001:db8::1");
  CHECK(client("10.0.0.1", {"2001:db8::1"}) == "2001:db8::1");
  IpAddress a;
  CHECK_FALSE(parse_forwarded_address("1.2.3.4:99999", a));
  CHECK_FALSE(parse_forwarded_address("1.2.3.4:", a));
  CHECK_FALSE(parse_forwarded_address("[1.2.3.4]", a));  // brackets are for IPv6
  CHECK_FALSE(parse_forwarded_address("[2001:db8::1", a));
  CHECK_FALSE(parse_forwarded_address("[2001:db8::1]x", a));
  CHECK_FALSE(parse_forwarded_address("unknown", a));
}

TEST_CASE("client ip: a malformed entry stops the walk at the last trusted hop", "[client-ip]") {
  CHECK(client("10.0.0.1", {"unknown"}) == "10.0.0.1");
  CHECK(client("10.0.0.1", {"203.0.113.7, garbage, 10.0.0.3"}) == "10.0.0.3");
  CHECK(client("10.0.0.1", {"203.0.113.7", "1.2.3.x"}) == "10.0.0.1");
  CHECK(client("10.0.0.1", {"fe80::1%eth0"}) == "10.0.0.1");
  // Malformed text to the left of the client does not matter: the walk ended before it.
  CHECK(client("10.0.0.1", {"garbage, 203.0.113.7"}) == "203.0.113.7");
}

TEST_CASE("client ip: every hop trusted gives the left-most", "[client-ip]") {
  CHECK(client("10.0.0.1", {"10.0.0.5, 10.0.0.6"}) == "10.0.0.5");
  CHECK(client("10.0.0.1", {"10.0.0.5", "10.0.0.6"}) == "10.0.0.5");
}

TEST_CASE("client ip: canonical text (mapped peers, IPv6 case and zeros)", "[client-ip]") {
  CHECK(client("::ffff:10.0.0.1", {"203.0.113.7"}) == "203.0.113.7");  // a dual-stack socket's peer is trusted
  CHECK(client("::ffff:203.0.113.7", {"1.1.1.1"}) == "203.0.113.7");
  CHECK(client("10.0.0.1", {"::ffff:203.0.113.9"}) == "203.0.113.9");
  CHECK(client("10.0.0.1", {"2001:DB8:0:0::1"}) == "2001:db8::1");
  CHECK(client("10.0.0.1", {"::FFFF:10.0.0.7"}) == "10.0.0.7");  // trusted, left-most
  CHECK(client("unix:/run/lg.sock", {"1.1.1.1"}) == "unix:/run/lg.sock");  // not an address: as given
}
