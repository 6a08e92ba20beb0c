// Loading JwtKeySet: HMAC secrets, PEM public keys and certificates, JWK Sets (RFC 7517/7518/8037).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/jwt_keys.hpp"
#include "core/base64url.hpp"

namespace lg::auth {

JwtKeySet::JwtKeySet() : impl_(std::make_unique<Impl>()) {}
JwtKeySet::~JwtKeySet() = default;
JwtKeySet::JwtKeySet(JwtKeySet&& o) noexcept : impl_(std::exchange(o.impl_, std::make_unique<Impl>())) {}
JwtKeySet& JwtKeySet::operator=(JwtKeySet&& o) noexcept {
  std::swap(impl_, o.impl_);
  return *this;
}

std::size_t JwtKeySet::size() const { return impl_->keys.size(); }
bool JwtKeySet::contains(std::string_view kid) const { return impl_->find(kid) != nullptr; }
std::vector<std::string> JwtKeySet::kids() const {
  std::vector<std::string> out;
  for (const JwtKey& k : impl_->keys) out.push_back(k.kid);
  return out;
}

namespace {

JwtLoadResult failed(std::string why) {
  ERR_clear_error();  // leave no stale entry on this thread's OpenSSL error queue
  JwtLoadResult r;
  r.error = std::move(why);
  return r;
}

std::string check_kid(const JwtKeySet::Impl& impl, std::string_view kid) {
  if (kid.empty()) return "key without a kid";
  if (impl.find(kid) != nullptr) return "duplicate kid \"" + std::string(kid) + "\"";
  return {};
}

// The public key in a PEM "PUBLIC KEY" (SPKI), "RSA PUBLIC KEY" (PKCS#1) or "CERTIFICATE".
PkeyPtr read_public_pem(std::string_view pem, std::string& why) {
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    why = "a private key was given; configure the public key only";
    return nullptr;
  }
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    why = "out of memory";
    return nullptr;
  }
  EVP_PKEY* pkey = nullptr;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    if (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      pkey = X509_get_pubkey(cert);
      X509_free(cert);
    }
  } else {
    OSSL_DECODER_CTX* dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY,
                                                           nullptr, nullptr);
    if (dctx != nullptr) OSSL_DECODER_from_bio(dctx, bio);
    OSSL_DECODER_CTX_free(dctx);
  }
  BIO_free(bio);
  if (pkey == nullptr) why = "no public key or certificate found in the PEM text";
  return PkeyPtr(pkey);
}

PkeyPtr rsa_from_jwk(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pkey = nullptr;
  if (bn_n && bn_e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1 &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return PkeyPtr(pkey);
}

PkeyPtr ec_from_jwk(const char* group, const std::string& x, const std::string& y) {
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  return PkeyPtr(pkey);
}

// A base64url member of a JWK, decoded; false (with why) if absent or not canonical base64url.
bool b64_member(json::Value jwk, std::string_view name, std::string& out, std::string& why) {
  const json::Value v = jwk.find(name);
  if (!v.is_string() || v.str().empty() || !base64url_decode(v.str(), out)) {
    why = "\"" + std::string(name) + "\" missing or not base64url";
    return false;
  }
  return true;
}

// One JWK to a key bound to its kid and alg. Empty string on success.
std::string key_from_jwk(json::Value jwk, const JwksOptions& opt, JwtKey& key) {
  if (!jwk.is_object()) return "not a JSON object";
  const std::string_view kty = jwk.find("kty").str();
  const std::string_view kid = jwk.find("kid").str();
  if (kid.empty()) return "no \"kid\" (every key must be bound by kid)";
  // A kid is logged and compared on every request: bounded, and no control characters (a
  // fetched set's kid must not be able to forge log lines).
  if (kid.size() > 256) return "\"kid\" longer than 256 bytes";
  for (const char c : kid)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "\"kid\" with control characters";
  key.kid = std::string(kid);
  bool have_alg = false;
  if (const json::Value a = jwk.find("alg")) {
    if (!parse_alg(a.str(), key.alg)) return "unsupported \"alg\"";
    have_alg = true;
  }
  for (const auto& [kid, alg] : opt.bindings) {
    if (kid != key.kid) continue;
    if (have_alg && alg != key.alg) return "\"alg\" differs from the alg configured for this kid";
    key.alg = alg;
    have_alg = true;
  }
  if (!have_alg) return "no \"alg\" and no alg configured for this kid";
  if (const json::Value use = jwk.find("use"); use && use.str() != "sig") return "\"use\" is not \"sig\"";
  if (const json::Value ops = jwk.find("key_ops")) {
    bool verify = false;
    for (json::Value op = ops.first(); op; op = op.next()) verify = verify || op.str() == "verify";
    if (!verify) return "\"key_ops\" does not include \"verify\"";
  }
  if (kty != "oct" && (jwk.find("d") || jwk.find("p") || jwk.find("k")))
    return "private key material in a JWKS; publish public keys only";

  std::string why, a, b;
  if (kty == "oct") {
    if (!opt.allow_symmetric)
      return "a symmetric (\"oct\") key in a fetched set: anyone who can read the set could sign tokens "
             "(jwks_allow_symmetric: true accepts it)";
    if (!b64_member(jwk, "k", a, why)) return why;
    why = make_hmac_key(key.alg, a, key.hmac);
    OPENSSL_cleanse(a.data(), a.size());
    key.sig_bytes = hash_bytes(key.alg);
    return why;
  }
  if (kty == "RSA") {
    if (!b64_member(jwk, "n", a, why) || !b64_member(jwk, "e", b, why)) return why;
    key.pkey = rsa_from_jwk(a, b);
  } else if (kty == "EC") {
    const std::string_view crv = jwk.find("crv").str();
    const std::size_t size = crv == "P-256" ? 32 : crv == "P-384" ? 48 : 0;
    if (size == 0) return "unsupported EC curve (P-256 and P-384 only)";
    if (!b64_member(jwk, "x", a, why) || !b64_member(jwk, "y", b, why)) return why;
    if (a.size() != size || b.size() != size) return "EC coordinates of the wrong length";
    key.pkey = ec_from_jwk(size == 32 ? "prime256v1" : "secp384r1", a, b);
  } else if (kty == "OKP") {
    if (jwk.find("crv").str() != "Ed25519") return "unsupported OKP curve (Ed25519 only)";
    if (!b64_member(jwk, "x", a, why)) return why;
    if (a.size() != 32) return "Ed25519 public key must be 32 bytes";
    key.pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(a.data()), a.size()));
  } else {
    return "unsupported \"kty\"";
  }
  if (!key.pkey) return "invalid public key";
  return check_public_key(key.alg, key.pkey.get(), key.sig_bytes);
}

}  // namespace

JwtLoadResult JwtKeySet::add_secret(std::string_view kid, Alg alg, std::string_view secret) {
  if (std::string why = check_kid(*impl_, kid); !why.empty()) return failed(why);
  JwtKey key{std::string(kid), alg, nullptr, nullptr, hash_bytes(alg)};
  if (std::string why = make_hmac_key(alg, secret, key.hmac); !why.empty()) return failed(why);
  impl_->keys.push_back(std::move(key));
  JwtLoadResult r;
  r.added = 1;
  return r;
}

JwtLoadResult JwtKeySet::load_pem(std::string_view kid, Alg alg, std::string_view pem) {
  if (std::string why = check_kid(*impl_, kid); !why.empty()) return failed(why);
  if (family_of(alg) == KeyFamily::hmac) return failed("HS* algorithms take a secret, not a PEM key");
  std::string why;
  JwtKey key{std::string(kid), alg, nullptr, read_public_pem(pem, why), 0};
  if (!key.pkey) return failed(why);
  if (why = check_public_key(alg, key.pkey.get(), key.sig_bytes); !why.empty()) return failed(why);
  impl_->keys.push_back(std::move(key));
  ERR_clear_error();  // decoders may leave entries for the formats they tried and rejected
  JwtLoadResult r;
  r.added = 1;
  return r;
}

JwtLoadResult JwtKeySet::load_jwks(std::string_view text, const JwksOptions& options) {
  json::Document doc;
  if (const json::Error e = doc.parse(text, {8, 1u << 20}); e != json::Error::none)
    return failed(std::string(json::error_text(e)) + " at offset " + std::to_string(doc.error_offset()));
  const json::Value keys = doc.root().find("keys");
  if (!keys.is_array()) return failed("a JWK Set needs a \"keys\" array");
  JwtLoadResult r;
  std::vector<JwtKey> staged;
  std::size_t index = 0;
  for (json::Value jwk = keys.first(); jwk; jwk = jwk.next(), ++index) {
    JwtKey key{};
    std::string why = options.max_keys && index >= options.max_keys
                          ? "more than " + std::to_string(options.max_keys) + " keys in the set"
                          : key_from_jwk(jwk, options, key);
    if (why.empty()) why = check_kid(*impl_, key.kid);
    for (const JwtKey& k : staged)
      if (why.empty() && k.kid == key.kid) why = "duplicate kid \"" + key.kid + "\"";
    if (!why.empty()) {
      std::string where = "keys[" + std::to_string(index) + "]";
      if (!key.kid.empty()) where += " (kid \"" + key.kid + "\")";
      if (!options.skip_unusable) return failed(where + ": " + why);
      r.skipped.push_back(where + ": " + why);
      ERR_clear_error();
      continue;
    }
    staged.push_back(std::move(key));
  }
  for (JwtKey& k : staged) impl_->keys.push_back(std::move(k));
  r.added = staged.size();
  ERR_clear_error();
  return r;
}

}  // namespace lg::auth
