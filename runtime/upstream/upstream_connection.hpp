// One TCP connection to an upstream target. While pooled it keeps a read pending, so a target
// that closes an idle connection is noticed at once (the read completes) and the connection
// is dropped; when a request takes it, that same pending read delivers the response.
#pragma once
#include <cstdint>

#include <boost/asio/ip/tcp.hpp>

#include "net/buffer.hpp"
#include "net/timer_wheel.hpp"

namespace lg {

class Worker;
struct TargetState;

// Implemented by the party that uses a busy connection (a client connection's exchange).
class UpstreamUser {
 public:
  virtual void on_upstream_connected(const boost::system::error_code& ec) = 0;
  virtual void on_upstream_read(const boost::system::error_code& ec, std::size_t n) = 0;

 protected:
  ~UpstreamUser() = default;
};

class UpstreamConnection final : public Timed {
 public:
  enum class State : std::uint8_t { connecting, busy, idle, closed };

  UpstreamConnection(Worker& w, TargetState& target);
  ~UpstreamConnection() override;

  void connect();     // completion -> owner->on_upstream_connected
  void start_read();  // no-op if a read is already pending; completion -> owner or idle check
  void close();       // idempotent; pending operations complete with operation_aborted
  void on_timeout() override;  // idle too long in the pool

  void add_ref() { ++refs_; }
  void release() {
    if (--refs_ == 0) delete this;
  }

  boost::asio::ip::tcp::socket sock;
  Buffer buf;
  TargetState& target;
  Worker& worker;
  UpstreamUser* owner = nullptr;  // set while busy or connecting
  State state = State::connecting;
  bool reading = false;
  bool reused = false;            // taken from the pool (a failure may be a stale close: retry)
  std::uint32_t requests = 0;

 private:
  void on_read(const boost::system::error_code& ec, std::size_t n);
  std::uint32_t refs_ = 1;  // the creator's reference
};

// Keeps an UpstreamConnection alive while a handler is pending.
class UpstreamRef {
 public:
  explicit UpstreamRef(UpstreamConnection* c) : c_(c) { c_->add_ref(); }
  UpstreamRef(UpstreamRef&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  UpstreamRef(const UpstreamRef&) = delete;
  ~UpstreamRef() {
    if (c_) c_->release();
  }
  UpstreamConnection* operator->() const { return c_; }

 private:
  UpstreamConnection* c_;
};

}  // namespace lg
