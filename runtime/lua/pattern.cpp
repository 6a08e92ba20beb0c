// Lua pattern matching for the sandbox: the Lua 5.1 matcher (lstrlib.c, MIT licence, as used by
// LuaJIT 2.1, including %f and %z), rewritten so that a script cannot run unbounded inside one
// C call. LuaJIT's own matcher has no step limit: ("a?"):rep(40)..("a"):rep(40) against 40 "a"s
// is ~2^40 steps, and a 200-byte `a*a*a*a*b` search takes 18 s, all without a hook firing.
// Here every match step is counted and the CPU deadline polled (budget.hpp), and recursion is
// limited to kMaxMatchDepth (as Lua 5.2+: "pattern too complex"). The library functions on top
// are in strmatch.cpp.
#include "lua/pattern.hpp"

#include <cstring>
#include <lua.hpp>

#include "lua/budget.hpp"

namespace lg::lua::detail::pattern {
namespace {

constexpr std::ptrdiff_t kCapUnfinished = -1;
constexpr std::ptrdiff_t kCapPosition = -2;
constexpr char kEsc = '%';
constexpr const char* kSpecials = "^$*+?.([%-";

bool is_alpha(int c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
bool is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_cntrl(int c) { return c < 0x20 || c == 0x7f; }
bool is_punct(int c) { return c > 0x20 && c < 0x7f && !is_alpha(c) && !is_digit(c); }
bool is_xdigit(int c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

int check_capture(MatchState* ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == kCapUnfinished)
    return luaL_error(ms->L, "invalid capture index");
  return l;
}

int capture_to_close(MatchState* ms) {
  int level = ms->level;
  for (level--; level >= 0; level--)
    if (ms->capture[level].len == kCapUnfinished) return level;
  return luaL_error(ms->L, "invalid pattern capture");
}

const char* class_end(MatchState* ms, const char* p) {
  switch (*p++) {
    case kEsc:
      if (p >= ms->p_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
      return p + 1;
    case '[':
      if (p < ms->p_end && *p == '^') p++;
      do {  // look for a ']'
        if (p >= ms->p_end) luaL_error(ms->L, "malformed pattern (missing ']')");
        if (*(p++) == kEsc && p < ms->p_end) p++;  // skip escapes (e.g. '%]')
      } while (*p != ']');
      return p + 1;
    default:
      return p;
  }
}

bool match_class(int c, int cl) {
  bool res;
  switch (cl | 0x20) {
    case 'a': res = is_alpha(c); break;
    case 'c': res = is_cntrl(c); break;
    case 'd': res = is_digit(c); break;
    case 'l': res = is_lower(c); break;
    case 'p': res = is_punct(c); break;
    case 's': res = is_space(c); break;
    case 'u': res = is_upper(c); break;
    case 'w': res = is_alpha(c) || is_digit(c); break;
    case 'x': res = is_xdigit(c); break;
    case 'z': res = (c == 0); break;
    default: return cl == c;
  }
  return is_upper(cl) ? !res : res;
}

bool match_bracket_class(int c, const char* p, const char* ec) {
  bool sig = true;
  if (*(p + 1) == '^') {
    sig = false;
    p++;  // skip the '^'
  }
  while (++p < ec) {
    if (*p == kEsc) {
      p++;
      if (match_class(c, static_cast<unsigned char>(*p))) return sig;
    } else if (*(p + 1) == '-' && (p + 2 < ec)) {
      p += 2;
      if (static_cast<unsigned char>(*(p - 2)) <= c && c <= static_cast<unsigned char>(*p)) return sig;
    } else if (static_cast<unsigned char>(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

bool single_match(MatchState* ms, const char* s, const char* p, const char* ep) {
  if (s >= ms->src_end) return false;
  const int c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.': return true;
    case kEsc: return match_class(c, static_cast<unsigned char>(*(p + 1)));
    case '[': return match_bracket_class(c, p, ep - 1);
    default: return static_cast<unsigned char>(*p) == c;
  }
}


const char* match_balance(MatchState* ms, const char* s, const char* p) {
  if (p + 1 >= ms->p_end) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p) return nullptr;
  const int b = *p, e = *(p + 1);
  int cont = 1;
  while (++s < ms->src_end) {
    step(ms);
    if (*s == e) {
      if (--cont == 0) return s + 1;
    } else if (*s == b) {
      cont++;
    }
  }
  return nullptr;
}

const char* max_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) {
    step(ms);
    i++;
  }
  while (i >= 0) {  // try with the maximum repetitions, then fewer
    if (const char* res = match(ms, s + i, ep + 1)) return res;
    i--;
  }
  return nullptr;
}

const char* min_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    step(ms);
    if (const char* res = match(ms, s, ep + 1)) return res;
    if (single_match(ms, s, p, ep)) s++;
    else return nullptr;
  }
}

const char* start_capture(MatchState* ms, const char* s, const char* p, std::ptrdiff_t what) {
  if (ms->level >= kMaxCaptures) luaL_error(ms->L, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char* res = match(ms, s, p);
  if (!res) ms->level--;  // undo capture
  return res;
}

const char* end_capture(MatchState* ms, const char* s, const char* p) {
  const int l = capture_to_close(ms);
  ms->capture[l].len = s - ms->capture[l].init;
  const char* res = match(ms, s, p);
  if (!res) ms->capture[l].len = kCapUnfinished;
  return res;
}

const char* match_capture(MatchState* ms, const char* s, int l) {
  l = check_capture(ms, l);
  const auto len = static_cast<std::size_t>(ms->capture[l].len);
  if (static_cast<std::size_t>(ms->src_end - s) >= len && std::memcmp(ms->capture[l].init, s, len) == 0)
    return s + len;
  return nullptr;
}

}  // namespace

const char* match(MatchState* ms, const char* s, const char* p) {
  if (++ms->depth > kMaxMatchDepth) luaL_error(ms->L, "pattern too complex");
  step(ms);
init:
  if (p < ms->p_end) {
    switch (*p) {
      case '(':
        if (p + 1 < ms->p_end && *(p + 1) == ')') s = start_capture(ms, s, p + 2, kCapPosition);
        else s = start_capture(ms, s, p + 1, kCapUnfinished);
        break;
      case ')':
        s = end_capture(ms, s, p + 1);
        break;
      case '$':
        if (p + 1 == ms->p_end) {
          s = (s == ms->src_end) ? s : nullptr;
          break;
        }
        goto dflt;
      case kEsc:
        if (p + 1 < ms->p_end && p[1] == 'b') {
          s = match_balance(ms, s, p + 2);
          if (s) {
            p += 4;
            goto init;
          }
          break;
        }
        if (p + 1 < ms->p_end && p[1] == 'f') {
          p += 2;
          if (p >= ms->p_end || *p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
          const char* ep = class_end(ms, p);
          const int prev = (s == ms->src_init) ? 0 : static_cast<unsigned char>(*(s - 1));
          const int cur = (s < ms->src_end) ? static_cast<unsigned char>(*s) : 0;
          if (!match_bracket_class(prev, p, ep - 1) && match_bracket_class(cur, p, ep - 1)) {
            p = ep;
            goto init;
          }
          s = nullptr;
          break;
        }
        if (p + 1 < ms->p_end && is_digit(static_cast<unsigned char>(p[1]))) {
          s = match_capture(ms, s, static_cast<unsigned char>(p[1]));
          if (s) {
            p += 2;
            goto init;
          }
          break;
        }
        goto dflt;
      default:
      dflt: {
        const char* ep = class_end(ms, p);
        const bool m = single_match(ms, s, p, ep);
        const char epc = ep < ms->p_end ? *ep : '\0';
        switch (epc) {
          case '?': {
            const char* res;
            if (m && (res = match(ms, s + 1, ep + 1)) != nullptr) {
              s = res;
            } else {
              p = ep + 1;
              goto init;
            }
            break;
          }
          case '+': s = m ? max_expand(ms, s + 1, p, ep) : nullptr; break;
          case '*': s = max_expand(ms, s, p, ep); break;
          case '-': s = min_expand(ms, s, p, ep); break;
          default:
            if (!m) {
              s = nullptr;
            } else {
              s++;
              p = ep;
              step(ms);
              goto init;
            }
        }
      }
    }
  }
  ms->depth--;
  return s;
}

bool is_digit(int c) { return c >= '0' && c <= '9'; }

void step(MatchState* ms) {
  if ((++ms->steps & 1023u) == 0) check_deadline(ms->L);
}

void push_onecapture(MatchState* ms, int i, const char* s, const char* e) {
  if (i >= ms->level) {
    if (i == 0) lua_pushlstring(ms->L, s, static_cast<std::size_t>(e - s));  // whole match
    else luaL_error(ms->L, "invalid capture index");
    return;
  }
  const std::ptrdiff_t l = ms->capture[i].len;
  if (l == kCapUnfinished) luaL_error(ms->L, "unfinished capture");
  if (l == kCapPosition) lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
  else lua_pushlstring(ms->L, ms->capture[i].init, static_cast<std::size_t>(l));
}

int push_captures(MatchState* ms, const char* s, const char* e) {
  const int nlevels = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, nlevels, "too many captures");
  for (int i = 0; i < nlevels; i++) push_onecapture(ms, i, s, e);
  return nlevels;
}

void init(MatchState& ms, lua_State* L, const char* s, std::size_t ls, const char* p, std::size_t lp) {
  ms.L = L;
  ms.src_init = s;
  ms.src_end = s + ls;
  ms.p_end = p + lp;
  ms.level = 0;
  ms.depth = 0;
  ms.steps = 0;
}

bool has_specials(const char* p, std::size_t lp) {
  for (std::size_t i = 0; i < lp; ++i)
    if (std::strchr(kSpecials, p[i]) && p[i] != '\0') return true;
  return false;
}

}  // namespace lg::lua::detail::pattern
