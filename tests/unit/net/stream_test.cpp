// Stream: a non-blocking TCP socket on the reactor with its own readiness tracking. Every test
// uses a real 127.0.0.1 TCP connection: one end adopted (or connected) by a Stream, the other a
// plain blocking socket driven by the test (with 2 s socket timeouts, so nothing can hang).
#include "net/stream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "../support/net_support.hpp"
#include "net/reactor.hpp"
#include "net/timer_wheel.hpp"

// ---------------------------------------------------------------------------------------------
// recv() interposer: Stream reads with ::recv, and this definition in the test executable takes
// precedence over libc's. It forwards to the system call and, for one watched fd only, counts
// the calls and the ones that came back with EAGAIN — so "no read just to collect EAGAIN" can be
// asserted exactly. Every other fd passes straight through.
namespace {
std::atomic<int> g_watch_fd{-1};
std::atomic<int> g_recv_calls{0};
std::atomic<int> g_recv_eagain{0};
}  // namespace

extern "C" ssize_t recv(int fd, void* buf, size_t n, int flags) {
  const long r = ::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
  if (fd == g_watch_fd.load(std::memory_order_relaxed)) {
    const int saved = errno;
    g_recv_calls.fetch_add(1, std::memory_order_relaxed);
    if (r < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) g_recv_eagain.fetch_add(1, std::memory_order_relaxed);
    errno = saved;
  }
  return static_cast<ssize_t>(r);
}

using namespace lg;
using namespace lg::test;

namespace {

struct RecvWatch {
  explicit RecvWatch(int fd) {
    g_recv_calls = 0;
    g_recv_eagain = 0;
    g_watch_fd = fd;
  }
  ~RecvWatch() { g_watch_fd = -1; }
  int calls() const { return g_recv_calls.load(); }
  int eagain() const { return g_recv_eagain.load(); }
};

// ---- sockets -------------------------------------------------------------------------------------

int get_int_opt(int fd, int level, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  ::getsockopt(fd, level, opt, &v, &len);
  return v;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// ---- the StreamUser under test -------------------------------------------------------------------

struct Event {
  char kind;  // 'r' on_read, 'w' on_written, 'c' on_connected
  int err;
  std::size_t n;
  std::string data;
  bool operator==(const Event& o) const { return kind == o.kind && err == o.err && n == o.n && data == o.data; }
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << e.kind << "(err=" << e.err;
  if (e.kind == 'r') os << ", n=" << e.n << ", \"" << e.data << "\"";
  return os << ")";
}

Event R(std::string data) { return {'r', 0, data.size(), std::move(data)}; }
Event Eof() { return {'r', 0, 0, {}}; }
Event W(int err = 0) { return {'w', err, 0, {}}; }
Event C(int err = 0) { return {'c', err, 0, {}}; }

class Recorder final : public StreamUser {
 public:
  explicit Recorder(std::size_t read_len = 4096) : buf(read_len) {}
  void start_read(Stream& s) { s.read(buf.data(), buf.size()); }

  std::vector<Event> events;
  std::vector<char> buf;
  std::function<void(Stream&, Event)> hook;  // runs after an event is recorded

  void on_read(Stream& s, int err, std::size_t n) override {
    add(s, {'r', err, n, std::string(buf.data(), n)});
  }
  void on_written(Stream& s, int err) override { add(s, {'w', err, 0, {}}); }
  void on_connected(Stream& s, int err) override { add(s, {'c', err, 0, {}}); }

 private:
  void add(Stream& s, Event e) {
    events.push_back(e);
    if (hook) hook(s, std::move(e));
  }
};

// The common start of a test: a Stream (default Recorder: 4096-byte reads) that adopted the
// local end of a fresh TcpPair. For TEST_CASE_METHOD: the body sees p, r, u and s, built in that
// order and destroyed in reverse, as the same four locals would be.
struct AdoptedStream {
  AdoptedStream() : AdoptedStream(0) {}
  // bufs > 0: the peer's receive buffer and the stream's send buffer (set before adopt) are that small.
  explicit AdoptedStream(int bufs) : p(tcp_pair(bufs)) {
    if (bufs > 0) ::setsockopt(p.local.fd, SOL_SOCKET, SO_SNDBUF, &bufs, sizeof bufs);
    REQUIRE(s.adopt(p.local.release()));
  }
  TcpPair p;
  Reactor r;
  Recorder u;
  Stream s{r, &u};
};

// AdoptedStream with small socket buffers on both sides of the stream's writes.
template <int Bytes>
struct SmallBufferStream : AdoptedStream {
  SmallBufferStream() : AdoptedStream(Bytes) {}
};

// A Stream (default Recorder) whose connect() to listener `l` (at `a`) was just issued. For
// TEST_CASE_METHOD, like AdoptedStream: the body sees port, l, r, u, s and a.
struct ConnectingStream {
  ConnectingStream() { s.connect(reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  std::uint16_t port = 0;
  Fd l = listen_tcp(port);
  Reactor r;
  Recorder u;
  Stream s{r, &u};
  const sockaddr_in a = loopback(port);
};

}  // namespace

// ---- reads -----------------------------------------------------------------------------------------

TEST_CASE_METHOD(AdoptedStream, "Stream read completes with the peer's bytes, delivered after read() returns",
                 "[stream]") {
  send_all(p.peer.fd, "hello");
  REQUIRE(wait_readable(s.fd()));

  u.start_read(s);
  CHECK(u.events.empty());  // the bytes were there, but the completion is never re-entrant
  CHECK(s.reading());
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == R("hello"));
  CHECK_FALSE(s.reading());
}

TEST_CASE_METHOD(AdoptedStream,
                 "Stream: after a short read the next read waits for the peer and costs no recv (no EAGAIN)",
                 "[stream]") {
  RecvWatch watch(s.fd());

  send_all(p.peer.fd, "hello");
  REQUIRE(wait_readable(s.fd()));
  u.start_read(s);
  CHECK(watch.calls() == 1);
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == R("hello"));

  // 5 < 4096: the socket is known to be drained. The next read is parked without touching it.
  u.start_read(s);
  CHECK(watch.calls() == 1);
  CHECK(s.reading());
  run_for(r, 100);
  CHECK(u.events.size() == 1);  // nothing arrived, nothing delivered
  CHECK(watch.calls() == 1);

  send_all(p.peer.fd, "world!");
  REQUIRE(run_until(r, [&] { return u.events.size() == 2; }));
  CHECK(u.events[1] == R("world!"));
  CHECK(watch.calls() == 2);   // one recv per completed read
  CHECK(watch.eagain() == 0);  // and none just to learn the socket was empty
}

TEST_CASE_METHOD(AdoptedStream, "Stream: a read re-issued from on_read waits for the next bytes and completes in order",
                 "[stream]") {
  RecvWatch watch(s.fd());
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind == 'r' && e.n > 0) u.start_read(st);
  };

  u.start_read(s);  // the first read on a fresh socket may try once (readiness unknown)
  const int first_try = watch.calls();
  CHECK(first_try <= 1);
  for (int i = 0; i < 5; ++i) {
    const std::string msg = "msg-" + std::to_string(i);
    send_all(p.peer.fd, msg);
    REQUIRE(run_until(r, [&] { return u.events.size() == static_cast<std::size_t>(i + 1); }));
    CHECK(u.events.back() == R(msg));
    CHECK(s.reading());  // re-issued from the callback, parked on the drained socket
  }
  run_for(r, 30);
  CHECK(u.events.size() == 5);
  CHECK(watch.calls() == first_try + 5);
  CHECK(watch.eagain() == first_try);
}

TEST_CASE_METHOD(AdoptedStream, "Stream: EOF after data gives the data, then n == 0 and err == 0", "[stream]") {
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind == 'r' && e.n > 0) u.start_read(st);
  };
  send_all(p.peer.fd, "bye");
  REQUIRE(wait_readable(s.fd()));
  u.start_read(s);
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == R("bye"));

  ::shutdown(p.peer.fd, SHUT_WR);
  REQUIRE(run_until(r, [&] { return u.events.size() == 2; }));
  CHECK(u.events[1] == Eof());

  // Reading again after EOF completes again with EOF (the socket stays at end of stream).
  u.start_read(s);
  REQUIRE(run_until(r, [&] { return u.events.size() == 3; }));
  CHECK(u.events[2] == Eof());
}

TEST_CASE_METHOD(AdoptedStream, "Stream: EOF that arrives with the data is seen right after it", "[stream]") {
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind == 'r' && e.n > 0) u.start_read(st);
  };
  send_all(p.peer.fd, "last words");
  p.peer.reset();  // FIN right behind the data, before anything is read
  REQUIRE(wait_readable(s.fd()));
  u.start_read(s);
  REQUIRE(run_until(r, [&] { return u.events.size() == 2; }));
  CHECK(u.events[0] == R("last words"));
  CHECK(u.events[1] == Eof());
}

TEST_CASE("Stream: a large body then EOF arrives whole through small reads", "[stream]") {
  TcpPair p = tcp_pair();
  Reactor r;
  Recorder u(1000);
  Stream s(r, &u);
  REQUIRE(s.adopt(p.local.release()));
  const std::string body = pattern(1 << 20, 7);
  std::string got;
  bool eof = false;
  int errors = 0;
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind != 'r') return;
    if (e.err) ++errors;
    else if (e.n == 0) eof = true;
    else {
      got += e.data;
      u.start_read(st);
    }
  };
  u.start_read(s);
  std::thread writer([&] {
    std::string_view rest = body;
    while (!rest.empty()) {
      const ssize_t w = ::send(p.peer.fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (w <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(w));
    }
    ::shutdown(p.peer.fd, SHUT_WR);
  });
  const bool done = run_until(r, [&] { return eof || errors > 0; });
  writer.join();
  REQUIRE(done);
  CHECK(errors == 0);
  CHECK(got.size() == body.size());
  const bool same = got == body;
  CHECK(same);
}

TEST_CASE_METHOD(AdoptedStream, "Stream: a peer that resets the connection gives err ECONNRESET", "[stream]") {
  u.start_read(s);
  run_for(r, 10);
  REQUIRE(u.events.empty());
  linger lg_opt{1, 0};
  ::setsockopt(p.peer.fd, SOL_SOCKET, SO_LINGER, &lg_opt, sizeof lg_opt);
  p.peer.reset();  // RST
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == Event{'r', ECONNRESET, 0, {}});
}

// ---- writes ----------------------------------------------------------------------------------------

TEST_CASE_METHOD(SmallBufferStream<64 * 1024>,  // small receive buffer on the reader
                 "Stream: an 8 MiB write to a slow reader completes only after the reader took nearly all of it",
                 "[stream]") {
  constexpr std::size_t kTotal = 8u << 20;
  const std::string data = pattern(kTotal, 3);
  // Bytes that can sit between the writer's completion and the reader: both socket buffers
  // (as the kernel reports them, already doubled) plus one segment and the reader's own chunk.
  const std::size_t in_flight_max = static_cast<std::size_t>(get_int_opt(s.fd(), SOL_SOCKET, SO_SNDBUF)) +
                                    static_cast<std::size_t>(get_int_opt(p.peer.fd, SOL_SOCKET, SO_RCVBUF)) +
                                    256 * 1024;
  INFO("in_flight_max=" << in_flight_max);
  REQUIRE(in_flight_max < kTotal / 4);

  std::atomic<std::size_t> taken{0};
  std::atomic<bool> content_ok{true};
  std::thread reader([&] {
    std::vector<char> b(64 * 1024);
    std::size_t off = 0;
    int reads = 0;
    while (off < kTotal) {
      const ssize_t n = ::recv(p.peer.fd, b.data(), b.size(), 0);
      if (n <= 0) break;
      if (std::memcmp(b.data(), data.data() + off, static_cast<std::size_t>(n)) != 0) content_ok = false;
      off += static_cast<std::size_t>(n);
      taken = off;
      if (++reads % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // slow
    }
  });

  std::size_t taken_at_completion = 0;
  u.hook = [&](Stream&, const Event& e) {
    if (e.kind == 'w') taken_at_completion = taken.load();
  };
  s.write_buffer(data.data(), data.size());
  CHECK(u.events.empty());
  CHECK(s.writing());
  const bool done = run_until(r, [&] { return !u.events.empty(); }, 10000);
  reader.join();  // ends at kTotal bytes, or on its 2 s socket timeout
  REQUIRE(done);
  REQUIRE(u.events.size() == 1);
  CHECK(u.events[0] == W(0));
  CHECK_FALSE(s.writing());
  INFO("taken_at_completion=" << taken_at_completion);
  CHECK(taken_at_completion + in_flight_max >= kTotal);  // backpressure: not done before the reader drained it
  CHECK(taken.load() == kTotal);
  CHECK(content_ok.load());
}

TEST_CASE_METHOD(AdoptedStream, "Stream: a gather write arrives in order and empty iovecs are skipped", "[stream]") {
  const std::string a = "GET /v1/users/42 HTTP/1.1\r\n", b = "Host: api.test\r\n", c = "X-Id: 7\r\n", d = "\r\n";
  iovec iov[] = {make_iov(a.data(), a.size()), make_iov(nullptr, 0), make_iov(b.data(), b.size()),
                       make_iov(c.data(), c.size()), make_iov(b.data(), 0), make_iov(d.data(), d.size())};
  s.write(iov, 6);
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == W(0));
  CHECK(recv_exact(p.peer.fd, a.size() + b.size() + c.size() + d.size()) == a + b + c + d);
}

TEST_CASE_METHOD(SmallBufferStream<32 * 1024>, "Stream: a large gather write resumed mid-iovec arrives byte-exact",
                 "[stream]") {
  const std::size_t sizes[] = {300001, 1, 700000, 65537, 1048576, 3};
  std::vector<std::string> parts;
  std::string expected;
  for (std::size_t i = 0; i < 6; ++i) {
    parts.push_back(pattern(sizes[i], static_cast<unsigned>(i + 11)));
    expected += parts.back();
  }
  std::vector<iovec> iov;
  for (const auto& part : parts) iov.push_back(make_iov(part.data(), part.size()));

  std::string got;
  std::thread reader([&] {
    std::vector<char> b(7000);  // odd-sized reads
    while (got.size() < expected.size()) {
      const ssize_t n = ::recv(p.peer.fd, b.data(), b.size(), 0);
      if (n <= 0) break;
      got.append(b.data(), static_cast<std::size_t>(n));
    }
  });
  s.write(iov.data(), iov.size());
  const bool done = run_until(r, [&] { return !u.events.empty(); }, 10000);
  reader.join();
  REQUIRE(done);
  CHECK(u.events == std::vector<Event>{W(0)});
  CHECK(got.size() == expected.size());
  const bool same = got == expected;
  CHECK(same);
}

TEST_CASE_METHOD(AdoptedStream, "Stream: a write of zero bytes completes, deferred, with err 0", "[stream]") {
  iovec empty[] = {make_iov("x", 0)};
  s.write(empty, 1);
  CHECK(s.writing());
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == W(0));
  CHECK_FALSE(s.writing());
}

TEST_CASE_METHOD(AdoptedStream, "Stream: shutdown_send() sends EOF while the stream can still read", "[stream]") {
  s.write_buffer("done", 4);
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  s.shutdown_send();
  CHECK(recv_exact(p.peer.fd, 4) == "done");
  char c;
  CHECK(recv_once(p.peer.fd, &c, 1) == 0);  // EOF
  send_all(p.peer.fd, "late reply");
  u.start_read(s);
  REQUIRE(run_until(r, [&] { return u.events.size() == 2; }));
  CHECK(u.events[1] == R("late reply"));
}

// ---- connect ---------------------------------------------------------------------------------------

TEST_CASE("Stream: connect to a closed port gives on_connected(ECONNREFUSED), once", "[stream]") {
  Reactor r;
  Recorder u;
  Stream s(r, &u);
  const sockaddr_in a = loopback(closed_port());
  s.connect(reinterpret_cast<const sockaddr*>(&a), sizeof a);
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return !u.events.empty(); }));
  run_for(r, 50);
  CHECK(u.events == std::vector<Event>{C(ECONNREFUSED)});
}

TEST_CASE_METHOD(ConnectingStream, "Stream: connect, write, and a read parked until the server answers (no EAGAIN)",
                 "[stream]") {
  REQUIRE(s.is_open());
  RecvWatch watch(s.fd());
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return u.events.size() == 1; }));
  CHECK(u.events[0] == C(0));
  Fd server = accept_one(l.fd);

  s.write_buffer("ping", 4);
  u.start_read(s);  // nothing can be there yet: no recv
  CHECK(watch.calls() == 0);
  REQUIRE(run_until(r, [&] { return u.events.size() == 2; }));
  CHECK(u.events[1] == W(0));
  CHECK(recv_exact(server.fd, 4) == "ping");
  CHECK(watch.calls() == 0);

  send_all(server.fd, "pong");
  REQUIRE(run_until(r, [&] { return u.events.size() == 3; }));
  CHECK(u.events[2] == R("pong"));
  CHECK(watch.calls() == 1);
  CHECK(watch.eagain() == 0);
}

TEST_CASE("Stream: a connect that fails at once is still delivered from the loop, not from connect()",
          "[stream]") {
  Reactor r;
  Recorder u;
  Stream s(r, &u);
  const sockaddr_in a = loopback(80);
  s.connect(reinterpret_cast<const sockaddr*>(&a), sizeof a - 1);  // short address: EINVAL at once
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return !u.events.empty(); }));
  run_for(r, 20);
  CHECK(u.events == std::vector<Event>{C(EINVAL)});
}

// ---- close -----------------------------------------------------------------------------------------

TEST_CASE("Stream: close() after a connect that failed at once: no on_connected", "[stream]") {
  Reactor r;
  Recorder u;
  Stream s(r, &u);
  const sockaddr_in a = loopback(80);
  s.connect(reinterpret_cast<const sockaddr*>(&a), sizeof a - 1);  // EINVAL, delivery deferred
  s.close();
  run_for(r, 50);
  CHECK(u.events.empty());  // "after close() no callback arrives"
}

TEST_CASE_METHOD(ConnectingStream, "Stream: close() during a connect in progress: no on_connected", "[stream]") {
  s.close();
  CHECK_FALSE(s.is_open());
  run_for(r, 50);
  CHECK(u.events.empty());
}

TEST_CASE_METHOD(AdoptedStream, "Stream: close() in on_read while a write completion is deferred: no on_written",
                 "[stream]") {
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind != 'r') return;
    st.write_buffer("response", 8);  // goes out at once; its completion is queued
    CHECK(st.writing());
    st.close();
  };
  send_all(p.peer.fd, "request");
  u.start_read(s);
  REQUIRE(run_until(r, [&] { return !u.events.empty(); }));
  run_for(r, 50);
  CHECK(u.events == std::vector<Event>{R("request")});
  CHECK_FALSE(s.is_open());
  CHECK_FALSE(s.writing());
  CHECK_FALSE(s.reading());
  // The bytes were handed to the kernel before the close: the peer gets them, then EOF.
  CHECK(recv_exact(p.peer.fd, 8) == "response");
  char c;
  CHECK(recv_once(p.peer.fd, &c, 1) == 0);
}

TEST_CASE_METHOD(AdoptedStream, "Stream: close() in on_written while a read completion is deferred: no on_read",
                 "[stream]") {
  send_all(p.peer.fd, "already here");
  REQUIRE(wait_readable(s.fd()));
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind == 'w') st.close();
  };
  s.write_buffer("out", 3);  // completes at once: delivery queued first
  u.start_read(s);    // completes at once: delivery queued second
  CHECK(u.events.empty());
  REQUIRE(run_until(r, [&] { return !u.events.empty(); }));
  run_for(r, 50);
  CHECK(u.events == std::vector<Event>{W(0)});
}

TEST_CASE_METHOD(SmallBufferStream<32 * 1024>,
                 "Stream: close() in on_read with a partial write pending: the write never completes", "[stream]") {
  const std::string big = pattern(4u << 20, 5);
  s.write_buffer(big.data(), big.size());
  run_for(r, 20);
  REQUIRE(s.writing());  // stuck on the full socket buffers
  u.hook = [&](Stream& st, const Event& e) {
    if (e.kind == 'r') st.close();
  };
  u.start_read(s);
  send_all(p.peer.fd, "stop");
  REQUIRE(run_until(r, [&] { return !u.events.empty(); }));
  CHECK(u.events == std::vector<Event>{R("stop")});
  // The peer now drains what it can; EPOLLOUT can no longer reach the closed stream.
  std::thread drain([&] {
    std::vector<char> b(64 * 1024);
    while (::recv(p.peer.fd, b.data(), b.size(), 0) > 0) {
    }
  });
  run_for(r, 100);
  drain.join();
  CHECK(u.events.size() == 1);
  CHECK_FALSE(s.writing());
}

TEST_CASE_METHOD(AdoptedStream, "Stream: close() right after a read that completed at once drops its delivery",
                 "[stream]") {
  send_all(p.peer.fd, "unwanted");
  REQUIRE(wait_readable(s.fd()));
  u.start_read(s);
  s.close();
  CHECK_FALSE(s.reading());
  run_for(r, 50);
  CHECK(u.events.empty());
}
