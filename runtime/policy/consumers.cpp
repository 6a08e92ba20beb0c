// Consumers and the request helpers shared by the policies.
// The low-level SHA-256 calls (deprecated in OpenSSL 3) cost a third of the EVP one-shot for a
// short key: hashing the presented key is on every key-auth request.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>

#include "config/policies.hpp"
#include "core/query_string.hpp"
#include "policy/policy.hpp"

namespace lg::policy {

namespace {
void digest_into(std::string_view key, unsigned char (&out)[SHA256_DIGEST_LENGTH]) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, key.data(), key.size());
  SHA256_Final(out, &c);
  OPENSSL_cleanse(&c, sizeof c);
}

std::string digest_of(std::string_view key) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  digest_into(key, d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

std::string from_hex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1]));
  return out;
}
}  // namespace

bool Consumer::in_group(std::string_view g) const {
  for (const std::string& x : groups)
    if (x == g) return true;
  return false;
}

ConsumerTable::ConsumerTable(const std::vector<ConsumerConfig>& consumers) {
  consumers_.reserve(consumers.size());
  for (const ConsumerConfig& c : consumers) {
    const auto index = static_cast<std::uint32_t>(consumers_.size());
    consumers_.push_back({c.id, c.groups, c.tenant, c.fields});
    by_id_.emplace(c.id, index);
    for (const std::string& k : c.keys)  // the reader checked the format and uniqueness
      by_digest_.emplace(k.starts_with("sha256:") ? from_hex(std::string_view(k).substr(7)) : digest_of(k), index);
  }
}

const Consumer* ConsumerTable::by_key(std::string_view key) const {
  if (key.empty() || key.size() > 256) return nullptr;
  unsigned char d[SHA256_DIGEST_LENGTH];
  digest_into(key, d);
  const std::string_view dv(reinterpret_cast<const char*>(d), sizeof d);
  const auto it = by_digest_.find(dv);  // heterogeneous: no string built per request
  // The map compares digests of what the client sent (learning about them by timing gives no
  // key); the final check is constant-time all the same.
  if (it == by_digest_.end() || CRYPTO_memcmp(it->first.data(), d, sizeof d) != 0) return nullptr;
  return &consumers_[it->second];
}

const Consumer* ConsumerTable::by_id(std::string_view id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &consumers_[it->second];
}

std::string_view PolicyRequest::header(std::string_view name) const {
  if (!headers) return {};
  for (const http::Header& h : *headers)
    if (h.name.size() == name.size() && http::iequals(h.name, name)) return h.value;
  return {};
}

bool PolicyRequest::has_header(std::string_view name) const {
  if (!headers) return false;
  for (const http::Header& h : *headers)
    if (h.name.size() == name.size() && http::iequals(h.name, name)) return true;
  return false;
}

std::size_t PolicyRequest::header_count(std::string_view name) const {
  std::size_t n = 0;
  if (headers)
    for (const http::Header& h : *headers) n += h.name.size() == name.size() && http::iequals(h.name, name);
  return n;
}

bool PolicyRequest::query_arg(std::string_view name, std::string& out) const {
  std::string_view raw;
  bool bare = false;
  if (!find_query_arg(query, name, true, raw, bare)) return false;
  percent_decode(raw, out);
  return true;
}

}  // namespace lg::policy
