// A per-worker asynchronous Redis connection on the worker's Reactor (hiredis 0.14 async API).
//
// - The adapter: hiredis's addRead/delRead/addWrite/delWrite/cleanup hooks (what
//   hiredis/adapters/*.h implement for other loops) map onto one epoll registration of the
//   connection's fd (edge-triggered, as every fd of the Reactor). Reads drain the socket
//   (hiredis reads 16 KiB at a time: FIONREAD says whether more is there). addWrite only marks
//   the connection dirty and defers one flush to the end of the loop's turn, so every command
//   issued in a turn leaves in one write: pipelining for free; a flush that cannot finish waits
//   for EPOLLOUT.
// - Timeouts: each command has a deadline (now + timeout); tick() (the worker's 50 ms tick, and
//   Reactor::tick_by for the earliest deadline) answers late commands with an error. Their
//   replies, if they come later, are dropped. hiredis always calls a command's callback once
//   (with NULL on a lost connection), which is when its bookkeeping is freed.
// - Reconnect: a lost or refused connection is retried after a backoff (reconnect_min doubling
//   to reconnect_max); health() says up/connecting/down. While down, command() fails at once.
// - Scripts: register_script() once; eval() sends EVALSHA and, on NOSCRIPT (a server that
//   restarted or flushed its scripts), resends the same call as EVAL.
// - No allocation per command once warm: callers RESP-encode their arguments (resp_writer.hpp)
//   into their own reused buffers, commands go to hiredis pre-formatted, the bookkeeping of a
//   command in flight is pooled, and replies are built in a ReplyArena (reply_arena.hpp). What
//   remains is hiredis's own (a callback node per command, its output buffer per flush).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "net/reactor.hpp"
#include "redis/reply_arena.hpp"

struct redisAsyncContext;
struct redisReply;

namespace lg::redis {

// Who waits for a reply. `reply` is null on failure, with `error` saying why (a Redis error
// reply is passed as a reply of type REDIS_REPLY_ERROR).
class ReplyHandler {
 public:
  virtual void on_reply(std::uint64_t tag, const redisReply* reply, const char* error) = 0;

 protected:
  ~ReplyHandler() = default;
};

class RedisClient final : public IoHandler {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::int64_t timeout_ms = 50;
    std::size_t max_pending = 10000;
    std::int64_t reconnect_min_ms = 50, reconnect_max_ms = 2000;
  };
  enum class Health : std::uint8_t { down, connecting, up };

  RedisClient(Reactor& r, Options o);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();  // first connect
  // Index for eval(); the script's SHA-1 is computed here.
  std::size_t register_script(std::string source);

  // EVALSHA <script's sha> followed by `argc` arguments, RESP-encoded in `args` (numkeys, keys,
  // then the script's arguments); the handler gets `tag` back. Returns an id for cancel(), or 0
  // when nothing was sent (not connected, too many pending): then nothing will be called.
  std::uint64_t eval(std::size_t script, std::string_view args, std::size_t argc, ReplyHandler* h, std::uint64_t tag);
  // Any other command, RESP-encoded whole (an array of bulk strings); same contract as eval().
  std::uint64_t command(std::string_view resp, ReplyHandler* h, std::uint64_t tag);
  // The handler of `id` will not be called (the reply, if any, is dropped).
  void cancel(std::uint64_t id);

  void tick(std::int64_t now_ms);  // timeouts, reconnects
  Health health() const { return health_; }

  void on_io(std::uint32_t events) override;

 private:
  // How long a connect may stay pending, or the oldest command unanswered, before the
  // connection is dropped and a new one tried.
  std::int64_t stall_limit_ms() const { return std::max<std::int64_t>(1000, 10 * opt_.timeout_ms); }
  // A command in flight. Pooled: `cmd` keeps its capacity from one command to the next.
  struct Pending {
    std::uint64_t id = 0;
    ReplyHandler* handler = nullptr;  // null once answered (timeout, cancel)
    std::uint64_t tag = 0;
    std::int64_t deadline = 0;
    std::size_t script = 0;  // kNoScript: a plain command
    bool retried = false;    // already resent as EVAL
    std::size_t argc = 0;    // eval: the arguments after the sha ...
    std::size_t args_at = 0; // ... which start here in cmd
    std::string cmd;         // eval: the EVALSHA command, kept for the EVAL fallback
  };
  static constexpr std::size_t kNoScript = ~std::size_t{0};
  static constexpr std::size_t kMaxSpare = 1024;  // pooled Pendings kept after a burst
  bool can_send() const;
  Pending* acquire(ReplyHandler* h, std::uint64_t tag, std::size_t script);
  void release(Pending* p);
  std::uint64_t submit(Pending* p, std::string_view cmd);
  bool send_as_eval(Pending* p);
  static void on_command_reply(redisAsyncContext* ac, void* reply, void* priv);
  static void on_connected(const redisAsyncContext* ac, int status);
  static void on_disconnected(const redisAsyncContext* ac, int status);
  static void ev_add_write(void* p);
  static void ev_del_write(void* p);
  static void ev_noop(void*) {}
  static void ev_cleanup(void* p);
  void connect();
  void lost(const char* why);
  void schedule_flush();
  void flush();
  void finish(Pending* p, const redisReply* r, const char* err);

  struct Script {
    std::string source, sha;
  };
  Reactor& reactor_;
  Options opt_;
  redisAsyncContext* ac_ = nullptr;
  Health health_ = Health::down;
  bool want_write_ = false;   // hiredis has bytes to send
  bool flush_queued_ = false;
  bool writable_ = true;      // no EAGAIN since the last EPOLLOUT edge
  bool in_flush_ = false;
  std::int64_t backoff_ms_ = 0;
  std::int64_t reconnect_at_ = 0;
  std::int64_t connect_started_ = 0;  // when the pending connect began (it has no timeout of its own)
  std::uint64_t next_id_ = 1;
  std::deque<Pending*> inflight_;  // in send order (ids ascending)
  std::vector<Script> scripts_;
  std::vector<Pending*> spare_;
  std::string eval_cmd_;  // an EVAL fallback being built
  ReplyArena arena_;
};

}  // namespace lg::redis
