// TimerWheel: coarse deadlines (monotonic ms) scanned by the worker's tick.
#include "net/timer_wheel.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace lg;

namespace {

struct Probe final : Timed {
  explicit Probe(std::string n, std::vector<std::string>* log = nullptr) : name(std::move(n)), log(log) {}
  std::string name;
  std::vector<std::string>* log;
  int fired = 0;
  std::function<void(Probe&)> hook;
  void on_timeout() override {
    ++fired;
    if (log) log->push_back(name);
    if (hook) hook(*this);
  }
};

std::int64_t past() { return monotonic_ms() - 1; }
std::int64_t far_future() { return monotonic_ms() + 60'000; }

}  // namespace

TEST_CASE("monotonic_ms() does not go backwards and follows real time", "[timer]") {
  const std::int64_t a = monotonic_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::int64_t b = monotonic_ms();
  CHECK(b - a >= 20);
  CHECK(b - a < 2000);
}

TEST_CASE("TimerWheel: an expired entry fires once and later ticks do not fire it again", "[timer]") {
  TimerWheel w;
  Probe expired("expired"), pending("pending");
  expired.deadline_ms = past();
  pending.deadline_ms = far_future();
  w.add(&expired);
  w.add(&pending);
  CHECK(w.size() == 2);

  w.tick();
  CHECK(expired.fired == 1);
  CHECK(expired.deadline_ms == 0);  // disarmed by firing
  CHECK(pending.fired == 0);
  w.tick();
  w.tick();
  CHECK(expired.fired == 1);
  CHECK(pending.fired == 0);
  CHECK(w.size() == 2);  // firing disarms, it does not unlink
  w.remove(&expired);
  w.remove(&pending);
  CHECK(w.size() == 0);
}

TEST_CASE("TimerWheel: an entry fires once its deadline passes", "[timer]") {
  TimerWheel w;
  Probe p("p");
  p.deadline_ms = monotonic_ms() + 30;
  w.add(&p);
  w.tick();
  CHECK(p.fired == 0);
  const std::int64_t give_up = monotonic_ms() + 2000;
  while (p.fired == 0 && monotonic_ms() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    w.tick();
  }
  CHECK(p.fired == 1);
  w.remove(&p);
}

TEST_CASE("TimerWheel: a deadline of 0 never fires", "[timer]") {
  TimerWheel w;
  Probe none("none"), one("one");
  none.deadline_ms = 0;
  one.deadline_ms = past();
  w.add(&none);
  w.add(&one);
  for (int i = 0; i < 5; ++i) w.tick();
  CHECK(none.fired == 0);
  CHECK(one.fired == 1);
  w.remove(&none);
  w.remove(&one);
}

TEST_CASE("TimerWheel: every expired entry fires in one tick", "[timer]") {
  TimerWheel w;
  std::vector<std::string> log;
  Probe a("a", &log), b("b", &log), c("c", &log), d("d", &log);
  a.deadline_ms = past();
  b.deadline_ms = far_future();
  c.deadline_ms = past();
  d.deadline_ms = past();
  for (Probe* p : {&a, &b, &c, &d}) w.add(p);
  w.tick();
  std::sort(log.begin(), log.end());
  CHECK(log == std::vector<std::string>{"a", "c", "d"});
  for (Probe* p : {&a, &b, &c, &d}) w.remove(p);
}

TEST_CASE("TimerWheel: add() is idempotent and remove() of an unlinked entry is a no-op", "[timer]") {
  TimerWheel w;
  Probe a("a"), b("b");
  w.add(&a);
  w.add(&a);
  CHECK(w.size() == 1);
  w.remove(&b);
  CHECK(w.size() == 1);
  w.remove(&a);
  w.remove(&a);
  CHECK(w.size() == 0);
  a.deadline_ms = past();
  w.tick();
  CHECK(a.fired == 0);  // removed entries never fire
}

TEST_CASE("TimerWheel: removing entries from inside on_timeout is safe", "[timer]") {
  TimerWheel w;
  std::vector<std::string> log;
  Probe a("a", &log), b("b", &log), c("c", &log), d("d", &log);
  for (Probe* p : {&a, &b, &c, &d}) {
    p->deadline_ms = past();
    w.add(p);
  }
  // Whichever fires first removes itself and every other entry (before and after it in the list).
  auto remove_all = [&](Probe&) {
    for (Probe* p : {&a, &b, &c, &d}) w.remove(p);
  };
  for (Probe* p : {&a, &b, &c, &d}) p->hook = remove_all;
  w.tick();
  CHECK(log.size() == 1);
  CHECK(w.size() == 0);
  CHECK(a.fired + b.fired + c.fired + d.fired == 1);
  w.tick();
  CHECK(log.size() == 1);
}

TEST_CASE("TimerWheel: an entry removed by an earlier timeout of the same tick does not fire", "[timer]") {
  TimerWheel w;
  std::vector<std::string> log;
  Probe first("first", &log), victim("victim", &log), keeper("keeper", &log);
  for (Probe* p : {&victim, &keeper, &first}) {  // added last = scanned first
    p->deadline_ms = past();
    w.add(p);
  }
  first.hook = [&](Probe& self) {
    w.remove(&victim);
    w.remove(&self);
  };
  w.tick();
  CHECK(first.fired == 1);
  CHECK(victim.fired == 0);
  CHECK(keeper.fired == 1);
  CHECK(w.size() == 1);
  w.remove(&keeper);
}

TEST_CASE("TimerWheel: an entry disarmed by an earlier timeout of the same tick does not fire", "[timer]") {
  TimerWheel w;
  Probe first("first"), other("other");
  for (Probe* p : {&other, &first}) {
    p->deadline_ms = past();
    w.add(p);
  }
  bool other_expired_before = false;
  first.hook = [&](Probe&) {
    other_expired_before = other.fired == 0;
    other.deadline_ms = 0;  // e.g. the other connection became busy
  };
  w.tick();  // `first` was added last, so it is scanned (and fires) first
  CHECK(first.fired == 1);
  CHECK(other_expired_before);
  CHECK(other.fired == 0);
  w.remove(&first);
  w.remove(&other);
}

TEST_CASE("TimerWheel: re-arming works, from outside and from inside on_timeout", "[timer]") {
  TimerWheel w;
  Probe p("p");
  p.deadline_ms = past();
  w.add(&p);
  w.tick();
  CHECK(p.fired == 1);

  SECTION("re-armed to the past after firing: fires on the next tick") {
    p.deadline_ms = past();
    w.tick();
    CHECK(p.fired == 2);
  }
  SECTION("re-armed to the future: waits") {
    p.deadline_ms = far_future();
    w.tick();
    CHECK(p.fired == 1);
    p.deadline_ms = past();  // pulled in
    w.tick();
    CHECK(p.fired == 2);
  }
  SECTION("re-armed to the past from its own on_timeout: once per tick, no loop") {
    p.hook = [](Probe& self) { self.deadline_ms = monotonic_ms() - 1; };
    p.deadline_ms = past();
    w.tick();
    CHECK(p.fired == 2);
    w.tick();
    CHECK(p.fired == 3);
  }
  SECTION("re-armed to the future from its own on_timeout: not fired again in the same tick") {
    p.hook = [](Probe& self) { self.deadline_ms = monotonic_ms() + 60'000; };
    p.deadline_ms = past();
    w.tick();
    CHECK(p.fired == 2);
    CHECK(p.deadline_ms > monotonic_ms());
    w.tick();
    CHECK(p.fired == 2);
  }
  SECTION("removed and added again: fires again when expired") {
    w.remove(&p);
    p.deadline_ms = past();
    w.add(&p);
    w.tick();
    CHECK(p.fired == 2);
  }
  w.remove(&p);
  CHECK(w.size() == 0);
}

TEST_CASE("TimerWheel: an entry added by a timeout fires on a later tick, not the current one", "[timer]") {
  TimerWheel w;
  Probe trigger("trigger"), added("added");
  trigger.deadline_ms = past();
  w.add(&trigger);
  trigger.hook = [&](Probe&) {
    added.deadline_ms = monotonic_ms() - 1;
    w.add(&added);
  };
  w.tick();
  CHECK(trigger.fired == 1);
  CHECK(added.fired == 0);
  CHECK(w.size() == 2);
  w.tick();
  CHECK(added.fired == 1);
  CHECK(trigger.fired == 1);
  w.remove(&trigger);
  w.remove(&added);
}
