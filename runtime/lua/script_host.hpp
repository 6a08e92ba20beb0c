// What a running script can see and change of its request: implemented by the proxy
// (ClientConnection), called by the gw bindings. Plain C++: no Lua types cross this boundary.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lua/vm.hpp"

namespace lg {
struct SharedState;
}

namespace lg::lua {

using HeaderPair = std::pair<std::string_view, std::string_view>;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One sub-request of gw.http.request / gw.http.multi, to a named upstream of the snapshot.
struct HttpCall {
  std::uint32_t upstream = 0;  // index into the snapshot's upstreams
  std::string method = "GET";
  std::string path = "/";      // origin-form, may carry "?query"
  HeaderList headers;
  std::string body;
  bool has_body = false;
  std::int64_t timeout_ms = 0;  // whole call (connect + send + response); 0: the upstream's read timeout
  std::uint64_t max_body = 0;   // response body limit (0: limits.max_body_bytes)
};

struct HttpResult {
  int status = 0;          // 0 when the call failed
  HeaderList headers;      // names lower-cased
  std::string body;
  std::string error;       // "timeout", "connect failed", ... when status == 0
};

// What a waiting host call is waiting for (what its resume pushes).
enum class Wait : std::uint8_t { none, sleep, http_one, http_multi, body };

class ScriptHost {
 public:
  virtual Phase phase() const = 0;

  // The client's request, as received (path also normalized). All phases.
  virtual std::string_view req_method() const = 0;
  virtual std::string_view req_path() const = 0;      // normalized, used for routing
  virtual std::string_view req_raw_path() const = 0;  // as received, without the query
  virtual std::string_view req_query() const = 0;     // raw, without '?'
  virtual std::string_view req_host() const = 0;
  virtual std::string_view req_scheme() const = 0;
  virtual std::string_view req_client_ip() const = 0;
  // The verified TLS client certificate's subject (RFC 2253); empty (nil in Lua) when none.
  virtual std::string_view req_client_cert_subject() const { return {}; }
  virtual std::string_view request_id() const = 0;
  virtual std::size_t req_header_count() const = 0;
  virtual HeaderPair req_header(std::size_t i) const = 0;  // names as received

  // What goes upstream. rewrite and access phases.
  virtual void up_set_header(std::string_view name, std::string_view value, bool add) = 0;
  virtual void up_clear_header(std::string_view name) = 0;
  virtual void up_set_path(std::string_view path) = 0;
  virtual void up_set_query(std::string_view query) = 0;
  virtual bool up_set_upstream(std::string_view upstream_name) = 0;  // false: unknown name

  // Answer without going upstream. rewrite and access phases; the handler's phase ends.
  virtual void exit(int status, std::string body, std::string_view content_type,
                    std::vector<std::pair<std::string, std::string>> headers) = 0;
  virtual bool exited() const = 0;

  // The upstream's response. response phase (status and headers readable in log too).
  virtual int resp_status() const = 0;
  virtual std::size_t resp_header_count() const = 0;
  virtual HeaderPair resp_header(std::size_t i) const = 0;
  virtual void resp_set_header(std::string_view name, std::string_view value) = 0;
  virtual void resp_clear_header(std::string_view name) = 0;
  // The whole response body, buffered for the body phase.
  virtual std::string_view resp_body() const = 0;
  virtual void set_resp_body(std::string_view body) = 0;

  // gw.consumer: who authenticated (set by an auth script in rewrite/access; logged).
  virtual void set_consumer(std::string_view id) = 0;
  virtual std::string_view consumer() const = 0;

  // Calls that wait (gw.sleep, gw.http.*, gw.request.get_body). start_* begins the wait and
  // returns "" (the binding then yields; the owner resumes the handler when the wait ends), or
  // a runtime error for `nil, err`. `wait` says what the resume pushes.
  virtual std::string start_sleep(std::int64_t ms) = 0;
  virtual std::string start_http(std::vector<HttpCall>& calls) = 0;  // results in http_results
  virtual int find_upstream(std::string_view name) const = 0;        // -1: unknown
  virtual std::string start_read_body() = 0;                         // then req_body()
  virtual bool body_read() const = 0;                                // the body is buffered
  virtual std::string_view req_body() const = 0;
  virtual void up_set_body(std::string_view body) = 0;
  virtual void up_set_method(std::string_view method) = 0;
  Wait wait = Wait::none;
  std::vector<HttpResult> http_results;
  Suspended suspended;        // the handler waiting now
  std::uint16_t waiting_at = 0;  // its attachment index in the route's script list

  // gw.ctx: one Lua table per request, shared by its phases and scripts (registry reference,
  // -1 until first used; the engine creates and releases it).
  int ctx_ref = -1;
  std::string_view script_name;  // the script running now, for logs
  SharedState* shared = nullptr;  // gw.shared and gw.ratelimit (process-wide)

 protected:
  ~ScriptHost() = default;
};

}  // namespace lg::lua
