// CidrSet: parsing (errors name the entry), merging, IPv4/IPv6 separation, mapped addresses,
// and a randomized comparison against a brute-force matcher.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "policy/cidr.hpp"

using lg::policy::CidrSet;
using lg::policy::format_ip;
using lg::policy::IpAddress;
using lg::policy::kIpTextMax;
using lg::policy::parse_ip;

namespace {

CidrSet set_of(std::vector<std::string_view> entries) {
  CidrSet s;
  std::string err;
  REQUIRE(s.parse(entries, err));
  return s;
}

std::string parse_error(std::vector<std::string_view> entries) {
  CidrSet s;
  std::string err;
  CHECK_FALSE(s.parse(entries, err));
  return err;
}

std::string canonical(std::string_view text) {
  IpAddress a;
  if (!parse_ip(text, a)) return "<invalid>";
  char buf[kIpTextMax];
  return std::string(format_ip(a, buf));
}

}  // namespace

TEST_CASE("CidrSet: addresses and ranges, both families", "[cidr]") {
  const CidrSet s = set_of({"10.0.0.0/8", "::1", "2001:db8::/32", "192.168.1.7"});
  CHECK(s.contains("10.0.0.0"));
  CHECK(s.contains("10.255.255.255"));
  CHECK_FALSE(s.contains("11.0.0.0"));
  CHECK_FALSE(s.contains("9.255.255.255"));
  CHECK(s.contains("192.168.1.7"));
  CHECK_FALSE(s.contains("192.168.1.6"));
  CHECK_FALSE(s.contains("192.168.1.8"));
  CHECK(s.contains("::1"));
  CHECK_FALSE(s.contains("::2"));
  CHECK(s.contains("2001:db8::"));
  CHECK(s.contains("2001:DB8:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(s.contains("2001:db9::"));
  CHECK_FALSE(s.contains("not an ip"));
  CHECK_FALSE(s.contains(""));
  CHECK(s.range_count() == 4);
}

TEST_CASE("CidrSet: /0, /32 and /128", "[cidr]") {
  const CidrSet all4 = set_of({"0.0.0.0/0"});
  CHECK(all4.contains("0.0.0.0"));
  CHECK(all4.contains("255.255.255.255"));
  CHECK_FALSE(all4.contains("::1"));  // families are apart
  const CidrSet all6 = set_of({"::/0"});
  CHECK(all6.contains("::"));
  CHECK(all6.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(all6.contains("1.2.3.4"));      // "::/0" is not "everything" for an IPv4 client
  CHECK(all6.contains("::ffff:1.2.3.4"));     // but a mapped address is IPv6 text inside it
  const CidrSet one = set_of({"1.2.3.4/32", "2001:db8::7/128"});
  CHECK(one.contains("1.2.3.4"));
  CHECK_FALSE(one.contains("1.2.3.5"));
  CHECK(one.contains("2001:db8::7"));
  CHECK_FALSE(one.contains("2001:db8::6"));
  CHECK_FALSE(one.contains("2001:db8::8"));
  const CidrSet top = set_of({"255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"});
  CHECK(top.contains("255.255.255.255"));
  CHECK(top.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(top.contains("255.255.255.254"));
}

TEST_CASE("CidrSet: overlapping and adjacent ranges merge", "[cidr]") {
  CHECK(set_of({"10.0.0.0/8", "10.1.0.0/16", "10.2.3.4"}).range_count() == 1);       // nested
  CHECK(set_of({"10.0.0.0/9", "10.128.0.0/9"}).range_count() == 1);                 // adjacent
  CHECK(set_of({"10.0.0.0/9", "10.128.0.1"}).range_count() == 2);                   // a gap of one
  CHECK(set_of({"1.2.3.5", "1.2.3.4", "1.2.3.6", "1.2.3.7"}).range_count() == 1);   // out of order
  CHECK(set_of({"0.0.0.0/1", "128.0.0.0/1", "255.255.255.255"}).range_count() == 1);  // up to the top
  CHECK(set_of({"2001:db8::/33", "2001:db8:8000::/33"}).range_count() == 1);
  CHECK(set_of({"::/0", "2001:db8::/32", "::1"}).range_count() == 1);
  CHECK(set_of({"::/1", "8000::/1"}).range_count() == 1);
  CHECK(set_of({"10.0.0.0/8", "::ffff:10.0.0.0/104"}).range_count() == 1);  // the same range
  const CidrSet s = set_of({"10.0.0.0/9", "10.128.0.0/9", "12.0.0.0/8"});
  CHECK(s.contains("10.127.255.255"));
  CHECK(s.contains("10.128.0.0"));
  CHECK_FALSE(s.contains("11.0.0.0"));
  CHECK(s.contains("12.0.0.0"));
  CHECK(s.range_count() == 2);
}

TEST_CASE("CidrSet: IPv4-mapped IPv6 is the IPv4 address", "[cidr]") {
  const CidrSet s = set_of({"192.168.0.0/16"});
  CHECK(s.contains("::ffff:192.168.1.7"));
  CHECK(s.contains("::FFFF:c0a8:0107"));
  CHECK_FALSE(s.contains("::ffff:192.169.0.1"));
  CHECK_FALSE(s.contains("::192.168.1.7"));        // IPv4-compatible (deprecated) is not mapped
  CHECK_FALSE(s.contains("64:ff9b::192.168.1.7"));  // nor is NAT64
  // A mapped entry is stored as the IPv4 range it stands for.
  const CidrSet m = set_of({"::ffff:10.0.0.0/104"});
  CHECK(m.contains("10.1.2.3"));
  CHECK(m.contains("::ffff:10.1.2.3"));
  CHECK_FALSE(m.contains("11.0.0.0"));
  // A shorter IPv6 range holding the mapped block matches mapped text, not plain IPv4.
  const CidrSet wide = set_of({"::/80"});
  CHECK(wide.contains("::ffff:1.2.3.4"));
  CHECK_FALSE(wide.contains("1.2.3.4"));
}

TEST_CASE("CidrSet: whitespace around entries is ignored", "[cidr]") {
  const CidrSet s = set_of({" 10.0.0.0/8", "\t2001:db8::/32 \t", "  1.2.3.4  "});
  CHECK(s.contains("10.9.9.9"));
  CHECK(s.contains("2001:db8::1"));
  CHECK(s.contains("1.2.3.4"));
  CHECK_FALSE(s.contains(" 1.2.3.4"));  // an address to look up is taken as it is
}

TEST_CASE("CidrSet: bad entries are named with the reason", "[cidr]") {
  CHECK(parse_error({"10.0.0.0/33"}) == "10.0.0.0/33: prefix length out of range");
  CHECK(parse_error({"::/129"}) == "::/129: prefix length out of range");
  CHECK(parse_error({"10.0.0.0/999"}) == "10.0.0.0/999: prefix length out of range");
  CHECK(parse_error({"10.0.0.0/1000"}) == "10.0.0.0/1000: invalid prefix length");
  CHECK(parse_error({"10.0.0.0/"}) == "10.0.0.0/: invalid prefix length");
  CHECK(parse_error({"10.0.0.0/08"}) == "10.0.0.0/08: invalid prefix length");
  CHECK(parse_error({"10.0.0.0/-1"}) == "10.0.0.0/-1: invalid prefix length");
  CHECK(parse_error({"10.0.0.0/8/8"}) == "10.0.0.0/8/8: invalid prefix length");
  CHECK(parse_error({"10.0.0.0/ 8"}) == "10.0.0.0/ 8: invalid prefix length");
  CHECK(parse_error({"10.0.0.300/8"}) == "10.0.0.300/8: invalid address");
  CHECK(parse_error({"010.0.0.1"}) == "010.0.0.1: invalid address");  // leading zero (octal in some parsers)
  CHECK(parse_error({"1.2.3"}) == "1.2.3: invalid address");
  CHECK(parse_error({"10.0.0.0 /8"}) == "10.0.0.0 /8: invalid address");
  CHECK(parse_error({"fe80::1%eth0"}) == "fe80::1%eth0: invalid address");
  CHECK(parse_error({"1:2:3:4:5:6:7:8:9"}) == "1:2:3:4:5:6:7:8:9: invalid address");
  CHECK(parse_error({"/8"}) == "/8: invalid address");
  CHECK(parse_error({"10.0.0.1/8"}) == "10.0.0.1/8: bits set past the prefix length (10.0.0.0/8?)");
  CHECK(parse_error({"2001:db8::1/32"}) == "2001:db8::1/32: bits set past the prefix length (2001:db8::/32?)");
  CHECK(parse_error({"::ffff:10.0.0.1/104"}) ==
        "::ffff:10.0.0.1/104: bits set past the prefix length (::ffff:10.0.0.0/104?)");
  CHECK(parse_error({"10.0.0.0/8", ""}) == "empty entry");
  CHECK(parse_error({" \t "}) == "empty entry");
  const std::string longer(100, 'x');
  CHECK(parse_error({longer}) == std::string(64, 'x') + "...: invalid address");
}

TEST_CASE("CidrSet: a failed parse leaves the set as it was", "[cidr]") {
  CidrSet s;
  std::string err;
  const std::vector<std::string> good = {"10.0.0.0/8"};
  REQUIRE(s.parse(good, err));
  const std::vector<std::string> bad = {"192.168.0.0/16", "nope"};
  CHECK_FALSE(s.parse(bad, err));
  CHECK(err == "nope: invalid address");
  CHECK(s.contains("10.1.1.1"));
  CHECK_FALSE(s.contains("192.168.1.1"));
  REQUIRE(s.parse(std::vector<std::string>{}, err));  // an empty list: an empty set
  CHECK(s.empty());
  CHECK_FALSE(s.contains("10.1.1.1"));
}

TEST_CASE("parse_ip and format_ip: strict text, canonical output", "[cidr]") {
  IpAddress a;
  CHECK_FALSE(parse_ip(std::string_view("1.2.3.4\0junk", 12), a));  // no NUL inside
  CHECK_FALSE(parse_ip(std::string(60, '1'), a));                   // longer than any address
  CHECK_FALSE(parse_ip("1.2.3.4 ", a));
  CHECK_FALSE(parse_ip("[::1]", a));
  REQUIRE(parse_ip("::ffff:1.2.3.4", a));
  CHECK(a.v4);
  CHECK(a.v6);
  CHECK(a.addr4 == 0x01020304u);
  CHECK(canonical("::ffff:1.2.3.4") == "1.2.3.4");
  CHECK(canonical("2001:DB8:0:0:0::1") == "2001:db8::1");
  CHECK(canonical("0:0:0:0:0:0:0:1") == "::1");
  CHECK(canonical("192.168.001.1") == "<invalid>");
  CHECK(canonical("255.255.255.255") == "255.255.255.255");
}

TEST_CASE("CidrSet: randomized against a brute-force matcher", "[cidr]") {
  std::mt19937 rng(20240601);
  for (int round = 0; round < 50; ++round) {
    struct Net {
      std::uint32_t addr;
      int len;
    };
    std::vector<Net> nets;
    std::vector<std::string> entries;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      // Few distinct high bits so that ranges overlap and touch often.
      const int len = 20 + static_cast<int>(rng() % 13);
      const std::uint32_t mask = len == 0 ? 0 : ~std::uint32_t(0) << (32 - len);
      const std::uint32_t addr = (0x0A000000u | (rng() & 0x0000FFFFu)) & mask;
      nets.push_back({addr, len});
      entries.push_back(std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
                        std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255) + "/" +
                        std::to_string(len));
    }
    CidrSet s;
    std::string err;
    REQUIRE(s.parse(entries, err));
    for (int k = 0; k < 500; ++k) {
      const std::uint32_t ip = 0x0A000000u | (rng() & 0x0001FFFFu);
      bool want = false;
      for (const Net& net : nets) {
        const std::uint32_t mask = ~std::uint32_t(0) << (32 - net.len);
        want = want || (ip & mask) == net.addr;
      }
      IpAddress a;
      a.v4 = true;
      a.addr4 = ip;
      INFO("round " << round << " ip " << std::hex << ip);
      REQUIRE(s.contains(a) == want);
    }
  }
}
