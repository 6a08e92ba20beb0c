// One client connection and the requests on it, start to end: read and parse a head, route it,
// proxy it to an upstream (upstream_exchange.cpp), write the response, then keep-alive or close.
//
// Phases (one at a time; each names what completes it):
//   idle            waiting for the first byte of a request       -> client read
//   reading_head    head incomplete                               -> client read
//   connecting      upstream connect or pooled pick               -> on_upstream_connected
//   sending_request head/body going upstream, body from client    -> writes, client reads
//   awaiting_response  request sent, waiting for the response head  -> on_upstream_read
//   sending_response   body streaming upstream -> client          -> writes, upstream reads
//   tunnel          after 101: bytes both ways until either closes
//   responding      writing a gateway-generated response          -> client write
//   lingering       closing: response sent, discarding input until EOF or a short deadline
// Errors are values: no exception crosses this class.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "admin/metrics.hpp"
#include "http/chunked.hpp"
#include "http/message.hpp"
#include "http/request_parser.hpp"
#include "net/buffer.hpp"
#include "net/timer_wheel.hpp"
#include "upstream/upstream_connection.hpp"

namespace lg {

class Worker;
struct PinnedSnapshot;
struct RouteConfig;
struct WorkerGroup;

class ClientConnection final : public Timed, public UpstreamUser {
 public:
  ClientConnection(Worker& w, boost::asio::ip::tcp::socket sock);
  ~ClientConnection() override;
  void start();
  void drain();  // the worker is draining: close if idle, else close after this response
  void abort();  // hard stop (shutdown deadline passed)

  void on_timeout() override;
  void on_upstream_connected(const boost::system::error_code& ec) override;
  void on_upstream_read(const boost::system::error_code& ec, std::size_t n) override;

  void add_ref() { ++refs_; }
  void release() {
    if (--refs_ == 0) delete this;
  }

 private:
  enum class Phase : std::uint8_t {
    idle, reading_head, connecting, sending_request, awaiting_response, sending_response,
    tunnel, responding, lingering, closed
  };

  // client_connection.cpp: the client side
  void read_client();
  void on_client_read(const boost::system::error_code& ec, std::size_t n, bool small);
  void on_head_bytes();
  void handle_request();
  bool prepare_upstream_head(const RouteConfig& route, const WorkerGroup& group, std::string_view& hash_key);
  void respond_error(std::uint16_t status, const char* message, bool close, std::uint16_t allow = 0);
  void finish_request();
  void reset_for_next_request();
  void close_gracefully();
  void close_now();
  void set_deadline(std::int64_t ms_from_now);
  void account_request();
  void assign_request_id(std::string_view client_value);

  // upstream_exchange.cpp: the upstream side
  void start_upstream();
  void attach_upstream(UpstreamConnection* uc);
  void send_request_part();
  void on_request_part_written(const boost::system::error_code& ec, std::size_t consumed);
  void send_continue_then_read_body();
  void read_request_body();
  void on_request_body(const boost::system::error_code& ec, std::size_t n);
  void on_response_bytes();
  void start_response(const http::ResponseHead& resp);
  void send_response_part();
  void on_response_part_written(const boost::system::error_code& ec, std::size_t written, std::size_t consumed,
                                bool finished);
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
  boost::asio::ip::tcp::socket sock_;
  std::uint32_t refs_ = 1;  // the connection's own reference, dropped on close
  Phase phase_ = Phase::idle;

  Buffer rbuf_;          // client bytes; a pool block while a request is in progress
  char small_[1024];     // reads land here while idle, so idle connections hold no block
  http::HeadScan scan_;
  http::RequestHead head_;
  http::ChunkedDecoder req_chunks_;
  http::ChunkedDecoder resp_chunks_;

  // The request in progress
  PinnedSnapshot* pin_ = nullptr;
  const RouteConfig* route_ = nullptr;
  std::uint32_t route_index_ = 0;
  std::uint32_t upstream_index_ = 0;
  std::uint32_t metrics_slot_ = 0;
  std::uint16_t method_bit_ = 0;
  std::uint16_t status_ = 0;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool websocket_ = false;
  bool expect_continue_ = false;
  bool drain_requested_ = false;
  bool response_started_ = false;   // bytes of a response head reached the client
  bool request_body_done_ = true;
  bool early_response_ = false;     // the upstream answered before the body was sent
  bool resp_chunked_out_ = false;
  bool resp_done_ = false;
  bool head_request_ = false;
  http::BodyKind req_body_ = http::BodyKind::none;
  http::BodyKind resp_body_ = http::BodyKind::none;
  std::uint64_t req_remaining_ = 0;
  std::uint64_t resp_remaining_ = 0;
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::uint64_t tried_targets_ = 0;  // bitmask of targets tried for this request
  int attempts_ = 0;
  std::int64_t started_ms_ = 0;
  std::chrono::steady_clock::time_point t_start_, t_upstream_;
  double upstream_latency_s_ = -1;
  TargetState* target_ = nullptr;
  UpstreamConnection* up_ = nullptr;  // holds one reference while attached

  std::string method_;
  std::string path_;           // normalized path (routing, logs)
  std::string upstream_path_;  // after strip_prefix / rewrite
  std::string up_head_;        // request head for the upstream
  std::string out_head_;       // response head for the client (or a whole error response)
  char request_id_[129];
  std::uint8_t request_id_len_ = 0;
  char traceparent_[56];
  char client_ip_[48];
  std::uint8_t client_ip_len_ = 0;

  // Gather list for framed body writes: chunk headers live in chunk_hdr_.
  static constexpr std::size_t kMaxSpans = 16;
  std::array<boost::asio::const_buffer, 3 * kMaxSpans + 3> iov_;
  char chunk_hdr_[kMaxSpans + 1][20];
  bool tunnel_closing_ = false;
  bool waiting_on_client_ = false;  // which side a sending_* phase is blocked on
  bool accounted_ = true;           // the request in progress was logged and counted
  bool in_request_ = false;
  std::uint64_t lingered_ = 0;
  std::string hash_key_;            // consistent-hash key, kept for retries
  std::string host_line_;
  http::HeadScan resp_scan_;
  int target_idx_ = -1;
  bool head_sent_ = false;          // the upstream has the request head (retries resend it)
  bool sent_100_ = false;
  bool resp_head_pending_ = false;  // out_head_ goes out with the first body part
  bool upstream_reusable_ = false;
  bool upstream_eof_ = false;
  bool early_error_ = false;
  bool client_reading_ = false;           // "Host: ...\r\n\r\n", ends the upstream head
};

}  // namespace lg
