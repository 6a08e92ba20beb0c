// The per-worker epoll loop: post() from other threads, defer() before the next wait, the tick,
// stop(), and edge-triggered registration.
#include "net/reactor.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/net_support.hpp"
#include "net/timer_wheel.hpp"

using namespace lg;
using namespace lg::test;

namespace {

// Calls r.stop() from its own thread if not dismissed within `ms`: a test that loses its way
// fails instead of hanging.
class Watchdog {
 public:
  Watchdog(Reactor& r, int ms)
      : thread_([this, &r, ms] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return done_; })) {
            fired = true;
            r.stop();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::atomic<bool> fired{false};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

struct Step {
  std::vector<std::string>* log;
  std::string name;
  Reactor* r = nullptr;
  Step* next = nullptr;  // deferred from this step's callback
};

void log_step(void* p) {
  auto* s = static_cast<Step*>(p);
  s->log->push_back(s->name);
  if (s->next) s->r->defer(&log_step, s->next);
}

void bump(void* p) { ++*static_cast<int*>(p); }

}  // namespace

TEST_CASE("post() from another thread runs the work on the loop thread, in posting order", "[reactor]") {
  Reactor r;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<int> seen_a, seen_b;
  std::atomic<int> off_loop{0};
  auto poster = [&](std::vector<int>& seen) {
    for (int i = 0; i < 200; ++i)
      r.post([&seen, i, &off_loop, loop_thread] {
        if (std::this_thread::get_id() != loop_thread) ++off_loop;
        seen.push_back(i);
      });
  };
  std::thread a(poster, std::ref(seen_a));
  std::thread b(poster, std::ref(seen_b));
  const bool done = run_until(r, [&] { return seen_a.size() == 200 && seen_b.size() == 200; });
  a.join();
  b.join();
  REQUIRE(done);
  CHECK(off_loop.load() == 0);
  std::vector<int> expected;
  for (int i = 0; i < 200; ++i) expected.push_back(i);
  CHECK(seen_a == expected);
  CHECK(seen_b == expected);
}

TEST_CASE("post() wakes a loop that is blocked in epoll_wait with no tick", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  std::atomic<bool> ran{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let the loop block first
    r.post([&] {
      ran = true;
      r.stop();
    });
  });
  const std::int64_t t0 = monotonic_ms();
  r.run();
  const std::int64_t took = monotonic_ms() - t0;
  t.join();
  CHECK_FALSE(wd.fired.load());
  CHECK(ran.load());
  CHECK(took < 2000);
}

TEST_CASE("stop() from another thread makes run() return and deferred work still runs", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  int deferred_ran = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    r.post([&] { r.defer(&bump, &deferred_ran); });
    r.stop();
  });
  r.run();
  t.join();
  CHECK_FALSE(wd.fired.load());
  CHECK(deferred_ran == 1);
}

TEST_CASE("stop() from a deferred callback on the loop thread returns run()", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  int after = 0;
  r.defer([](void* p) { static_cast<Reactor*>(p)->stop(); }, &r);
  r.defer(&bump, &after);  // same batch: runs before the loop looks at the stop
  r.run();
  CHECK_FALSE(wd.fired.load());
  CHECK(after == 1);
}

TEST_CASE("defer() work runs before the next epoll_wait, in the order it was deferred", "[reactor]") {
  Reactor r;
  std::vector<std::string> log;
  Step d1{&log, "d1"}, d2{&log, "d2"}, d3{&log, "d3"};
  // From inside a posted callback (i.e. after a wait): defer three, then post one more. The post
  // is already signalled on the eventfd, so if the deferred work waited for another epoll_wait
  // the post would overtake it.
  r.post([&] {
    log.push_back("posted");
    r.defer(&log_step, &d1);
    r.defer(&log_step, &d2);
    r.defer(&log_step, &d3);
    r.post([&] { log.push_back("second post"); });
  });
  REQUIRE(run_until(r, [&] { return log.size() == 5; }));
  CHECK(log == std::vector<std::string>{"posted", "d1", "d2", "d3", "second post"});
}

TEST_CASE("defer() from a deferred callback runs in the same turn, before the next wait", "[reactor]") {
  Reactor r;
  std::vector<std::string> log;
  Step d3{&log, "d3", &r};
  Step d2{&log, "d2", &r, &d3};
  Step d1{&log, "d1", &r, &d2};
  Step sibling{&log, "sibling", &r};
  r.post([&] {
    r.defer(&log_step, &d1);  // d1 defers d2, which defers d3
    r.defer(&log_step, &sibling);
    r.post([&] { log.push_back("post"); });
  });
  REQUIRE(run_until(r, [&] { return log.size() == 5; }));
  CHECK(log == std::vector<std::string>{"d1", "sibling", "d2", "d3", "post"});
}

TEST_CASE("work deferred before run() runs without any event", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  int n = 0;
  r.defer(&bump, &n);
  r.defer([](void* p) { static_cast<Reactor*>(p)->stop(); }, &r);
  r.run();
  CHECK_FALSE(wd.fired.load());
  CHECK(n == 1);
}

TEST_CASE("the tick fires periodically, no sooner than its period", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  struct TickLog {
    Reactor* r;
    std::vector<std::int64_t> at;
    int deferred_ran = 0;
  } tl{&r, {}, 0};
  const std::int64_t start = monotonic_ms();
  r.set_tick(
      10,
      [](void* p) {
        auto* t = static_cast<TickLog*>(p);
        t->at.push_back(monotonic_ms());
        t->r->defer(&bump, &t->deferred_ran);  // work deferred by the tick runs before the next wait
        if (t->at.size() == 6) t->r->stop();
      },
      &tl);
  r.run();
  CHECK_FALSE(wd.fired.load());
  REQUIRE(tl.at.size() == 6);
  CHECK(tl.deferred_ran == 6);
  CHECK(tl.at[0] - start >= 10);
  for (std::size_t i = 1; i < tl.at.size(); ++i) {
    INFO("tick " << i);
    CHECK(tl.at[i] - tl.at[i - 1] >= 10);
  }
  CHECK(tl.at.back() - start < 1000);  // 6 periods of 10 ms, generous for a loaded machine
}

TEST_CASE("set_tick() replaces the tick callback", "[reactor]") {
  Reactor r;
  Watchdog wd(r, 2000);
  struct Ctx {
    Reactor* r;
    int first = 0, second = 0;
  } c{&r};
  r.set_tick(1, [](void* p) { ++static_cast<Ctx*>(p)->first; }, &c);
  r.set_tick(
      1,
      [](void* p) {
        auto* c = static_cast<Ctx*>(p);
        if (++c->second == 3) c->r->stop();
      },
      &c);
  r.run();
  CHECK_FALSE(wd.fired.load());
  CHECK(c.first == 0);
  CHECK(c.second == 3);
}

namespace {
struct CountingHandler final : IoHandler {
  int calls = 0;
  std::uint32_t last = 0;
  void on_io(std::uint32_t events) override {
    ++calls;
    last = events;
  }
};
}  // namespace

TEST_CASE("a registered fd is edge-triggered: one on_io per edge and remove() stops events", "[reactor]") {
  Reactor r;
  int p[2];
  REQUIRE(::pipe(p) == 0);
  CountingHandler h;
  REQUIRE(r.add(p[0], &h));
  run_for(r, 20);
  CHECK(h.calls == 0);  // nothing to read yet

  REQUIRE(::write(p[1], "a", 1) == 1);
  REQUIRE(run_until(r, [&] { return h.calls == 1; }));
  CHECK((h.last & EPOLLIN) != 0);
  run_for(r, 50);
  CHECK(h.calls == 1);  // not read, but no new edge: no new event

  REQUIRE(::write(p[1], "b", 1) == 1);
  REQUIRE(run_until(r, [&] { return h.calls == 2; }));

  r.remove(p[0]);
  REQUIRE(::write(p[1], "c", 1) == 1);
  run_for(r, 50);
  CHECK(h.calls == 2);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("a deferred callback that throws does not make the rest of its batch run twice", "[reactor]") {
  // Worker::start() catches an exception escaping run() and calls run() again. Deferred work
  // includes Worker::defer_delete, so each deferred entry must run exactly once.
  Reactor r;
  int before = 0, after = 0, later = 0;
  bool thrown = false;
  r.defer(&bump, &before);
  r.defer(
      [](void* p) {
        bool& t = *static_cast<bool*>(p);
        if (!t) {
          t = true;
          throw std::runtime_error("handler failed");
        }
      },
      &thrown);
  r.defer(&bump, &after);
  CHECK_THROWS_AS(run_until(r, [] { return false; }, 200), std::runtime_error);
  CHECK(thrown);
  CHECK(before == 1);

  r.defer(&bump, &later);  // the loop is re-entered, as Worker::start() does
  run_for(r, 50);
  CHECK(later == 1);
  CHECK(before == 1);  // ran before the throw: must not run again
  CHECK(after == 1);   // queued behind the throwing callback: runs once, not lost, not twice
}
