// IP addresses and sets of address ranges (CIDRs) for ip-restriction and trusted proxies.
//
// Syntax (as inet_pton, and as the Lua stdlib's lunagate.cidr): IPv4 is a dotted quad of decimal
// octets without leading zeros; IPv6 is RFC 4291 text (one "::", an optional dotted quad in the
// last 32 bits, no zone "%eth0"). A range is "address/length" or a bare address (/32, /128), and
// its address must have no bits set past the length ("10.0.0.1/8" is refused: usually a typo).
//
// IPv4 and IPv6 are kept apart, as nginx and lunagate.cidr do: "::/0" does not match the IPv4
// client 1.2.3.4. IPv4-mapped IPv6 (::ffff:a.b.c.d, how dual-stack sockets report IPv4 peers)
// is the IPv4 address: it matches IPv4 ranges (and IPv6 ranges holding it), and an IPv6 entry
// inside ::ffff:0:0/96 with a length >= 96 is stored as the IPv4 range it stands for.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lg::policy {

using u128 = unsigned __int128;  // an IPv6 address as one integer: ranges compare with <

// Room for any address's text plus a NUL (INET6_ADDRSTRLEN is 46).
inline constexpr std::size_t kIpTextMax = 48;

struct IpAddress {
  bool v4 = false;         // an IPv4 address (also set for IPv4-mapped IPv6 text)
  bool v6 = false;         // written as IPv6 (also set for IPv4-mapped IPv6 text)
  std::uint32_t addr4 = 0;  // when v4
  u128 addr6 = 0;           // when v6
};

// Parses an address (no brackets, port or zone). No allocation: the text is copied to a stack
// buffer for inet_pton.
bool parse_ip(std::string_view text, IpAddress& out);

// The canonical text of `a` (inet_ntop; IPv4-mapped addresses as plain IPv4) written to `buf`.
// Canonical text makes equal addresses equal keys ("2001:DB8:0::1" and "2001:db8::1").
std::string_view format_ip(const IpAddress& a, std::span<char, kIpTextMax> buf);

class CidrSet {
 public:
  // Replaces the set with the ranges of `entries`; surrounding spaces and tabs are ignored. On a
  // bad entry returns false with `error` = "<entry>: <why>" (e.g. "10.0.0.0/33: prefix length
  // out of range") and leaves the set unchanged.
  bool parse(std::span<const std::string_view> entries, std::string& error);
  bool parse(std::span<const std::string> entries, std::string& error);

  // A textual address; false when it is not an address.
  bool contains(std::string_view ip) const;
  bool contains(const IpAddress& a) const;

  bool empty() const { return v4_.empty() && v6_.empty(); }
  // Disjoint, non-adjacent ranges after merging (for tests and diagnostics).
  std::size_t range_count() const { return v4_.size() + v6_.size(); }

 private:
  // Inclusive [first, last], sorted by first, merged: binary search finds the only candidate.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> v4_;
  std::vector<std::pair<u128, u128>> v6_;
};

}  // namespace lg::policy
