// Per-worker metrics and the Prometheus text rendering of merged worker data.
#include "admin/metrics.hpp"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

using namespace lg;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

std::size_t count_prefix(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  for (const std::string& l : lines_of(text))
    if (l.rfind(prefix, 0) == 0) ++n;
  return n;
}

std::size_t bucket_of(double seconds) {
  Histogram h;
  h.observe(seconds);
  for (std::size_t i = 0; i <= Histogram::kBuckets; ++i)
    if (h.counts[i]) return i;
  return 999;
}

}  // namespace

TEST_CASE("histogram: bucket placement with inclusive upper bounds", "[metrics]") {
  REQUIRE(Histogram::kBuckets == 14);
  CHECK(bucket_of(0) == 0);
  CHECK(bucket_of(-1) == 0);
  CHECK(bucket_of(0.0001) == 0);
  CHECK(bucket_of(0.0005) == 0);   // le="0.0005" includes 0.0005
  CHECK(bucket_of(0.00051) == 1);
  CHECK(bucket_of(0.001) == 1);
  CHECK(bucket_of(0.0025) == 2);
  CHECK(bucket_of(0.1) == 7);
  CHECK(bucket_of(0.10001) == 8);
  CHECK(bucket_of(1) == 10);
  CHECK(bucket_of(1.0000001) == 11);
  CHECK(bucket_of(10) == 13);
  CHECK(bucket_of(10.000001) == 14);  // +Inf
  CHECK(bucket_of(1e9) == 14);
  // Every bound lands in its own bucket.
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    INFO("bound " << Histogram::kBounds[i]);
    CHECK(bucket_of(Histogram::kBounds[i]) == i);
  }
}

TEST_CASE("histogram: sum, count and merge", "[metrics]") {
  Histogram a, b;
  a.observe(0.25);
  a.observe(0.5);
  b.observe(0.25);
  b.observe(20);
  b.observe(0.0005);
  CHECK(a.count == 2);
  CHECK(a.sum == 0.75);
  a.merge(b);
  CHECK(a.count == 5);
  CHECK(a.sum == Approx(21.0005).epsilon(1e-12));
  std::uint64_t expected[Histogram::kBuckets + 1] = {};
  expected[0] = 1;   // 0.0005
  expected[8] = 2;   // 0.25 x2
  expected[9] = 1;   // 0.5
  expected[14] = 1;  // 20
  for (std::size_t i = 0; i <= Histogram::kBuckets; ++i) {
    INFO("bucket " << i);
    CHECK(a.counts[i] == expected[i]);
  }
  // b is unchanged by being merged from.
  CHECK(b.count == 3);
  CHECK(b.counts[14] == 1);
}

TEST_CASE("worker metrics: route and upstream slots are stable", "[metrics]") {
  WorkerMetrics m;
  // Slot 0 is the "no route" series.
  REQUIRE(m.data().routes.size() == 1);
  CHECK(m.data().routes[WorkerMetrics::kNoRoute].route.empty());
  const std::uint32_t a = m.route_slot("users", "users-svc");
  const std::uint32_t b = m.route_slot("orders", "orders-svc");
  const std::uint32_t c = m.route_slot("users", "other-svc");
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(c == 3);
  CHECK(m.route_slot("users", "users-svc") == a);
  CHECK(m.route_slot("orders", "orders-svc") == b);
  CHECK(m.data().routes.size() == 4);
  CHECK(m.data().routes[a].route == "users");
  CHECK(m.data().routes[a].upstream == "users-svc");

  CHECK(m.upstream_slot("users-svc") == 0);
  CHECK(m.upstream_slot("orders-svc") == 1);
  CHECK(m.upstream_slot("users-svc") == 0);
  CHECK(m.data().upstreams.size() == 2);
}

TEST_CASE("worker metrics: request_done counts by status and observes duration", "[metrics]") {
  WorkerMetrics m;
  const std::uint32_t s = m.route_slot("r", "u");
  m.request_done(s, 200, 0.01);
  m.request_done(s, 200, 0.02);
  m.request_done(s, 404, 0.5);
  m.request_done(WorkerMetrics::kNoRoute, 404, 0.001);
  const RouteSeries& r = m.data().routes[s];
  REQUIRE(r.by_status.size() == 2);
  CHECK(r.by_status[0] == std::pair<std::uint16_t, std::uint64_t>{200, 2});
  CHECK(r.by_status[1] == std::pair<std::uint16_t, std::uint64_t>{404, 1});
  CHECK(r.duration.count == 3);
  CHECK(m.data().routes[0].duration.count == 1);
  m.backend_latency(s, 0.003);
  CHECK(m.data().routes[s].backend.count == 1);
  m.connection_opened();
  m.connection_opened();
  m.connection_closed();
  CHECK(m.active_connections() == 1);
  const std::uint32_t u = m.upstream_slot("u");
  m.backend_error(u, BackendError::timeout);
  m.backend_error(u, BackendError::timeout);
  CHECK(m.data().upstreams[u].errors[static_cast<int>(BackendError::timeout)] == 2);
  CHECK(m.data().upstreams[u].errors[static_cast<int>(BackendError::connect)] == 0);
}

TEST_CASE("backend_error_name", "[metrics]") {
  CHECK(std::string(backend_error_name(BackendError::connect)) == "connect");
  CHECK(std::string(backend_error_name(BackendError::timeout)) == "timeout");
  CHECK(std::string(backend_error_name(BackendError::invalid_response)) == "invalid_response");
  CHECK(std::string(backend_error_name(BackendError::reset)) == "reset");
}

TEST_CASE("render_prometheus: empty data still has every family's HELP and TYPE", "[metrics]") {
  const std::string out = render_prometheus({});
  CHECK(out ==
        "# HELP gateway_requests_total Requests answered, by route, upstream and status.\n"
        "# TYPE gateway_requests_total counter\n"
        "# HELP gateway_request_duration_seconds Time from the first byte of a request to the end of its response.\n"
        "# TYPE gateway_request_duration_seconds histogram\n"
        "# HELP gateway_backend_latency_seconds Time from sending a request upstream to its response head.\n"
        "# TYPE gateway_backend_latency_seconds histogram\n"
        "# HELP gateway_active_connections Open client connections.\n"
        "# TYPE gateway_active_connections gauge\n"
        "gateway_active_connections 0\n"
        "# HELP gateway_backend_errors_total Failed exchanges with upstream targets, by kind.\n"
        "# TYPE gateway_backend_errors_total counter\n");
}

TEST_CASE("render_prometheus: two workers' data are summed", "[metrics]") {
  WorkerMetrics w1, w2;
  // Slots may differ between workers: w2 registers the routes in another order.
  const std::uint32_t a1 = w1.route_slot("api", "svc");
  const std::uint32_t b1 = w1.route_slot("web", "svc");
  const std::uint32_t b2 = w2.route_slot("web", "svc");
  const std::uint32_t a2 = w2.route_slot("api", "svc");
  REQUIRE(a1 != a2);

  w1.request_done(a1, 200, 0.0005);
  w1.request_done(a1, 200, 0.1);
  w1.request_done(a1, 503, 2);
  w2.request_done(a2, 200, 0.75);
  w2.request_done(a2, 200, 30);
  w1.request_done(b1, 301, 0.001);
  w2.request_done(b2, 301, 0.001);
  w1.backend_latency(a1, 0.05);
  w2.backend_latency(a2, 0.5);
  w1.connection_opened();
  w1.connection_opened();
  w2.connection_opened();
  w1.backend_error(w1.upstream_slot("svc"), BackendError::connect);
  w2.backend_error(w2.upstream_slot("svc"), BackendError::connect);
  w2.backend_error(w2.upstream_slot("svc"), BackendError::reset);

  const std::string out = render_prometheus({w1.data(), w2.data()});
  INFO(out);

  // Counters summed across workers.
  CHECK(has_line(out, "gateway_requests_total{route=\"api\",upstream=\"svc\",status=\"200\"} 4"));
  CHECK(has_line(out, "gateway_requests_total{route=\"api\",upstream=\"svc\",status=\"503\"} 1"));
  CHECK(has_line(out, "gateway_requests_total{route=\"web\",upstream=\"svc\",status=\"301\"} 2"));
  CHECK(count_prefix(out, "gateway_requests_total{") == 3);

  // Duration of api: 0.0005, 0.1, 2, 0.75, 30 -> cumulative buckets.
  const std::string api = "gateway_request_duration_seconds_bucket{route=\"api\",upstream=\"svc\",le=";
  CHECK(has_line(out, api + "\"0.0005\"} 1"));
  CHECK(has_line(out, api + "\"0.001\"} 1"));
  CHECK(has_line(out, api + "\"0.05\"} 1"));
  CHECK(has_line(out, api + "\"0.1\"} 2"));
  CHECK(has_line(out, api + "\"0.5\"} 2"));
  CHECK(has_line(out, api + "\"1\"} 3"));
  CHECK(has_line(out, api + "\"2.5\"} 4"));
  CHECK(has_line(out, api + "\"5\"} 4"));
  CHECK(has_line(out, api + "\"10\"} 4"));
  CHECK(has_line(out, api + "\"+Inf\"} 5"));
  CHECK(has_line(out, "gateway_request_duration_seconds_count{route=\"api\",upstream=\"svc\"} 5"));
  CHECK(has_line(out, "gateway_request_duration_seconds_sum{route=\"api\",upstream=\"svc\"} 32.8505"));
  CHECK(count_prefix(out, api) == Histogram::kBuckets + 1);

  // web: both workers' observations merged into one series.
  CHECK(has_line(out, "gateway_request_duration_seconds_bucket{route=\"web\",upstream=\"svc\",le=\"0.0005\"} 0"));
  CHECK(has_line(out, "gateway_request_duration_seconds_bucket{route=\"web\",upstream=\"svc\",le=\"0.001\"} 2"));
  CHECK(has_line(out, "gateway_request_duration_seconds_bucket{route=\"web\",upstream=\"svc\",le=\"+Inf\"} 2"));
  CHECK(has_line(out, "gateway_request_duration_seconds_count{route=\"web\",upstream=\"svc\"} 2"));

  // Backend latency only for series that observed one.
  CHECK(has_line(out, "gateway_backend_latency_seconds_bucket{route=\"api\",upstream=\"svc\",le=\"0.025\"} 0"));
  CHECK(has_line(out, "gateway_backend_latency_seconds_bucket{route=\"api\",upstream=\"svc\",le=\"0.05\"} 1"));
  CHECK(has_line(out, "gateway_backend_latency_seconds_bucket{route=\"api\",upstream=\"svc\",le=\"0.5\"} 2"));
  CHECK(has_line(out, "gateway_backend_latency_seconds_bucket{route=\"api\",upstream=\"svc\",le=\"+Inf\"} 2"));
  CHECK(has_line(out, "gateway_backend_latency_seconds_sum{route=\"api\",upstream=\"svc\"} 0.55"));
  CHECK(has_line(out, "gateway_backend_latency_seconds_count{route=\"api\",upstream=\"svc\"} 2"));
  CHECK(out.find("gateway_backend_latency_seconds_count{route=\"web\"") == std::string::npos);

  CHECK(has_line(out, "gateway_active_connections 3"));

  CHECK(has_line(out, "gateway_backend_errors_total{upstream=\"svc\",kind=\"connect\"} 2"));
  CHECK(has_line(out, "gateway_backend_errors_total{upstream=\"svc\",kind=\"timeout\"} 0"));
  CHECK(has_line(out, "gateway_backend_errors_total{upstream=\"svc\",kind=\"invalid_response\"} 0"));
  CHECK(has_line(out, "gateway_backend_errors_total{upstream=\"svc\",kind=\"reset\"} 1"));
  CHECK(count_prefix(out, "gateway_backend_errors_total{") == 4);

  // Every family's HELP and TYPE present exactly once.
  for (const char* fam : {"gateway_requests_total", "gateway_request_duration_seconds",
                          "gateway_backend_latency_seconds", "gateway_active_connections",
                          "gateway_backend_errors_total"}) {
    INFO(fam);
    CHECK(count_prefix(out, std::string("# HELP ") + fam + " ") == 1);
    CHECK(count_prefix(out, std::string("# TYPE ") + fam + " ") == 1);
  }
  CHECK(has_line(out, "# TYPE gateway_requests_total counter"));
  CHECK(has_line(out, "# TYPE gateway_request_duration_seconds histogram"));
  CHECK(has_line(out, "# TYPE gateway_backend_latency_seconds histogram"));
  CHECK(has_line(out, "# TYPE gateway_active_connections gauge"));
  CHECK(has_line(out, "# TYPE gateway_backend_errors_total counter"));
  CHECK(out.back() == '\n');
}

TEST_CASE("render_prometheus: buckets are cumulative and +Inf equals count", "[metrics]") {
  WorkerMetrics w;
  const std::uint32_t s = w.route_slot("r", "u");
  const double samples[] = {0.0001, 0.003, 0.003, 0.02, 0.2, 0.2, 0.7, 3, 7, 11, 100};
  for (double d : samples) w.request_done(s, 200, d);
  const std::string out = render_prometheus({w.data()});
  const std::string prefix = "gateway_request_duration_seconds_bucket{route=\"r\",upstream=\"u\",le=";
  std::vector<std::uint64_t> values;
  std::vector<std::string> les;
  for (const std::string& l : lines_of(out)) {
    if (l.rfind(prefix, 0) != 0) continue;
    const std::size_t q = l.find('"', prefix.size() + 1);
    les.push_back(l.substr(prefix.size() + 1, q - prefix.size() - 1));
    values.push_back(std::stoull(l.substr(l.rfind(' ') + 1)));
  }
  CHECK(les == std::vector<std::string>{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                        "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"});
  CHECK(values == std::vector<std::uint64_t>{1, 1, 1, 3, 3, 4, 4, 4, 6, 6, 7, 7, 8, 9, 11});
  CHECK(has_line(out, "gateway_request_duration_seconds_count{route=\"r\",upstream=\"u\"} 11"));
}

TEST_CASE("render_prometheus: label values escape quotes, backslashes and newlines", "[metrics]") {
  WorkerMetrics w;
  const std::uint32_t s = w.route_slot("a\"b\\c\nd", "up\"1");
  w.request_done(s, 200, 0.001);
  w.backend_error(w.upstream_slot("x\\y\n\"z\""), BackendError::reset);
  const std::string out = render_prometheus({w.data()});
  INFO(out);
  CHECK(has_line(out, "gateway_requests_total{route=\"a\\\"b\\\\c\\nd\",upstream=\"up\\\"1\",status=\"200\"} 1"));
  CHECK(has_line(out,
                 "gateway_request_duration_seconds_count{route=\"a\\\"b\\\\c\\nd\",upstream=\"up\\\"1\"} 1"));
  CHECK(has_line(out, "gateway_backend_errors_total{upstream=\"x\\\\y\\n\\\"z\\\"\",kind=\"reset\"} 1"));
  // No raw newline inside a sample line: every line starts with a metric name or '#'.
  for (const std::string& l : lines_of(out)) {
    INFO(l);
    CHECK((l.rfind("gateway_", 0) == 0 || l.rfind("# ", 0) == 0));
  }
}

TEST_CASE("render_prometheus: unrouted requests use empty labels; negative gauges sum", "[metrics]") {
  WorkerMetrics w1, w2;
  w1.request_done(WorkerMetrics::kNoRoute, 404, 0.001);
  w2.request_done(WorkerMetrics::kNoRoute, 404, 0.001);
  w1.connection_opened();
  w2.connection_closed();
  w2.connection_closed();
  const std::string out = render_prometheus({w1.data(), w2.data()});
  CHECK(has_line(out, "gateway_requests_total{route=\"\",upstream=\"\",status=\"404\"} 2"));
  CHECK(has_line(out, "gateway_active_connections -1"));
}

TEST_CASE("metrics: custom series registered by other layers are summed per label set", "[metrics]") {
  lg::WorkerMetrics a, b;
  const auto sa = a.series("gateway_upstream_retries_total", "Retries.", "upstream=\"users\"");
  const auto sb = b.series("gateway_upstream_retries_total", "Retries.", "upstream=\"users\"");
  const auto so = b.series("gateway_upstream_retries_total", "Retries.", "upstream=\"orders\"");
  const auto g = a.series("gateway_things", "A gauge.", "", true);
  CHECK(a.series("gateway_upstream_retries_total", "Retries.", "upstream=\"users\"") == sa);  // found, not duplicated
  a.add(sa, 2);
  b.add(sb);
  b.add(so, 5);
  a.set(g, 7);
  const std::string text = lg::render_prometheus({a.data(), b.data()});
  CHECK(text.find("# TYPE gateway_upstream_retries_total counter\n") != std::string::npos);
  CHECK(text.find("gateway_upstream_retries_total{upstream=\"users\"} 3\n") != std::string::npos);
  CHECK(text.find("gateway_upstream_retries_total{upstream=\"orders\"} 5\n") != std::string::npos);
  CHECK(text.find("# TYPE gateway_things gauge\ngateway_things 7\n") != std::string::npos);
}
