// One TCP connection to an upstream target. While pooled it keeps a read pending, so a target
// that closes an idle connection is noticed at once (the read completes) and the connection
// is dropped; when a request takes it, that same pending read delivers the response.
#pragma once
#include <cstdint>

#include "net/buffer.hpp"
#include "net/stream.hpp"
#include "net/timer_wheel.hpp"

namespace lg {

class Worker;
struct TargetState;

// Implemented by the party that uses a busy connection (a client connection's exchange).
// err: 0 or an errno value; a read with n == 0 and err == 0 is the upstream closing.
class UpstreamUser {
 public:
  virtual void on_upstream_connected(int err) = 0;
  virtual void on_upstream_read(int err, std::size_t n) = 0;
  virtual void on_upstream_written(int err) = 0;

 protected:
  ~UpstreamUser() = default;
};

class UpstreamConnection final : public Timed, public StreamUser {
 public:
  enum class State : std::uint8_t { connecting, busy, idle, closed };

  UpstreamConnection(Worker& w, TargetState& target);
  ~UpstreamConnection() override;

  void connect();     // completion -> owner->on_upstream_connected
  void start_read();  // no-op if a read is already pending; completion -> owner or idle check
  void write(iovec* iov, std::size_t n) { stream.write(iov, n); }  // iov stays valid until done
  void write_buffer(const void* p, std::size_t n) { stream.write_buffer(p, n); }
  void close();       // idempotent; no completion arrives afterwards
  void on_timeout() override;  // idle too long in the pool

  void add_ref() { ++refs_; }
  void release();  // the last reference schedules deletion on the reactor

  Stream stream;
  Buffer buf;
  TargetState& target;
  Worker& worker;
  UpstreamUser* owner = nullptr;  // set while busy or connecting
  State state = State::connecting;
  bool reused = false;            // taken from the pool (a failure may be a stale close: retry)
  std::uint32_t requests = 0;

 private:
  void on_read(Stream& s, int err, std::size_t n) override;
  void on_written(Stream& s, int err) override;
  void on_connected(Stream& s, int err) override;
  std::uint32_t refs_ = 1;  // the creator's reference
};

}  // namespace lg
