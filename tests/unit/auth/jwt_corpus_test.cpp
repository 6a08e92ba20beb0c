// Every case of ../shared/corpus/jwt/MANIFEST.tsv through verify_jwt, with the policy of the
// manifest's first line and the trusted keys (from the JWKS files, and again from the PEMs).
#include <catch2/catch.hpp>

#include <ctime>
#include <map>
#include <sstream>
#include <vector>

#include "jwt_support.hpp"

using namespace lgtest::jwt;
using lg::auth::JwtError;
using lg::auth::JwtKeySet;
using lg::auth::JwtPolicy;
using lg::auth::JwtResult;

namespace {

struct Case {
  std::string name, file, expect, why, clock;
};

struct Manifest {
  std::int64_t now = 0;
  JwtPolicy policy;
  std::vector<Case> cases;
};

std::int64_t number_before(const std::string& v, const std::string& unit) {
  REQUIRE(v.size() > unit.size());
  REQUIRE(v.substr(v.size() - unit.size()) == unit);
  return std::stoll(v.substr(0, v.size() - unit.size()));
}

Manifest read_manifest() {
  Manifest m;
  std::istringstream in(corpus_file("MANIFEST.tsv"));
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("# ", 0) == 0);
  std::istringstream fields(line.substr(2));
  std::map<std::string, std::string> kv;
  for (std::string f; fields >> f;) kv[f.substr(0, f.find('='))] = f.substr(f.find('=') + 1);
  m.now = std::stoll(kv.at("NOW"));
  m.policy.issuer = kv.at("issuer");
  m.policy.audiences = {kv.at("audience")};
  m.policy.leeway_s = number_before(kv.at("leeway"), "s");
  m.policy.max_lifetime_s = number_before(kv.at("max_lifetime"), "s");
  m.policy.max_token_bytes = static_cast<std::size_t>(number_before(kv.at("max_token"), "B"));
  std::getline(in, line);
  REQUIRE(line.rfind("case\tfile\texpect", 0) == 0);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> col;
    std::istringstream cols(line);
    for (std::string c; std::getline(cols, c, '\t');) col.push_back(c);
    REQUIRE(col.size() == 6);
    m.cases.push_back({col[0], col[1], col[2], col[3], col[5]});
  }
  return m;
}

JwtKeySet keys_from_jwks() {
  JwtKeySet keys;
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_jwks.json")).ok());
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_secrets.json")).ok());
  REQUIRE(keys.size() == 4);
  return keys;
}

// The README's bindings, with the public keys read from the PEM files instead.
JwtKeySet keys_from_pems() {
  JwtKeySet keys;
  REQUIRE(keys.load_pem("rsa-1", Alg::RS256, corpus_file("keys/rsa-1.public.pem")).ok());
  REQUIRE(keys.load_pem("ec-1", Alg::ES256, corpus_file("keys/ec-1.public.pem")).ok());
  REQUIRE(keys.load_pem("ed-1", Alg::EdDSA, corpus_file("keys/ed-1.public.pem")).ok());
  REQUIRE(keys.load_jwks(corpus_file("keys/trusted_secrets.json")).ok());
  return keys;
}

// Why each case must end as it does at the manifest's NOW: a rejection for the right reason,
// not by accident (several tokens would also fail on the real clock, being expired by now).
const std::map<std::string, JwtError> kExpected = {
    {"valid_exp_within_leeway", JwtError::none},      {"valid_es256", JwtError::none},
    {"es256_high_s_malleable", JwtError::none},       {"valid_eddsa", JwtError::none},
    {"jwk_embedded", JwtError::kid_unknown},          {"nested_jwt_cty", JwtError::header_unsupported},
    {"wrong_iss", JwtError::issuer_mismatch},         {"extra_dots_4_segments", JwtError::malformed},
    {"payload_duplicate_claim", JwtError::malformed}, {"hs256_empty_key", JwtError::bad_signature},
    {"es256_r_s_equal_n", JwtError::bad_signature},   {"alg_none", JwtError::alg_none},
    {"es256_sig_63_bytes", JwtError::bad_signature},  {"b64_noncanonical_sig", JwtError::bad_signature},
    {"oversized_100kb", JwtError::too_large},         {"wrong_aud", JwtError::audience_mismatch},
    {"es256_sig_65_bytes", JwtError::bad_signature},  {"missing_exp", JwtError::claim_missing},
    {"two_segments", JwtError::malformed},            {"kid_path_traversal", JwtError::kid_unknown},
    {"expired", JwtError::expired},                   {"alg_nOnE", JwtError::alg_none},
    {"extra_dots_double", JwtError::malformed},       {"alg_confusion_hs256_rsa_pem", JwtError::alg_mismatch},
    {"x5u_attacker", JwtError::kid_unknown},          {"iat_future", JwtError::issued_in_future},
    {"aud_array_without_ours", JwtError::audience_mismatch},
    {"alg_rs256_with_hs_kid", JwtError::alg_mismatch},
    {"exp_overflow_2pow64", JwtError::lifetime_exceeded},
    {"alg_confusion_hs256_rsa_der", JwtError::alg_mismatch},
    {"alg_NONE", JwtError::alg_none},                 {"b64_false_unencoded", JwtError::header_unsupported},
    {"kid_unknown", JwtError::kid_unknown},           {"nbf_future", JwtError::not_yet_valid},
    {"x5c_embedded", JwtError::kid_unknown},          {"sig_stripped", JwtError::bad_signature},
    {"aud_substring", JwtError::audience_mismatch},   {"alg_none_with_signature", JwtError::alg_none},
    {"alg_confusion_hs256_ec_pem", JwtError::alg_mismatch},
    {"b64_std_alphabet_sig", JwtError::bad_signature}, {"missing_iss", JwtError::issuer_mismatch},
};

}  // namespace

TEST_CASE("jwt corpus: every manifest case gives its expected outcome", "[jwt][corpus]") {
  const Manifest m = read_manifest();
  REQUIRE(m.cases.size() == kExpected.size());
  const std::int64_t real_now = static_cast<std::int64_t>(std::time(nullptr));
  const bool from_pems = GENERATE(false, true);
  const JwtKeySet keys = from_pems ? keys_from_pems() : keys_from_jwks();
  JwtResult r;
  for (const Case& c : m.cases) {
    DYNAMIC_SECTION(c.name << (from_pems ? " (PEM keys)" : " (JWKS keys)")) {
      INFO(c.why);
      const std::string token = corpus_file(c.file);
      REQUIRE((c.expect == "ACCEPT" || c.expect == "REJECT"));
      REQUIRE((c.clock == "fixed" || c.clock == "any"));
      REQUIRE(kExpected.count(c.name) == 1);
      const bool ok = lg::auth::verify_jwt(token, keys, m.policy, m.now, r);
      INFO("result: " << lg::auth::jwt_error_name(r.error) << " (" << r.reason << ")");
      CHECK(ok == (c.expect == "ACCEPT"));
      CHECK(r.error == kExpected.at(c.name));
      if (ok) {
        CHECK(r.claims.sub() == "user-123");
        CHECK(r.claims.iss() == "https://issuer.test");
      }
      if (c.clock == "any") {  // meaningful whatever the clock says
        CHECK_FALSE(lg::auth::verify_jwt(token, keys, m.policy, real_now, r));
      }
    }
  }
}

TEST_CASE("jwt corpus: summary", "[jwt][corpus]") {
  const Manifest m = read_manifest();
  const JwtKeySet keys = keys_from_jwks();
  JwtResult r;  // reused across cases, as a worker would
  int accepted = 0, rejected = 0, as_expected = 0;
  for (const Case& c : m.cases) {
    const bool ok = lg::auth::verify_jwt(corpus_file(c.file), keys, m.policy, m.now, r);
    (ok ? accepted : rejected)++;
    as_expected += ok == (c.expect == "ACCEPT");
  }
  WARN("jwt corpus: " << m.cases.size() << " cases, " << accepted << " accepted, " << rejected << " rejected, "
                      << as_expected << " as the manifest expects");
  CHECK(as_expected == static_cast<int>(m.cases.size()));
}

TEST_CASE("jwt corpus: keys the corpus marks as weak or hostile are never trusted", "[jwt][corpus]") {
  const Manifest m = read_manifest();
  SECTION("the weak HS256 secret is rejected when the set is loaded") {
    // The file's "rejected_at_config_time" array, presented as a JWK Set of its own.
    const std::string text = corpus_file("keys/trusted_secrets.json");
    const std::size_t at = text.find('[', text.find("\"rejected_at_config_time\""));
    REQUIRE(at != std::string::npos);
    const std::string jwks = "{\"keys\":" + text.substr(at, text.rfind(']') - at + 1) + "}";
    lg::json::Document doc;
    REQUIRE(doc.parse(jwks) == lg::json::Error::none);
    REQUIRE(doc.root().find("keys").size() == 1);
    REQUIRE(doc.root().find("keys").first().find("kid").str() == "hs-weak");
    JwtKeySet keys;
    const auto r = keys.load_jwks(jwks);
    CHECK_FALSE(r.ok());
    CHECK(r.error.find("shorter than the hash") != std::string::npos);
    CHECK(keys.size() == 0);
  }
  SECTION("tokens signed with the attacker's key fail under any trusted kid") {
    const JwtKeySet keys = keys_from_jwks();
    const Pkey attacker = private_key(corpus_file("keys/attacker/attacker-rsa.private.pem"));
    JwtResult r;
    for (const char* kid : {"rsa-1", "attacker-1", "ec-1", "hs-1"}) {
      const std::string t = make_token(header_for(Alg::RS256, kid), claims_at(m.now), Alg::RS256, attacker.get());
      CHECK_FALSE(lg::auth::verify_jwt(t, keys, m.policy, m.now, r));
      CHECK(r.error != JwtError::none);
    }
    // ... and with no kid at all (the one RS256 key is tried, and fails).
    const std::string t = make_token(R"({"alg":"RS256"})", claims_at(m.now), Alg::RS256, attacker.get());
    CHECK_FALSE(lg::auth::verify_jwt(t, keys, m.policy, m.now, r));
    CHECK(r.error == JwtError::bad_signature);
  }
  SECTION("the attacker's JWKS, loaded as an attacker would wish, shares no kid with ours") {
    JwtKeySet attacker;
    REQUIRE(attacker.load_jwks(corpus_file("keys/attacker/jwks.json")).ok());
    const JwtKeySet keys = keys_from_jwks();
    for (const std::string& kid : attacker.kids()) CHECK_FALSE(keys.contains(kid));
  }
}
