#include "proxy/script_wait.hpp"

#include "net/worker.hpp"

namespace lg {

std::string ScriptWait::sleep(std::int64_t ms) {
  if (!w_ || !owner_) return "waiting is not possible here";
  sleeping_ = true;
  deadline_ms = monotonic_ms() + ms;
  w_->timers().add(this);
  w_->reactor().tick_by(deadline_ms);
  return {};
}

void ScriptWait::on_timeout() {
  if (!sleeping_) return;
  sleeping_ = false;
  w_->timers().remove(this);
  owner_->on_script_wake();
}

std::string ScriptWait::http(std::vector<lua::HttpCall>& calls, std::vector<lua::HttpResult>& results,
                             std::string_view request_id) {
  if (!w_ || !pin_ || !owner_) return "waiting is not possible here";
  calls_.swap(calls);
  results.assign(calls_.size(), lua::HttpResult{});
  subs_.reserve(calls_.size());
  pending_ = calls_.size();
  for (std::size_t i = 0; i < calls_.size(); ++i)
    subs_.push_back(new SubRequest(*w_, *pin_, calls_[i], results[i], *this, i, request_id));
  // A call may fail at once (no usable target). The handler has not yielded yet then, so the
  // wake is never synchronous: if every call ended already, the wake comes from the timer.
  starting_ = true;
  for (std::size_t i = 0; i < subs_.size() && pending_ > 0; ++i) subs_[i]->start();
  starting_ = false;
  if (pending_ == 0) {
    drop_subrequests();
    return sleep(0);
  }
  return {};
}

void ScriptWait::on_subrequest_done(std::size_t) {
  if (pending_ == 0 || --pending_ > 0 || starting_) return;
  drop_subrequests();
  owner_->on_script_wake();
}

void ScriptWait::drop_subrequests() {
  for (SubRequest* s : subs_) {
    s->cancel();
    w_->defer_delete(s);
  }
  subs_.clear();
  calls_.clear();
}

void ScriptWait::cancel() {
  if (!sleeping_ && pending_ == 0 && subs_.empty()) return;  // the usual case: nothing waits
  starting_ = false;
  if (sleeping_ && w_) w_->timers().remove(this);
  sleeping_ = false;
  pending_ = 0;
  if (w_) drop_subrequests();
}

}  // namespace lg
