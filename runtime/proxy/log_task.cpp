#include "proxy/log_task.hpp"

#include <spdlog/spdlog.h>

#include "net/worker.hpp"
#include "proxy/exchange.hpp"
#include "proxy/script_outcome.hpp"

namespace lg {

void LogTask::start(Worker& w, PinnedSnapshot* pin, Exchange* x, std::uint32_t route) {
  auto* t = new LogTask(w, pin, x, route);
  x->script.io.bind(&w, pin, t);
  w.log_task_started(t);
}

void LogTask::on_script_wake() {
  ScriptRequest& s = x_->script;
  const lua::PhaseReport r = w_.engine().resume_phase(*pin_->snap, *pin_->scripts, route_, lua::Phase::log, s);
  if (r.verdict == lua::PhaseReport::waiting) return;
  if (r.verdict == lua::PhaseReport::failed) report_script_failure(w_, s.id, r, true);
  end();
}

void LogTask::abort() {
  x_->script.io.cancel();
  end();
}

void LogTask::end() {
  x_->script.io.cancel();
  w_.engine().end_request(x_->script);
  x_->script.io.bind(nullptr, nullptr, nullptr);
  w_.exchanges().release(x_);
  pin_->release();
  w_.log_task_ended(this);
  w_.defer_delete(this);
}

}  // namespace lg
