// The client's address behind trusted proxies, from X-Forwarded-For.
//
// The rule (nginx realip with `real_ip_recursive on`): the address list is the X-Forwarded-For
// entries in order (several header lines are one list, comma-separated, OWS trimmed, empty
// elements skipped) followed by the peer. Walk it from the right:
//   - the peer not trusted: the peer is the client; X-Forwarded-For is ignored (anyone can send
//     one);
//   - an entry not trusted: that entry is the client. It was appended by a trusted proxy, so it
//     is the address that proxy saw; entries to its left were written by the client and are
//     never believed;
//   - a malformed entry ("unknown", "1.2.3.x", a zone): the walk stops and the last trusted hop
//     is the client, as no trusted proxy vouches for anything past it;
//   - every entry trusted: the left-most is the client.
// An entry may carry a port as proxies sometimes write it ("1.2.3.4:5678", "[2001:db8::1]:443").
//
// Consequence: trusted_proxies must hold only proxies. A client inside a trusted range could
// choose its address by sending X-Forwarded-For, exactly as with nginx.
#pragma once
#include <span>
#include <string_view>
#include <vector>

#include "policy/cidr.hpp"

namespace lg::policy {

// Returns the client's address as canonical text in `scratch` (format_ip: IPv4-mapped as IPv4,
// IPv6 compressed and lower case), so one client is one rate-limit key whatever form a proxy
// wrote. If the peer is not an address at all it is returned as given. No allocation.
std::string_view real_client_ip(std::string_view peer_ip, std::span<const std::string_view> xff_values_in_order,
                                const CidrSet& trusted_proxies, std::span<char, kIpTextMax> scratch);

// One X-Forwarded-For element, OWS already trimmed: the address without port or brackets, or
// false if it is not an address.
bool parse_forwarded_address(std::string_view element, IpAddress& out);

}  // namespace lg::policy
