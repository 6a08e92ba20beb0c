// Base64url (RFC 4648 §5) as JOSE uses it (RFC 7515 §2): no padding, no whitespace, and, when
// decoding, canonical only: the unused low bits of the last character must be zero, so every
// byte string has exactly one accepted encoding.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace lg {

// Decoded size of `n` encoded characters, or npos when n % 4 == 1 (never valid).
constexpr std::size_t base64url_decoded_size(std::size_t n) {
  return n % 4 == 1 ? std::string_view::npos : n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}
constexpr std::size_t base64url_encoded_size(std::size_t bytes) { return bytes / 3 * 4 + (bytes % 3 == 0 ? 0 : bytes % 3 + 1); }

// Writes base64url_decoded_size(in.size()) bytes to `out`. False on any character outside the
// alphabet, padding, a bad length, or non-zero trailing bits (then `out` holds garbage).
bool base64url_decode(std::string_view in, unsigned char* out);
// Replaces `out` with the decoded bytes (capacity is reused).
bool base64url_decode(std::string_view in, std::string& out);

void base64url_encode_append(std::string& out, std::string_view bytes);

}  // namespace lg
