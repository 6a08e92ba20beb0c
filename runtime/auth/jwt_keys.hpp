// Internal to runtime/auth: the key material behind JwtKeySet, and the signature primitives.
// OpenSSL types stay opaque here; only jwt_crypto.cpp and jwk.cpp include OpenSSL.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"

struct evp_pkey_st;  // EVP_PKEY

namespace lg::auth {

struct HmacKey;  // precomputed inner/outer hash states (jwt_crypto.cpp)

struct PkeyDeleter {
  void operator()(evp_pkey_st* k) const;
};
struct HmacKeyDeleter {
  void operator()(HmacKey* k) const;
};
using PkeyPtr = std::unique_ptr<evp_pkey_st, PkeyDeleter>;
using HmacKeyPtr = std::unique_ptr<HmacKey, HmacKeyDeleter>;

enum class KeyFamily : std::uint8_t { hmac, rsa, ec, ed25519 };
KeyFamily family_of(Alg alg);
std::size_t hash_bytes(Alg alg);  // digest size of the alg's hash (64 for EdDSA's signature half)

struct JwtKey {
  std::string kid;
  Alg alg;
  HmacKeyPtr hmac;       // HS*: exactly this is set
  PkeyPtr pkey;          // RS*/PS*/ES*/EdDSA: exactly this is set, of the alg's key type
  std::size_t sig_bytes = 0;  // the only signature length accepted
};

struct JwtKeySet::Impl {
  std::vector<JwtKey> keys;

  const JwtKey* find(std::string_view kid) const {
    for (const JwtKey& k : keys)
      if (k.kid == kid) return &k;
    return nullptr;
  }
};

// ---- jwt_crypto.cpp ----

// Precomputes HMAC for `alg` (HS*) from `secret`; empty string on success, else why not.
std::string make_hmac_key(Alg alg, std::string_view secret, HmacKeyPtr& out);
// Checks `pkey` can serve `alg` (type, curve, RSA size); sets sig_bytes. Empty string on success.
std::string check_public_key(Alg alg, evp_pkey_st* pkey, std::size_t& sig_bytes);
// Verifies `sig` (already of key.sig_bytes length) over `input` with `key` (whose alg was
// already matched against the token's). Never throws; false on any failure.
bool verify_signature(const JwtKey& key, std::string_view input, const unsigned char* sig, std::size_t sig_len);

}  // namespace lg::auth
