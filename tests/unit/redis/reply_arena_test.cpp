// Replies built by hiredis's reader in a ReplyArena: the usual redisReply tree, nodes reused from
// one reply to the next.
#include <catch2/catch.hpp>

#include <memory>
#include <string_view>

#include "redis/reply_arena.hpp"

using lg::redis::ReplyArena;

namespace {
struct Reader {
  std::unique_ptr<redisReader, void (*)(redisReader*)> r{redisReaderCreate(), redisReaderFree};
  ReplyArena arena;
  Reader() { arena.install(r.get()); }
  const redisReply* next(std::string_view bytes) {
    REQUIRE(redisReaderFeed(r.get(), bytes.data(), bytes.size()) == REDIS_OK);
    void* reply = nullptr;
    REQUIRE(redisReaderGetReply(r.get(), &reply) == REDIS_OK);
    return static_cast<const redisReply*>(reply);
  }
};
}  // namespace

TEST_CASE("ReplyArena: integer arrays, as the rate-limit scripts answer", "[redis]") {
  Reader rd;
  const redisReply* a = rd.next("*5\r\n:1\r\n:0\r\n:99\r\n:-7\r\n:0\r\n");
  REQUIRE(a);
  REQUIRE(a->type == REDIS_REPLY_ARRAY);
  REQUIRE(a->elements == 5);
  CHECK(a->element[0]->type == REDIS_REPLY_INTEGER);
  CHECK(a->element[2]->integer == 99);
  CHECK(a->element[3]->integer == -7);
  const std::size_t nodes = rd.arena.nodes();
  for (int i = 0; i < 100; ++i) {  // the same nodes serve every later reply
    const redisReply* b = rd.next("*5\r\n:2\r\n:0\r\n:98\r\n:600\r\n:0\r\n");
    REQUIRE(b->elements == 5);
    CHECK(b->element[0]->integer == 2);
  }
  CHECK(rd.arena.nodes() == nodes);
}

TEST_CASE("ReplyArena: scalars, strings, errors, nil and nested arrays", "[redis]") {
  Reader rd;
  CHECK(rd.next(":-2\r\n")->integer == -2);
  const redisReply* e = rd.next("-NOSCRIPT No matching script\r\n");
  CHECK(e->type == REDIS_REPLY_ERROR);
  CHECK(std::string_view(e->str, e->len) == "NOSCRIPT No matching script");
  CHECK(rd.next("+OK\r\n")->type == REDIS_REPLY_STATUS);
  CHECK(rd.next("$-1\r\n")->type == REDIS_REPLY_NIL);
  const redisReply* s = rd.next(std::string_view("$5\r\nhe\0lo\r\n", 11));
  CHECK(std::string_view(s->str, s->len) == std::string_view("he\0lo", 5));
  CHECK(rd.next("*0\r\n")->elements == 0);
  const redisReply* n = rd.next("*2\r\n*2\r\n:1\r\n$1\r\nx\r\n$-1\r\n");
  REQUIRE(n->elements == 2);
  REQUIRE(n->element[0]->elements == 2);
  CHECK(n->element[0]->element[0]->integer == 1);
  CHECK(std::string_view(n->element[0]->element[1]->str, 1) == "x");
  CHECK(n->element[1]->type == REDIS_REPLY_NIL);
}

TEST_CASE("ReplyArena: a reply split over several reads", "[redis]") {
  Reader rd;
  REQUIRE(redisReaderFeed(rd.r.get(), "*3\r\n:1\r\n:2", 10) == REDIS_OK);
  void* reply = nullptr;
  REQUIRE(redisReaderGetReply(rd.r.get(), &reply) == REDIS_OK);
  CHECK(reply == nullptr);
  const redisReply* a = rd.next("\r\n:3\r\n");
  REQUIRE(a->elements == 3);
  CHECK(a->element[1]->integer == 2);
  CHECK(a->element[2]->integer == 3);
}
