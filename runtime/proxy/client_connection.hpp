// One client connection and the requests on it, start to end: read and parse a head, route it,
// proxy it to an upstream (upstream_exchange.cpp), write the response, then keep-alive or close.
//
// Phases (one at a time; each names what completes it):
//   idle               waiting for the first byte of a request          -> client read
//   reading_head       head incomplete                                  -> client read
//   connecting         upstream connect                                 -> on_upstream_connected
//   sending_request    head/body going upstream, body from the client   -> upstream write, client read
//   awaiting_response  request sent, waiting for the response head      -> on_upstream_read
//   sending_response   body streaming upstream -> client                -> client write, upstream read
//   tunnel             after 101: bytes both ways until either closes
//   responding         writing a gateway-generated response             -> client write
//   lingering          closing: answer sent, discarding input until EOF or a short deadline
//   scripting          a script handler waits (gw.http, gw.sleep)           -> on_script_wake
//   reading_body       reading the request body for a script              -> client read
//   policing           a native policy waits (Redis: rate limit, jti; a JWKS refresh) -> on_policy_wake
// Errors are values: no exception crosses this class. The object deletes itself (deferred on the
// reactor) after close_now().
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "admin/metrics.hpp"
#include "http/chunked.hpp"
#include "http/message.hpp"
#include "http/request_parser.hpp"
#include "lua/engine.hpp"
#include "net/buffer.hpp"
#include "net/stream.hpp"
#include "net/timer_wheel.hpp"
#include "proxy/exchange.hpp"
#include "proxy/script_wait.hpp"
#include "upstream/upstream_connection.hpp"

namespace lg {

class Worker;
struct PinnedSnapshot;
struct RouteConfig;
struct TargetState;

class ClientConnection final : public Timed, public StreamUser, public UpstreamUser, public ScriptWaitOwner,
                               public policy::PolicyWaitOwner {
 public:
  // `tls`: the listener's TLS context (null for plain HTTP).
  ClientConnection(Worker& w, int fd, const sockaddr_storage& peer, const std::shared_ptr<const TlsContext>& tls);
  ~ClientConnection() override;
  void start();
  void drain();  // the worker is draining: close if idle, else close after this response
  void abort();  // hard stop

  void on_timeout() override;
  // client stream
  void on_read(Stream& s, int err, std::size_t n) override;
  void on_written(Stream& s, int err) override;
  void provide_read_buffer(Stream& s, char*& buf, std::size_t& len) override;
  void on_tls_ready(Stream& s) override;
  void answer_plain_http_on_tls();
  // TLS facts of this connection (policies, scripts)
  std::string_view client_cert_subject() const { return client_.tls_peer_subject(); }
  // upstream connection
  void on_upstream_connected(int err) override;
  void on_upstream_read(int err, std::size_t n) override;
  void on_upstream_written(int err) override;
  // scripts that wait (script_phases.cpp, script_body.cpp)
  void on_script_wake() override;
  std::string read_request_body() override;
  // a policy that waited (Redis: a rate limit or a jti lookup; a JWKS refresh)
  void on_policy_wake() override;

 private:
  enum class Phase : std::uint8_t {
    idle, reading_head, connecting, sending_request, awaiting_response, sending_response,
    tunnel, responding, lingering, scripting, reading_body, policing, closed
  };
  // What follows a request body read for scripts.
  enum class BodyThen : std::uint8_t { resume_script, continue_request };
  // What the client write in flight is, so its completion knows what comes next.
  enum class ClientWrite : std::uint8_t { none, local_answer, continue_100, response_part, tunnel };

  // client_connection.cpp: the client side
  void read_client();
  void on_head_bytes();
  void handle_request();
  void continue_request();
  void prepare_upstream_head();
  void respond_error(std::uint16_t status, const char* message, bool close, std::uint16_t allow = 0);
  // A response the gateway builds itself into x_->out_head: prepare (status, head consumed,
  // keep-alive decided; returns whether to close), write the head, then send.
  bool prepare_local_answer(std::uint16_t status, bool close);
  void send_local_answer();
  void finish_request();
  void reset_for_next_request();
  void close_gracefully();
  void close_now();
  void set_deadline(std::int64_t ms_from_now);
  void account_request();
  void write_access_record();
  void release_exchange();
  void cancel_policy_wait();
  // script phases (script_phases.cpp)
  // native policies (policy_phase.cpp): false when the request was answered
  bool run_policies(const policy::RoutePolicies& rp);
  void respond_policy(policy::PolicyRequest& r);
  bool run_policy_chain(const policy::RoutePolicies& rp, std::size_t from);  // false: answered or waiting
  bool park_policy(std::size_t i);  // always false (waiting)
  void count_bypass();
  std::string route_label() const;  // route="<name>", for the policy counters
  void after_policies();  // the scripts, then the upstream
  bool run_request_scripts();  // rewrite + access; false when answered or waiting
  bool run_request_phases(lua::Phase from, bool resuming);
  bool settle_phase(const lua::PhaseReport& r, lua::Phase p);
  void enter_script_wait(lua::Phase p);
  void keep_request_head();
  void watch_client();
  bool run_response_scripts(const http::ResponseHead& resp);  // false when answered (500) or waiting
  void run_log_scripts();
  void script_failed(const lua::PhaseReport& report);
  void respond_script_exit();
  // script_body.cpp
  void start_body_read(BodyThen then);
  void on_script_body_bytes();
  void start_buffered_response(const http::ResponseHead& resp);  // the route has body handlers
  void collect_response_body();
  void send_buffered_response();
  void assign_request_id(std::string_view client_value);
  void write_client(ClientWrite kind, iovec* iov, std::size_t n);
  void write_client(ClientWrite kind, const void* p, std::size_t n);
  Exchange& exchange();  // acquires the pooled scratch on first use in a request

  // upstream_exchange.cpp: the upstream side
  void start_upstream();
  void attach_upstream(UpstreamConnection* uc, bool pooled);
  void send_request_part();
  void send_continue_then_read_body();
  void on_response_bytes();
  void start_response(const http::ResponseHead& resp);
  void deliver_response(const http::ResponseHead& resp);
  void send_response_part();
  void on_response_part_written(int err);
  void upstream_failed(BackendError kind, std::uint16_t status, const char* message);
  void release_upstream(bool reusable);
  bool can_retry() const;
  void start_tunnel(const http::ResponseHead& resp);
  void pump_client_to_upstream();
  void pump_upstream_to_client();
  // Append body spans (chunk-framed when needed) to iov_; return the input bytes they cover.
  std::size_t frame_request_body(std::size_t& iov_n, http::ParseResult& err);
  std::size_t frame_response_body(std::size_t& iov_n, bool& finished, http::ParseResult& err);
  std::int64_t connect_timeout_ms() const;
  std::int64_t read_timeout_ms() const;
  std::int64_t write_timeout_ms() const;

  Worker& w_;
  Stream client_;
  Phase phase_ = Phase::idle;
  ClientWrite client_write_ = ClientWrite::none;

  Buffer rbuf_;          // client bytes; a pool block only while bytes are there or expected
  Exchange* x_ = nullptr;  // pooled request scratch, held while a request is in flight
  http::HeadScan scan_;
  http::RequestHead head_;
  http::ChunkedDecoder req_chunks_;
  http::ChunkedDecoder resp_chunks_;
  http::HeadScan resp_scan_;

  // The request in progress
  PinnedSnapshot* pin_ = nullptr;
  const RouteConfig* route_ = nullptr;
  std::uint32_t upstream_index_ = 0;
  std::uint32_t metrics_slot_ = 0;
  std::uint16_t method_bit_ = 0;
  std::uint16_t status_ = 0;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool websocket_ = false;
  bool expect_continue_ = false;
  bool drain_requested_ = false;
  bool in_request_ = false;
  bool head_unconsumed_ = false;    // the parsed head still sits at the front of rbuf_
  bool scripted_ = false;           // the route has scripts: x_->script holds their state
  bool has_policies_ = false;       // the route has native policies: x_->policy* hold their decisions
  bool buffering_ = false;          // the response body is collected for the body phase
  std::uint32_t route_index_ = 0;
  std::uint32_t policy_index_ = 0;  // the policy that waits (Phase::policing)
  lua::Phase waiting_phase_ = lua::Phase::rewrite;  // the phase a waiting handler belongs to
  BodyThen body_then_ = BodyThen::resume_script;
  http::ResponseHead saved_resp_;   // the upstream's head while a response handler waits
  bool accounted_ = true;           // the request in progress was logged and counted
  bool response_started_ = false;   // bytes of a response reached the client
  bool request_body_done_ = true;
  bool early_response_ = false;     // the upstream answered before the body was sent
  bool early_error_ = false;
  bool waiting_on_client_ = false;  // which side a sending_* phase is blocked on
  bool head_sent_ = false;          // the upstream has the request head (retries resend it)
  bool sent_100_ = false;
  bool resp_head_pending_ = false;  // out_head_ goes out with the first body part
  bool resp_chunked_out_ = false;
  bool head_request_ = false;
  bool upstream_reusable_ = false;
  bool upstream_eof_ = false;
  bool client_eof_ = false;         // tunnel: the client half-closed
  bool last_connect_timed_out_ = false;  // all targets failed: 504 if the last one timed out
  bool resp_finished_ = false;      // the response part in flight ends the body
  http::BodyKind req_body_ = http::BodyKind::none;
  http::BodyKind resp_body_ = http::BodyKind::none;
  std::uint64_t req_remaining_ = 0;
  std::uint64_t resp_remaining_ = 0;
  std::size_t req_consumed_ = 0;    // client bytes covered by the upstream write in flight
  std::size_t resp_consumed_ = 0;   // upstream bytes covered by the client write in flight
  std::size_t write_bytes_ = 0;     // size of the client write in flight
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::uint64_t tried_targets_ = 0;  // bitmask of targets tried for this request
  int target_idx_ = -1;
  int attempts_ = 0;
  std::uint64_t lingered_ = 0;
  std::uint32_t pipelined_ = 0;     // requests in a row that were already buffered when reached
  std::chrono::steady_clock::time_point t_start_, t_upstream_;
  double upstream_latency_s_ = -1;
  TargetState* target_ = nullptr;
  UpstreamConnection* up_ = nullptr;  // holds one reference while attached

  std::string method_;
  std::string path_;           // normalized path (routing, logs)
  char request_id_[129];
  std::uint8_t request_id_len_ = 0;
  char traceparent_[56];
  char client_ip_[48];
  std::uint8_t client_ip_len_ = 0;
  std::int64_t handshake_timeout_ms_ = 0;  // TLS listener: the first deadline
  bool tls_handshaking_ = false;           // counted in gateway_tls_handshakes_total when it ends
};

}  // namespace lg
