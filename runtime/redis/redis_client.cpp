#include "redis/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "redis/resp_writer.hpp"

namespace lg::redis {

namespace {
std::string sha1_hex(std::string_view s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) out.push_back(kHex[c >> 4]), out.push_back(kHex[c & 15]);
  return out;
}
}  // namespace

RedisClient::RedisClient(Reactor& r, Options o) : reactor_(r), opt_(std::move(o)) {}

RedisClient::~RedisClient() {
  for (Pending* p : inflight_) p->handler = nullptr;  // nobody is told anything any more
  if (ac_) {
    redisAsyncContext* ac = ac_;
    ac->ev.cleanup = nullptr;  // no reconnect scheduling from the destructor
    ac_ = nullptr;
    redisAsyncFree(ac);  // runs every pending callback with NULL (they free their Pending)
  }
  for (Pending* p : inflight_) delete p;
  for (Pending* p : spare_) delete p;
}

std::size_t RedisClient::register_script(std::string source) {
  Script s;
  s.sha = sha1_hex(source);
  s.source = std::move(source);
  scripts_.push_back(std::move(s));
  return scripts_.size() - 1;
}

void RedisClient::start() { connect(); }

void RedisClient::connect() {
  health_ = Health::connecting;
  connect_started_ = monotonic_ms();
  reactor_.tick_by(connect_started_ + stall_limit_ms());
  redisAsyncContext* ac = redisAsyncConnect(opt_.host.c_str(), opt_.port);
  if (!ac) {
    lost("out of memory");
    return;
  }
  if (ac->err) {  // refused at once (loopback) or no socket
    redisAsyncFree(ac);
    lost("connect failed");
    return;
  }
  ac->data = this;
  ac->ev.data = this;
  arena_.install(ac->c.reader);
  ac->ev.addRead = ev_noop;  // the fd is registered for reads for its whole life
  ac->ev.delRead = ev_noop;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  redisAsyncSetConnectCallback(ac, on_connected);
  redisAsyncSetDisconnectCallback(ac, on_disconnected);
  ac_ = ac;
  writable_ = false;  // the connect's completion is the first EPOLLOUT edge
  if (!reactor_.add(ac->c.fd, this)) {
    ac_ = nullptr;
    ac->ev.cleanup = nullptr;
    redisAsyncFree(ac);
    lost("epoll registration failed");
  }
}

// The context is gone (hiredis frees it): try again after the backoff.
void RedisClient::lost(const char* why) {
  ac_ = nullptr;
  // Logged once per outage, not once per failed retry.
  if (backoff_ms_ == 0) spdlog::warn("redis {}:{}: {}; retrying with backoff", opt_.host, opt_.port, why);
  health_ = Health::down;
  want_write_ = false;
  backoff_ms_ = backoff_ms_ == 0 ? opt_.reconnect_min_ms : std::min(backoff_ms_ * 2, opt_.reconnect_max_ms);
  reconnect_at_ = monotonic_ms() + backoff_ms_;
  reactor_.tick_by(reconnect_at_);
}

void RedisClient::on_connected(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (status != REDIS_OK) return;  // hiredis frees the context next: ev_cleanup
  self->health_ = Health::up;
  self->backoff_ms_ = 0;
  spdlog::info("redis {}:{}: connected", self->opt_.host, self->opt_.port);
}

void RedisClient::on_disconnected(const redisAsyncContext*, int) {}  // ev_cleanup did the work

void RedisClient::ev_cleanup(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  if (self->ac_) self->reactor_.remove(self->ac_->c.fd);
  self->lost("disconnected");
}

void RedisClient::ev_add_write(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  self->want_write_ = true;
  if (self->in_flush_) self->writable_ = false;  // the write was short: wait for EPOLLOUT
  else self->schedule_flush();
}

void RedisClient::ev_del_write(void* p) { static_cast<RedisClient*>(p)->want_write_ = false; }

void RedisClient::schedule_flush() {
  if (flush_queued_ || !writable_) return;
  flush_queued_ = true;
  reactor_.defer([](void* p) { static_cast<RedisClient*>(p)->flush(); }, this);
}

// Everything hiredis has buffered goes out in one write: all commands of this turn.
void RedisClient::flush() {
  flush_queued_ = false;
  if (!ac_ || !want_write_ || !writable_ || health_ != Health::up) return;
  in_flush_ = true;
  errno = 0;  // hiredis reads errno when it checks the connection
  redisAsyncHandleWrite(ac_);
  in_flush_ = false;
}

void RedisClient::on_io(std::uint32_t events) {
  if (!ac_) return;
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    writable_ = true;
    if (health_ == Health::connecting || want_write_) {
      in_flush_ = true;
      errno = 0;
      redisAsyncHandleWrite(ac_);  // completes a connect (or fails it), then writes
      in_flush_ = false;
      if (!ac_) return;
    }
  }
  if (health_ == Health::up && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    // Edge-triggered: read until the socket is drained (or, after a hang-up, until hiredis sees
    // the end and frees the context).
    const bool hangup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    for (int i = 0; i < 1024 && ac_; ++i) {
      errno = 0;
      redisAsyncHandleRead(ac_);
      if (!ac_) return;
      int more = 0;
      if (::ioctl(ac_->c.fd, FIONREAD, &more) != 0) more = 0;
      if (more <= 0 && !hangup) break;
    }
  }
}

bool RedisClient::can_send() const {
  return ac_ && health_ == Health::up && !(ac_->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) &&
         inflight_.size() < opt_.max_pending;
}

RedisClient::Pending* RedisClient::acquire(ReplyHandler* h, std::uint64_t tag, std::size_t script) {
  Pending* p;
  if (spare_.empty()) {
    p = new Pending;
  } else {
    p = spare_.back();
    spare_.pop_back();
  }
  p->id = next_id_++;
  p->handler = h;
  p->tag = tag;
  p->deadline = monotonic_ms() + opt_.timeout_ms;
  p->script = script;
  p->retried = false;
  p->cmd.clear();
  return p;
}

void RedisClient::release(Pending* p) {
  if (spare_.size() < kMaxSpare) spare_.push_back(p);
  else delete p;
}

std::uint64_t RedisClient::submit(Pending* p, std::string_view cmd) {
  if (redisAsyncFormattedCommand(ac_, on_command_reply, p, cmd.data(), cmd.size()) != REDIS_OK) {
    release(p);
    return 0;
  }
  inflight_.push_back(p);
  reactor_.tick_by(p->deadline);
  return p->id;
}

std::uint64_t RedisClient::eval(std::size_t script, std::string_view args, std::size_t argc, ReplyHandler* h,
                                std::uint64_t tag) {
  if (!can_send()) return 0;
  Pending* p = acquire(h, tag, script);
  RespWriter w(p->cmd);
  w.array(2 + argc);
  w.arg("EVALSHA");
  w.arg(scripts_[script].sha);
  p->argc = argc;
  p->args_at = p->cmd.size();
  p->cmd.append(args);
  return submit(p, p->cmd);
}

std::uint64_t RedisClient::command(std::string_view resp, ReplyHandler* h, std::uint64_t tag) {
  if (!can_send() || resp.empty()) return 0;
  return submit(acquire(h, tag, kNoScript), resp);
}

// The same call as EVAL <source> (which also loads the script again).
bool RedisClient::send_as_eval(Pending* p) {
  eval_cmd_.clear();
  RespWriter w(eval_cmd_);
  w.array(2 + p->argc);
  w.arg("EVAL");
  w.arg(scripts_[p->script].source);
  eval_cmd_.append(std::string_view(p->cmd).substr(p->args_at));
  return redisAsyncFormattedCommand(ac_, on_command_reply, p, eval_cmd_.data(), eval_cmd_.size()) == REDIS_OK;
}

void RedisClient::cancel(std::uint64_t id) {
  for (Pending* p : inflight_)
    if (p->id == id) {
      p->handler = nullptr;
      return;
    }
}

void RedisClient::finish(Pending* p, const redisReply* r, const char* err) {
  ReplyHandler* h = p->handler;
  p->handler = nullptr;
  if (h) h->on_reply(p->tag, r, err);
}

void RedisClient::on_command_reply(redisAsyncContext* ac, void* reply, void* priv) {
  auto* self = static_cast<RedisClient*>(ac->data);
  auto* p = static_cast<Pending*>(priv);
  auto* r = static_cast<redisReply*>(reply);
  if (r && r->type == REDIS_REPLY_ERROR && p->script != kNoScript && !p->retried && p->handler && self->ac_ &&
      std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
    p->retried = true;  // the server lost the script: the same call as EVAL (it loads it too)
    if (self->send_as_eval(p)) return;
  }
  const auto it = std::find(self->inflight_.begin(), self->inflight_.end(), p);
  if (it != self->inflight_.end()) self->inflight_.erase(it);
  if (!r && self->health_ == Health::up) self->health_ = Health::down;  // the context is going away
  self->finish(p, r, r ? nullptr : "connection lost");
  self->release(p);
}

void RedisClient::tick(std::int64_t now) {
  std::int64_t next = 0;
  for (std::size_t i = 0; i < inflight_.size(); ++i) {
    Pending* p = inflight_[i];
    if (!p->handler) continue;
    if (p->deadline <= now) {
      finish(p, nullptr, "timeout");  // the handler may send or cancel: indexes stay valid
    } else if (next == 0 || p->deadline < next) {
      next = p->deadline;
    }
  }
  if (next) reactor_.tick_by(next);
  // A server that stopped answering (not closed: stopped) is dropped after a while, so that
  // what piles up on its connection is failed and a new connection is tried.
  if (ac_ && health_ == Health::up && !inflight_.empty() &&
      inflight_.front()->deadline + stall_limit_ms() < now) {
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // callbacks with NULL, then ev_cleanup -> reconnect after the backoff
    return;
  }
  // hiredis's asynchronous connect has no timeout: a SYN that is dropped (a partition, an
  // address that moved) would leave the client "connecting" until the kernel gives up (~2 min),
  // failing every take meanwhile. Give up after the limit and retry with the backoff.
  if (ac_ && health_ == Health::connecting && now - connect_started_ >= stall_limit_ms()) {
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // ev_cleanup -> lost() -> reconnect after the backoff
    return;
  }
  if (!ac_ && health_ == Health::down && now >= reconnect_at_) connect();
}

}  // namespace lg::redis
