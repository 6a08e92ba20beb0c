// The gw API for scripts: native lua_CFunctions (interpreted sandbox code calls these faster than
// FFI). Misuse (wrong phase, bad arguments) raises an error; a runtime failure returns nil, err.
#include "lua/bindings.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <spdlog/spdlog.h>

#include <cstring>
#include <string>

#include "core/json_escape.hpp"
#include "core/query_string.hpp"
#include "http/message.hpp"
#include "lua/binding_util.hpp"
#include "lua/lib_bindings.hpp"
#include "lua/sandbox.hpp"
#include "lua/script_host.hpp"

namespace lg::lua {
namespace {

// ---- gw.request ---------------------------------------------------------------------------

int req_get_method(lua_State* L) { push(L, host(L).req_method()); return 1; }
int req_get_path(lua_State* L) { push(L, host(L).req_path()); return 1; }
int req_get_raw_path(lua_State* L) { push(L, host(L).req_raw_path()); return 1; }
int req_get_raw_query(lua_State* L) { push(L, host(L).req_query()); return 1; }
int req_get_host(lua_State* L) { push(L, host(L).req_host()); return 1; }
int req_get_scheme(lua_State* L) { push(L, host(L).req_scheme()); return 1; }
int req_get_client_ip(lua_State* L) { push(L, host(L).req_client_ip()); return 1; }
int req_get_id(lua_State* L) { push(L, host(L).request_id()); return 1; }
int req_get_client_cert_subject(lua_State* L) {
  const std::string_view s = host(L).req_client_cert_subject();
  if (s.empty()) lua_pushnil(L);
  else push(L, s);
  return 1;
}

int req_get_header(lua_State* L) {
  const std::string_view name = arg_string(L, 1);
  ScriptHost& h = host(L);
  for (std::size_t i = 0; i < h.req_header_count(); ++i) {
    const HeaderPair p = h.req_header(i);
    if (http::iequals(p.first, name)) {
      push(L, p.second);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

// Lower-case names; repeated fields joined with ", " (RFC 9110 §5.3).
int req_get_headers(lua_State* L) {
  ScriptHost& h = host(L);
  lua_createtable(L, 0, static_cast<int>(h.req_header_count()));
  std::string lower;
  for (std::size_t i = 0; i < h.req_header_count(); ++i) {
    const HeaderPair p = h.req_header(i);
    lower.assign(p.first);
    for (char& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    lua_pushlstring(L, lower.data(), lower.size());
    lua_rawget(L, -2);
    if (lua_isstring(L, -1)) {
      lua_pushlstring(L, ", ", 2);
      push(L, p.second);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      push(L, p.second);
    }
    lua_pushlstring(L, lower.data(), lower.size());
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
  return 1;
}

// The first value of a query argument, percent-decoded; true for a bare "?flag"; nil if absent.
int req_get_query_arg(lua_State* L) {
  std::string_view raw;
  bool bare = false;
  if (!find_query_arg(host(L).req_query(), arg_string(L, 1), false, raw, bare)) {
    lua_pushnil(L);
  } else if (bare) {
    lua_pushboolean(L, 1);
  } else {
    thread_local std::string decoded;  // reused: no allocation per call once warm
    percent_decode(raw, decoded);
    lua_pushlstring(L, decoded.data(), decoded.size());
  }
  return 1;
}

// ---- gw.service ---------------------------------------------------------------------------

int svc_set_header(lua_State* L) {
  require_phase(L, "gw.service.request.set_header", kBeforeUpstream);
  host(L).up_set_header(checked_name(L, 1, "set_header"), checked_value(L, 2, "set_header"), false);
  return 0;
}
int svc_add_header(lua_State* L) {
  require_phase(L, "gw.service.request.add_header", kBeforeUpstream);
  host(L).up_set_header(checked_name(L, 1, "add_header"), checked_value(L, 2, "add_header"), true);
  return 0;
}
int svc_clear_header(lua_State* L) {
  require_phase(L, "gw.service.request.clear_header", kBeforeUpstream);
  host(L).up_clear_header(checked_name(L, 1, "clear_header"));
  return 0;
}
int svc_set_path(lua_State* L) {
  require_phase(L, "gw.service.request.set_path", kBeforeUpstream);
  const std::string_view p = arg_string(L, 1);
  if (p.empty() || p[0] != '/' || !valid_value(p) || p.find(' ') != std::string_view::npos ||
      p.find('?') != std::string_view::npos || p.find('#') != std::string_view::npos)
    luaL_error(L, "gw.service.request.set_path: the path must start with '/' and hold no space, '?', '#' or control characters");
  host(L).up_set_path(p);
  return 0;
}
int svc_set_raw_query(lua_State* L) {
  require_phase(L, "gw.service.request.set_raw_query", kBeforeUpstream);
  const std::string_view q = arg_string(L, 1);
  if (!valid_value(q) || q.find(' ') != std::string_view::npos || q.find('#') != std::string_view::npos)
    luaL_error(L, "gw.service.request.set_raw_query: invalid query");
  host(L).up_set_query(q);
  return 0;
}
int svc_set_upstream(lua_State* L) {
  require_phase(L, "gw.service.set_upstream", kBeforeUpstream);
  if (!host(L).up_set_upstream(arg_string(L, 1))) {
    lua_pushnil(L);
    lua_pushstring(L, "unknown upstream");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// ---- gw.response --------------------------------------------------------------------------

void encode_json(lua_State* L, int idx, std::string& out, int depth);

void encode_json_value(lua_State* L, int idx, std::string& out, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: out += "null"; break;
    case LUA_TBOOLEAN: out += lua_toboolean(L, idx) ? "true" : "false"; break;
    case LUA_TNUMBER: {
      const lua_Number n = lua_tonumber(L, idx);
      if (n != n || n == HUGE_VAL || n == -HUGE_VAL) luaL_error(L, "gw.response.exit: cannot encode a non-finite number");
      char buf[32];
      if (n == static_cast<lua_Number>(static_cast<long long>(n)) && n > -1e15 && n < 1e15)
        snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
      else
        snprintf(buf, sizeof buf, "%.14g", n);
      out += buf;
      break;
    }
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L, idx, &n);
      out.push_back('"');
      json_escape_append(out, {s, n});
      out.push_back('"');
      break;
    }
    case LUA_TTABLE: encode_json(L, idx, out, depth + 1); break;
    default: luaL_error(L, "gw.response.exit: cannot encode a %s as JSON", luaL_typename(L, idx));
  }
}

void encode_json(lua_State* L, int idx, std::string& out, int depth) {
  if (depth > 32) luaL_error(L, "gw.response.exit: table nested too deeply");
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  const std::size_t len = lua_objlen(L, idx);
  bool array = len > 0;
  if (array) {  // a sequence 1..n with nothing else
    lua_pushnil(L);
    std::size_t count = 0;
    while (lua_next(L, idx)) {
      ++count;
      lua_pop(L, 1);
    }
    array = count == len;
  }
  if (array) {
    out.push_back('[');
    for (std::size_t i = 1; i <= len; ++i) {
      if (i > 1) out.push_back(',');
      lua_rawgeti(L, idx, static_cast<int>(i));
      encode_json_value(L, lua_gettop(L), out, depth);
      lua_pop(L, 1);
    }
    out.push_back(']');
    return;
  }
  out.push_back('{');
  bool first = true;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "gw.response.exit: JSON object keys must be strings");
    if (!first) out.push_back(',');
    first = false;
    std::size_t n = 0;
    const char* k = lua_tolstring(L, -2, &n);
    out.push_back('"');
    json_escape_append(out, {k, n});
    out += "\":";
    encode_json_value(L, lua_gettop(L), out, depth);
    lua_pop(L, 1);
  }
  out.push_back('}');
}

// gw.response.exit(status, body, headers): body a string, or a table sent as JSON.
int resp_exit(lua_State* L) {
  require_phase(L, "gw.response.exit", kBeforeUpstream);
  const lua_Number n = luaL_checknumber(L, 1);
  const lua_Integer status = static_cast<lua_Integer>(n);
  if (static_cast<lua_Number>(status) != n || status < 200 || status > 599)
    luaL_error(L, "gw.response.exit: status must be an integer in 200..599");
  std::string body;
  std::string_view type = "text/plain; charset=utf-8";
  if (lua_type(L, 2) == LUA_TTABLE) {
    encode_json(L, 2, body, 0);
    body.push_back('\n');
    type = "application/json";
  } else if (!lua_isnoneornil(L, 2)) {
    body.assign(arg_string(L, 2));
  }
  if (body.size() > (1u << 20)) luaL_error(L, "gw.response.exit: body larger than 1 MiB");
  std::vector<std::pair<std::string, std::string>> headers;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "gw.response.exit: header names must be strings");
      std::string_view n = checked_name(L, -2, "gw.response.exit");
      std::string_view v = checked_value(L, -1, "gw.response.exit");
      headers.emplace_back(std::string(n), std::string(v));
      lua_pop(L, 1);
    }
  } else if (!lua_isnoneornil(L, 3)) {
    luaL_error(L, "gw.response.exit: headers must be a table");
  }
  // Recorded, not a jump: the handler ends when it returns (`return gw.response.exit(...)`), and
  // later changes to the upstream request are ignored since nothing goes upstream.
  host(L).exit(static_cast<int>(status), std::move(body), type, std::move(headers));
  return 0;
}

int resp_get_status(lua_State* L) {
  require_phase(L, "gw.response.get_status", phase_bit(Phase::response) | phase_bit(Phase::body) | phase_bit(Phase::log));
  lua_pushinteger(L, host(L).resp_status());
  return 1;
}
int resp_get_header(lua_State* L) {
  require_phase(L, "gw.response.get_header", phase_bit(Phase::response) | phase_bit(Phase::body) | phase_bit(Phase::log));
  const std::string_view name = arg_string(L, 1);
  ScriptHost& h = host(L);
  for (std::size_t i = 0; i < h.resp_header_count(); ++i) {
    const HeaderPair p = h.resp_header(i);
    if (http::iequals(p.first, name)) {
      push(L, p.second);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}
int resp_set_header(lua_State* L) {
  require_phase(L, "gw.response.set_header", phase_bit(Phase::response));
  host(L).resp_set_header(checked_name(L, 1, "gw.response.set_header"), checked_value(L, 2, "gw.response.set_header"));
  return 0;
}
int resp_clear_header(lua_State* L) {
  require_phase(L, "gw.response.clear_header", phase_bit(Phase::response));
  host(L).resp_clear_header(checked_name(L, 1, "gw.response.clear_header"));
  return 0;
}

int resp_get_body(lua_State* L) {
  require_phase(L, "gw.response.get_body", phase_bit(Phase::body));
  push(L, host(L).resp_body());
  return 1;
}
int resp_set_body(lua_State* L) {
  require_phase(L, "gw.response.set_body", phase_bit(Phase::body));
  std::size_t n = 0;
  const char* b = nullptr;
  if (lua_type(L, 1) == LUA_TTABLE) {  // a table is sent as JSON, like gw.response.exit
    std::string json;
    encode_json(L, 1, json, 0);
    json.push_back('\n');
    host(L).set_resp_body(json);
    return 0;
  }
  b = luaL_checklstring(L, 1, &n);
  host(L).set_resp_body({b, n});
  return 0;
}

// ---- gw.consumer ----------------------------------------------------------------------------

// gw.consumer.set(id): the authenticated caller, for logs and later phases.
int consumer_set(lua_State* L) {
  require_phase(L, "gw.consumer.set", kBeforeUpstream);
  const std::string_view id = arg_string(L, 1);
  if (id.empty() || id.size() > 128 || !valid_value(id)) luaL_error(L, "gw.consumer.set: the id must be 1..128 printable bytes");
  host(L).set_consumer(id);
  return 0;
}
int consumer_get(lua_State* L) {
  const std::string_view id = host(L).consumer();
  if (id.empty()) lua_pushnil(L);
  else push(L, id);
  return 1;
}

// ---- gw.log -------------------------------------------------------------------------------

// Arguments concatenated as they are (like ngx.log), non-strings by type name.
std::string log_message(lua_State* L) {
  std::string msg;
  const int n = lua_gettop(L);
  for (int i = 1; i <= n && msg.size() < 4096; ++i) {
    std::size_t len = 0;
    const char* s = lua_isstring(L, i) ? lua_tolstring(L, i, &len) : luaL_typename(L, i);
    if (!lua_isstring(L, i)) len = std::strlen(s);
    msg.append(s, std::min<std::size_t>(len, 4096));
  }
  for (char& c : msg)  // one log line per call, whatever the script passes
    if (c == '\n' || c == '\r') c = ' ';
  return msg;
}
template <spdlog::level::level_enum Level>
int log_at(lua_State* L) {
  ScriptHost& h = host(L);
  spdlog::log(Level, "script {} [{}]: {}", h.script_name, h.request_id(), log_message(L));
  return 0;
}

// ---- gw.ctx -------------------------------------------------------------------------------

// gw.ctx(): the request's table, shared by its phases and scripts.
int ctx_get(lua_State* L) {
  ScriptHost& h = host(L);
  if (h.ctx_ref < 0) {
    lua_newtable(L);
    h.ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, h.ctx_ref);
  return 1;
}

// __index of the read-only gw proxy: `gw.ctx` is the running request's table, every other field
// comes from the real gw table (upvalue 1).
int gw_index(lua_State* L) {
  std::size_t n = 0;
  const char* k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : nullptr;
  if (k && n == 3 && std::memcmp(k, "ctx", 3) == 0 && Vm::current_request(L)) return ctx_get(L);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

void install_gw_ctx(lua_State* L) {
  const int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, detail::kBaseKey);
  if (lua_istable(L, -1)) {
    lua_pushliteral(L, "gw");
    lua_rawget(L, -2);  // the proxy
    if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
      lua_getfield(L, LUA_REGISTRYINDEX, detail::kGwRealKey);
      lua_pushcclosure(L, gw_index, 1);
      lua_setfield(L, -2, "__index");
    }
  }
  lua_settop(L, top);
}

}  // namespace

void register_bindings(Vm& vm) {
  const struct {
    const char* name;
    lua_CFunction fn;
  } fns[] = {
      {"request.get_method", req_get_method},       {"request.get_path", req_get_path},
      {"request.get_raw_path", req_get_raw_path},   {"request.get_raw_query", req_get_raw_query},
      {"request.get_query_arg", req_get_query_arg}, {"request.get_header", req_get_header},
      {"request.get_headers", req_get_headers},     {"request.get_host", req_get_host},
      {"request.get_scheme", req_get_scheme},       {"request.get_client_ip", req_get_client_ip},
      {"request.get_id", req_get_id},               {"request.get_client_cert_subject", req_get_client_cert_subject},
      {"service.request.set_header", svc_set_header}, {"service.request.add_header", svc_add_header},
      {"service.request.clear_header", svc_clear_header}, {"service.request.set_path", svc_set_path},
      {"service.request.set_raw_query", svc_set_raw_query}, {"service.set_upstream", svc_set_upstream},
      {"response.exit", resp_exit},                 {"response.get_status", resp_get_status},
      {"response.get_header", resp_get_header},     {"response.set_header", resp_set_header},
      {"response.clear_header", resp_clear_header}, {"response.get_body", resp_get_body},
      {"response.set_body", resp_set_body},
      {"consumer.set", consumer_set},             {"consumer.get", consumer_get},
      {"log.info", log_at<spdlog::level::info>},    {"log.warn", log_at<spdlog::level::warn>},
      {"log.err", log_at<spdlog::level::err>},      {"get_ctx", ctx_get},
  };
  for (const auto& f : fns) vm.register_function(f.name, f.fn);
  install_gw_ctx(vm.state());
  register_lib_bindings(vm);
}

void release_request(lua_State* L, ScriptHost& h) {
  if (h.ctx_ref >= 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, h.ctx_ref);
    h.ctx_ref = -1;
  }
}

}  // namespace lg::lua
