// JwksFetcher's bookkeeping across reloads: a source is shared by URL, and a reload's new
// settings for it take effect only once that reload is published (commit), never when it is
// rejected (discard). The fetcher is not started here: nothing is fetched.
#include "auth/jwks_fetcher.hpp"

#include <catch2/catch.hpp>

using namespace lg::auth;

namespace {
JwksSettings settings(std::int64_t timeout_ms) {
  JwksSettings s;
  s.key = "https://idp.test/jwks\n";
  s.timeout_ms = timeout_ms;
  return s;
}
}  // namespace

TEST_CASE("jwks fetcher: a reload's settings apply on commit, never on discard", "[auth][jwks]") {
  JwksFetcher fetcher;
  const auto src = fetcher.source(settings(500), 1);
  REQUIRE(src->timeout_ms() == 500);
  // A reload that is rejected later (a script error, say): the running settings stay.
  CHECK(fetcher.source(settings(60'000), 1) == src);
  CHECK(src->timeout_ms() == 500);
  fetcher.discard();
  fetcher.commit();  // nothing staged any more
  CHECK(src->timeout_ms() == 500);
  // A reload that is published.
  CHECK(fetcher.source(settings(2'000), 1) == src);
  CHECK(src->timeout_ms() == 500);
  fetcher.commit();
  CHECK(src->timeout_ms() == 2'000);
  // Another URL is another source.
  JwksSettings other = settings(500);
  other.key = "https://other.test/jwks\n";
  CHECK(fetcher.source(other, 1) != src);
}
