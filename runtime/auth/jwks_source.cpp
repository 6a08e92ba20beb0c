#include "auth/jwks_source.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>

namespace lg::auth {

Doorbell::Doorbell() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

Doorbell::~Doorbell() { ::close(fd_); }

void Doorbell::ring() {
  const std::uint64_t one = 1;
  ssize_t r = ::write(fd_, &one, sizeof one);
  (void)r;  // a full counter still wakes the reader
}

void Doorbell::drain() {
  std::uint64_t n;
  ssize_t r = ::read(fd_, &n, sizeof n);
  (void)r;
}

JwksSource::JwksSource(unsigned workers, const JwksSettings& s, std::shared_ptr<Doorbell> bell)
    : workers_(workers),
      slots_(std::make_unique<Slot[]>(workers)),
      timeout_ms_(s.timeout_ms),
      min_refresh_ms_(s.min_refresh_ms),
      bell_(std::move(bell)) {
  for (unsigned w = 0; w < workers_; ++w) slots_[w].parked.prev = slots_[w].parked.next = &slots_[w].parked;
}

// Parked nodes hold a reference to their source, so none is left by now.
JwksSource::~JwksSource() = default;

const JwtKeySet& JwksSource::keys(unsigned w) {
  static const JwtKeySet kNone;
  const std::uint64_t g = gen_.load(std::memory_order_acquire);
  if (w >= workers_) {
    thread_local std::shared_ptr<const JwtKeySet> held;
    held = store_.load();
    return held ? *held : kNone;
  }
  Slot& s = slots_[w];
  if (s.gen != g) {  // published after gen_ was bumped: this set is at least as new as g
    s.keys = store_.load();
    s.gen = g;
  }
  return s.keys ? *s.keys : kNone;
}

std::size_t JwksSource::key_count() const {
  const auto k = store_.load();
  return k ? k->size() : 0;
}

bool JwksSource::refresh_for_kid(std::int64_t now_ms) {
  if (!bell_) return false;
  std::int64_t next = next_kid_refresh_ms_.load(std::memory_order_relaxed);
  if (now_ms >= next &&
      next_kid_refresh_ms_.compare_exchange_strong(next, now_ms + min_refresh_ms_.load(std::memory_order_relaxed))) {
    state_.fetch_or(kRequested);
    bell_->ring();
  }
  return state_.load() != 0;
}

bool JwksSource::park(const std::shared_ptr<JwksSource>& self, unsigned w, KeyWait& wait, void (*wake)(void*),
                      void* arg) {
  if (w >= workers_ || wait.linked()) return false;
  KeyWait& head = slots_[w].parked;
  wait.wake = wake;
  wait.arg = arg;
  wait.source = self;
  wait.prev = head.prev;
  wait.next = &head;
  head.prev->next = &wait;
  head.prev = &wait;
  return true;
}

void JwksSource::publish(std::shared_ptr<const JwtKeySet> keys) {
  store_.publish(std::move(keys));
  gen_.fetch_add(1, std::memory_order_release);
}

void JwksSource::fetch_started() {
  // Fetching is set before the request is cleared: a worker never sees neither (and then
  // answers at once although a fetch is about to end).
  state_.fetch_or(kFetching);
  state_.fetch_and(~kRequested);
}

void JwksSource::fetch_ended() { state_.fetch_and(~kFetching); }

void JwksSource::wake_parked(unsigned w) {
  if (w >= workers_) return;
  KeyWait& head = slots_[w].parked;
  if (head.next == &head) return;
  // Take the whole list first: a woken request that parks again waits for the next fetch.
  KeyWait taken;
  taken.next = head.next;
  taken.prev = head.prev;
  taken.next->prev = &taken;
  taken.prev->next = &taken;
  head.prev = head.next = &head;
  while (taken.next != &taken) {
    KeyWait* k = taken.next;
    void (*wake)(void*) = k->wake;
    void* arg = k->arg;
    k->unlink();  // the caller's posted task holds this source, so unlink never frees it here
    wake(arg);
  }
}

void JwksSource::update(const JwksSettings& s) {
  timeout_ms_.store(s.timeout_ms, std::memory_order_relaxed);
  min_refresh_ms_.store(s.min_refresh_ms, std::memory_order_relaxed);
}

}  // namespace lg::auth
