#include "policy/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace lg::policy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A prefix length: 1 to 3 decimal digits, no leading zero (as lunagate.cidr); -1 if not one.
int prefix_length(std::string_view s) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

template <class T>
void sort_and_merge(std::vector<std::pair<T, T>>& r) {
  std::sort(r.begin(), r.end());
  std::size_t n = 0;
  for (const auto& x : r) {
    // Overlapping or adjacent ([a, b] then [b+1, c]): one range. `last == max` guards b+1.
    if (n > 0 && (r[n - 1].second == static_cast<T>(~T(0)) || x.first <= r[n - 1].second + 1)) {
      r[n - 1].second = std::max(r[n - 1].second, x.second);
    } else {
      r[n++] = x;
    }
  }
  r.resize(n);
}

template <class T>
bool in_ranges(const std::vector<std::pair<T, T>>& r, T x) {
  auto it = std::upper_bound(r.begin(), r.end(), x, [](T v, const std::pair<T, T>& p) { return v < p.first; });
  return it != r.begin() && x <= std::prev(it)->second;
}

struct Ranges {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> v4;
  std::vector<std::pair<u128, u128>> v6;
};

void set_error(std::string& error, std::string_view entry, std::string_view why) {
  error.clear();
  if (entry.size() > 64) {
    error.append(entry.substr(0, 64));
    error += "...";
  } else {
    error.append(entry);
  }
  error += ": ";
  error.append(why);
}

bool add_entry(std::string_view raw, Ranges& out, std::string& error) {
  const std::string_view s = trim(raw);
  if (s.empty()) {
    error = "empty entry";
    return false;
  }
  const std::size_t slash = s.find('/');
  IpAddress a;
  if (!parse_ip(s.substr(0, slash), a)) {
    set_error(error, s, "invalid address");
    return false;
  }
  const bool as6 = a.v6;  // the text's family decides the length's range
  const int max = as6 ? 128 : 32;
  int len = max;
  if (slash != std::string_view::npos) {
    len = prefix_length(s.substr(slash + 1));
    if (len < 0) {
      set_error(error, s, "invalid prefix length");
      return false;
    }
    if (len > max) {
      set_error(error, s, "prefix length out of range");
      return false;
    }
  }
  IpAddress net = a;  // the address with its host bits cleared (for the hint below)
  bool host_bits = false;
  if (as6) {
    const u128 host = len == 128 ? 0 : ~u128(0) >> len;
    host_bits = (a.addr6 & host) != 0;
    net.addr6 = a.addr6 & ~host;
    net.v4 = false;  // the hint keeps the entry's IPv6 form ("::ffff:10.0.0.0/104?")
    if (!host_bits) {
      if (len >= 96 && (a.addr6 >> 32) == 0xffff) {  // ::ffff:a.b.c.d/96+n is a.b.c.d/n
        out.v4.emplace_back(a.addr4, a.addr4 | static_cast<std::uint32_t>(host));
      } else {
        out.v6.emplace_back(a.addr6, a.addr6 | host);
      }
    }
  } else {
    const std::uint32_t host = len == 32 ? 0 : ~std::uint32_t(0) >> len;
    host_bits = (a.addr4 & host) != 0;
    net.addr4 = a.addr4 & ~host;
    if (!host_bits) out.v4.emplace_back(a.addr4, a.addr4 | host);
  }
  if (host_bits) {
    char buf[kIpTextMax];
    std::string why = "bits set past the prefix length (";
    why.append(format_ip(net, buf));
    why += '/';
    why += std::to_string(len);
    why += "?)";
    set_error(error, s, why);
    return false;
  }
  return true;
}

template <class S>
bool parse_into(std::span<const S> entries, Ranges& r, std::string& error) {
  for (const S& e : entries)
    if (!add_entry(std::string_view(e), r, error)) return false;
  sort_and_merge(r.v4);
  sort_and_merge(r.v6);
  return true;
}

}  // namespace

bool parse_ip(std::string_view text, IpAddress& out) {
  char buf[kIpTextMax];
  // A NUL inside would end inet_pton's string early ("1.2.3.4\0junk"): not an address.
  if (text.empty() || text.size() >= sizeof buf || std::memchr(text.data(), '\0', text.size())) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  out = IpAddress{};
  if (text.find(':') == std::string_view::npos) {
    in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) != 1) return false;
    out.v4 = true;
    out.addr4 = ntohl(a4.s_addr);
    return true;
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) != 1) return false;
  u128 v = 0;
  for (unsigned char b : a6.s6_addr) v = v << 8 | b;
  out.v6 = true;
  out.addr6 = v;
  if ((v >> 32) == 0xffff) {  // ::ffff:a.b.c.d
    out.v4 = true;
    out.addr4 = static_cast<std::uint32_t>(v);
  }
  return true;
}

std::string_view format_ip(const IpAddress& a, std::span<char, kIpTextMax> buf) {
  const char* s = nullptr;
  if (a.v4) {
    in_addr a4;
    a4.s_addr = htonl(a.addr4);
    s = inet_ntop(AF_INET, &a4, buf.data(), buf.size());
  } else if (a.v6) {
    in6_addr a6;
    u128 v = a.addr6;
    for (int i = 15; i >= 0; --i, v >>= 8) a6.s6_addr[i] = static_cast<unsigned char>(v);
    s = inet_ntop(AF_INET6, &a6, buf.data(), buf.size());
  }
  return s ? std::string_view(s) : std::string_view();
}

bool CidrSet::parse(std::span<const std::string_view> entries, std::string& error) {
  Ranges r;
  if (!parse_into(entries, r, error)) return false;
  v4_ = std::move(r.v4);
  v6_ = std::move(r.v6);
  return true;
}

bool CidrSet::parse(std::span<const std::string> entries, std::string& error) {
  Ranges r;
  if (!parse_into(entries, r, error)) return false;
  v4_ = std::move(r.v4);
  v6_ = std::move(r.v6);
  return true;
}

bool CidrSet::contains(const IpAddress& a) const {
  // A mapped address is both: it matches IPv4 ranges and IPv6 ranges that hold it.
  return (a.v4 && in_ranges(v4_, a.addr4)) || (a.v6 && in_ranges(v6_, a.addr6));
}

bool CidrSet::contains(std::string_view ip) const {
  IpAddress a;
  return parse_ip(ip, a) && contains(a);
}

}  // namespace lg::policy
