// What a waiting script handler waits on: a gw.sleep timer or a set of gw.http sub-requests.
// When the last of them ends, the owner (the request's ClientConnection, or the LogTask that
// finishes a log phase) is told to resume the handler. cancel() stops everything silently.
#pragma once
#include <string>
#include <vector>

#include "lua/script_host.hpp"
#include "net/timer_wheel.hpp"
#include "proxy/subrequest.hpp"

namespace lg {

class Worker;
struct PinnedSnapshot;

class ScriptWaitOwner {
 public:
  virtual void on_script_wake() = 0;
  // gw.request.get_body: start reading the client's body into ScriptRequest::req_body_buf; ""
  // when started (or already complete), else why not.
  virtual std::string read_request_body() = 0;

 protected:
  ~ScriptWaitOwner() = default;
};

class ScriptWait final : public Timed, public SubRequestOwner {
 public:
  ~ScriptWait() override { cancel(); }
  void bind(Worker* w, PinnedSnapshot* pin, ScriptWaitOwner* owner) {
    w_ = w;
    pin_ = pin;
    owner_ = owner;
  }
  ScriptWaitOwner* owner() const { return owner_; }
  std::string sleep(std::int64_t ms);
  // Starts every call; results land in `results` (sized by the caller) in the calls' order.
  std::string http(std::vector<lua::HttpCall>& calls, std::vector<lua::HttpResult>& results,
                   std::string_view request_id);
  void cancel();
  bool busy() const { return sleeping_ || pending_ > 0; }

  void on_timeout() override;
  void on_subrequest_done(std::size_t index) override;

 private:
  void drop_subrequests();
  Worker* w_ = nullptr;
  PinnedSnapshot* pin_ = nullptr;
  ScriptWaitOwner* owner_ = nullptr;
  std::vector<lua::HttpCall> calls_;  // the sub-requests read them until they end
  std::vector<SubRequest*> subs_;
  std::size_t pending_ = 0;
  bool sleeping_ = false;
  bool starting_ = false;
};

}  // namespace lg
