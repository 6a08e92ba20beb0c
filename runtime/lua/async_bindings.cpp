#include "lua/async_bindings.hpp"

#include <cmath>
#include <string>

#include "lua/binding_util.hpp"
#include "lua/budget.hpp"

namespace lg::lua {
namespace {

constexpr unsigned kAllPhases = phase_bit(Phase::rewrite) | phase_bit(Phase::access) | phase_bit(Phase::response) |
                                phase_bit(Phase::body) | phase_bit(Phase::log);

// Suspends the handler until the host ends the wait. Raises where a wait is impossible.
int wait_for(lua_State* L, Wait what) {
  host(L).wait = what;
  return lua_yield(L, 0);
}

void require_waitable(lua_State* L, const char* fn) {
  if (!Vm::can_wait(L))
    luaL_error(L, "%s: cannot wait here (only in the handler itself: not inside a coroutine the script "
                  "created, nor in a callback of gsub, sort or a metamethod called from C)", fn);
}

// Seconds (a number) to milliseconds, rounded up, checked.
std::int64_t seconds_arg(lua_State* L, int i, const char* fn, const char* what) {
  const lua_Number s = luaL_checknumber(L, i);
  if (!(s >= 0) || s > kMaxSleepSeconds) luaL_error(L, "%s: %s must be a number of seconds in 0..%d", fn, what, static_cast<int>(kMaxSleepSeconds));
  return static_cast<std::int64_t>(std::ceil(s * 1000.0));
}

// gw.sleep(seconds)
int gw_sleep(lua_State* L) {
  require_phase(L, "gw.sleep", kAllPhases);
  const std::int64_t ms = seconds_arg(L, 1, "gw.sleep", "the delay");
  require_waitable(L, "gw.sleep");
  const std::string err = host(L).start_sleep(ms);
  if (!err.empty()) {
    lua_pushnil(L);
    push(L, err);
    return 2;
  }
  return wait_for(L, Wait::sleep);
}

// Reads one call: upstream name at `name_idx`, options table (or nil) at `opts_idx`.
void read_call(lua_State* L, int name_idx, int opts_idx, const char* fn, HttpCall& c) {
  const std::string_view name = arg_string(L, name_idx);
  const int up = host(L).find_upstream(name);
  if (up < 0) luaL_error(L, "%s: unknown upstream '%s'", fn, std::string(name).c_str());
  c.upstream = static_cast<std::uint32_t>(up);
  if (lua_isnoneornil(L, opts_idx)) return;
  if (!lua_istable(L, opts_idx)) luaL_error(L, "%s: options must be a table", fn);
  detail::check_c_stack(L);  // the lua_getfield calls below may run __index functions
  opts_idx = opts_idx < 0 ? lua_gettop(L) + opts_idx + 1 : opts_idx;
  lua_getfield(L, opts_idx, "method");
  if (!lua_isnil(L, -1)) {
    const std::string_view m = lua_isstring(L, -1) ? arg_string(L, -1) : std::string_view{};
    if (m.empty() || m.size() > 32 || !http::detail::is_token(m)) luaL_error(L, "%s: method must be an HTTP token", fn);
    c.method.assign(m);
  }
  lua_getfield(L, opts_idx, "path");
  if (!lua_isnil(L, -1)) {
    const std::string_view p = lua_isstring(L, -1) ? arg_string(L, -1) : std::string_view{};
    if (p.empty() || p[0] != '/' || p.size() > 8192 || !valid_value(p) || p.find_first_of(" \t") != std::string_view::npos)
      luaL_error(L, "%s: path must start with '/' and hold no spaces or control characters", fn);
    c.path.assign(p);
  }
  lua_getfield(L, opts_idx, "query");
  if (!lua_isnil(L, -1)) {
    const std::string_view q = lua_isstring(L, -1) ? arg_string(L, -1) : std::string_view{};
    if (!valid_value(q) || q.find_first_of(" \t#") != std::string_view::npos) luaL_error(L, "%s: query must be a raw query string", fn);
    if (!q.empty()) c.path.append(c.path.find('?') == std::string::npos ? "?" : "&").append(q);
  }
  lua_getfield(L, opts_idx, "body");
  if (!lua_isnil(L, -1)) {
    if (!lua_isstring(L, -1)) luaL_error(L, "%s: body must be a string", fn);
    c.body.assign(arg_string(L, -1));
    c.has_body = true;
  }
  lua_getfield(L, opts_idx, "timeout");
  if (!lua_isnil(L, -1)) c.timeout_ms = std::max<std::int64_t>(1, seconds_arg(L, -1, fn, "timeout"));
  lua_getfield(L, opts_idx, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: header names must be strings", fn);
      const std::string_view n = checked_name(L, -2, fn);
      const std::string_view v = checked_value(L, -1, fn);
      if (c.headers.size() >= 100) luaL_error(L, "%s: too many headers", fn);
      c.headers.emplace_back(std::string(n), std::string(v));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "%s: headers must be a table", fn);
  }
  lua_pop(L, 6);
}

int start_calls(lua_State* L, const char* fn, std::vector<HttpCall>& calls, Wait what) {
  require_waitable(L, fn);
  // The responses enter the handler's memory when it resumes: together they may take at most
  // its memory budget.
  if (const detail::Governor* g = detail::Governor::of(L); g && g->run()) {
    const std::uint64_t share = std::max<std::uint64_t>(g->run()->memory_bytes / calls.size(), 64u << 10);
    for (HttpCall& c : calls) c.max_body = share;
  }
  const std::string err = host(L).start_http(calls);
  if (!err.empty()) {
    lua_pushnil(L);
    push(L, err);
    return 2;
  }
  return wait_for(L, what);
}

// gw.http.request(upstream, { method, path, query, headers, body, timeout }) -> res | nil, err
int http_request(lua_State* L) {
  require_phase(L, "gw.http.request", kAllPhases);
  std::vector<HttpCall> calls(1);
  read_call(L, 1, 2, "gw.http.request", calls[0]);
  return start_calls(L, "gw.http.request", calls, Wait::http_one);
}

// gw.http.multi({ {upstream, opts}, ... }) -> { res_or_{error=...}, ... } in order
int http_multi(lua_State* L) {
  require_phase(L, "gw.http.multi", kAllPhases);
  luaL_checktype(L, 1, LUA_TTABLE);
  const std::size_t n = lua_objlen(L, 1);
  if (n == 0 || n > kMaxMultiCalls) luaL_error(L, "gw.http.multi: expected 1..%d calls", static_cast<int>(kMaxMultiCalls));
  std::vector<HttpCall> calls(n);
  for (std::size_t i = 0; i < n; ++i) {
    lua_rawgeti(L, 1, static_cast<int>(i + 1));
    if (!lua_istable(L, -1)) luaL_error(L, "gw.http.multi: call %d must be a table {upstream, options}", static_cast<int>(i + 1));
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    read_call(L, -2, -1, "gw.http.multi", calls[i]);
    lua_pop(L, 3);
  }
  return start_calls(L, "gw.http.multi", calls, Wait::http_multi);
}

// gw.request.get_body() -> the whole request body ("" when it has none), read once and kept.
int req_get_body(lua_State* L) {
  require_phase(L, "gw.request.get_body", kBeforeUpstream);
  ScriptHost& h = host(L);
  if (h.body_read()) {
    push(L, h.req_body());
    return 1;
  }
  require_waitable(L, "gw.request.get_body");
  const std::string err = h.start_read_body();
  if (!err.empty()) {
    lua_pushnil(L);
    push(L, err);
    return 2;
  }
  if (h.body_read()) {  // nothing to wait for
    push(L, h.req_body());
    return 1;
  }
  return wait_for(L, Wait::body);
}

int svc_set_body(lua_State* L) {
  require_phase(L, "gw.service.request.set_body", kBeforeUpstream);
  if (!lua_isstring(L, 1)) luaL_error(L, "gw.service.request.set_body: body must be a string");
  host(L).up_set_body(arg_string(L, 1));
  return 0;
}

int svc_set_method(lua_State* L) {
  require_phase(L, "gw.service.request.set_method", kBeforeUpstream);
  const std::string_view m = arg_string(L, 1);
  if (m.empty() || m.size() > 32 || !http::detail::is_token(m))
    luaL_error(L, "gw.service.request.set_method: method must be an HTTP token");
  // HEAD changes how the response is framed (no body whatever its headers say): the response
  // parser follows the client's method, so neither side of the change may be HEAD.
  if (m == "HEAD" || host(L).req_method() == "HEAD")
    luaL_error(L, "gw.service.request.set_method: a request cannot be changed to or from HEAD");
  host(L).up_set_method(m);
  return 0;
}

void push_result(lua_State* L, const HttpResult& r) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, r.status);
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, static_cast<int>(r.headers.size()));
  for (const auto& [name, value] : r.headers) {  // names arrive lower-cased; repeats joined
    push(L, name);
    lua_rawget(L, -2);
    if (lua_isstring(L, -1)) {
      lua_pushliteral(L, ", ");
      push(L, value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      push(L, value);
    }
    push(L, name);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  push(L, r.body);
  lua_setfield(L, -2, "body");
}

}  // namespace

int push_wait_results(lua_State* L, ScriptHost& h, Wait what) {
  switch (what) {
    case Wait::none: return 0;
    case Wait::sleep: lua_pushboolean(L, 1); return 1;
    case Wait::body: push(L, h.req_body()); return 1;
    case Wait::http_one: {
      if (h.http_results.empty()) {
        lua_pushnil(L);
        lua_pushliteral(L, "no result");
        return 2;
      }
      const HttpResult& r = h.http_results[0];
      if (r.status == 0) {
        lua_pushnil(L);
        push(L, r.error);
        return 2;
      }
      push_result(L, r);
      return 1;
    }
    case Wait::http_multi: {
      lua_createtable(L, static_cast<int>(h.http_results.size()), 0);
      for (std::size_t i = 0; i < h.http_results.size(); ++i) {
        const HttpResult& r = h.http_results[i];
        if (r.status == 0) {
          lua_createtable(L, 0, 1);
          push(L, r.error);
          lua_setfield(L, -2, "error");
        } else {
          push_result(L, r);
        }
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return 1;
    }
  }
  return 0;
}

void register_async_bindings(Vm& vm) {
  vm.register_function("sleep", gw_sleep);
  vm.register_function("http.request", http_request);
  vm.register_function("http.multi", http_multi);
  vm.register_function("request.get_body", req_get_body);
  vm.register_function("service.request.set_body", svc_set_body);
  vm.register_function("service.request.set_method", svc_set_method);
}

}  // namespace lg::lua
