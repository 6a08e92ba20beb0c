// The process's JWKS fetcher: one thread that fetches every jwks_url in use, on its schedule
// (jwks_refresh; after a failure again after 1 s, 2 s, 4 s, ... up to jwks_refresh) and when a
// worker rings because a token named an unknown kid (at most once per minimum interval).
//
// Why a thread with blocking I/O and not the workers' reactors: fetches are rare (minutes apart)
// and name resolution has no non-blocking form in the libc (getaddrinfo blocks), so a fetch on
// a worker would either stall its requests or need a resolver thread anyway. Here a slow or hung
// identity provider costs nothing on the request path: requests that wait for a fetch are
// bounded by their own deadline on their worker (jwks_timeout), and the fetch itself by poll()
// with the same timeout.
//
// A fetch that fails (connection, TLS, status other than 200, a body over 1 MiB, not a JWK Set,
// no usable key) keeps the last good keys; every fetch is logged when it fails or changes the
// keys and counted in gateway_jwks_fetches_total{result}.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwks_source.hpp"

namespace lg {
class Reactor;
}

namespace lg::auth {

class JwksFetcher final : public JwksProvider {
 public:
  static constexpr std::size_t kMaxBody = 1 << 20;

  JwksFetcher();
  ~JwksFetcher();
  JwksFetcher(const JwksFetcher&) = delete;
  JwksFetcher& operator=(const JwksFetcher&) = delete;

  // The workers' reactors (index = worker id), to post the end of each fetch to; before they run.
  void attach_workers(std::vector<Reactor*> reactors);
  // Fetches the sources listed so far (bounded, on the calling thread), then starts the thread.
  // Until then source() only lists new sources: the first snapshot is built before the error log
  // is set up, and its fetches should be logged there.
  void start();
  // Ends a fetch in progress at once and joins the thread; before the workers are destroyed.
  void stop();

  // A source for `s`: the existing one for its URL (a reload's new settings for it are staged
  // until commit()), or a new one.
  std::shared_ptr<JwksSource> source(const JwksSettings& s, unsigned workers) override;
  // After a reload was published: its settings for existing sources take effect. discard(): the
  // reload was rejected, the running version's settings stay.
  void commit();
  void discard();
  // gateway_jwks_fetches_total in Prometheus text.
  void append_metrics(std::string& out) const;

 private:
  struct Entry {
    JwksSettings settings;  // guarded by mu_ (a reload replaces them)
    std::unique_ptr<JwksSettings> staged;  // a reload's, until commit() or discard() (mu_)
    std::weak_ptr<JwksSource> source;
    // The fetcher thread's own (or the compiling thread's, before the entry is listed).
    std::int64_t next_due_ms = 0;
    unsigned failures = 0;
    std::string last_body;  // the last good document: an unchanged one is not parsed again
  };
  void run();
  void fetch(Entry& e, const JwksSettings& s, JwksSource& src);
  void wake_workers(const std::shared_ptr<JwksSource>& src);

  std::shared_ptr<Doorbell> bell_;  // workers ring it
  Doorbell stop_bell_;              // ends waits and fetches at shutdown
  std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;  // listed by the compiling thread, pruned by run()
  std::vector<Reactor*> reactors_;
  std::atomic<bool> stopping_{false};  // set under mu_; read without it by a fetch that ended
  bool started_ = false;  // the compiling thread's: start() fetched the first sources
  std::atomic<std::uint64_t> ok_{0}, errors_{0};
  std::thread thread_;
};

}  // namespace lg::auth
