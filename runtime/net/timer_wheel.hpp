// Coarse per-worker deadlines. Connections store a deadline (monotonic ms) and the worker scans
// them on a fixed tick. Rearming a deadline is a store, not a timer syscall: Asio's per-op
// timers would cost a timerfd_settime whenever the earliest deadline moves.
#pragma once
#include <cstdint>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace lg {

std::int64_t monotonic_ms();

class Timed {
 public:
  virtual ~Timed() = default;
  virtual void on_timeout() = 0;
  std::int64_t deadline_ms = 0;  // 0 = none

 private:
  friend class TimerWheel;
  Timed* prev_ = nullptr;
  Timed* next_ = nullptr;
  bool linked_ = false;
};

class TimerWheel {
 public:
  TimerWheel(boost::asio::io_context& io, std::int64_t tick_ms);
  void add(Timed* t);
  void remove(Timed* t);
  void start();
  void stop();
  std::size_t size() const { return count_; }
  // Extra work run on every tick (log flushing, pool expiry).
  void on_tick(void (*fn)(void*), void* arg) { hooks_.push_back({fn, arg}); }

 private:
  void arm();
  void tick();
  boost::asio::steady_timer timer_;
  std::int64_t tick_ms_;
  Timed* head_ = nullptr;
  std::size_t count_ = 0;
  bool running_ = false;
  std::vector<Timed*> expired_;
  struct Hook {
    void (*fn)(void*);
    void* arg;
  };
  std::vector<Hook> hooks_;
};

}  // namespace lg
