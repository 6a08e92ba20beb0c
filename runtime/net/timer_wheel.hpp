// Coarse per-worker deadlines. Connections store a deadline (monotonic ms) and the worker's
// reactor tick scans them. Rearming a deadline is a store, not a timer syscall.
#pragma once
#include <cstdint>
#include <vector>

#include "core/clock.hpp"

namespace lg {


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
  void add(Timed* t);
  void remove(Timed* t);
  // Fires on_timeout() of every entry whose deadline has passed. Objects are only ever deleted
  // from the reactor's deferred queue, so entries stay valid through one tick.
  void tick();
  std::size_t size() const { return count_; }

 private:
  Timed* head_ = nullptr;
  std::size_t count_ = 0;
  std::vector<Timed*> expired_;
};

}  // namespace lg
