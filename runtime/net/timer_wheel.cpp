#include "net/timer_wheel.hpp"

#include <chrono>

namespace lg {

void TimerWheel::add(Timed* t) {
  if (t->linked_) return;
  t->prev_ = nullptr;
  t->next_ = head_;
  if (head_) head_->prev_ = t;
  head_ = t;
  t->linked_ = true;
  ++count_;
}

void TimerWheel::remove(Timed* t) {
  if (!t->linked_) return;
  if (t->prev_) t->prev_->next_ = t->next_;
  else head_ = t->next_;
  if (t->next_) t->next_->prev_ = t->prev_;
  t->prev_ = t->next_ = nullptr;
  t->linked_ = false;
  --count_;
}

void TimerWheel::tick() {
  const std::int64_t now = monotonic_ms();
  expired_.clear();
  for (Timed* t = head_; t; t = t->next_)
    if (t->deadline_ms != 0 && t->deadline_ms <= now) expired_.push_back(t);
  // A timeout handler may close other connections; re-check each one before firing it.
  for (Timed* t : expired_) {
    if (!t->linked_ || t->deadline_ms == 0 || t->deadline_ms > now) continue;
    t->deadline_ms = 0;
    t->on_timeout();
  }
}

}  // namespace lg
