// A request as scripts see it (lua::ScriptHost): the request facts copied once when a scripted
// route is reached (so later phases do not depend on the read buffer), the changes scripts make
// to the upstream request and the response, and a gw.response.exit answer. Lives in the pooled
// Exchange: capacities are reused, nothing is allocated per request once warm.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "http/message.hpp"
#include "lua/async_bindings.hpp"
#include "lua/script_host.hpp"
#include "proxy/head_writers.hpp"
#include "proxy/script_wait.hpp"

namespace lg {

class ScriptRequest final : public lua::ScriptHost {
 public:
  // Request facts. Views into the connection's buffers while rewrite/access run (the head is
  // still in the read buffer then); copied into the owned strings below only when a response or
  // log handler will read them after the buffer has moved on.
  lua::Phase current = lua::Phase::rewrite;
  std::string_view method, path, raw_path, query, host, scheme = "http", client_ip, id;
  std::string_view cert_subject;  // TLS client certificate (the connection's, or own_subject)
  const std::vector<http::Header>* live_headers = nullptr;  // view mode
  std::vector<std::pair<std::string, std::string>> headers;  // copy mode
  std::string own_raw_path, own_query, own_host;
  const std::vector<UpstreamConfig>* upstreams = nullptr;  // of the pinned snapshot, for set_upstream

  // What scripts changed.
  HeaderEdits up_edits, resp_edits;
  std::string up_path, up_query;
  bool path_set = false, query_set = false;
  int upstream_override = -1;
  // gw.response.exit
  bool has_exit = false;
  int exit_status = 0;
  std::string exit_body, exit_type;
  std::vector<std::pair<std::string, std::string>> exit_headers;
  // The upstream's response, during the response phase (views into the upstream buffer).
  int status = 0;
  const std::vector<http::Header>* resp_headers = nullptr;

  static constexpr std::size_t kKeepBytes = 64u << 10;  // body capacity kept across requests
  void reset();
  // Copies the facts still viewed from the connection (method, path, ip, id) into owned strings:
  // a log phase that waits outlives the connection's request.
  void own_views();
  std::string own_method, own_path, own_ip, own_id, own_subject;
  // `method`, `norm_path`, `client_ip` and `request_id` must outlive the request (the proxy's own
  // fields); the head's parts are copied when `copy` is set, else viewed.
  void bind_request(const http::RequestHead& head, std::string_view method, std::string_view norm_path,
                    std::string_view client_ip, std::string_view request_id, bool copy);

  lua::Phase phase() const override { return current; }
  std::string_view req_method() const override { return method; }
  std::string_view req_path() const override { return path; }
  std::string_view req_raw_path() const override { return raw_path; }
  std::string_view req_query() const override { return query; }
  std::string_view req_host() const override { return host; }
  std::string_view req_scheme() const override { return scheme; }
  std::string_view req_client_ip() const override { return client_ip; }
  std::string_view req_client_cert_subject() const override { return cert_subject; }
  std::string_view request_id() const override { return id; }
  std::size_t req_header_count() const override { return live_headers ? live_headers->size() : headers.size(); }
  lua::HeaderPair req_header(std::size_t i) const override {
    if (live_headers) return {(*live_headers)[i].name, (*live_headers)[i].value};
    return {headers[i].first, headers[i].second};
  }

  void up_set_header(std::string_view name, std::string_view value, bool add) override;
  void up_clear_header(std::string_view name) override;
  void up_set_path(std::string_view p) override;
  void up_set_query(std::string_view q) override;
  bool up_set_upstream(std::string_view name) override;

  void exit(int status, std::string body, std::string_view content_type,
            std::vector<std::pair<std::string, std::string>> headers) override;
  bool exited() const override { return has_exit; }

  int resp_status() const override { return status; }
  std::size_t resp_header_count() const override { return resp_headers ? resp_headers->size() : 0; }
  lua::HeaderPair resp_header(std::size_t i) const override {
    return {(*resp_headers)[i].name, (*resp_headers)[i].value};
  }
  void resp_set_header(std::string_view name, std::string_view value) override;
  std::string_view resp_body() const override { return body; }
  void set_resp_body(std::string_view b) override { body.assign(b); }
  std::string body;  // the buffered response body (body phase)
  std::vector<std::pair<std::string, std::string>> saved_resp_headers;  // for the rebuilt head
  void set_consumer(std::string_view id) override { consumer_id.assign(id); }
  std::string_view consumer() const override { return consumer_id; }
  std::string consumer_id;
  void resp_clear_header(std::string_view name) override;

  // Waiting calls (see lua::ScriptHost), carried out by `io` for the owner bound to it.
  std::string start_sleep(std::int64_t ms) override;
  std::string start_http(std::vector<lua::HttpCall>& calls) override;
  std::int64_t wait_limit_ms = 60'000;  // scripts.wait_limit: all of a request's waits together
  std::int64_t wait_deadline_ms = 0;    // set by the first wait
  int find_upstream(std::string_view name) const override;
  std::string start_read_body() override;
  bool body_read() const override { return req_body_ready; }
  std::string_view req_body() const override { return req_body_buf; }
  void up_set_body(std::string_view b) override;
  void up_set_method(std::string_view m) override;
  ScriptWait io;
  std::string req_body_buf;      // the client's body, read for gw.request.get_body
  bool req_body_ready = false;
  std::string up_body;           // gw.service.request.set_body
  bool body_set = false;
  std::string up_method;         // gw.service.request.set_method
  bool method_set = false;
  std::vector<http::Header> saved_req_headers;  // the head's fields while a handler waits
  std::vector<http::Header> saved_up_headers;   // the response head's fields while one waits
};

}  // namespace lg
