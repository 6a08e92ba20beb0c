#include "admin/metrics.hpp"

#include <fmt/format.h>

#include <map>
#include <tuple>

namespace lg {

void Histogram::observe(double s) {
  std::size_t i = 0;
  while (i < kBuckets && s > kBounds[i]) ++i;
  counts[i]++;
  sum += s;
  count++;
}

void Histogram::merge(const Histogram& o) {
  for (std::size_t i = 0; i <= kBuckets; ++i) counts[i] += o.counts[i];
  sum += o.sum;
  count += o.count;
}

const char* backend_error_name(BackendError e) {
  switch (e) {
    case BackendError::connect: return "connect";
    case BackendError::timeout: return "timeout";
    case BackendError::invalid_response: return "invalid_response";
    case BackendError::reset: return "reset";
    default: return "other";
  }
}

WorkerMetrics::WorkerMetrics() { data_.routes.push_back(RouteSeries{}); }

std::uint32_t WorkerMetrics::route_slot(const std::string& route, const std::string& upstream) {
  for (std::uint32_t i = 1; i < data_.routes.size(); ++i)
    if (data_.routes[i].route == route && data_.routes[i].upstream == upstream) return i;
  RouteSeries s;
  s.route = route;
  s.upstream = upstream;
  data_.routes.push_back(std::move(s));
  return static_cast<std::uint32_t>(data_.routes.size() - 1);
}

std::uint32_t WorkerMetrics::upstream_slot(const std::string& upstream) {
  for (std::uint32_t i = 0; i < data_.upstreams.size(); ++i)
    if (data_.upstreams[i].upstream == upstream) return i;
  UpstreamSeries s;
  s.upstream = upstream;
  data_.upstreams.push_back(s);
  return static_cast<std::uint32_t>(data_.upstreams.size() - 1);
}

std::uint32_t WorkerMetrics::series(const std::string& name, const std::string& help, const std::string& labels,
                                    bool gauge) {
  for (std::uint32_t i = 0; i < data_.custom.size(); ++i)
    if (data_.custom[i].name == name && data_.custom[i].labels == labels) return i;
  data_.custom.push_back(CustomSeries{name, help, labels, gauge, 0});
  return static_cast<std::uint32_t>(data_.custom.size() - 1);
}

void WorkerMetrics::request_done(std::uint32_t slot, std::uint16_t status, double seconds) {
  RouteSeries& r = data_.routes[slot];
  r.duration.observe(seconds);
  for (auto& [st, n] : r.by_status)
    if (st == status) {
      ++n;
      return;
    }
  r.by_status.emplace_back(status, 1);
}

namespace {

std::string label_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void render_histogram(std::string& out, const char* name, const std::string& labels, const Histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, Histogram::kBounds[i], cumulative);
  }
  cumulative += h.counts[Histogram::kBuckets];
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, h.sum);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, h.count);
}

}  // namespace

std::string render_prometheus(const std::vector<MetricsData>& workers) {
  using Key = std::pair<std::string, std::string>;  // route, upstream
  std::map<std::tuple<std::string, std::string, std::uint16_t>, std::uint64_t> requests;
  std::map<Key, Histogram> duration, backend;
  std::map<std::string, UpstreamSeries> errors;
  std::map<std::string, std::pair<const CustomSeries*, std::map<std::string, double>>> custom;
  std::int64_t active = 0;
  for (const MetricsData& w : workers) {
    active += w.active_connections;
    for (const CustomSeries& c : w.custom) {
      auto& fam = custom[c.name];
      if (!fam.first) fam.first = &c;
      fam.second[c.labels] += c.value;
    }
    for (const RouteSeries& r : w.routes) {
      for (const auto& [st, n] : r.by_status) requests[{r.route, r.upstream, st}] += n;
      if (r.duration.count) duration[{r.route, r.upstream}].merge(r.duration);
      if (r.backend.count) backend[{r.route, r.upstream}].merge(r.backend);
    }
    for (const UpstreamSeries& u : w.upstreams) {
      UpstreamSeries& e = errors[u.upstream];
      e.upstream = u.upstream;
      for (int i = 0; i < static_cast<int>(BackendError::count_); ++i) e.errors[i] += u.errors[i];
    }
  }
  std::string out;
  out += "# HELP gateway_requests_total Requests answered, by route, upstream and status.\n";
  out += "# TYPE gateway_requests_total counter\n";
  for (const auto& [k, n] : requests)
    out += fmt::format("gateway_requests_total{{route=\"{}\",upstream=\"{}\",status=\"{}\"}} {}\n",
                       label_escape(std::get<0>(k)), label_escape(std::get<1>(k)), std::get<2>(k), n);
  out += "# HELP gateway_request_duration_seconds Time from the first byte of a request to the end of its response.\n";
  out += "# TYPE gateway_request_duration_seconds histogram\n";
  for (const auto& [k, h] : duration)
    render_histogram(out, "gateway_request_duration_seconds",
                     fmt::format("route=\"{}\",upstream=\"{}\"", label_escape(k.first), label_escape(k.second)), h);
  out += "# HELP gateway_backend_latency_seconds Time from sending a request upstream to its response head.\n";
  out += "# TYPE gateway_backend_latency_seconds histogram\n";
  for (const auto& [k, h] : backend)
    render_histogram(out, "gateway_backend_latency_seconds",
                     fmt::format("route=\"{}\",upstream=\"{}\"", label_escape(k.first), label_escape(k.second)), h);
  out += "# HELP gateway_active_connections Open client connections.\n";
  out += "# TYPE gateway_active_connections gauge\n";
  out += fmt::format("gateway_active_connections {}\n", active);
  out += "# HELP gateway_backend_errors_total Failed exchanges with upstream targets, by kind.\n";
  out += "# TYPE gateway_backend_errors_total counter\n";
  for (const auto& [name, u] : errors)
    for (int i = 0; i < static_cast<int>(BackendError::count_); ++i)
      out += fmt::format("gateway_backend_errors_total{{upstream=\"{}\",kind=\"{}\"}} {}\n", label_escape(name),
                         backend_error_name(static_cast<BackendError>(i)), u.errors[i]);
  for (const auto& [name, fam] : custom) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.first->help, name,
                       fam.first->gauge ? "gauge" : "counter");
    for (const auto& [labels, value] : fam.second) {
      if (labels.empty()) out += fmt::format("{} {}\n", name, value);
      else out += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  return out;
}

}  // namespace lg
