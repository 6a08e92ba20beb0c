// verify_jwt: a positive control per algorithm, alg confusion, malformed input, header rules,
// time edges (leeway, max lifetime) and the claims accessors.
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>

#include <atomic>
#include <cctype>
#include <thread>
#include <vector>

#include "jwt_support.hpp"

using namespace lgtest::jwt;
using lg::auth::JwtError;
using lg::auth::JwtKeySet;
using lg::auth::JwtPolicy;
using lg::auth::JwtResult;
using lg::auth::verify_jwt;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret256(32, 'a'), kSecret384(48, 'b'), kSecret512(64, 'c');

struct Fixture {
  Pkey rsa = private_key(corpus_file("keys/rsa-1.private.pem"));
  Pkey ec = private_key(corpus_file("keys/ec-1.private.pem"));
  Pkey ed = private_key(corpus_file("keys/ed-1.private.pem"));
  Pkey ec384{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")};
  JwtKeySet keys;
  JwtPolicy policy = corpus_policy();
  JwtResult r;

  Fixture() {
    REQUIRE(keys.add_secret("hs256", Alg::HS256, kSecret256).ok());
    REQUIRE(keys.add_secret("hs384", Alg::HS384, kSecret384).ok());
    REQUIRE(keys.add_secret("hs512", Alg::HS512, kSecret512).ok());
    const std::string rsa_pem = corpus_file("keys/rsa-1.public.pem");
    for (Alg a : {Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512})
      REQUIRE(keys.load_pem(kid_of(a), a, rsa_pem).ok());
    REQUIRE(keys.load_pem("es256", Alg::ES256, corpus_file("keys/ec-1.public.pem")).ok());
    REQUIRE(keys.load_pem("es384", Alg::ES384, public_pem(ec384.get())).ok());
    REQUIRE(keys.load_pem("eddsa", Alg::EdDSA, corpus_file("keys/ed-1.public.pem")).ok());
  }
  static std::string kid_of(Alg a) {
    std::string s(lg::auth::alg_name(a));
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  EVP_PKEY* key_for(Alg a) {
    switch (a) {
      case Alg::ES256: return ec.get();
      case Alg::ES384: return ec384.get();
      case Alg::EdDSA: return ed.get();
      default: return rsa.get();
    }
  }
  std::string_view secret_for(Alg a) {
    return a == Alg::HS256 ? kSecret256 : a == Alg::HS384 ? kSecret384 : kSecret512;
  }
  std::string token(Alg a, std::string_view payload) {
    return make_token(header_for(a, kid_of(a)), payload, a, key_for(a), secret_for(a));
  }
  std::string hs(std::string_view payload, std::string_view header = {}) {
    return make_token(header.empty() ? header_for(Alg::HS256, "hs256") : header, payload, Alg::HS256, nullptr,
                      kSecret256);
  }
  JwtError check(const std::string& t, std::int64_t now = kNow) {
    verify_jwt(t, keys, policy, now, r);
    return r.error;
  }
};

std::string dates(const std::string& fields) {
  return R"({"iss":"https://issuer.test","aud":"gateway.test","sub":"u")" + fields + "}";
}
std::string at(std::int64_t t) { return std::to_string(t); }

}  // namespace

TEST_CASE_METHOD(Fixture, "jwt: every algorithm verifies its own signature, and only that", "[jwt]") {
  const Alg alg = GENERATE(Alg::HS256, Alg::HS384, Alg::HS512, Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256,
                           Alg::PS384, Alg::PS512, Alg::ES256, Alg::ES384, Alg::EdDSA);
  INFO(lg::auth::alg_name(alg));
  const std::string t = token(alg, claims_at(kNow));
  REQUIRE(check(t) == JwtError::none);
  CHECK(r.ok());
  CHECK(r.alg == alg);
  CHECK(r.kid == kid_of(alg));
  CHECK(r.claims.sub() == "user-1");

  std::string bad_sig = t;
  bad_sig[bad_sig.size() - 2] = bad_sig[bad_sig.size() - 2] == 'A' ? 'B' : 'A';
  CHECK(check(bad_sig) == JwtError::bad_signature);
  CHECK_FALSE(r.claims.root());  // nothing of a failed token is visible

  // Same signature over a payload with one claim changed.
  const auto d1 = t.find('.'), d2 = t.rfind('.');
  const std::string forged =
      t.substr(0, d1 + 1) + b64(claims_at(kNow, R"(,"admin":true)")) + t.substr(d2);
  CHECK(check(forged) == JwtError::bad_signature);

  // The right key under another kid bound to another alg: refused before any crypto.
  const std::string wrong_kid = make_token(header_for(alg, alg == Alg::HS256 ? "rs256" : "hs256"),
                                           claims_at(kNow), alg, key_for(alg), secret_for(alg));
  CHECK(check(wrong_kid) == JwtError::alg_mismatch);
}

TEST_CASE_METHOD(Fixture, "jwt: alg confusion, a public key's bytes used as an HMAC secret", "[jwt]") {
  const std::string pem = corpus_file("keys/rsa-1.public.pem");
  for (const char* kid : {"rs256", "ps256", "es256", "eddsa"}) {
    CHECK(check(make_token(header_for(Alg::HS256, kid), claims_at(kNow), Alg::HS256, nullptr, pem)) ==
          JwtError::alg_mismatch);
  }
  // Without a kid the HS256 token can only meet HS256 keys, whose secret is not the PEM.
  CHECK(check(make_token(R"({"alg":"HS256"})", claims_at(kNow), Alg::HS256, nullptr, pem)) ==
        JwtError::bad_signature);
  // A set with public keys only has no HS256 key at all.
  JwtKeySet only_rsa;
  REQUIRE(only_rsa.load_pem("rs256", Alg::RS256, pem).ok());
  verify_jwt(make_token(R"({"alg":"HS256"})", claims_at(kNow), Alg::HS256, nullptr, pem), only_rsa, policy, kNow, r);
  CHECK(r.error == JwtError::kid_missing);
  // And no configuration path binds a public key to an HS* alg.
  CHECK_FALSE(only_rsa.load_pem("x", Alg::HS256, pem).ok());
}

TEST_CASE_METHOD(Fixture, "jwt: malformed input is refused before any crypto", "[jwt]") {
  const std::string good = hs(claims_at(kNow));
  REQUIRE(check(good) == JwtError::none);
  const auto d1 = good.find('.'), d2 = good.rfind('.');
  const std::string h = good.substr(0, d1), p = good.substr(d1 + 1, d2 - d1 - 1), s = good.substr(d2 + 1);
  for (const std::string& t : {std::string(), std::string("."), std::string(".."), std::string("abc"),
                               h, h + "." + p, h + "." + p + "." + s + ".", h + "." + p + "." + s + "." + s,
                               h + ".." + s, "." + p + "." + s, h + "=." + p + "." + s, h + "." + p + " ." + s,
                               " " + good, good + "\n", h + "." + p + "." + s + "="}) {
    INFO("token: " << t);
    const JwtError e = check(t);
    CHECK((e == JwtError::malformed || e == JwtError::bad_signature));
  }
  CHECK(check(b64("[]") + "." + p + "." + s) == JwtError::malformed);
  CHECK(check(b64(R"({"alg":"HS256","kid":"hs256",})") + "." + p + "." + s) == JwtError::malformed);
  CHECK(check(b64(R"({"alg":"HS256","alg":"none","kid":"hs256"})") + "." + p + "." + s) == JwtError::malformed);
  CHECK(check(b64(R"({"kid":"hs256"})") + "." + p + "." + s) == JwtError::alg_unsupported);
  CHECK(check(b64(R"({"alg":256,"kid":"hs256"})") + "." + p + "." + s) == JwtError::alg_unsupported);
  CHECK(check(b64(R"({"alg":"hs256","kid":"hs256"})") + "." + p + "." + s) == JwtError::alg_unsupported);
  CHECK(check(b64(R"({"alg":"HS256","kid":7})") + "." + p + "." + s) == JwtError::malformed);
  CHECK(check(b64(R"({"alg":" none"})") + "." + p + "." + s) == JwtError::alg_unsupported);
  CHECK(check(b64(R"({"alg":"None"})") + "." + p + ".") == JwtError::alg_none);
  // A payload that is not an object, correctly signed.
  CHECK(check(hs("[1,2]")) == JwtError::malformed);
  CHECK(check(hs("\"x\"")) == JwtError::malformed);
  CHECK(check(hs(claims_at(kNow, R"(,"sub":"again")"))) == JwtError::malformed);
}

TEST_CASE_METHOD(Fixture, "jwt: the size limit holds at exactly max_token_bytes", "[jwt]") {
  std::string t;
  for (std::size_t pad = 0; t.size() < policy.max_token_bytes; ++pad)
    t = hs(claims_at(kNow, R"(,"pad":")" + std::string(pad, 'x') + "\""));
  while (t.size() > policy.max_token_bytes) policy.max_token_bytes++;  // land exactly on the limit
  CHECK(t.size() == policy.max_token_bytes);
  CHECK(check(t) == JwtError::none);
  policy.max_token_bytes = t.size() - 1;
  CHECK(check(t) == JwtError::too_large);
  CHECK(check(std::string(1 << 20, 'A')) == JwtError::too_large);
}

TEST_CASE_METHOD(Fixture, "jwt: header rules", "[jwt]") {
  const std::string claims = claims_at(kNow);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","crit":["exp"],"exp":1})")) == JwtError::header_unsupported);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","crit":[]})")) == JwtError::header_unsupported);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","b64":false})")) == JwtError::header_unsupported);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","b64":true})")) == JwtError::none);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","cty":"jwt"})")) == JwtError::header_unsupported);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","enc":"A128GCM"})")) == JwtError::header_unsupported);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","typ":"at+jwt","cty":"json"})")) == JwtError::none);
  // Key-carrying headers are ignored: the configured key decides.
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"hs256","jku":"https://evil/","x5u":"https://evil/"})")) ==
        JwtError::none);
  // Without a kid: fine with one key for the alg, refused when it would be a guess.
  CHECK(check(make_token(R"({"alg":"EdDSA"})", claims, Alg::EdDSA, ed.get())) == JwtError::none);
  REQUIRE(keys.add_secret("hs256-b", Alg::HS256, std::string(32, 'z')).ok());
  CHECK(check(hs(claims, R"({"alg":"HS256"})")) == JwtError::kid_missing);
  CHECK(check(hs(claims, R"({"alg":"HS256","kid":"nope"})")) == JwtError::kid_unknown);
  CHECK(r.kid == "nope");  // for a bounded JWKS refresh
}

TEST_CASE_METHOD(Fixture, "jwt: exp, nbf and iat at the edges of the leeway", "[jwt]") {
  policy.leeway_s = 60;
  CHECK(check(hs(dates(",\"exp\":" + at(kNow - 60)))) == JwtError::expired);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow - 59)))) == JwtError::none);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 60) + ",\"nbf\":" + at(kNow + 60)))) == JwtError::none);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 600) + ",\"nbf\":" + at(kNow + 61)))) == JwtError::not_yet_valid);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 600) + ",\"iat\":" + at(kNow + 60)))) == JwtError::none);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 600) + ",\"iat\":" + at(kNow + 61)))) == JwtError::issued_in_future);
  policy.leeway_s = 0;
  CHECK(check(hs(dates(",\"exp\":" + at(kNow)))) == JwtError::expired);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 1)))) == JwtError::none);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow) + ".9"))) == JwtError::expired);  // whole seconds, floored
  CHECK(check(hs(dates(",\"exp\":1.800000001e9"))) == JwtError::none);
  CHECK(check(hs(dates(",\"exp\":\"" + at(kNow + 60) + "\""))) == JwtError::malformed);
  CHECK(check(hs(dates(""))) == JwtError::claim_missing);
  CHECK(r.detail == "exp");
  policy.require_exp = false;
  CHECK(check(hs(dates(""))) == JwtError::none);
}

TEST_CASE_METHOD(Fixture, "jwt: maximum lifetime", "[jwt]") {
  policy.max_lifetime_s = 3600;
  const std::int64_t iat = kNow - 100;
  CHECK(check(hs(dates(",\"iat\":" + at(iat) + ",\"exp\":" + at(iat + 3600)))) == JwtError::none);
  CHECK(check(hs(dates(",\"iat\":" + at(iat) + ",\"exp\":" + at(iat + 3601)))) == JwtError::lifetime_exceeded);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 3600)))) == JwtError::none);  // no iat: from now
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 3601)))) == JwtError::lifetime_exceeded);
  CHECK(check(hs(dates(",\"exp\":1e300"))) == JwtError::lifetime_exceeded);
  CHECK(check(hs(dates(",\"exp\":9223372036854775807"))) == JwtError::lifetime_exceeded);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 60) + ",\"iat\":-9223372036854775808"))) == JwtError::lifetime_exceeded);
  policy.max_lifetime_s = 0;  // unlimited, but absurd dates are still refused
  CHECK(check(hs(dates(",\"exp\":18446744073709551616"))) == JwtError::lifetime_exceeded);
  CHECK(check(hs(dates(",\"exp\":" + at(kNow + 10 * 365 * 86400)))) == JwtError::none);
}

TEST_CASE_METHOD(Fixture, "jwt: issuer, audience and required claims", "[jwt]") {
  const std::string exp = ",\"exp\":" + at(kNow + 60);
  auto with = [&](const std::string& body) { return check(hs("{" + body + exp + "}")); };
  CHECK(with(R"("iss":"https://issuer.test","aud":["x","gateway.test"])") == JwtError::none);
  CHECK(with(R"("iss":"https://issuer.test","aud":[])") == JwtError::audience_mismatch);
  CHECK(with(R"("iss":"https://issuer.test")") == JwtError::audience_mismatch);
  CHECK(with(R"("iss":"https://issuer.test","aud":["gateway.test",1])") == JwtError::malformed);
  CHECK(with(R"("iss":"https://issuer.test","aud":"GATEWAY.TEST")") == JwtError::audience_mismatch);
  CHECK(with(R"("iss":"https://issuer.test/","aud":"gateway.test")") == JwtError::issuer_mismatch);
  CHECK(with(R"("iss":null,"aud":"gateway.test")") == JwtError::malformed);
  CHECK(with(R"("iss":"https://issuer.test","aud":"gateway.test","sub":5)") == JwtError::malformed);
  policy.required_claims = {"tenant"};
  CHECK(with(R"("iss":"https://issuer.test","aud":"gateway.test")") == JwtError::claim_missing);
  CHECK(r.detail == "tenant");
  CHECK(with(R"("iss":"https://issuer.test","aud":"gateway.test","tenant":null)") == JwtError::claim_missing);
  CHECK(with(R"("iss":"https://issuer.test","aud":"gateway.test","tenant":"acme")") == JwtError::none);
  policy.issuer.clear();
  policy.audiences.clear();
  policy.required_claims.clear();
  CHECK(with(R"("other":1)") == JwtError::none);
}

TEST_CASE_METHOD(Fixture, "jwt: claims for upstream headers", "[jwt]") {
  const std::string t = hs(claims_at(kNow, R"(,"jti":"j-1","scope":"read  write admin","groups":["ops","dev"],)"
                                           R"("tenant":"acme","n":42,"f":1.5,"ok":true,"obj":{"a":1},"evil":"a\r\nX-Admin: 1")"));
  REQUIRE(check(t) == JwtError::none);
  const auto& c = r.claims;
  CHECK(c.sub() == "user-1");
  CHECK(c.iss() == "https://issuer.test");
  CHECK(c.jti() == "j-1");
  CHECK(c.exp() == kNow + 600);
  CHECK(c.iat() == kNow - 10);
  std::vector<std::string> scopes, groups;
  c.for_each_scope([&](std::string_view s) { scopes.emplace_back(s); });
  c.for_each_group([&](std::string_view s) { groups.emplace_back(s); });
  CHECK(scopes == std::vector<std::string>{"read", "write", "admin"});
  CHECK(groups == std::vector<std::string>{"ops", "dev"});
  CHECK(c.has_scope("write"));
  CHECK_FALSE(c.has_scope("writ"));
  CHECK(c.in_group("ops"));
  CHECK(c.string("tenant") == "acme");
  CHECK(c.string("n").empty());
  std::string out = "v=";
  CHECK(c.append_header_value("groups", out, ","));
  CHECK(out == "v=ops,dev");
  out.clear();
  CHECK(c.append_header_value("n", out));
  CHECK(c.append_header_value("ok", out));
  CHECK(out == "42true");
  CHECK_FALSE(c.append_header_value("f", out));
  CHECK_FALSE(c.append_header_value("obj", out));
  CHECK_FALSE(c.append_header_value("missing", out));
  CHECK_FALSE(c.append_header_value("evil", out));  // no header injection through a claim
  CHECK(out == "42true");

  const std::string scp = hs(claims_at(kNow, R"(,"scp":["a","b"])"));
  REQUIRE(check(scp) == JwtError::none);
  CHECK(r.claims.has_scope("b"));
  CHECK_FALSE(r.claims.in_group("ops"));
}

TEST_CASE("jwt: a key store swaps whole key sets", "[jwt]") {
  lg::auth::JwtKeyStore store;
  CHECK(store.load() == nullptr);
  auto first = std::make_shared<JwtKeySet>();
  REQUIRE(first->add_secret("a", Alg::HS256, std::string(32, 'a')).ok());
  store.publish(first);
  const auto pinned = store.load();
  auto second = std::make_shared<JwtKeySet>();
  REQUIRE(second->add_secret("b", Alg::HS256, std::string(32, 'b')).ok());
  store.publish(second);
  CHECK(pinned->contains("a"));  // a request keeps the set it started with
  CHECK(store.load()->contains("b"));
  CHECK_FALSE(store.load()->contains("a"));
}

TEST_CASE_METHOD(Fixture, "jwt: a reused result only remembers headers that passed", "[jwt]") {
  const std::string good = hs(claims_at(kNow));
  REQUIRE(check(good) == JwtError::none);
  // Same header, forged signature: the remembered header changes nothing about the rest.
  std::string forged = good;
  forged[forged.size() - 2] = forged[forged.size() - 2] == 'A' ? 'B' : 'A';
  CHECK(check(forged) == JwtError::bad_signature);
  CHECK(check(good) == JwtError::none);
  CHECK(r.kid == "hs256");
  // A refused header is refused every time, also right after a good one.
  const std::string crit = hs(claims_at(kNow), R"({"alg":"HS256","kid":"hs256","crit":["x"]})");
  CHECK(check(crit) == JwtError::header_unsupported);
  CHECK(check(crit) == JwtError::header_unsupported);
  // Another header of the same kid, then back: each is judged on its own.
  CHECK(check(make_token(header_for(Alg::HS384, "hs384"), claims_at(kNow), Alg::HS384, nullptr, kSecret384)) ==
        JwtError::none);
  CHECK(r.alg == Alg::HS384);
  CHECK(check(good) == JwtError::none);
  CHECK(r.alg == Alg::HS256);
  // The key set is consulted every time: the same header against a set without its kid.
  JwtKeySet other;
  REQUIRE(other.add_secret("hs384", Alg::HS384, kSecret384).ok());
  verify_jwt(good, other, policy, kNow, r);
  CHECK(r.error == JwtError::kid_unknown);
}

TEST_CASE_METHOD(Fixture, "jwt: one key set, verified from several threads", "[jwt]") {
  std::vector<std::string> tokens;
  for (Alg a : {Alg::HS256, Alg::RS256, Alg::PS384, Alg::ES256, Alg::EdDSA}) tokens.push_back(token(a, claims_at(kNow)));
  std::string bad = tokens[1];
  bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      JwtResult mine;  // one per thread, as one per worker
      for (int i = 0; i < 40; ++i) {
        const std::string& tok = tokens[static_cast<std::size_t>(i + t) % tokens.size()];
        if (!verify_jwt(tok, keys, policy, kNow, mine)) ++wrong;
        if (verify_jwt(bad, keys, policy, kNow, mine) || mine.error != JwtError::bad_signature) ++wrong;
        if (ERR_peek_error() != 0) ++wrong;  // failures leave nothing on the thread's error queue
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}
