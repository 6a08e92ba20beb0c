// Shared helpers for unit tests that drive a Reactor on the test thread and talk over real
// 127.0.0.1 TCP connections (tests/unit/net/*, tests/unit/upstream/*). Header-only; include it
// with a relative path ("../support/net_support.hpp") and `using namespace lg::test;`.
//
// Blocking sockets handed out here have 2 s send/receive timeouts, so nothing can hang.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "net/reactor.hpp"
#include "net/timer_wheel.hpp"

namespace lg::test {

// ---- running the loop (bounded) ----------------------------------------------------------------

// Thrown from the tick to leave Reactor::run(). Reactor::stop() is sticky (run() returns at
// once ever after), so a helper that must run the same loop several times cannot use it.
struct LoopExit {};

namespace detail {
struct UntilCtx {
  const std::function<bool()>* cond;
  const std::function<void()>* each_tick;
  std::int64_t deadline;
  bool met;
};
}  // namespace detail

// Runs `r` on this thread until cond() holds (checked every ~1 ms, after `each_tick` if given)
// or `timeout_ms` pass. Uses the reactor's one tick slot; clears it afterwards. An exception
// other than the internal LoopExit (from a callback or the tick) propagates.
inline bool run_until(Reactor& r, const std::function<bool()>& cond, std::int64_t timeout_ms = 2000,
                      const std::function<void()>& each_tick = {}) {
  detail::UntilCtx ctx{&cond, &each_tick, monotonic_ms() + timeout_ms, false};
  r.set_tick(
      1,
      [](void* p) {
        auto* c = static_cast<detail::UntilCtx*>(p);
        if (*c->each_tick) (*c->each_tick)();
        if ((*c->cond)()) {
          c->met = true;
          throw LoopExit{};
        }
        if (monotonic_ms() >= c->deadline) throw LoopExit{};
      },
      &ctx);
  try {
    r.run();
  } catch (const LoopExit&) {
  } catch (...) {
    r.set_tick(0, nullptr, nullptr);
    throw;
  }
  r.set_tick(0, nullptr, nullptr);
  return ctx.met || cond();
}

inline void run_for(Reactor& r, std::int64_t ms) {
  run_until(r, [] { return false; }, ms);
}

// ---- sockets -------------------------------------------------------------------------------------

// An owned file descriptor (closed on destruction).
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int release() { return std::exchange(fd, -1); }
};

inline sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

inline void set_io_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A listening socket on 127.0.0.1 with an ephemeral port. rcvbuf > 0 is inherited by accepted sockets.
inline Fd listen_tcp(std::uint16_t& port, int rcvbuf = 0) {
  Fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(l.fd >= 0);
  if (rcvbuf > 0) ::setsockopt(l.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a = loopback(0);
  REQUIRE(::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(l.fd, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  return l;
}

// A port on 127.0.0.1 with nothing listening (bound once, then closed).
inline std::uint16_t closed_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  REQUIRE(::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);  // closed (never listened) when `s` goes out of scope
}

// Accepts one connection within `ms`; the accepted socket is blocking with 2 s I/O timeouts.
inline Fd accept_one(int lfd, int ms = 2000) {
  pollfd p{lfd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, ms) == 1);
  Fd c(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(c.fd >= 0);
  set_io_timeouts(c.fd, 2000);
  return c;
}

inline bool wait_readable(int fd, int ms = 2000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

inline void send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t w = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    REQUIRE(w > 0);
    s.remove_prefix(static_cast<std::size_t>(w));
  }
}

// Reads exactly n bytes (fewer on EOF, error or the socket's 2 s timeout).
inline std::string recv_exact(int fd, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

// 0 on EOF, -errno on error/timeout, else the byte count of one recv.
inline long recv_once(int fd, char* buf, std::size_t n) {
  const ssize_t r = ::recv(fd, buf, n, 0);
  return r < 0 ? -errno : static_cast<long>(r);
}

// One TCP connection on 127.0.0.1: `local` non-blocking (for Stream::adopt), `peer` blocking
// with 2 s timeouts.
struct TcpPair {
  Fd local, peer;
};

inline TcpPair tcp_pair(int peer_rcvbuf = 0) {
  std::uint16_t port = 0;
  Fd l = listen_tcp(port, peer_rcvbuf);
  Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(c.fd >= 0);
  sockaddr_in a = loopback(port);
  REQUIRE(::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  TcpPair p;
  p.peer = accept_one(l.fd);
  set_nonblocking(c.fd);
  p.local = std::move(c);
  return p;
}

}  // namespace lg::test
