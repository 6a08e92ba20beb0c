// The per-worker event loop: epoll, edge-triggered, each socket registered once for the life of
// the connection. Asio's reactor re-tries a read speculatively after every completion (an EAGAIN
// per keep-alive cycle) or re-arms with epoll_ctl; this loop tracks readiness itself, so a proxied
// keep-alive request costs one read and one write per side plus a share of epoll_wait.
//
// Completions are never delivered from inside the call that started an operation: they are
// queued and run before the next epoll_wait, so handlers do not re-enter each other.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace lg {

class IoHandler {
 public:
  virtual void on_io(std::uint32_t events) = 0;  // epoll event bits for this handler's fd

 protected:
  ~IoHandler() = default;
};

// Work queued on the loop's own thread; `fn(arg)` runs before the next epoll_wait.
struct Deferred {
  void (*fn)(void*);
  void* arg;
};

class Reactor {
 public:
  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  void run();                                  // until stop()
  void stop();                                 // any thread
  void post(std::function<void()> fn);         // any thread (control plane: mutex + eventfd)
  void defer(void (*fn)(void*), void* arg) { deferred_.push_back({fn, arg}); }  // loop thread

  bool add(int fd, IoHandler* h);  // EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET
  void remove(int fd);

  // One periodic callback (deadlines, log flushing); `ms` is its period.
  void set_tick(std::int64_t ms, void (*fn)(void*), void* arg);
  // Runs the next tick no later than `at_ms` (monotonic): for deadlines finer than the period
  // (gw.sleep, short sub-request timeouts).
  void tick_by(std::int64_t at_ms) {
    if (at_ms < next_tick_) next_tick_ = at_ms;
  }

 private:
  void drain_posted();
  void run_deferred();
  int epfd_ = -1;
  int wakefd_ = -1;
  bool stopping_ = false;
  std::vector<Deferred> deferred_, running_;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::int64_t tick_ms_ = 0;
  std::int64_t next_tick_ = 0;
  void (*tick_fn_)(void*) = nullptr;
  void* tick_arg_ = nullptr;
};

}  // namespace lg
