#include "auth/jwks_fetcher.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/clock.hpp"
#include "net/https_get.hpp"
#include "net/reactor.hpp"

namespace lg::auth {

namespace {

constexpr std::int64_t kFirstRetryMs = 1'000;
constexpr std::int64_t kIdleWaitMs = 60'000;  // nothing due: look again anyway (bounded wait)
// Keys past this many are skipped: each public key is checked when loaded (an 8192-bit RSA key
// costs ~50 ms of the fetcher's CPU), and a kid is looked up linearly.
constexpr std::size_t kMaxKeys = 100;

std::int64_t backoff_ms(unsigned failures, std::int64_t cap) {
  const unsigned shift = std::min(failures > 0 ? failures - 1 : 0, 20u);
  return std::min(kFirstRetryMs << shift, std::max(cap, kFirstRetryMs));
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out.append(out.empty() ? "" : ", ").append(s);
  return out;
}

}  // namespace

JwksFetcher::JwksFetcher() : bell_(std::make_shared<Doorbell>()) {}

void JwksFetcher::start() {
  if (started_) return;
  started_ = true;
  for (auto& e : entries_)  // the thread does not run yet: nobody else touches them
    if (auto src = e->source.lock()) fetch(*e, e->settings, *src);
  thread_ = std::thread([this] { run(); });
}

JwksFetcher::~JwksFetcher() { stop(); }

void JwksFetcher::attach_workers(std::vector<Reactor*> reactors) {
  std::lock_guard<std::mutex> lock(mu_);
  reactors_ = std::move(reactors);
}

void JwksFetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    reactors_.clear();
  }
  stop_bell_.ring();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<JwksSource> JwksFetcher::source(const JwksSettings& s, unsigned workers) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : entries_)
      if (e->settings.key == s.key)
        if (auto src = e->source.lock()) {
          e->staged = std::make_unique<JwksSettings>(s);  // a reload's CA store, periods, timeouts
          return src;
        }
  }
  // A new URL. At startup start() fetches it (bounded) before workers serve. On a reload the
  // fetcher thread fetches it at once (the entry is due now): the main thread, which also serves
  // the admin listener and signals, never waits on a network peer; until the fetch ends, a token
  // for this URL parks as for a rotation (bounded by jwks_timeout).
  auto src = std::make_shared<JwksSource>(workers, s, bell_);
  auto e = std::make_unique<Entry>();
  e->settings = s;
  e->source = src;
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back(std::move(e));
  bell_->ring();  // the thread recomputes its next wake-up
  return src;
}

void JwksFetcher::commit() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) {
    if (!e->staged) continue;
    if (auto src = e->source.lock()) {
      e->settings = *e->staged;
      src->update(e->settings);
    }
    e->staged.reset();
  }
  bell_->ring();  // the refresh period may have changed
}

void JwksFetcher::discard() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) e->staged.reset();
}

void JwksFetcher::fetch(Entry& e, const JwksSettings& s, JwksSource& src) {
  HttpsGetResult res = https_get(s.url, *s.tls, s.timeout_ms, kMaxBody, stop_bell_.fd());
  // Shutting down: the fetch was cut short wherever it was (connect, handshake, read), which is
  // neither a failure to count nor one to log.
  if (stopping_.load() || res.error == "cancelled") return;
  const std::int64_t now = monotonic_ms();
  std::string why = res.error;
  if (why.empty() && res.status != 200) why = "HTTP status " + std::to_string(res.status);
  if (why.empty() && (res.body != e.last_body || !src.has_keys())) {
    JwksOptions opt;
    opt.skip_unusable = true;  // an identity provider may also publish encryption keys
    opt.allow_symmetric = s.allow_symmetric;
    opt.max_keys = kMaxKeys;
    auto keys = std::make_shared<JwtKeySet>();
    const JwtLoadResult r = keys->load_jwks(res.body, opt);
    if (!r.ok()) why = "not a usable JWK Set: " + r.error;
    else if (keys->size() == 0) why = "no usable key (" + joined(r.skipped) + ")";
    if (why.empty()) {
      spdlog::info("jwks {}: {} keys loaded (kids: {})", s.url.text, keys->size(), joined(keys->kids()));
      if (!r.skipped.empty()) spdlog::warn("jwks {}: keys skipped: {}", s.url.text, joined(r.skipped));
      src.publish(std::move(keys));
      e.last_body = std::move(res.body);
    }
  }
  if (why.empty()) {
    ok_.fetch_add(1, std::memory_order_relaxed);
    if (e.failures > 0) spdlog::info("jwks {}: fetched again after {} failures", s.url.text, e.failures);
    e.failures = 0;
    e.next_due_ms = now + s.refresh_ms;
    return;
  }
  errors_.fetch_add(1, std::memory_order_relaxed);
  ++e.failures;
  const std::int64_t retry = backoff_ms(e.failures, s.refresh_ms);
  e.next_due_ms = now + retry;
  if (src.has_keys())
    spdlog::warn("jwks {}: fetch failed: {}; keeping the {} keys fetched before; next try in {} ms", s.url.text, why,
                 src.key_count(), retry);
  else
    spdlog::error("jwks {}: fetch failed: {}; no keys yet (its tokens get 401); next try in {} ms", s.url.text, why,
                  retry);
}

void JwksFetcher::wake_workers(const std::shared_ptr<JwksSource>& src) {
  std::lock_guard<std::mutex> lock(mu_);
  for (unsigned w = 0; w < reactors_.size(); ++w) reactors_[w]->post([src, w] { src->wake_parked(w); });
}

void JwksFetcher::run() {
  struct Due {
    Entry* entry;
    std::shared_ptr<JwksSource> source;
    JwksSettings settings;
  };
  for (;;) {
    std::vector<Due> due;
    std::int64_t wait_ms = kIdleWaitMs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      const std::int64_t now = monotonic_ms();
      // Sources no snapshot uses any more are forgotten (only this thread removes entries, so
      // the Entry pointers below stay valid while the lock is released).
      std::erase_if(entries_, [](const auto& e) { return e->source.expired(); });
      for (auto& e : entries_) {
        auto src = e->source.lock();
        if (!src) continue;
        if (src->refresh_requested() || now >= e->next_due_ms) due.push_back({e.get(), std::move(src), e->settings});
        else wait_ms = std::min(wait_ms, e->next_due_ms - now);
      }
    }
    for (Due& d : due) {
      if (stopping_.load()) break;  // the rest would only resolve names to be cancelled
      d.source->fetch_started();
      fetch(*d.entry, d.settings, *d.source);
      d.source->fetch_ended();
      wake_workers(d.source);
    }
    if (!due.empty()) continue;
    pollfd p[2] = {{bell_->fd(), POLLIN, 0}, {stop_bell_.fd(), POLLIN, 0}};
    if (::poll(p, 2, static_cast<int>(std::max<std::int64_t>(wait_ms, 1))) > 0 && (p[0].revents & POLLIN))
      bell_->drain();
  }
}

void JwksFetcher::append_metrics(std::string& out) const {
  out += "# HELP gateway_jwks_fetches_total JWKS fetches of jwt policies' jwks_url, by result.\n";
  out += "# TYPE gateway_jwks_fetches_total counter\n";
  out += "gateway_jwks_fetches_total{result=\"ok\"} " + std::to_string(ok_.load()) + "\n";
  out += "gateway_jwks_fetches_total{result=\"error\"} " + std::to_string(errors_.load()) + "\n";
}

}  // namespace lg::auth
