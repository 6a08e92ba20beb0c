// Router micro-benchmark: 10,000 routes (6,000 exact, 3,000 with params, 1,000 prefixes, a few
// hosts), then 1e6 lookups of a mix of hits and misses; prints build time and ns per lookup.
//
//   lg-bench-router [lookups]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "router/path_normalize.hpp"
#include "router/router.hpp"

using namespace lg;
using Clock = std::chrono::steady_clock;

namespace {

struct Request {
  std::string host, path;
  std::uint16_t method;
  RouteMatchResult::Kind want;
};

struct Kind {
  const char* name;
  std::vector<Request> requests;
};

RouteConfig route(std::string name, std::string path, std::uint16_t methods,
                  std::vector<std::string> hosts) {
  RouteConfig r;
  r.name = std::move(name);
  r.match.paths = {std::move(path)};
  r.match.methods = methods;
  r.match.hosts = std::move(hosts);
  return r;
}

std::vector<RouteConfig> make_routes() {
  std::vector<RouteConfig> routes;
  routes.reserve(10'000);
  // 6,000 exact: v1 on an exact host, v2 on a wildcard host, v3 on any host.
  for (int v = 1; v <= 3; ++v) {
    for (int n = 0; n < 2000; ++n) {
      std::vector<std::string> hosts;
      if (v == 1) hosts = {"api.example.com"};
      if (v == 2) hosts = {"*.internal.example.com"};
      routes.push_back(route("exact-" + std::to_string(v) + "-" + std::to_string(n),
                             "/api/v" + std::to_string(v) + "/svc" + std::to_string(n) + "/items",
                             M_GET | M_POST, std::move(hosts)));
    }
  }
  // 3,000 with two params, any host.
  for (int n = 0; n < 3000; ++n) {
    routes.push_back(route("param-" + std::to_string(n),
                           "/svc" + std::to_string(n) + "/users/:id/orders/:oid", kAllMethods, {}));
  }
  // 1,000 prefixes: half on a static host, half on any host.
  for (int n = 0; n < 1000; ++n) {
    std::vector<std::string> hosts;
    if (n % 2 == 0) hosts = {"static.example.com"};
    routes.push_back(route("prefix-" + std::to_string(n), "/static" + std::to_string(n) + "/*",
                           M_GET, std::move(hosts)));
  }
  return routes;
}

std::vector<Kind> make_requests() {
  std::vector<Kind> kinds;
  constexpr int kPerKind = 4096;
  std::srand(42);
  auto pick = [](int n) { return std::to_string(std::rand() % n); };

  Kind exact{"exact hit", {}};
  for (int i = 0; i < kPerKind; ++i) {
    switch (i % 3) {
      case 0: exact.requests.push_back({"api.example.com", "/api/v1/svc" + pick(2000) + "/items", M_GET, RouteMatchResult::found}); break;
      case 1: exact.requests.push_back({"a.internal.example.com:8443", "/api/v2/svc" + pick(2000) + "/items", M_GET, RouteMatchResult::found}); break;
      default: exact.requests.push_back({"api.example.com", "/api/v3/svc" + pick(2000) + "/items", M_POST, RouteMatchResult::found}); break;
    }
  }
  kinds.push_back(std::move(exact));

  Kind param{"param hit", {}};
  for (int i = 0; i < kPerKind; ++i) {
    param.requests.push_back({"api.example.com", "/svc" + pick(3000) + "/users/" + pick(1000000) +
                                  "/orders/" + pick(1000000), M_GET, RouteMatchResult::found});
  }
  kinds.push_back(std::move(param));

  Kind prefix{"prefix hit", {}};
  for (int i = 0; i < kPerKind; ++i) {
    const int n = std::rand() % 1000;
    prefix.requests.push_back({n % 2 == 0 ? "static.example.com" : "www.example.com",
                               "/static" + std::to_string(n) + "/css/app-" + pick(100) + ".css",
                               M_GET, RouteMatchResult::found});
  }
  kinds.push_back(std::move(prefix));

  Kind miss{"miss (404)", {}};
  for (int i = 0; i < kPerKind; ++i) {
    switch (i % 3) {
      case 0: miss.requests.push_back({"api.example.com", "/api/v1/svc" + pick(2000) + "/other", M_GET, RouteMatchResult::not_found}); break;
      case 1: miss.requests.push_back({"www.example.com", "/svc" + pick(3000) + "/users/1/carts/2", M_GET, RouteMatchResult::not_found}); break;
      default: miss.requests.push_back({"", "/nothing/here/" + pick(1000), M_GET, RouteMatchResult::not_found}); break;
    }
  }
  kinds.push_back(std::move(miss));

  Kind not_allowed{"405", {}};
  for (int i = 0; i < kPerKind; ++i) {
    not_allowed.requests.push_back({"api.example.com", "/api/v1/svc" + pick(2000) + "/items",
                                    M_DELETE, RouteMatchResult::method_not_allowed});
  }
  kinds.push_back(std::move(not_allowed));
  return kinds;
}

double ns_since(Clock::time_point start, long n) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  const long lookups = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const std::vector<RouteConfig> routes = make_routes();

  auto t0 = Clock::now();
  Router router(routes);
  const double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf("routes: %zu, build: %.1f ms\n", routes.size(), build_ms);

  std::vector<Kind> kinds = make_requests();
  // Check the expectations once, so the numbers measure what they claim to.
  for (const Kind& k : kinds) {
    for (const Request& r : k.requests) {
      if (router.match(r.host, r.path, r.method).kind != r.want) {
        std::fprintf(stderr, "unexpected result for %s %s (%s)\n", r.host.c_str(), r.path.c_str(), k.name);
        return 1;
      }
    }
  }

  unsigned long sink = 0;
  const long per_kind = lookups / static_cast<long>(kinds.size());
  for (const Kind& k : kinds) {
    const std::size_t size = k.requests.size();
    auto start = Clock::now();
    for (long i = 0; i < per_kind; ++i) {
      const Request& r = k.requests[static_cast<std::size_t>(i) % size];
      const RouteMatchResult m = router.match(r.host, r.path, r.method);
      sink += m.route + static_cast<unsigned>(m.kind) + m.prefix_rest.size();
    }
    std::printf("%-12s %7.1f ns/lookup  (%ld lookups)\n", k.name, ns_since(start, per_kind), per_kind);
  }

  // Interleaved: every kind in turn, 1e6 lookups in all.
  {
    std::vector<const Request*> mix;
    for (std::size_t i = 0; i < 4096; ++i) mix.push_back(&kinds[i % kinds.size()].requests[i]);
    auto start = Clock::now();
    for (long i = 0; i < lookups; ++i) {
      const Request& r = *mix[static_cast<std::size_t>(i) % mix.size()];
      const RouteMatchResult m = router.match(r.host, r.path, r.method);
      sink += m.route + static_cast<unsigned>(m.kind);
    }
    std::printf("%-12s %7.1f ns/lookup  (%ld lookups)\n", "mixed", ns_since(start, lookups), lookups);
  }

  // For scale: normalizing the same paths.
  {
    std::string out;
    out.reserve(256);
    const std::vector<Request>& reqs = kinds[1].requests;
    const long n = lookups / 5;
    auto start = Clock::now();
    for (long i = 0; i < n; ++i) {
      sink += normalize_path(reqs[static_cast<std::size_t>(i) % reqs.size()].path, out) == nullptr;
      sink += out.size();
    }
    std::printf("%-12s %7.1f ns/path    (%ld paths)\n", "normalize", ns_since(start, n), n);
  }
  std::printf("(checksum %lu)\n", sink);
  return 0;
}
