// The sandbox's Lua pattern matcher (internal to runtime/lua/): see pattern.cpp.
#pragma once
#include <cstddef>

struct lua_State;

namespace lg::lua::detail::pattern {

inline constexpr int kMaxCaptures = 32;
inline constexpr int kMaxMatchDepth = 200;  // recursion ("pattern too complex"), as Lua 5.2+

struct MatchState {
  const char* src_init;
  const char* src_end;
  const char* p_end;
  lua_State* L;
  int level;
  int depth;
  unsigned steps;
  struct {
    const char* init;
    std::ptrdiff_t len;
  } capture[kMaxCaptures];
};

void init(MatchState& ms, lua_State* L, const char* s, std::size_t ls, const char* p, std::size_t lp);
// Before each match attempt.
inline void reset(MatchState& ms) { ms.level = ms.depth = 0; }
// One step of work; the CPU deadline is checked every 1024 steps.
void step(MatchState* ms);
// The end of the match of pattern p at s, or nullptr.
const char* match(MatchState* ms, const char* s, const char* p);
void push_onecapture(MatchState* ms, int i, const char* s, const char* e);
int push_captures(MatchState* ms, const char* s, const char* e);
bool has_specials(const char* p, std::size_t lp);  // false: a plain-text search is enough
bool is_digit(int c);

}  // namespace lg::lua::detail::pattern
