// Signature primitives for JWT verification.
//
// HMAC: the inner and outer SHA-2 states after absorbing key^ipad / key^opad are computed once
// per key and copied per verify: no allocation, no lock, no per-thread cache, ~2 compression
// blocks saved. OpenSSL 3 only offers that through the SHA*_Init/Update/Final functions it
// marks deprecated (still shipped in every 3.x); EVP_MAC re-initialised per call measured
// +1.7k instructions per HS256 verify and needs a context per thread and key. If those
// functions ever go, this file is the only one to change.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <cstring>

#include "auth/jwt_keys.hpp"

namespace lg::auth {

struct HmacKey {
  Alg alg;
  union State {
    SHA256_CTX s256;
    SHA512_CTX s512;
  } inner, outer;
};

void PkeyDeleter::operator()(evp_pkey_st* k) const { EVP_PKEY_free(k); }
void HmacKeyDeleter::operator()(HmacKey* k) const {
  OPENSSL_cleanse(k, sizeof *k);
  delete k;
}

KeyFamily family_of(Alg alg) {
  switch (alg) {
    case Alg::HS256: case Alg::HS384: case Alg::HS512: return KeyFamily::hmac;
    case Alg::ES256: case Alg::ES384: return KeyFamily::ec;
    case Alg::EdDSA: return KeyFamily::ed25519;
    default: return KeyFamily::rsa;
  }
}

std::size_t hash_bytes(Alg alg) {
  switch (alg) {
    case Alg::HS256: case Alg::RS256: case Alg::PS256: case Alg::ES256: return 32;
    case Alg::HS384: case Alg::RS384: case Alg::PS384: case Alg::ES384: return 48;
    default: return 64;
  }
}

namespace {

// One-shot SHA-2 of `alg`'s size (32, 48 or 64 bytes) into out.
void digest(std::size_t size, const void* data, std::size_t len, unsigned char* out) {
  if (size == 32) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
  } else {
    SHA512_CTX c;
    size == 48 ? SHA384_Init(&c) : SHA512_Init(&c);
    SHA512_Update(&c, data, len);
    size == 48 ? SHA384_Final(out, &c) : SHA512_Final(out, &c);
  }
}

void hmac(const HmacKey& k, std::string_view input, unsigned char* out) {
  unsigned char inner[64];
  if (k.alg == Alg::HS256) {
    SHA256_CTX c = k.inner.s256;
    SHA256_Update(&c, input.data(), input.size());
    SHA256_Final(inner, &c);
    c = k.outer.s256;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(out, &c);
  } else {
    const bool is384 = k.alg == Alg::HS384;
    const std::size_t n = is384 ? 48 : 64;
    SHA512_CTX c = k.inner.s512;
    SHA512_Update(&c, input.data(), input.size());
    is384 ? SHA384_Final(inner, &c) : SHA512_Final(inner, &c);
    c = k.outer.s512;
    SHA512_Update(&c, inner, n);
    is384 ? SHA384_Final(out, &c) : SHA512_Final(out, &c);
  }
}

const EVP_MD* md_of(Alg alg) {
  switch (hash_bytes(alg)) {
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    default: return EVP_sha512();
  }
}

// RFC 7518 §3.4: R || S, each exactly half the signature, as a DER ECDSA-Sig-Value.
// Returns the DER length (at most 2 + 2 * (3 + 48) = 104 bytes).
std::size_t ecdsa_raw_to_der(const unsigned char* sig, std::size_t half, unsigned char* der) {
  std::size_t at = 2;
  for (int part = 0; part < 2; ++part) {
    const unsigned char* v = sig + part * half;
    std::size_t n = half;
    while (n > 1 && *v == 0) ++v, --n;  // minimal encoding; zero stays one 0x00 byte
    const bool pad = (*v & 0x80) != 0;
    der[at++] = 0x02;
    der[at++] = static_cast<unsigned char>(n + pad);
    if (pad) der[at++] = 0x00;
    std::memcpy(der + at, v, n);
    at += n;
  }
  der[0] = 0x30;
  der[1] = static_cast<unsigned char>(at - 2);
  return at;
}

bool verify_digest(const JwtKey& key, const unsigned char* sig, std::size_t sig_len, const unsigned char* md,
                   std::size_t md_len) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.pkey.get(), nullptr);
  if (ctx == nullptr) return false;
  bool ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md_of(key.alg)) == 1;
  switch (key.alg) {
    case Alg::RS256: case Alg::RS384: case Alg::RS512:
      ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
      break;
    case Alg::PS256: case Alg::PS384: case Alg::PS512:
      // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash.
      ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_of(key.alg)) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
      break;
    default:
      break;
  }
  ok = ok && EVP_PKEY_verify(ctx, sig, sig_len, md, md_len) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

}  // namespace

std::string make_hmac_key(Alg alg, std::string_view secret, HmacKeyPtr& out) {
  if (family_of(alg) != KeyFamily::hmac) return "a secret can only serve HS256/HS384/HS512";
  const std::size_t n = hash_bytes(alg);
  if (secret.size() < n)
    return "HMAC secret shorter than the hash (" + std::to_string(secret.size()) + " < " + std::to_string(n) +
           " bytes, RFC 7518 §3.2)";
  const std::size_t block = alg == Alg::HS256 ? 64 : 128;
  unsigned char k[128] = {0}, pad[128];
  if (secret.size() > block) digest(n, secret.data(), secret.size(), k);
  else std::memcpy(k, secret.data(), secret.size());
  HmacKeyPtr h(new HmacKey{});
  h->alg = alg;
  for (int round = 0; round < 2; ++round) {
    const unsigned char x = round == 0 ? 0x36 : 0x5c;
    for (std::size_t i = 0; i < block; ++i) pad[i] = k[i] ^ x;
    HmacKey::State& s = round == 0 ? h->inner : h->outer;
    if (alg == Alg::HS256) {
      SHA256_Init(&s.s256);
      SHA256_Update(&s.s256, pad, block);
    } else {
      alg == Alg::HS384 ? SHA384_Init(&s.s512) : SHA512_Init(&s.s512);
      SHA512_Update(&s.s512, pad, block);
    }
  }
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  out = std::move(h);
  return {};
}

std::string check_public_key(Alg alg, evp_pkey_st* pkey, std::size_t& sig_bytes) {
  switch (family_of(alg)) {
    case KeyFamily::hmac:
      return "HS* algorithms take a secret, not a public key";
    case KeyFamily::rsa: {
      if (!EVP_PKEY_is_a(pkey, "RSA")) return "not an RSA key";
      const int bits = EVP_PKEY_get_bits(pkey);
      if (bits < 2048) return "RSA key shorter than 2048 bits (RFC 7518 §3.3)";
      if (bits > 8192) return "RSA key longer than 8192 bits";
      sig_bytes = static_cast<std::size_t>(EVP_PKEY_get_size(pkey));
      break;
    }
    case KeyFamily::ec: {
      char group[64] = {0};
      if (!EVP_PKEY_is_a(pkey, "EC") ||
          EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr) != 1)
        return "not an EC key";
      const std::string_view want = alg == Alg::ES256 ? "prime256v1" : "secp384r1";
      if (group != want) return std::string("EC key on ") + group + ", " + std::string(alg_name(alg)) + " needs " +
                                (alg == Alg::ES256 ? "P-256" : "P-384");
      sig_bytes = alg == Alg::ES256 ? 64 : 96;
      break;
    }
    case KeyFamily::ed25519:
      if (!EVP_PKEY_is_a(pkey, "ED25519")) return "EdDSA keys must be Ed25519";
      sig_bytes = 64;
      break;
  }
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  const bool valid = ctx != nullptr && EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!valid) return "public key fails validation";
  return {};
}

bool verify_signature(const JwtKey& key, std::string_view input, const unsigned char* sig, std::size_t sig_len) {
  if (sig_len != key.sig_bytes) return false;
  const KeyFamily fam = family_of(key.alg);
  // The material must be of the alg's family: an HS* alg never reaches a public key's bytes.
  if ((fam == KeyFamily::hmac) != (key.hmac != nullptr) || (fam == KeyFamily::hmac) == (key.pkey != nullptr))
    return false;
  if (fam == KeyFamily::hmac) {
    unsigned char mac[64];
    hmac(*key.hmac, input, mac);
    const bool ok = CRYPTO_memcmp(mac, sig, sig_len) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
  }
  if (fam == KeyFamily::ed25519) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx != nullptr &&
                    EVP_DigestVerifyInit_ex(ctx, nullptr, nullptr, nullptr, nullptr, key.pkey.get(), nullptr) == 1 &&
                    EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                                     input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
  }
  unsigned char md[64];
  const std::size_t md_len = hash_bytes(key.alg);
  digest(md_len, input.data(), input.size(), md);
  if (fam == KeyFamily::ec) {
    unsigned char der[2 + 2 * (3 + 48)];
    const std::size_t der_len = ecdsa_raw_to_der(sig, sig_len / 2, der);
    return verify_digest(key, der, der_len, md, md_len);
  }
  return verify_digest(key, sig, sig_len, md, md_len);
}

}  // namespace lg::auth
