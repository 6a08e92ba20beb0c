// UpstreamPool + UpstreamConnection: per-worker keep-alive pool and passive health. Connections
// are real TCP connections to a listener on 127.0.0.1 that the test owns; the Worker is built
// from a Config with no listeners and never started: its reactor runs on the test thread.
#include "upstream/upstream_pool.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "../support/net_support.hpp"
#include "net/reactor.hpp"
#include "net/timer_wheel.hpp"
#include "net/worker.hpp"
#include "upstream/upstream_connection.hpp"

using namespace lg;
using namespace lg::test;
using State = UpstreamConnection::State;

namespace {

// ---- sockets -------------------------------------------------------------------------------------

// 0: the gateway side closed (EOF); > 0: bytes; < 0: -errno (EAGAIN = still open after 2 s).
long server_recv(int fd) {
  char b[256];
  const ssize_t r = ::recv(fd, b, sizeof b, 0);
  return r < 0 ? -errno : static_cast<long>(r);
}

// 1: the server side still sees the connection open with nothing to read.
bool still_open(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// ---- fixture -------------------------------------------------------------------------------------

struct Owner final : UpstreamUser {
  int connects = 0, connect_err = -1;
  int reads = 0, read_err = -1;
  std::size_t read_n = 0;
  int writes = 0;
  void on_upstream_connected(int err) override {
    ++connects;
    connect_err = err;
  }
  void on_upstream_read(int err, std::size_t n) override {
    ++reads;
    read_err = err;
    read_n = n;
  }
  void on_upstream_written(int) override { ++writes; }
};

class PoolFixture {
 public:
  explicit PoolFixture(const std::function<void(UpstreamConfig&)>& tweak = {}) {
    listener_ = listen_tcp(port);
    group.name = "backend";
    TargetConfig tc;
    tc.address.host = "127.0.0.1";
    tc.address.port = port;
    tc.address.text = "127.0.0.1:" + std::to_string(port);
    group.targets.push_back(tc);
    if (tweak) tweak(group);
    Config cfg;  // no listeners; the worker is never started
    worker = std::make_unique<Worker>(0, cfg, -1, nullptr);
    target = worker->pool().target_for(group.targets[0], group);
  }
  ~PoolFixture() {
    // Pooled connections are closed and released; deletions are deferred, so run the queue once
    // before the Worker (whose pool dies before its reactor) goes away.
    worker->pool().close_all_idle();
    worker->reactor().stop();
    worker->reactor().run();
  }
  PoolFixture(const PoolFixture&) = delete;
  PoolFixture& operator=(const PoolFixture&) = delete;

  Reactor& reactor() { return worker->reactor(); }
  UpstreamPool& pool() { return worker->pool(); }
  TimerWheel& timers() { return worker->timers(); }

  // A new connection, connected through the reactor and accepted; returned busy, with its
  // creator's reference, no owner.
  UpstreamConnection* open(Fd& server) {
    auto* c = new UpstreamConnection(*worker, *target);
    c->owner = &owner;
    const int before = owner.connects;
    c->connect();
    REQUIRE(run_until(reactor(), [&] { return owner.connects > before; }));
    REQUIRE(owner.connect_err == 0);
    REQUIRE(c->state == State::busy);
    server = accept_one(listener_.fd);
    c->owner = nullptr;
    return c;
  }

  // Pools `c` and drops the creator's reference: the pool then holds the only one.
  void park(UpstreamConnection* c) {
    REQUIRE(pool().put_idle(c));
    c->release();
  }

  // A connection the test still owns: close it and drop the test's reference.
  static void drop(UpstreamConnection* c) {
    c->close();
    c->release();
  }

  // Deletion is observable without touching freed memory: ~UpstreamConnection returns its read
  // block to the worker's BufferPool free list, which hands out the most recently freed first.
  bool block_freed(char* block) {
    char* b = worker->buffers().acquire();
    const bool same = b == block;
    worker->buffers().release(b);
    return same;
  }

  std::uint16_t port = 0;
  UpstreamConfig group;
  std::unique_ptr<Worker> worker;
  TargetState* target = nullptr;
  Owner owner;

 private:
  Fd listener_;
};

std::vector<UpstreamConnection*> idle_of(const TargetState& t) { return t.idle; }

// The common start of a test: two connections opened and pooled, `a` first. For
// TEST_CASE_METHOD: the body sees f, sa, sb (their server ends), a and b, built in that order and
// destroyed in reverse, as the same locals would be.
struct TwoPooled {
  TwoPooled() {
    a = f.open(sa);
    b = f.open(sb);
    f.park(a);
    f.park(b);
  }
  PoolFixture f;
  Fd sa, sb;
  UpstreamConnection* a = nullptr;
  UpstreamConnection* b = nullptr;
};

}  // namespace

TEST_CASE("UpstreamPool::target_for parses the address and applies the group's pool settings", "[pool]") {
  PoolFixture f([](UpstreamConfig& g) {
    g.keepalive_max_idle = 7;
    g.keepalive_idle_timeout = Millis{1234};
    g.keepalive_max_requests = 99;
    g.passive_failures = 5;
    g.passive_down_for = Millis{4321};
  });
  TargetState& t = *f.target;
  CHECK(t.key == "127.0.0.1:" + std::to_string(f.port));
  REQUIRE(t.addr_len == sizeof(sockaddr_in));
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&t.addr);
  CHECK(v4->sin_family == AF_INET);
  CHECK(ntohs(v4->sin_port) == f.port);
  CHECK(ntohl(v4->sin_addr.s_addr) == INADDR_LOOPBACK);
  CHECK(t.max_idle == 7);
  CHECK(t.idle_timeout_ms == 1234);
  CHECK(t.max_requests == 99);
  CHECK(t.failure_threshold == 5);
  CHECK(t.down_for_ms == 4321);

  // The same address from a re-published group: same state, new settings.
  UpstreamConfig g2 = f.group;
  g2.keepalive_max_idle = 3;
  g2.passive_failures = 2;
  CHECK(f.pool().target_for(g2.targets[0], g2) == &t);
  CHECK(t.max_idle == 3);
  CHECK(t.failure_threshold == 2);

  TargetConfig v6;
  v6.address.host = "::1";
  v6.address.port = 8443;
  v6.address.text = "[::1]:8443";
  TargetState* t6 = f.pool().target_for(v6, f.group);
  REQUIRE(t6 != &t);
  CHECK(t6->key == "[::1]:8443");
  CHECK(t6->addr_len == sizeof(sockaddr_in6));
  CHECK(reinterpret_cast<const sockaddr_in6*>(&t6->addr)->sin6_family == AF_INET6);
  CHECK(ntohs(reinterpret_cast<const sockaddr_in6*>(&t6->addr)->sin6_port) == 8443);
}

TEST_CASE("UpstreamPool: put_idle then take_idle returns the same connection, marked reused", "[pool]") {
  PoolFixture f([](UpstreamConfig& g) { g.keepalive_idle_timeout = Millis{5000}; });
  Fd srv;
  UpstreamConnection* c = f.open(srv);
  CHECK_FALSE(c->reused);
  c->requests = 1;

  const std::int64_t before = monotonic_ms();
  f.park(c);
  const std::int64_t after = monotonic_ms();
  CHECK(c->state == State::idle);
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{c});
  CHECK(f.timers().size() == 1);
  CHECK(c->deadline_ms >= before + 5000);
  CHECK(c->deadline_ms <= after + 5000);
  CHECK(c->stream.reading());  // a read stays pending to notice a close by the target

  UpstreamConnection* got = f.pool().take_idle(*f.target);
  REQUIRE(got == c);
  CHECK(c->state == State::busy);
  CHECK(c->reused);
  CHECK(c->deadline_ms == 0);
  CHECK(f.target->idle.empty());
  CHECK(f.timers().size() == 0);
  CHECK(c->requests == 1);
  CHECK(f.pool().take_idle(*f.target) == nullptr);

  // The read left pending while pooled delivers the next response to the new owner.
  c->owner = &f.owner;
  const std::string resp = "HTTP/1.1 204 No Content\r\n\r\n";
  send_all(srv.fd, resp);
  REQUIRE(run_until(f.reactor(), [&] { return f.owner.reads == 1; }));
  CHECK(f.owner.read_err == 0);
  CHECK(f.owner.read_n == resp.size());
  CHECK(std::string(c->buf.read_ptr(), c->buf.size()) == resp);
  CHECK(c->state == State::busy);
  PoolFixture::drop(c);
}

TEST_CASE_METHOD(TwoPooled, "UpstreamPool: take_idle hands out the most recently pooled connection first", "[pool]") {
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{a, b});
  CHECK(f.pool().take_idle(*f.target) == b);
  CHECK(f.pool().take_idle(*f.target) == a);
  CHECK(f.pool().take_idle(*f.target) == nullptr);
  PoolFixture::drop(a);
  PoolFixture::drop(b);
}

TEST_CASE("UpstreamPool: put_idle respects max_idle", "[pool]") {
  SECTION("full pool refuses, and the refused connection is left untouched") {
    PoolFixture f([](UpstreamConfig& g) { g.keepalive_max_idle = 2; });
    Fd sa, sb, sc;
    UpstreamConnection* a = f.open(sa);
    UpstreamConnection* b = f.open(sb);
    UpstreamConnection* c = f.open(sc);
    f.park(a);
    f.park(b);
    CHECK_FALSE(f.pool().put_idle(c));
    CHECK(c->state == State::busy);
    CHECK(c->deadline_ms == 0);
    CHECK_FALSE(c->stream.reading());
    CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{a, b});
    CHECK(f.timers().size() == 2);

    // A slot frees up when one is taken.
    UpstreamConnection* t = f.pool().take_idle(*f.target);
    CHECK(t == b);
    CHECK(f.pool().put_idle(c));
    c->release();
    CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{a, c});
    PoolFixture::drop(t);
  }
  SECTION("max_idle 0 never pools") {
    PoolFixture f([](UpstreamConfig& g) { g.keepalive_max_idle = 0; });
    Fd sa;
    UpstreamConnection* a = f.open(sa);
    CHECK_FALSE(f.pool().put_idle(a));
    CHECK(f.target->idle.empty());
    CHECK(f.timers().size() == 0);
    PoolFixture::drop(a);
  }
}

TEST_CASE("UpstreamPool: put_idle refuses a connection that served max_requests", "[pool]") {
  PoolFixture f([](UpstreamConfig& g) { g.keepalive_max_requests = 3; });
  Fd sa;
  UpstreamConnection* a = f.open(sa);
  a->requests = 3;
  CHECK_FALSE(f.pool().put_idle(a));
  CHECK(a->state == State::busy);
  CHECK(f.target->idle.empty());
  CHECK(f.timers().size() == 0);
  a->requests = 2;
  CHECK(f.pool().put_idle(a));
  a->release();
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{a});
}

TEST_CASE("UpstreamPool::forget removes a pooled connection and drops the pool's reference", "[pool]") {
  PoolFixture f;
  Fd sa, sb, sc;
  UpstreamConnection* a = f.open(sa);
  UpstreamConnection* b = f.open(sb);
  UpstreamConnection* c = f.open(sc);
  f.park(a);
  f.park(b);
  char* a_block = a->buf.data;

  f.pool().forget(a);
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{b});
  CHECK(f.timers().size() == 1);
  f.pool().forget(a);  // no longer pooled: no-op (must not release again)
  f.pool().forget(c);  // never pooled: no-op
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{b});
  CHECK(c->state == State::busy);

  run_for(f.reactor(), 20);  // the last reference to `a` is gone: deleted from the deferred queue
  CHECK(f.block_freed(a_block));
  CHECK(server_recv(sa.fd) == 0);  // and its socket closed
  CHECK(still_open(sc.fd));
  PoolFixture::drop(c);
}

TEST_CASE_METHOD(TwoPooled, "UpstreamPool: a pooled connection closed meanwhile is skipped by take_idle", "[pool]") {
  char* b_block = b->buf.data;
  b->close();  // closed without forget()
  CHECK(f.pool().take_idle(*f.target) == a);
  CHECK(f.target->idle.empty());
  CHECK(f.timers().size() == 0);
  run_for(f.reactor(), 20);
  CHECK(f.block_freed(b_block));
  PoolFixture::drop(a);
}

TEST_CASE("UpstreamPool passive health: down only after failure_threshold consecutive failures", "[pool]") {
  PoolFixture f([](UpstreamConfig& g) {
    g.passive_failures = 3;
    g.passive_down_for = Millis{10'000};
  });
  TargetState& t = *f.target;
  const std::int64_t now = 5'000'000;
  CHECK(t.usable(now));

  SECTION("three in a row: down for down_for, usable again exactly when it passes") {
    f.pool().record_failure(t, now);
    f.pool().record_failure(t, now + 1);
    CHECK(t.failures == 2);
    CHECK(t.usable(now + 1));
    f.pool().record_failure(t, now + 2);
    CHECK(t.down_until_ms == now + 2 + 10'000);
    CHECK_FALSE(t.usable(now + 2));
    CHECK_FALSE(t.usable(now + 2 + 9'999));
    CHECK(t.usable(now + 2 + 10'000));
    CHECK(t.failures == 0);  // counting starts over
  }
  SECTION("a success in between resets the count") {
    f.pool().record_failure(t, now);
    f.pool().record_failure(t, now);
    f.pool().record_success(t);
    CHECK(t.failures == 0);
    f.pool().record_failure(t, now);
    f.pool().record_failure(t, now);
    CHECK(t.usable(now));
    CHECK(t.down_until_ms == 0);
    f.pool().record_failure(t, now);
    CHECK_FALSE(t.usable(now));
  }
  SECTION("threshold 1: the first failure marks it down") {
    UpstreamConfig g = f.group;
    g.passive_failures = 1;
    g.passive_down_for = Millis{250};
    REQUIRE(f.pool().target_for(g.targets[0], g) == &t);
    f.pool().record_failure(t, now);
    CHECK_FALSE(t.usable(now + 249));
    CHECK(t.usable(now + 250));
  }
}

TEST_CASE_METHOD(TwoPooled, "UpstreamPool: a pooled connection the target closes is dropped once the reactor runs",
                 "[pool]") {
  char* a_block = a->buf.data;

  SECTION("FIN") { sa.reset(); }
  SECTION("RST") {
    linger lg_opt{1, 0};
    ::setsockopt(sa.fd, SOL_SOCKET, SO_LINGER, &lg_opt, sizeof lg_opt);
    sa.reset();
  }
  SECTION("stray bytes") { send_all(sa.fd, "HTTP/1.1 408 Request Timeout\r\n\r\n"); }

  REQUIRE(run_until(f.reactor(), [&] { return f.target->idle.size() == 1; }));
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{b});
  CHECK(f.timers().size() == 1);
  run_for(f.reactor(), 20);
  CHECK(f.block_freed(a_block));
  if (sa.fd >= 0) CHECK(server_recv(sa.fd) == 0);  // stray bytes: the gateway closed it
  CHECK(b->state == State::idle);
  CHECK(still_open(sb.fd));
}

TEST_CASE_METHOD(TwoPooled, "UpstreamPool: an idle connection past its deadline is closed and removed on tick",
                 "[pool]") {
  char* a_block = a->buf.data;
  a->deadline_ms = monotonic_ms() - 1;
  b->deadline_ms = monotonic_ms() + 60'000;

  f.timers().tick();
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{b});
  CHECK(f.timers().size() == 1);
  CHECK(server_recv(sa.fd) == 0);  // closed at once
  CHECK(still_open(sb.fd));
  run_for(f.reactor(), 20);
  CHECK(f.block_freed(a_block));

  f.timers().tick();
  CHECK(idle_of(*f.target) == std::vector<UpstreamConnection*>{b});
}

TEST_CASE("UpstreamPool: idle_timeout from the group expires a pooled connection in real time", "[pool]") {
  PoolFixture f([](UpstreamConfig& g) { g.keepalive_idle_timeout = Millis{40}; });
  Fd sa;
  UpstreamConnection* a = f.open(sa);
  const std::int64_t t0 = monotonic_ms();
  f.park(a);
  REQUIRE(run_until(
      f.reactor(), [&] { return f.target->idle.empty(); }, 2000, [&] { f.timers().tick(); }));
  CHECK(monotonic_ms() - t0 >= 40);
  CHECK(f.timers().size() == 0);
  CHECK(server_recv(sa.fd) == 0);
}

TEST_CASE_METHOD(TwoPooled, "UpstreamPool::close_all_idle closes and releases every pooled connection", "[pool]") {
  f.pool().close_all_idle();
  CHECK(f.target->idle.empty());
  CHECK(f.timers().size() == 0);
  CHECK(server_recv(sa.fd) == 0);
  CHECK(server_recv(sb.fd) == 0);
}
