// One gw.http sub-request: an HTTP/1.1 exchange with a named upstream on this worker's keep-alive
// pool, on behalf of a waiting script. The whole call (connect, send, response) is bounded by its
// timeout, the response by the body limit. The result is written into a lua::HttpResult and the
// owner is told once, with no callback after that; a cancelled call tells nobody.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "http/chunked.hpp"
#include "http/message.hpp"
#include "http/request_parser.hpp"
#include "lua/script_host.hpp"
#include "net/timer_wheel.hpp"
#include "upstream/upstream_connection.hpp"

namespace lg {

class Worker;
struct PinnedSnapshot;
struct TargetState;

class SubRequestOwner {
 public:
  virtual void on_subrequest_done(std::size_t index) = 0;

 protected:
  ~SubRequestOwner() = default;
};

class SubRequest final : public Timed, public UpstreamUser {
 public:
  // `call` and `out` must stay valid until done or cancel(); `request_id` is sent as X-Request-ID.
  SubRequest(Worker& w, PinnedSnapshot& pin, const lua::HttpCall& call, lua::HttpResult& out, SubRequestOwner& owner,
             std::size_t index, std::string_view request_id);
  ~SubRequest() override;
  void start();
  void cancel();  // no callback afterwards; the object can be deleted (deferred) at once

  void on_timeout() override;
  void on_upstream_connected(int err) override;
  void on_upstream_read(int err, std::size_t n) override;
  void on_upstream_written(int err) override;

 private:
  void try_target();
  void send();
  void on_bytes();
  bool parse_head();
  bool take_body();
  void fail(const char* error, bool target_fault);
  void finish();
  void release_connection(bool reusable);

  Worker& w_;
  PinnedSnapshot& pin_;
  const lua::HttpCall& call_;
  lua::HttpResult& out_;
  SubRequestOwner& owner_;
  std::size_t index_;
  std::string head_;  // request head
  iovec iov_[2];      // head, body: valid until the write completes
  std::string request_id_;
  UpstreamConnection* up_ = nullptr;
  TargetState* target_ = nullptr;
  std::uint64_t tried_ = 0;
  std::uint64_t max_body_;
  std::uint64_t remaining_ = 0;
  http::BodyKind body_kind_ = http::BodyKind::none;
  http::HeadScan scan_;
  http::ChunkedDecoder chunks_;
  std::vector<http::Header> headers_;
  bool head_done_ = false;
  bool reusable_ = false;
  bool written_ = false;
  bool retried_stale_ = false;
  bool done_ = false;
};

}  // namespace lg
