#include "router/router.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "config/config_loader.hpp"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // malloc/free behind new/delete

// Counts heap allocations while g_count_allocs is set (to prove match() never allocates).
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<long> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace lg;

namespace {

RouteConfig route(std::string name, std::vector<std::string> paths,
                  std::uint16_t methods = kAllMethods, std::vector<std::string> hosts = {}) {
  RouteConfig r;
  r.name = std::move(name);
  r.match.paths = std::move(paths);
  r.match.methods = methods;
  r.match.hosts = std::move(hosts);
  return r;
}

std::string param(const RouteMatchResult& m, std::string_view name) {
  for (int k = 0; k < m.param_count; ++k) {
    if (m.params[k].name == name) return std::string(m.params[k].value);
  }
  return "<none>";
}

std::string build_error(std::vector<RouteConfig> routes) {
  try {
    Router r(routes);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("router: exact beats param beats prefix", "[router]") {
  Router r({route("prefix", {"/users/*"}), route("param", {"/users/:id"}),
            route("exact", {"/users/me"})});
  auto m = r.match("h", "/users/me", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 2);
  CHECK(m.param_count == 0);

  m = r.match("h", "/users/42", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 1);
  REQUIRE(m.param_count == 1);
  CHECK(m.params[0].name == "id");
  CHECK(m.params[0].value == "42");

  m = r.match("h", "/users/42/orders", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "/42/orders");
  CHECK(m.param_count == 0);

  m = r.match("h", "/users", M_GET);
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "");
  m = r.match("h", "/users/", M_GET);  // a param never matches an empty segment
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "/");
  CHECK(r.match("h", "/usersx", M_GET).kind == RouteMatchResult::not_found);
  CHECK(r.match("h", "/", M_GET).kind == RouteMatchResult::not_found);
}

TEST_CASE("router: longest prefix wins", "[router]") {
  Router r({route("all", {"/*"}), route("v1", {"/v1/*"}), route("users", {"/v1/users/*"})});
  auto m = r.match("", "/v1/users/7/x", M_GET);
  CHECK(m.route == 2);
  CHECK(m.prefix_rest == "/7/x");
  m = r.match("", "/v1/other", M_GET);
  CHECK(m.route == 1);
  CHECK(m.prefix_rest == "/other");
  m = r.match("", "/v1", M_GET);
  CHECK(m.route == 1);
  CHECK(m.prefix_rest == "");
  m = r.match("", "/v2/x", M_GET);
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "/v2/x");
  m = r.match("", "/", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "/");
}

TEST_CASE("router: static first with backtracking", "[router]") {
  Router r({route("static", {"/a/b/c"}), route("param", {"/a/:x/d"}),
            route("shallow-prefix", {"/a/*"}), route("deep-prefix", {"/:y/b/e/*"})});
  auto m = r.match("", "/a/b/c", M_GET);
  CHECK(m.route == 0);
  m = r.match("", "/a/b/d", M_GET);  // static "b" dead-ends, the param branch matches
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 1);
  CHECK(param(m, "x") == "b");
  m = r.match("", "/a/b/e/f", M_GET);  // per segment, the exact "a" beats ":y": its prefix settles it
  CHECK(m.route == 2);
  CHECK(m.param_count == 0);
  CHECK(m.prefix_rest == "/b/e/f");
  m = r.match("", "/z/b/e/f", M_GET);  // no exact first segment: the param branch's prefix
  CHECK(m.route == 3);
  CHECK(param(m, "y") == "z");
  CHECK(m.prefix_rest == "/f");
  m = r.match("", "/a/q/z", M_GET);
  CHECK(m.route == 2);
  CHECK(m.param_count == 0);  // the param pushed while exploring "/a/:x" is not reported
  CHECK(m.prefix_rest == "/q/z");
}

TEST_CASE("router: per segment, an exact segment beats a param even when it leads to a prefix", "[router]") {
  Router r({route("prefix", {"/a/b/*"}), route("param", {"/:x/b/c"}), route("users-admin", {"/users/admin/*"}),
            route("user", {"/users/:id"})});
  auto m = r.match("", "/a/b/c", M_GET);
  CHECK(m.route == 0);
  CHECK(m.prefix_rest == "/c");
  m = r.match("", "/q/b/c", M_GET);  // no exact "q": the param route
  CHECK(m.route == 1);
  CHECK(param(m, "x") == "q");
  m = r.match("", "/users/admin", M_GET);
  CHECK(m.route == 2);
  m = r.match("", "/users/7", M_GET);
  CHECK(m.route == 3);
}

TEST_CASE("router: a prefix that only allows other methods does not settle the match", "[router]") {
  Router r({route("prefix-post", {"/a/*"}, M_POST), route("param-get", {"/:x/b"}, M_GET)});
  auto m = r.match("", "/a/b", M_GET);
  CHECK(m.route == 1);
  m = r.match("", "/a/b", M_POST);
  CHECK(m.route == 0);
}

TEST_CASE("router: params captured", "[router]") {
  Router r({route("orders", {"/svc/:svc/users/:id/orders/:oid"}),
            route("eight", {"/:a/:b/:c/:d/:e/:f/:g/:h/x"}), route("get", {"/u/:id"}, M_GET),
            route("post", {"/u/:uid"}, M_POST), route("pfx", {"/files/:bucket/*"})});
  auto m = r.match("", "/svc/billing/users/u1/orders/99", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  REQUIRE(m.param_count == 3);
  CHECK(m.params[0].name == "svc");
  CHECK(m.params[0].value == "billing");
  CHECK(m.params[1].name == "id");
  CHECK(m.params[1].value == "u1");
  CHECK(m.params[2].name == "oid");
  CHECK(m.params[2].value == "99");

  m = r.match("", "/1/2/3/4/5/6/7/8/x", M_GET);
  REQUIRE(m.route == 1);
  REQUIRE(m.param_count == 8);
  CHECK(m.params[7].name == "h");
  CHECK(m.params[7].value == "8");

  // Same structure, different names per route.
  CHECK(param(r.match("", "/u/5", M_GET), "id") == "5");
  CHECK(param(r.match("", "/u/5", M_POST), "uid") == "5");

  m = r.match("", "/files/b1/dir/f.txt", M_GET);
  CHECK(m.route == 4);
  CHECK(param(m, "bucket") == "b1");
  CHECK(m.prefix_rest == "/dir/f.txt");

  // Views point into the path passed in.
  const std::string path = "/u/abc";
  m = r.match("", path, M_GET);
  CHECK(m.params[0].value.data() == path.data() + 3);
}

TEST_CASE("router: trailing slash and root", "[router]") {
  Router r({route("no-slash", {"/users"}), route("slash", {"/users/"}), route("root", {"/"})});
  CHECK(r.match("", "/users", M_GET).route == 0);
  CHECK(r.match("", "/users/", M_GET).route == 1);
  CHECK(r.match("", "/", M_GET).route == 2);
  CHECK(r.match("", "/users/x", M_GET).kind == RouteMatchResult::not_found);
  CHECK(r.match("", "", M_GET).kind == RouteMatchResult::not_found);
  Router only_slash({route("slash", {"/users/"})});
  CHECK(only_slash.match("", "/users", M_GET).kind == RouteMatchResult::not_found);
}

TEST_CASE("router: patterns are normalized like paths", "[router]") {
  Router r({route("a", {"/caf%c3%a9/%61dmin"})});
  CHECK(r.match("", "/caf%C3%A9/admin", M_GET).kind == RouteMatchResult::found);
}

TEST_CASE("router: methods, 405 and Allow", "[router]") {
  Router r({route("get", {"/items"}, M_GET), route("post", {"/items"}, M_POST | M_PUT),
            route("head", {"/h"}, M_GET), route("head-explicit", {"/h"}, M_HEAD),
            route("me", {"/v1/users/me"}, M_GET), route("users", {"/v1/users/*"}, M_POST)});
  CHECK(r.match("", "/items", M_GET).route == 0);
  CHECK(r.match("", "/items", M_POST).route == 1);
  CHECK(r.match("", "/items", M_PUT).route == 1);
  auto m = r.match("", "/items", M_HEAD);  // HEAD via GET
  CHECK(m.kind == RouteMatchResult::found);
  CHECK(m.route == 0);
  m = r.match("", "/items", M_DELETE);
  REQUIRE(m.kind == RouteMatchResult::method_not_allowed);
  CHECK(m.allow == (M_GET | M_HEAD | M_POST | M_PUT));
  CHECK(m.route == 0);

  CHECK(r.match("", "/h", M_HEAD).route == 3);  // an explicit HEAD route beats HEAD-via-GET
  CHECK(r.match("", "/h", M_GET).route == 2);

  // The exact path does not allow POST: fall back to the prefix that does.
  m = r.match("", "/v1/users/me", M_POST);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.route == 5);
  CHECK(m.prefix_rest == "/me");
  m = r.match("", "/v1/users/me", M_DELETE);
  REQUIRE(m.kind == RouteMatchResult::method_not_allowed);
  CHECK(m.route == 4);
  CHECK(m.allow == (M_GET | M_HEAD | M_POST));
  CHECK(r.match("", "/nothing", M_DELETE).kind == RouteMatchResult::not_found);
}

TEST_CASE("router: host priority", "[router]") {
  Router r({route("any", {"/x", "/only-any"}), route("wild", {"/x"}, kAllMethods, {"*.example.com"}),
            route("deep-wild", {"/x"}, kAllMethods, {"*.b.example.com"}),
            route("exact", {"/x"}, kAllMethods, {"API.example.com", "other.test"}),
            route("v6", {"/x"}, kAllMethods, {"[::1]"})});
  CHECK(r.match("api.example.com", "/x", M_GET).route == 3);
  CHECK(r.match("API.Example.COM:8443", "/x", M_GET).route == 3);
  CHECK(r.match("api.example.com.", "/x", M_GET).route == 3);
  CHECK(r.match("other.test", "/x", M_GET).route == 3);
  CHECK(r.match("a.example.com", "/x", M_GET).route == 1);
  CHECK(r.match("a.c.example.com", "/x", M_GET).route == 1);
  CHECK(r.match("a.b.example.com", "/x", M_GET).route == 2);
  CHECK(r.match("x.a.b.example.com:80", "/x", M_GET).route == 2);
  CHECK(r.match("b.example.com", "/x", M_GET).route == 1);
  CHECK(r.match("example.com", "/x", M_GET).route == 0);
  CHECK(r.match("[::1]:8080", "/x", M_GET).route == 4);
  CHECK(r.match("[::1]", "/x", M_GET).route == 4);
  CHECK(r.match("", "/x", M_GET).route == 0);
  CHECK(r.match("unknown.test", "/x", M_GET).route == 0);
  // A host group without the path falls back to the next one.
  CHECK(r.match("api.example.com", "/only-any", M_GET).route == 0);
  CHECK(r.match("a.b.example.com", "/only-any", M_GET).route == 0);
  // Over 255 bytes: not found, even though the any-host group would match.
  const std::string long_host(256, 'a');
  CHECK(r.match(long_host, "/x", M_GET).kind == RouteMatchResult::not_found);
  CHECK(r.match(std::string(255, 'a'), "/x", M_GET).route == 0);
}

TEST_CASE("router: wildcard suffix only at a label boundary", "[router]") {
  Router r({route("wild", {"/x"}, kAllMethods, {"*.example.com"}),
            route("short", {"/x"}, kAllMethods, {"*.com"})});
  CHECK(r.match("a.example.com", "/x", M_GET).route == 0);
  CHECK(r.match("foo.bar-example.com", "/x", M_GET).route == 1);
  CHECK(r.match("example.com", "/x", M_GET).route == 1);
  CHECK(r.match("com", "/x", M_GET).kind == RouteMatchResult::not_found);
  CHECK(r.match(".com", "/x", M_GET).kind == RouteMatchResult::not_found);
}

TEST_CASE("router: large fan-out nodes", "[router]") {
  // More than a handful of children per node switches to the hash table; the same segment
  // under different parents must not be confused.
  std::vector<RouteConfig> routes;
  for (int i = 0; i < 100; ++i) {
    routes.push_back(route("a" + std::to_string(i), {"/svc" + std::to_string(i) + "/items"}));
  }
  for (int i = 0; i < 50; ++i) {
    routes.push_back(route("b" + std::to_string(i),
                           {"/svc7/items/k" + std::to_string(i) + "/v" + std::to_string(i)}));
  }
  routes.push_back(route("param", {"/svc7/items/:k/w"}));
  routes.push_back(route("long", {"/a-segment-longer-than-sixteen-bytes-" + std::string(40, 'z')}));
  Router r(routes);
  for (int i = 0; i < 100; ++i) {
    auto m = r.match("", "/svc" + std::to_string(i) + "/items", M_GET);
    REQUIRE(m.kind == RouteMatchResult::found);
    CHECK(m.route == static_cast<std::uint32_t>(i));
  }
  CHECK(r.match("", "/svc100/items", M_GET).kind == RouteMatchResult::not_found);
  CHECK(r.match("", "/svc7/items/k3/v3", M_GET).route == 103);
  CHECK(r.match("", "/svc7/items/k3/v4", M_GET).kind == RouteMatchResult::not_found);
  auto m = r.match("", "/svc7/items/k3/w", M_GET);  // hashed static child dead-ends: param
  CHECK(m.route == 150);
  CHECK(param(m, "k") == "k3");
  CHECK(r.match("", "/a-segment-longer-than-sixteen-bytes-" + std::string(40, 'z'), M_GET).route ==
        151);
  CHECK(r.match("", "/a-segment-longer-than-sixteen-bytes-" + std::string(39, 'z') + "y", M_GET)
            .kind == RouteMatchResult::not_found);
}

TEST_CASE("router: empty table and unknown methods", "[router]") {
  Router empty({});
  CHECK(empty.match("h", "/", M_GET).kind == RouteMatchResult::not_found);
  Router r({route("all", {"/x"})});
  auto m = r.match("", "/x", 0);  // a method without a bit (e.g. PROPFIND): 405
  REQUIRE(m.kind == RouteMatchResult::method_not_allowed);
  CHECK(m.allow == kAllMethods);
  CHECK(r.match("", "x", M_GET).kind == RouteMatchResult::not_found);  // not a normalized path
  // No paths: the route matches every path.
  Router any_path({route("catch-all", {}, M_GET, {"h.test"})});
  m = any_path.match("h.test", "/deep/path", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.prefix_rest == "/deep/path");
}

TEST_CASE("router: host fallback on method", "[router]") {
  Router r({route("api-get", {"/x"}, M_GET, {"api.test"}),
            route("wild-put", {"/x"}, M_PUT, {"*.test"}), route("any-post", {"/*"}, M_POST)});
  CHECK(r.match("api.test", "/x", M_GET).route == 0);
  CHECK(r.match("api.test", "/x", M_PUT).route == 1);
  CHECK(r.match("api.test", "/x", M_POST).route == 2);
  auto m = r.match("api.test", "/x", M_DELETE);
  REQUIRE(m.kind == RouteMatchResult::method_not_allowed);
  CHECK(m.route == 0);
  CHECK(m.allow == (M_GET | M_HEAD | M_PUT | M_POST));
  Router prefix_get({route("static", {"/static/*"}, M_GET)});
  m = prefix_get.match("", "/static/app.js", M_DELETE);
  REQUIRE(m.kind == RouteMatchResult::method_not_allowed);
  CHECK(m.allow == (M_GET | M_HEAD));
  Router no_any({route("api-get", {"/x"}, M_GET, {"api.test"})});
  CHECK(no_any.match("other.test", "/x", M_GET).kind == RouteMatchResult::not_found);
}

TEST_CASE("router: build errors", "[router]") {
  auto named = [](std::string name, std::vector<std::string> paths, int line,
                  std::uint16_t methods = kAllMethods, std::vector<std::string> hosts = {}) {
    RouteConfig r = route(std::move(name), std::move(paths), methods, std::move(hosts));
    r.line = line;
    return r;
  };
  CHECK(build_error({named("ok", {"/ok"}, 3), named("ok2", {"/ok2/*"}, 8),
                     named("bad", {"/a/*/b"}, 14)}) ==
        "14: routes[2].match: '*' must be the last segment");
  CHECK(build_error({named("bad", {"users"}, 5)}) ==
        "5: routes[0].match: path must start with '/'");
  CHECK(build_error({named("bad", {"/a/b*"}, 5)}) ==
        "5: routes[0].match: '*' must be a whole segment");
  CHECK(build_error({named("bad", {"/a/:"}, 5)}) == "5: routes[0].match: empty parameter name");
  CHECK(build_error({named("bad", {"/a/:id/b/:id"}, 5)}) ==
        "5: routes[0].match: parameter ':id' repeated");
  CHECK(build_error({named("bad", {"/:a/:b/:c/:d/:e/:f/:g/:h/:i"}, 5)}) ==
        "5: routes[0].match: more than 8 parameters");
  CHECK(build_error({named("bad", {"/a//b"}, 5)}).find("empty segment") != std::string::npos);
  CHECK(build_error({named("bad", {"/a/../b"}, 5)}).find("'..'") != std::string::npos);
  CHECK(build_error({named("bad", {"/a%2fb"}, 5)}).find("invalid path") != std::string::npos);
  CHECK(build_error({named("a", {"/x"}, 2, M_GET | M_POST, {"h"}),
                     named("b", {"/x"}, 7, M_GET, {"H"})}) ==
        "7: routes[1].match: routes 'a' and 'b' both match GET /x on host h");
  CHECK(build_error({named("a", {"/u/:id"}, 2, M_PUT), named("b", {"/u/:name"}, 9, M_PUT)}) ==
        "9: routes[1].match: routes 'a' and 'b' both match PUT /u/:name on any host");
  CHECK(build_error({named("a", {"/x", "/x"}, 2)}).find("twice") != std::string::npos);
  CHECK(build_error({named("bad", {"/x"}, 4, kAllMethods, {"*"})}) ==
        "4: routes[0].match: invalid host '*': '*' alone is not a valid host pattern");
  CHECK(build_error({named("bad", {"/x"}, 4, kAllMethods, {"a.*.com"})}) ==
        "4: routes[0].match: invalid host 'a.*.com': '*' must be the whole leftmost label");
  CHECK(build_error({named("bad", {"/x"}, 4, kAllMethods, {"*a.com"})}) ==
        "4: routes[0].match: invalid host '*a.com': '*' must be the whole leftmost label");
  CHECK(build_error({named("bad", {"/x"}, 4, kAllMethods, {"*.*.com"})}) ==
        "4: routes[0].match: invalid host '*.*.com': '*' must be the whole leftmost label");
  // Not conflicts: different methods, hosts, or exact vs prefix.
  CHECK(build_error({named("a", {"/x"}, 1, M_GET), named("b", {"/x"}, 2, M_POST),
                     named("c", {"/x"}, 3, M_GET, {"h"}), named("d", {"/x/*"}, 4, M_GET)}) ==
        "<no error>");
  RouteConfig rw = named("rw", {"/u/:id"}, 6);
  rw.rewrite = "/users/{uid}";
  CHECK(build_error({rw}) == "6: routes[0].rewrite: '{uid}' is not a parameter of /u/:id");
  rw.rewrite = "/files/{*}";
  CHECK(build_error({rw}).find("'{*}' needs") != std::string::npos);
}

TEST_CASE("router: upstream path", "[router]") {
  std::vector<RouteConfig> routes{route("users", {"/v1/users/*"}), route("one", {"/u/:id/x/:k"}),
                                  route("files", {"/files/:bucket/*"})};
  routes[0].strip_prefix = "/v1";
  routes[1].rewrite = "/users/{id}/keys/{k}";
  routes[2].rewrite = "/b/{bucket}/o/{*}";
  Router r(routes);
  auto up = [&](std::string_view path, std::string out = {}) {
    auto m = r.match("", path, M_GET);
    REQUIRE(m.kind == RouteMatchResult::found);
    build_upstream_path(routes[m.route], m, path, out);
    return out;
  };
  CHECK(up("/v1/users/7") == "/users/7");
  CHECK(up("/v1/users") == "/users");
  CHECK(up("/u/42/x/a%20b") == "/users/42/keys/a%20b");
  CHECK(up("/files/pics/2024/cat.png") == "/b/pics/o/2024/cat.png");
  CHECK(up("/files/pics") == "/b/pics/o/");
  CHECK(up("/v1/users/7", "GET ") == "GET /users/7");  // appends

  RouteConfig rc = route("s", {"/api/*"});
  RouteMatchResult none;
  auto strip = [&](std::string prefix, std::string_view path) {
    rc.strip_prefix = std::move(prefix);
    std::string out;
    build_upstream_path(rc, none, path, out);
    return out;
  };
  CHECK(strip("/api", "/api") == "/");
  CHECK(strip("/api", "/api/") == "/");
  CHECK(strip("/api", "/api/x/y") == "/x/y");
  CHECK(strip("/api", "/apix/y") == "/apix/y");  // not at a segment boundary
  CHECK(strip("/api/", "/api/x") == "/x");
  CHECK(strip("/other", "/api/x") == "/api/x");
  CHECK(strip("", "/api/x") == "/api/x");
}

TEST_CASE("router: match does not allocate", "[router]") {
  Router r({route("any", {"/*"}, M_GET), route("wild", {"/w/:id/*"}, M_GET, {"*.example.com"}),
            route("exact", {"/svc/:s/users/:id"}, M_GET | M_POST, {"api.example.com"}),
            route("static", {"/a/b/c"}, M_PUT)});
  const std::string long_host(300, 'h');
  // The counter is live: one allocation is seen.
  g_allocs = 0;
  g_count_allocs = true;
  auto* probe = new std::string(100, 'x');
  g_count_allocs = false;
  delete probe;
  REQUIRE(g_allocs.load() >= 1);

  g_allocs = 0;
  g_count_allocs = true;
  int found = 0, not_allowed = 0, not_found = 0;
  for (int i = 0; i < 100; ++i) {
    for (auto [host, path, method] :
         {std::tuple<std::string_view, std::string_view, std::uint16_t>{
              "API.example.com:443", "/svc/x/users/9", M_POST},
          {"a.b.example.com", "/w/1/deep/path/here", M_HEAD},
          {"a.b.example.com", "/a/b/c", M_DELETE},
          {"[::1]:80", "/anything/at/all", M_GET},
          {std::string_view(long_host), "/x", M_GET},
          {"", "/a/b/c", M_PUT}}) {
      auto m = r.match(host, path, method);
      found += m.kind == RouteMatchResult::found;
      not_allowed += m.kind == RouteMatchResult::method_not_allowed;
      not_found += m.kind == RouteMatchResult::not_found;
    }
  }
  g_count_allocs = false;
  CHECK(g_allocs.load() == 0);
  CHECK(found == 400);
  CHECK(not_allowed == 100);
  CHECK(not_found == 100);
}

TEST_CASE("router: survives a move", "[router]") {
  Router a({route("p", {"/u/:id"}, kAllMethods, {"h.test"})});
  Router b = std::move(a);
  auto m = b.match("h.test", "/u/1", M_GET);
  REQUIRE(m.kind == RouteMatchResult::found);
  CHECK(m.params[0].name == "id");
}
