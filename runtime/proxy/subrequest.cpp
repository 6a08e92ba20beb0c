#include "proxy/subrequest.hpp"

#include <fmt/format.h>

#include "http/response_parser.hpp"
#include "net/worker.hpp"

namespace lg {

namespace {
bool hop_by_hop(std::string_view n) {
  for (std::string_view h : {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                             "upgrade", "content-length", "host", "expect"})
    if (http::iequals(n, h)) return true;
  return false;
}
}  // namespace

SubRequest::SubRequest(Worker& w, PinnedSnapshot& pin, const lua::HttpCall& call, lua::HttpResult& out,
                       SubRequestOwner& owner, std::size_t index, std::string_view request_id)
    : w_(w), pin_(pin), call_(call), out_(out), owner_(owner), index_(index), request_id_(request_id) {
  max_body_ = pin.snap->config.limits.max_body_bytes;
  if (call.max_body > 0) max_body_ = std::min<std::uint64_t>(max_body_, call.max_body);
}

SubRequest::~SubRequest() {
  w_.timers().remove(this);
  release_connection(false);
}

void SubRequest::start() {
  const UpstreamConfig& cfg = *pin_.snap->upstreams[call_.upstream].config;
  const std::int64_t timeout = call_.timeout_ms > 0 ? call_.timeout_ms : cfg.timeouts.read.count();
  deadline_ms = monotonic_ms() + timeout;
  w_.timers().add(this);
  w_.reactor().tick_by(deadline_ms);
  try_target();
}

// Picks a target not tried yet and sends on a pooled or a new connection.
void SubRequest::try_target() {
  const UpstreamGroup& group = pin_.snap->upstreams[call_.upstream];
  WorkerGroup& wg = pin_.groups[call_.upstream];
  const std::int64_t now = monotonic_ms();
  for (std::size_t i = 0; i < wg.targets.size(); ++i) {
    wg.view[i].usable = wg.targets[i]->usable(now);
    wg.view[i].active = wg.targets[i]->active;
  }
  const int idx = pick_target(*group.config, group.ring, wg.view, wg.rr, request_id_, tried_);
  if (idx < 0) {
    fail(tried_ == 0 ? "no upstream target available" : "connect failed", false);
    return;
  }
  if (idx < 64) tried_ |= std::uint64_t{1} << idx;
  target_ = wg.targets[static_cast<std::size_t>(idx)];
  head_.clear();
  head_.append(call_.method).append(" ").append(call_.path).append(" HTTP/1.1\r\n");
  bool host_set = false;
  std::string_view client_host;  // for `tls: { sni: host }`
  for (const auto& [n, v] : call_.headers) {
    if (http::iequals(n, "host")) {
      head_.append("Host: ").append(v).append("\r\n");
      host_set = true;
      client_host = v;
      continue;
    }
    if (hop_by_hop(n) || http::iequals(n, "x-request-id")) continue;
    head_.append(n).append(": ").append(v).append("\r\n");
  }
  if (!host_set) head_.append("Host: ").append(target_->key).append("\r\n");
  if (!request_id_.empty()) head_.append("X-Request-ID: ").append(request_id_).append("\r\n");
  if (call_.has_body || call_.method == "POST" || call_.method == "PUT" || call_.method == "PATCH")
    head_.append("Content-Length: ").append(std::to_string(call_.body.size())).append("\r\n");
  head_.append("\r\n");
  const std::string_view tls_name = target_->tls_name(client_host);  // empty without TLS
  if (UpstreamConnection* pooled = w_.pool().take_idle(*target_, tls_name)) {
    up_ = pooled;
    up_->owner = this;
    up_->requests++;
    target_->active++;
    send();
    return;
  }
  up_ = new UpstreamConnection(w_, *target_);
  up_->owner = this;
  up_->requests++;
  target_->active++;
  up_->connect(tls_name);
}

void SubRequest::on_upstream_connected(int err) {
  if (done_) return;
  if (err) {
    w_.pool().record_failure(*target_, monotonic_ms());
    release_connection(false);
    try_target();
    return;
  }
  up_->start_read();
  send();
}

void SubRequest::send() {
  // The stream advances the iovecs in place until the write completes: they live here.
  iov_[0] = make_iov(head_.data(), head_.size());
  iov_[1] = make_iov(call_.body.data(), call_.body.size());
  written_ = false;
  scan_.reset();
  head_done_ = false;
  up_->write(iov_, call_.body.empty() ? 1 : 2);
}

void SubRequest::on_upstream_written(int err) {
  if (done_) return;
  if (err) {
    on_upstream_read(err, 0);
    return;
  }
  written_ = true;
  up_->start_read();
}

void SubRequest::on_upstream_read(int err, std::size_t n) {
  if (done_) return;
  if (err || n == 0) {
    // A pooled connection the target had closed: once more on a fresh one, if nothing came back.
    if (up_->reused && !head_done_ && up_->buf.empty() && !retried_stale_ && http::idempotent_method(call_.method)) {
      retried_stale_ = true;
      release_connection(false);
      tried_ = 0;
      try_target();
      return;
    }
    if (head_done_ && body_kind_ == http::BodyKind::until_close && !err) {
      reusable_ = false;
      finish();
      return;
    }
    // A reset is not counted toward passive health (as on the main path): it may be a stale
    // pooled connection.
    fail(head_done_ ? "upstream closed mid-response" : "upstream closed the connection", false);
    return;
  }
  on_bytes();
}

void SubRequest::on_bytes() {
  if (!head_done_ && !parse_head()) return;
  if (!head_done_) return;
  if (!take_body()) return;
  if (done_) return;
  if (up_->buf.free_space() == 0) up_->buf.compact();
  up_->start_read();
}

// True when the head is complete (or more bytes are needed: head_done_ stays false).
bool SubRequest::parse_head() {
  const LimitsConfig& lim = pin_.snap->config.limits;
  for (;;) {
    http::ResponseHead resp;
    headers_.clear();
    resp.headers = &headers_;
    const http::ParseResult r = http::parse_response_head({up_->buf.read_ptr(), up_->buf.size()},
                                                          lim.max_response_header_bytes, lim.max_headers * 2,
                                                          call_.method == "HEAD", scan_, resp);
    if (r.kind == http::ParseResult::incomplete) {
      if (up_->buf.free_space() == 0) up_->buf.compact();
      up_->start_read();
      return false;
    }
    if (r.kind == http::ParseResult::error || resp.status == 101) {
      fail("invalid response from upstream", true);
      return false;
    }
    if (resp.status < 200) {  // interim
      up_->buf.consume(resp.head_bytes);
      scan_.reset();
      continue;
    }
    out_.status = resp.status;
    out_.headers.clear();
    for (const http::Header& h : headers_) {
      std::string name(h.name);
      for (char& c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      out_.headers.emplace_back(std::move(name), std::string(h.value));
    }
    body_kind_ = resp.body;
    remaining_ = resp.content_length;
    reusable_ = resp.keep_alive && body_kind_ != http::BodyKind::until_close;
    if (body_kind_ == http::BodyKind::content_length && remaining_ > max_body_) {
      fail("upstream response body too large", false);
      return false;
    }
    if (body_kind_ == http::BodyKind::chunked) {
      chunks_.set_limits({max_body_, 4096, 8192});
      chunks_.reset();
    }
    up_->buf.consume(resp.head_bytes);
    head_done_ = true;
    w_.pool().record_success(*target_);
    return true;
  }
}

// Moves body bytes from the connection's buffer into the result; false once finished or failed.
bool SubRequest::take_body() {
  Buffer& b = up_->buf;
  switch (body_kind_) {
    case http::BodyKind::none: finish(); return false;
    case http::BodyKind::content_length: {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, b.size()));
      out_.body.append(b.read_ptr(), n);
      b.consume(n);
      remaining_ -= n;
      if (remaining_ == 0) {
        finish();
        return false;
      }
      return true;
    }
    case http::BodyKind::chunked:
      while (!b.empty()) {
        std::size_t used = 0;
        std::string_view data;
        const http::ParseResult r = chunks_.feed({b.read_ptr(), b.size()}, used, data);
        out_.body.append(data);
        b.consume(used);
        if (r.kind == http::ParseResult::error) {
          fail(r.status == 413 ? "upstream response body too large" : "invalid chunked body from upstream", true);
          return false;
        }
        if (r.kind == http::ParseResult::complete) {
          finish();
          return false;
        }
        if (used == 0) break;
      }
      return true;
    case http::BodyKind::until_close:
      out_.body.append(b.read_ptr(), b.size());
      b.consume(b.size());
      if (out_.body.size() > max_body_) {
        fail("upstream response body too large", false);
        return false;
      }
      return true;
  }
  return false;
}

void SubRequest::on_timeout() {
  if (done_) return;
  fail("timeout", false);  // a deadline the script chose says little about the target
}

void SubRequest::fail(const char* error, bool target_fault) {
  if (target_fault && target_ && !head_done_) w_.pool().record_failure(*target_, monotonic_ms());
  out_.status = 0;
  out_.headers.clear();
  out_.body.clear();
  out_.error = error;
  reusable_ = false;
  finish();
}

void SubRequest::finish() {
  done_ = true;
  const int k = out_.status > 0 ? 0 : out_.error == "timeout" ? 1 : 2;
  static constexpr const char* kResult[] = {"ok", "timeout", "error"};
  w_.metrics().add_lazy(pin_.groups[call_.upstream].subrequest_slots[k], "gateway_script_subrequests_total",
                        "gw.http sub-requests by upstream and result (ok, timeout, error).", [&] {
                          return fmt::format("upstream=\"{}\",result=\"{}\"",
                                             pin_.snap->upstreams[call_.upstream].config->name, kResult[k]);
                        });
  w_.timers().remove(this);
  release_connection(reusable_ && up_ && up_->buf.empty() && written_);
  owner_.on_subrequest_done(index_);  // last: the owner may delete this (deferred)
}

void SubRequest::release_connection(bool reusable) {
  UpstreamConnection* uc = up_;
  if (!uc) return;
  up_ = nullptr;
  w_.pool().release_busy(uc, reusable);
}

void SubRequest::cancel() {
  done_ = true;
  w_.timers().remove(this);
  release_connection(false);
}

}  // namespace lg
