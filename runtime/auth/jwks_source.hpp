// Keys fetched from a JWKS URL (jwt `jwks_url`) as the request path sees them. The process's
// fetcher (auth/jwks_fetcher.hpp, its own thread) builds each new JwtKeySet off the data plane
// and publishes it here; sources are kept by URL across reloads, so a reload keeps the keys.
//
// Request path, per worker and without locks: keys(w) returns a pointer cached in the worker's
// own slot and reloaded only when the generation counter moves (one atomic load per request, no
// shared reference count). A token whose kid is unknown asks for a fetch (refresh_for_kid: one
// CAS and an eventfd write, at most once per minimum interval) and may park on the worker's
// list; the fetcher posts the end of every fetch to each worker (Reactor::post), which wakes
// that worker's parked requests (wake_parked).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "auth/jwt.hpp"
#include "auth/key_wait.hpp"
#include "http/https_url.hpp"

namespace lg {
class TlsClientContext;
}

namespace lg::auth {

// Rung by a worker to ask the fetcher for a fetch now: one eventfd write, no lock.
class Doorbell {
 public:
  Doorbell();
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  void ring();
  void drain();  // the fetcher's side, after poll said readable
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// What a jwt policy's jwks_* fields say, compiled (the URL parsed, the CA store loaded).
struct JwksSettings {
  std::string key;  // sources are shared by key: the URL and the CA file it is trusted with
  http::HttpsUrl url;
  std::shared_ptr<const TlsClientContext> tls;
  std::int64_t refresh_ms = 300'000;
  std::int64_t timeout_ms = 5'000;
  std::int64_t min_refresh_ms = 10'000;
  bool allow_symmetric = false;  // accept "oct" (HMAC) keys from the URL
};

class JwksSource {
 public:
  // `bell` null: nothing fetches this source (lunagate check, unit tests).
  JwksSource(unsigned workers, const JwksSettings& s, std::shared_ptr<Doorbell> bell);
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  // ---- request path: worker `w`'s thread (a `w` past the workers falls back to a shared load)
  const JwtKeySet& keys(unsigned w);
  // A token named a key the set lacks: asks for a fetch unless one was asked within the minimum
  // interval. True when a fetch is pending or running, so a request parked now will be woken.
  bool refresh_for_kid(std::int64_t now_ms);
  // Parks `wait` on worker `w` until the next fetch ends; false if `w` has no slot.
  bool park(const std::shared_ptr<JwksSource>& self, unsigned w, KeyWait& wait, void (*wake)(void*), void* arg);
  std::int64_t timeout_ms() const { return timeout_ms_.load(std::memory_order_relaxed); }

  // ---- fetcher side
  void publish(std::shared_ptr<const JwtKeySet> keys);
  bool has_keys() const { return store_.load() != nullptr; }
  std::size_t key_count() const;
  bool refresh_requested() const { return state_.load() & kRequested; }
  void fetch_started();  // the pending request (if any) is served by this fetch
  void fetch_ended();    // then post wake_parked to every worker
  void wake_parked(unsigned w);  // on worker w's thread
  void update(const JwksSettings& s);  // a reload's values for the limits the workers read

 private:
  static constexpr std::uint32_t kRequested = 1, kFetching = 2;
  struct alignas(64) Slot {
    std::uint64_t gen = 0;
    std::shared_ptr<const JwtKeySet> keys;
    KeyWait parked;  // sentinel of a circular list
  };
  unsigned workers_;
  std::unique_ptr<Slot[]> slots_;  // one per worker, never moved (the sentinels point to themselves)
  JwtKeyStore store_;
  std::atomic<std::uint64_t> gen_{1};
  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::int64_t> next_kid_refresh_ms_{0};
  std::atomic<std::int64_t> timeout_ms_;
  std::atomic<std::int64_t> min_refresh_ms_;
  std::shared_ptr<Doorbell> bell_;
};

// Where compile_policies gets sources: the running gateway's fetcher. Absent (null) in
// `lunagate check` and unit tests, where sources are made but never fetched.
class JwksProvider {
 public:
  // The source for s.key (an existing one keeps its keys and takes the new settings), or a new
  // one after a first fetch bounded by s.timeout_ms (its failure is logged, not an error).
  virtual std::shared_ptr<JwksSource> source(const JwksSettings& s, unsigned workers) = 0;

 protected:
  ~JwksProvider() = default;
};

}  // namespace lg::auth
