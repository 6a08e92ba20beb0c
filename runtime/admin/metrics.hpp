// Metrics registry: one instance per worker, written only by its worker (no locks, no atomics
// on the request path). A scrape copies each worker's data on that worker's thread and merges.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lg {

struct Histogram {
  static constexpr double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,   5,    10};
  static constexpr std::size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);
  std::uint64_t counts[kBuckets + 1] = {};  // last = +Inf
  double sum = 0;
  std::uint64_t count = 0;
  void observe(double seconds);
  void merge(const Histogram& o);
};

enum class BackendError : std::uint8_t { connect, timeout, invalid_response, reset, count_ };
const char* backend_error_name(BackendError e);

struct RouteSeries {
  std::string route;     // "" for requests that matched no route
  std::string upstream;
  std::vector<std::pair<std::uint16_t, std::uint64_t>> by_status;
  Histogram duration;
  Histogram backend;
};

struct UpstreamSeries {
  std::string upstream;
  std::uint64_t errors[static_cast<int>(BackendError::count_)] = {};
};

// A counter or gauge registered by any layer (scripts, rate limits, retries, ...), with a fixed
// label set. Series with the same name and labels are summed over workers on scrape.
struct CustomSeries {
  std::string name;    // e.g. "gateway_upstream_retries_total"
  std::string help;
  std::string labels;  // rendered pairs: upstream="users" (may be empty)
  bool gauge = false;
  double value = 0;
};

struct MetricsData {
  std::vector<CustomSeries> custom;
  std::vector<RouteSeries> routes;
  std::vector<UpstreamSeries> upstreams;
  std::int64_t active_connections = 0;
};

class WorkerMetrics {
 public:
  WorkerMetrics();
  // Slot lookups happen when a snapshot is published to the worker, not per request.
  std::uint32_t route_slot(const std::string& route, const std::string& upstream);
  std::uint32_t upstream_slot(const std::string& upstream);
  static constexpr std::uint32_t kNoRoute = 0;

  void request_done(std::uint32_t route_slot, std::uint16_t status, double seconds);
  void backend_latency(std::uint32_t route_slot, double seconds) { data_.routes[route_slot].backend.observe(seconds); }
  void backend_error(std::uint32_t upstream_slot, BackendError e) {
    data_.upstreams[upstream_slot].errors[static_cast<int>(e)]++;
  }
  // Registers (or finds) a custom series on this worker: the slow path, at snapshot install.
  std::uint32_t series(const std::string& name, const std::string& help, const std::string& labels,
                       bool gauge = false);
  void add(std::uint32_t slot, double v = 1) { data_.custom[slot].value += v; }
  // Adds 1 to a custom series resolved on its first event and cached in `slot` (the caller's,
  // kUnresolved until then): per-request counters pay the name/label lookup once, and the series
  // appears in /metrics with its first event, as with series() + add().
  static constexpr std::uint32_t kUnresolved = UINT32_MAX;
  template <class LabelsFn>
  void add_lazy(std::uint32_t& slot, const std::string& name, const std::string& help, LabelsFn&& labels) {
    if (slot == kUnresolved) slot = series(name, help, labels());
    add(slot);
  }
  void set(std::uint32_t slot, double v) { data_.custom[slot].value = v; }

  void connection_opened() { ++data_.active_connections; }
  void connection_closed() { --data_.active_connections; }
  std::int64_t active_connections() const { return data_.active_connections; }
  const MetricsData& data() const { return data_; }

 private:
  MetricsData data_;
};

// Prometheus text exposition (version 0.0.4) of the merged data of every worker.
std::string render_prometheus(const std::vector<MetricsData>& workers);

}  // namespace lg
