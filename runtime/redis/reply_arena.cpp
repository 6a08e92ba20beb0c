#include "redis/reply_arena.hpp"

namespace lg::redis {

redisReplyObjectFunctions ReplyArena::functions_ = {create_string, create_array, create_integer, create_nil,
                                                    free_object};

void ReplyArena::install(redisReader* r) {
  r->fn = &functions_;
  r->privdata = this;
  used_ = 0;
}

// A task without a parent starts a new reply: the previous one's callback has returned, so every
// node can be reused. An element is linked into its parent array here (hiredis leaves that to
// these functions).
ReplyArena::Node& ReplyArena::start(const redisReadTask* task, int type) {
  auto* self = static_cast<ReplyArena*>(task->privdata);
  if (!task->parent) self->used_ = 0;
  if (self->used_ == self->nodes_.size()) self->nodes_.push_back(std::make_unique<Node>());
  Node& n = *self->nodes_[self->used_++];
  n.reply = redisReply{};
  n.reply.type = type;
  if (task->parent) static_cast<redisReply*>(task->parent->obj)->element[task->idx] = &n.reply;
  return n;
}

void* ReplyArena::create_string(const redisReadTask* task, char* str, std::size_t len) {
  Node& n = start(task, task->type);
  n.text.assign(str, len);
  n.reply.str = n.text.data();
  n.reply.len = n.text.size();
  return &n.reply;
}

void* ReplyArena::create_array(const redisReadTask* task, int elements) {
  Node& n = start(task, REDIS_REPLY_ARRAY);
  n.children.assign(static_cast<std::size_t>(elements > 0 ? elements : 0), nullptr);
  n.reply.elements = n.children.size();
  n.reply.element = n.children.data();
  return &n.reply;
}

void* ReplyArena::create_integer(const redisReadTask* task, long long value) {
  Node& n = start(task, REDIS_REPLY_INTEGER);
  n.reply.integer = value;
  return &n.reply;
}

void* ReplyArena::create_nil(const redisReadTask* task) { return &start(task, REDIS_REPLY_NIL).reply; }

}  // namespace lg::redis
