// Test helpers for runtime/auth: corpus files, and a small JWT signer (OpenSSL) so every
// algorithm gets a positive control and every edge a token made on purpose.
#pragma once
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "auth/jwt.hpp"
#include "core/base64url.hpp"

namespace lgtest::jwt {

using lg::auth::Alg;

inline std::string corpus_dir() { return std::string(LG_SHARED_DIR) + "/corpus/jwt/"; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
inline std::string corpus_file(const std::string& rel) { return read_file(corpus_dir() + rel); }

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Pkey private_key(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Pkey k(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!k) throw std::runtime_error("bad private key PEM");
  return k;
}

inline std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

inline std::string b64(std::string_view bytes) {
  std::string out;
  lg::base64url_encode_append(out, bytes);
  return out;
}

inline const EVP_MD* md_for(Alg alg) {
  switch (alg) {
    case Alg::HS256: case Alg::RS256: case Alg::PS256: case Alg::ES256: return EVP_sha256();
    case Alg::HS384: case Alg::RS384: case Alg::PS384: case Alg::ES384: return EVP_sha384();
    default: return EVP_sha512();
  }
}

// The raw signature of `input` for `alg` with `key` (private) or `secret` (HS*).
inline std::string signature(std::string_view input, Alg alg, EVP_PKEY* key, std::string_view secret = {}) {
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (alg == Alg::HS256 || alg == Alg::HS384 || alg == Alg::HS512) {
    unsigned char mac[64];
    unsigned len = 0;
    HMAC(md_for(alg), secret.data(), static_cast<int>(secret.size()), in, input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, alg == Alg::EdDSA ? nullptr : md_for(alg), nullptr, key);
  if (alg == Alg::PS256 || alg == Alg::PS384 || alg == Alg::PS512) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg == Alg::ES256 || alg == Alg::ES384) {  // DER -> R || S (RFC 7518 §3.4)
    const int half = alg == Alg::ES256 ? 32 : 48;
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(2 * half, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), half);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + half, half);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

// A compact JWS of the given header and payload JSON (written verbatim).
inline std::string make_token(std::string_view header, std::string_view payload, Alg alg, EVP_PKEY* key,
                              std::string_view secret = {}) {
  std::string t = b64(header) + "." + b64(payload);
  return t + "." + b64(signature(t, alg, key, secret));
}

inline std::string header_for(Alg alg, std::string_view kid) {
  return "{\"alg\":\"" + std::string(lg::auth::alg_name(alg)) + "\",\"typ\":\"JWT\",\"kid\":\"" + std::string(kid) +
         "\"}";
}

inline std::string claims_at(std::int64_t now, std::string_view extra = {}) {
  return "{\"iss\":\"https://issuer.test\",\"aud\":\"gateway.test\",\"sub\":\"user-1\",\"iat\":" +
         std::to_string(now - 10) + ",\"exp\":" + std::to_string(now + 600) + std::string(extra) + "}";
}

inline lg::auth::JwtPolicy corpus_policy() {
  lg::auth::JwtPolicy p;
  p.issuer = "https://issuer.test";
  p.audiences = {"gateway.test"};
  p.leeway_s = 60;
  p.max_lifetime_s = 86400;
  p.max_token_bytes = 8192;
  return p;
}

}  // namespace lgtest::jwt
