// gw.shared (process-wide key/value with TTL and atomic incr) and gw.ratelimit.take (native token
// buckets by key). Both reach core/shared_state through the running request's ScriptHost.
#include "lua/shared_bindings.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <cmath>

#include "core/clock.hpp"
#include "core/shared_state.hpp"
#include "lua/script_host.hpp"
#include "lua/vm.hpp"

namespace lg::lua {
namespace {

constexpr std::size_t kMaxKey = 256;
constexpr std::size_t kMaxValue = 64 * 1024;

SharedState& shared(lua_State* L, const char* fn) {
  auto* h = static_cast<ScriptHost*>(Vm::current_request(L));
  if (!h || !h->shared) luaL_error(L, "%s: only available while handling a request", fn);
  return *h->shared;
}

std::string_view key_arg(lua_State* L, const char* fn) {
  std::size_t n = 0;
  const char* k = luaL_checklstring(L, 1, &n);
  if (n == 0 || n > kMaxKey) luaL_error(L, "%s: the key must be 1..%d bytes", fn, static_cast<int>(kMaxKey));
  return {k, n};
}

std::int64_t ttl_arg(lua_State* L, int i, const char* fn) {
  if (lua_isnoneornil(L, i)) return 0;
  const double ttl = luaL_checknumber(L, i);
  if (!(ttl >= 0) || ttl > 1e9) luaL_error(L, "%s: ttl must be a number of seconds >= 0", fn);
  return static_cast<std::int64_t>(std::llround(ttl * 1000));
}

int push_status_error(lua_State* L, SharedDict::Status st) {
  lua_pushnil(L);
  lua_pushstring(L, st == SharedDict::Status::full ? "no memory: the shared dictionary is full"
                    : st == SharedDict::Status::not_a_number ? "not a number" : "not found");
  return 2;
}

int shared_get(lua_State* L) {
  SharedState& s = shared(L, "gw.shared.get");
  SharedDict::Value v;
  if (s.dict.get(key_arg(L, "gw.shared.get"), monotonic_ms(), v) != SharedDict::Status::ok) {
    lua_pushnil(L);
    return 1;
  }
  if (v.is_number) lua_pushnumber(L, v.number);
  else lua_pushlstring(L, v.text.data(), v.text.size());
  return 1;
}

int shared_set(lua_State* L) {
  SharedState& s = shared(L, "gw.shared.set");
  const std::string_view key = key_arg(L, "gw.shared.set");
  SharedDict::Value v;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    v.is_number = true;
    v.number = lua_tonumber(L, 2);
  } else if (lua_type(L, 2) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* t = lua_tolstring(L, 2, &n);
    if (n > kMaxValue) luaL_error(L, "gw.shared.set: value larger than %d bytes", static_cast<int>(kMaxValue));
    v.text.assign(t, n);
  } else {
    luaL_error(L, "gw.shared.set: the value must be a string or a number");
  }
  const auto st = s.dict.set(key, v, ttl_arg(L, 3, "gw.shared.set"), monotonic_ms());
  if (st != SharedDict::Status::ok) return push_status_error(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

int shared_incr(lua_State* L) {
  SharedState& s = shared(L, "gw.shared.incr");
  const std::string_view key = key_arg(L, "gw.shared.incr");
  const double delta = luaL_optnumber(L, 2, 1);
  const double init = luaL_optnumber(L, 3, 0);
  double out = 0;
  const auto st = s.dict.incr(key, delta, init, ttl_arg(L, 4, "gw.shared.incr"), monotonic_ms(), out);
  if (st != SharedDict::Status::ok) return push_status_error(L, st);
  lua_pushnumber(L, out);
  return 1;
}

int shared_delete(lua_State* L) {
  SharedState& s = shared(L, "gw.shared.delete");
  lua_pushboolean(L, s.dict.erase(key_arg(L, "gw.shared.delete")));
  return 1;
}

double spec_number(lua_State* L, const char* field, double fallback, const char* fn) {
  lua_getfield(L, 2, field);
  double v = fallback;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: spec.%s must be a number", fn, field);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

// gw.ratelimit.take(key, { limit = n, per = seconds, burst = b, cost = 1,
//                          algorithm = "token_bucket" | "sliding_window" })
//   -> allowed, remaining, retry_after (seconds)
// The same process-wide counters as the rate-limit policy (core/rate_limit.hpp); a script's
// keys live in their own namespace ("lua|<key>").
int ratelimit_take(lua_State* L) {
  const char* fn = "gw.ratelimit.take";
  SharedState& s = shared(L, fn);
  const std::string_view key = key_arg(L, fn);
  luaL_checktype(L, 2, LUA_TTABLE);
  const double limit = spec_number(L, "limit", -1, fn);
  const double per = spec_number(L, "per", 1, fn);
  if (!(limit > 0) || !(per >= 0.001) || per > 31'536'000) luaL_error(L, "%s: spec.limit must be > 0 and spec.per in 0.001..31536000 seconds", fn);
  const double burst = spec_number(L, "burst", limit, fn);
  const double cost = spec_number(L, "cost", 1, fn);
  if (!(burst >= 1) || !(cost > 0)) luaL_error(L, "%s: spec.burst must be >= 1 and spec.cost > 0", fn);
  RateLimitSpec spec;
  spec.algorithm = RateLimitSpec::Algorithm::token_bucket;
  lua_getfield(L, 2, "algorithm");
  if (!lua_isnil(L, -1)) {
    const char* a = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    if (std::string_view(a) == "sliding_window") spec.algorithm = RateLimitSpec::Algorithm::sliding_window;
    else if (std::string_view(a) != "token_bucket") luaL_error(L, "%s: spec.algorithm must be \"token_bucket\" or \"sliding_window\"", fn);
  }
  lua_pop(L, 1);
  thread_local std::string full;
  full.assign("lua|").append(key);
  spec.key = full;
  spec.limit = limit;
  spec.window_ms = static_cast<std::int64_t>(per * 1000);
  spec.burst = burst;
  const RateResult r = s.limits.take(spec, cost, wall_ms());
  lua_pushboolean(L, r.allowed);
  lua_pushnumber(L, r.remaining);
  lua_pushnumber(L, r.allowed ? 0 : std::ceil(static_cast<double>(r.retry_after_ms)) / 1000);
  return 3;
}

}  // namespace

void register_shared_bindings(Vm& vm) {
  vm.register_function("shared.get", shared_get);
  vm.register_function("shared.set", shared_set);
  vm.register_function("shared.incr", shared_incr);
  vm.register_function("shared.delete", shared_delete);
  vm.register_function("ratelimit.take", ratelimit_take);
}

}  // namespace lg::lua
