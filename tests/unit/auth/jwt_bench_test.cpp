// Measurement, not a test (hidden): what one verify_jwt costs per algorithm, with a reused
// JwtResult as a worker would hold it.
//   ./build/tests/lg-unit-tests "[jwt-bench]"                 (ns/op; LG_JWT_BENCH_N=iterations)
//   valgrind --tool=callgrind --toggle-collect='lg::auth::verify_jwt*'
//     ./build/tests/lg-unit-tests "jwt bench: HS256"           (instructions: Ir / calls)
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "jwt_support.hpp"

using namespace lgtest::jwt;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;

void run(Alg alg, const std::string& token, const lg::auth::JwtKeySet& keys, const lg::auth::JwtPolicy& policy) {
  const char* env = std::getenv("LG_JWT_BENCH_N");
  const int n = env ? std::atoi(env) : (alg == Alg::HS256 ? 200000 : 5000);
  lg::auth::JwtResult r;
  REQUIRE(lg::auth::verify_jwt(token, keys, policy, kNow, r));
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += lg::auth::verify_jwt(token, keys, policy, kNow, r);
  const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(ok == n);
  std::cout << lg::auth::alg_name(alg) << " verify (" << token.size() << "-byte token): " << ns / n << " ns/op over "
            << n << " calls\n";
}

void bench(Alg alg, const char* kid, EVP_PKEY* priv, std::string_view secret, lg::auth::JwtKeySet& keys) {
  // A realistic access token: the claims a gateway maps to upstream headers.
  const std::string token = make_token(
      header_for(alg, kid),
      claims_at(kNow, R"(,"jti":"0f8fad5b-d9cb-469f-a165-70867728950e","scope":"orders:read orders:write",)"
                      R"("groups":["partner"],"tenant":"acme")"),
      alg, priv, secret);
  run(alg, token, keys, corpus_policy());
}

}  // namespace

TEST_CASE("jwt bench: HS256", "[.][jwt-bench]") {
  const std::string secret(32, 's');
  lg::auth::JwtKeySet keys;
  REQUIRE(keys.add_secret("hs-1", Alg::HS256, secret).ok());
  bench(Alg::HS256, "hs-1", nullptr, secret, keys);
}

TEST_CASE("jwt bench: RS256", "[.][jwt-bench]") {
  lg::auth::JwtKeySet keys;
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_jwks.json")).ok());
  bench(Alg::RS256, "rsa-1", private_key(corpus_file("keys/rsa-1.private.pem")).get(), {}, keys);
}

TEST_CASE("jwt bench: ES256", "[.][jwt-bench]") {
  lg::auth::JwtKeySet keys;
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_jwks.json")).ok());
  bench(Alg::ES256, "ec-1", private_key(corpus_file("keys/ec-1.private.pem")).get(), {}, keys);
}

TEST_CASE("jwt bench: EdDSA", "[.][jwt-bench]") {
  lg::auth::JwtKeySet keys;
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_jwks.json")).ok());
  bench(Alg::EdDSA, "ed-1", private_key(corpus_file("keys/ed-1.private.pem")).get(), {}, keys);
}

// The token of ../shared/anchors (lib.sh make_jwt): no kid, iss/sub/exp only.
TEST_CASE("jwt bench: HS256 anchor token", "[.][jwt-bench]") {
  const std::string secret = "bench-secret-issuer-1-0123456789abcdef";
  lg::auth::JwtKeySet keys;
  REQUIRE(keys.add_secret("issuer-1", Alg::HS256, secret).ok());
  lg::auth::JwtPolicy policy;
  policy.issuer = "issuer-1";
  const std::string token = make_token(R"({"alg":"HS256","typ":"JWT"})",
                                       R"({"iss":"issuer-1","sub":"user-1","exp":4102444800})", Alg::HS256, nullptr, secret);
  run(Alg::HS256, token, keys, policy);
}
