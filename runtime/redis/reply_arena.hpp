// Redis replies built by hiredis's reader into nodes that are reused, instead of its default
// functions' calloc per element (6 allocations for a one-limit rate-limit reply, all freed again
// after the callback). The nodes are redisReply structs, so code reading replies (and hiredis's
// own checks of a reply's type) see the usual tree.
#pragma once
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

namespace lg::redis {

// A reply (and every element of it) stays valid until the reader starts the next one: for the
// whole callback, since hiredis parses one reply, hands it to its callback, then "frees" it (a
// no-op here). install() on every new context's reader; the arena must outlive the context.
class ReplyArena {
 public:
  void install(redisReader* r);
  std::size_t nodes() const { return nodes_.size(); }  // high-water mark, for tests

 private:
  struct Node {
    redisReply reply{};
    std::string text;                   // str of a string, status or error reply
    std::vector<redisReply*> children;  // element of an array
  };
  static Node& start(const redisReadTask* task, int type);
  static void* create_string(const redisReadTask* task, char* str, std::size_t len);
  static void* create_array(const redisReadTask* task, int elements);
  static void* create_integer(const redisReadTask* task, long long value);
  static void* create_nil(const redisReadTask* task);
  static void free_object(void*) {}
  static redisReplyObjectFunctions functions_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::size_t used_ = 0;
};

}  // namespace lg::redis
