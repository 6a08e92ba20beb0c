// JwtKeySet loading: secrets, PEM (SPKI, PKCS#1, certificate), JWK Sets, and what is refused.
#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>

#include "jwt_support.hpp"

using namespace lgtest::jwt;
using lg::auth::JwksOptions;
using lg::auth::JwtError;
using lg::auth::JwtKeySet;
using lg::auth::JwtResult;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;

std::string bn_b64(EVP_PKEY* k, const char* param, int pad = 0) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
  std::string bytes(pad ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  BN_free(bn);
  return b64(bytes);
}

std::string rsa_jwk(EVP_PKEY* k, const std::string& kid, const std::string& extra = R"(,"alg":"RS256")") {
  return R"({"kty":"RSA","kid":")" + kid + R"(","n":")" + bn_b64(k, OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" +
         bn_b64(k, OSSL_PKEY_PARAM_RSA_E) + "\"" + extra + "}";
}

std::string set(const std::string& jwks) { return R"({"keys":[)" + jwks + "]}"; }

bool verifies(const JwtKeySet& keys, const std::string& token) {
  JwtResult r;
  return lg::auth::verify_jwt(token, keys, corpus_policy(), kNow, r);
}

}  // namespace

TEST_CASE("jwk: HMAC secrets must be at least as long as the hash", "[jwt][jwk]") {
  JwtKeySet keys;
  CHECK_FALSE(keys.add_secret("a", Alg::HS256, std::string(31, 'x')).ok());
  CHECK_FALSE(keys.add_secret("a", Alg::HS256, "").ok());
  CHECK_FALSE(keys.add_secret("b", Alg::HS384, std::string(47, 'x')).ok());
  CHECK_FALSE(keys.add_secret("c", Alg::HS512, std::string(63, 'x')).ok());
  CHECK_FALSE(keys.add_secret("d", Alg::RS256, std::string(64, 'x')).ok());
  CHECK(keys.size() == 0);
  CHECK(keys.add_secret("a", Alg::HS256, std::string(32, 'x')).ok());
  CHECK_FALSE(keys.add_secret("a", Alg::HS256, std::string(32, 'y')).ok());  // duplicate kid
  CHECK_FALSE(keys.add_secret("", Alg::HS256, std::string(32, 'y')).ok());
  // Secrets longer than the hash block are hashed first (RFC 2104), as every signer does.
  const std::string long_secret(300, 's');
  REQUIRE(keys.add_secret("long", Alg::HS512, long_secret).ok());
  CHECK(verifies(keys, make_token(header_for(Alg::HS512, "long"), claims_at(kNow), Alg::HS512, nullptr, long_secret)));
  REQUIRE(keys.add_secret("long256", Alg::HS256, long_secret).ok());
  CHECK(verifies(keys,
                 make_token(header_for(Alg::HS256, "long256"), claims_at(kNow), Alg::HS256, nullptr, long_secret)));
}

TEST_CASE("jwk: PEM public keys, PKCS#1 and certificates; private keys refused", "[jwt][jwk]") {
  const Pkey rsa = private_key(corpus_file("keys/rsa-1.private.pem"));
  const std::string claims = claims_at(kNow);
  JwtKeySet keys;
  CHECK_FALSE(keys.load_pem("p", Alg::RS256, corpus_file("keys/rsa-1.private.pem")).ok());
  CHECK_FALSE(keys.load_pem("g", Alg::RS256, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n").ok());
  CHECK_FALSE(keys.load_pem("g", Alg::RS256, "").ok());
  // Wrong key type or curve for the alg.
  CHECK_FALSE(keys.load_pem("x", Alg::ES256, corpus_file("keys/rsa-1.public.pem")).ok());
  CHECK_FALSE(keys.load_pem("x", Alg::EdDSA, corpus_file("keys/ec-1.public.pem")).ok());
  CHECK_FALSE(keys.load_pem("x", Alg::RS256, corpus_file("keys/ed-1.public.pem")).ok());
  const Pkey p384{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")};
  CHECK_FALSE(keys.load_pem("x", Alg::ES256, public_pem(p384.get())).ok());
  const Pkey small{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024))};
  CHECK_FALSE(keys.load_pem("x", Alg::RS256, public_pem(small.get())).ok());
  CHECK(keys.size() == 0);

  // "RSA PUBLIC KEY" (PKCS#1).
  OSSL_ENCODER_CTX* ectx = OSSL_ENCODER_CTX_new_for_pkey(rsa.get(), EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", nullptr);
  unsigned char* data = nullptr;
  std::size_t len = 0;
  REQUIRE(OSSL_ENCODER_to_data(ectx, &data, &len) == 1);
  OSSL_ENCODER_CTX_free(ectx);
  const std::string pkcs1(reinterpret_cast<char*>(data), len);
  OPENSSL_free(data);
  REQUIRE(pkcs1.find("BEGIN RSA PUBLIC KEY") != std::string::npos);
  REQUIRE(keys.load_pem("pkcs1", Alg::RS256, pkcs1).ok());
  CHECK(verifies(keys, make_token(header_for(Alg::RS256, "pkcs1"), claims, Alg::RS256, rsa.get())));

  // A certificate (its validity is not the point: it only carries the key).
  const Pkey attacker = private_key(corpus_file("keys/attacker/attacker-rsa.private.pem"));
  REQUIRE(keys.load_pem("cert", Alg::RS256, corpus_file("keys/attacker/attacker.crt")).ok());
  CHECK(verifies(keys, make_token(header_for(Alg::RS256, "cert"), claims, Alg::RS256, attacker.get())));
  CHECK_FALSE(verifies(keys, make_token(header_for(Alg::RS256, "pkcs1"), claims, Alg::RS256, attacker.get())));
}

TEST_CASE("jwk: JWK Sets bind every key to a kid and an alg", "[jwt][jwk]") {
  const Pkey rsa = private_key(corpus_file("keys/rsa-1.private.pem"));
  const Pkey ec = private_key(corpus_file("keys/ec-1.private.pem"));
  const std::string claims = claims_at(kNow);
  JwtKeySet keys;

  SECTION("the corpus set") {
    REQUIRE(keys.load_jwks(corpus_file("keys/trusted_jwks.json")).added == 3);
    CHECK(keys.kids() == std::vector<std::string>{"rsa-1", "ec-1", "ed-1"});
    CHECK(verifies(keys, make_token(header_for(Alg::ES256, "ec-1"), claims, Alg::ES256, ec.get())));
  }
  SECTION("an alg from configuration for keys that carry none") {
    const std::string jwks = set(rsa_jwk(rsa.get(), "k1", ""));
    CHECK_FALSE(keys.load_jwks(jwks).ok());
    JwksOptions o;
    o.bindings = {{"k1", Alg::PS256}};
    REQUIRE(keys.load_jwks(jwks, o).ok());
    CHECK(verifies(keys, make_token(header_for(Alg::PS256, "k1"), claims, Alg::PS256, rsa.get())));
    CHECK_FALSE(verifies(keys, make_token(header_for(Alg::RS256, "k1"), claims, Alg::RS256, rsa.get())));
    JwtKeySet other;
    o.bindings = {{"k2", Alg::RS384}};
    CHECK_FALSE(other.load_jwks(set(rsa_jwk(rsa.get(), "k2")), o).ok());  // its own alg disagrees
  }
  SECTION("refused keys, and the set is left unchanged") {
    REQUIRE(keys.add_secret("existing", Alg::HS256, std::string(32, 'e')).ok());
    const std::string x = bn_b64(ec.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32), y = bn_b64(ec.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    const std::string ec_ok = R"({"kty":"EC","kid":"e","alg":"ES256","crv":"P-256","x":")" + x + R"(","y":")" + y + "\"";
    REQUIRE(JwtKeySet().load_jwks(set(ec_ok + "}")).ok());
    std::string y_off = y;
    y_off[5] = y_off[5] == 'A' ? 'B' : 'A';
    for (const std::string& bad : {
             rsa_jwk(rsa.get(), ""),                                    // no kid
             rsa_jwk(rsa.get(), "existing"),                            // duplicate of a key already held
             rsa_jwk(rsa.get(), "a") + "," + rsa_jwk(rsa.get(), "a"),   // duplicate inside the set
             rsa_jwk(rsa.get(), "a", R"(,"alg":"none")"),
             rsa_jwk(rsa.get(), "a", R"(,"alg":"HS256")"),              // public key as an HMAC key
             rsa_jwk(rsa.get(), "a", R"(,"alg":"ES256")"),
             rsa_jwk(rsa.get(), "a", R"(,"alg":"RS256","use":"enc")"),
             rsa_jwk(rsa.get(), "a", R"(,"alg":"RS256","key_ops":["encrypt"])"),
             rsa_jwk(rsa.get(), "a", R"(,"alg":"RS256","d":"AQAB")"),   // private material
             std::string(R"({"kty":"oct","kid":"a","alg":"RS256","k":")") + b64(std::string(32, 'k')) + "\"}",
             std::string(R"({"kty":"oct","kid":"a","alg":"HS256","k":"c2VjcmV0"})"),
             std::string(R"({"kty":"oct","kid":"a","alg":"HS256","k":")") + b64(std::string(32, 'k')) + "=\"}",
             std::string(R"({"kty":"OKP","kid":"a","alg":"EdDSA","crv":"Ed448","x":"AAAA"})"),
             std::string(R"({"kty":"OKP","kid":"a","alg":"EdDSA","crv":"Ed25519","x":"AAAA"})"),
             std::string(R"({"kty":"EC","kid":"e","alg":"ES256","crv":"P-521","x":")") + x + R"(","y":")" + y + "\"}",
             std::string(R"({"kty":"EC","kid":"e","alg":"ES384","crv":"P-256","x":")") + x + R"(","y":")" + y + "\"}",
             std::string(R"({"kty":"EC","kid":"e","alg":"ES256","crv":"P-256","x":")") + x + R"(","y":")" + y_off + "\"}",
             std::string(R"({"kty":"EC","kid":"e","alg":"ES256","crv":"P-256","x":"AAAA","y":")") + y + "\"}",
             std::string(R"({"kty":"XYZ","kid":"a","alg":"RS256"})"),
             std::string(R"("not an object")"),
         }) {
      INFO(bad);
      const auto r = keys.load_jwks(set(bad));
      CHECK_FALSE(r.ok());
      CHECK(keys.size() == 1);
    }
    CHECK_FALSE(keys.load_jwks("{}").ok());
    CHECK_FALSE(keys.load_jwks(R"({"keys":{}})").ok());
    CHECK_FALSE(keys.load_jwks(R"({"keys":[],"keys":[]})").ok());
    CHECK_FALSE(keys.load_jwks("").ok());
  }
  SECTION("skip_unusable keeps the usable keys of a fetched set and says what it skipped") {
    JwksOptions o;
    o.skip_unusable = true;
    const auto r = keys.load_jwks(
        set(rsa_jwk(rsa.get(), "enc-key", R"(,"alg":"RSA-OAEP","use":"enc")") + "," + rsa_jwk(rsa.get(), "good")),
        o);
    REQUIRE(r.ok());
    CHECK(r.added == 1);
    REQUIRE(r.skipped.size() == 1);
    CHECK(r.skipped[0].find("enc-key") != std::string::npos);
    CHECK(keys.kids() == std::vector<std::string>{"good"});
  }
  SECTION("fetched sets: symmetric keys only when allowed, bounded kids, at most max_keys keys") {
    const std::string oct = std::string(R"({"kty":"oct","kid":"h","alg":"HS256","k":")") + b64(std::string(32, 'k')) + "\"}";
    JwksOptions o;
    o.skip_unusable = true;
    o.allow_symmetric = false;
    o.max_keys = 5;  // entries examined, usable or not
    const auto r = keys.load_jwks(set(oct + "," + rsa_jwk(rsa.get(), "ok-1") + "," +
                                      rsa_jwk(rsa.get(), std::string(257, 'k')) + "," +
                                      rsa_jwk(rsa.get(), "bad\\nkid") + "," + rsa_jwk(rsa.get(), "ok-2") + "," +
                                      rsa_jwk(rsa.get(), "third")),
                                  o);
    REQUIRE(r.ok());
    CHECK(keys.kids() == std::vector<std::string>{"ok-1", "ok-2"});
    REQUIRE(r.skipped.size() == 4);
    CHECK(r.skipped[0].find("symmetric") != std::string::npos);
    CHECK(r.skipped[1].find("longer than 256 bytes") != std::string::npos);
    CHECK(r.skipped[2].find("control characters") != std::string::npos);
    CHECK(r.skipped[2].find('\n') == std::string::npos);  // the refused kid is not echoed raw
    CHECK(r.skipped[3].find("more than 5 keys") != std::string::npos);
    JwtKeySet sym;
    o.allow_symmetric = true;
    CHECK(sym.load_jwks(set(oct), o).added == 1);
  }
}

TEST_CASE("jwk: a moved-from set is empty and still usable", "[jwt][jwk]") {
  JwtKeySet a;
  REQUIRE(a.add_secret("k", Alg::HS256, std::string(32, 'k')).ok());
  JwtKeySet b(std::move(a));
  CHECK(b.contains("k"));
  CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): documented state
  CHECK_FALSE(verifies(a, make_token(header_for(Alg::HS256, "k"), claims_at(kNow), Alg::HS256, nullptr,
                                     std::string(32, 'k'))));
  a = std::move(b);
  CHECK(a.contains("k"));
}
