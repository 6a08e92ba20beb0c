#include "lua/engine.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/snapshot.hpp"
#include "lua/async_bindings.hpp"
#include "lua/bindings.hpp"
#include "lua/shared_bindings.hpp"

namespace lg::lua {
namespace {

// Loading runs a script's top level: it gets a larger CPU allowance than one request.
Budget load_budget(const Snapshot& snap) {
  Budget b;
  b.cpu_ms = std::max<std::int64_t>(200, snap.config.scripts.cpu.count() * 4);
  b.memory_bytes = snap.config.scripts.memory;
  return b;
}

void push_conf(lua_State* L, const ConfValue& v, int depth) {
  switch (v.kind) {
    case ConfValue::Kind::null: lua_pushnil(L); return;
    case ConfValue::Kind::boolean: lua_pushboolean(L, v.b); return;
    case ConfValue::Kind::number: lua_pushnumber(L, v.n); return;
    case ConfValue::Kind::string: lua_pushlstring(L, v.s.data(), v.s.size()); return;
    case ConfValue::Kind::list:
      lua_createtable(L, static_cast<int>(v.items.size()), 0);
      for (std::size_t i = 0; i < v.items.size() && depth < 32; ++i) {
        push_conf(L, v.items[i], depth + 1);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return;
    case ConfValue::Kind::map:
      lua_createtable(L, 0, static_cast<int>(v.fields.size()));
      for (const auto& [k, f] : v.fields) {
        if (depth >= 32) break;
        lua_pushlstring(L, k.data(), k.size());
        push_conf(L, f, depth + 1);
        lua_rawset(L, -3);
      }
      return;
  }
}

const char* conf_type(const ConfValue& v) {
  switch (v.kind) {
    case ConfValue::Kind::null: return "nil";
    case ConfValue::Kind::boolean: return "boolean";
    case ConfValue::Kind::number: return "number";
    case ConfValue::Kind::string: return "string";
    default: return "table";
  }
}

// Checks `conf` against a script's schema ({ field = { type =, required =, default = } }) and
// fills defaults into the config table at `table_idx`. Returns "config.field: message" or "".
std::string validate_conf(lua_State* L, int schema_ref, const ConfValue& conf, int table_idx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, schema_ref);
  const int schema = lua_gettop(L);
  std::string err;
  for (const auto& [name, value] : conf.fields) {
    lua_pushlstring(L, name.data(), name.size());
    lua_rawget(L, schema);  // raw reads only: no metamethod of the script runs outside a budget
    if (!lua_istable(L, -1)) {
      err = "config." + name + ": unknown field (the script's schema does not declare it)";
    } else {
      lua_pushliteral(L, "type");
      lua_rawget(L, -2);
      const char* want = lua_tostring(L, -1);
      if (want && std::string_view(want) != "any" && std::string_view(want) != conf_type(value))
        err = "config." + name + ": expected " + want + ", got " + conf_type(value);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!err.empty()) break;
  }
  lua_pushnil(L);
  while (err.empty() && lua_next(L, schema)) {  // key at -2, field spec at -1
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
      std::size_t n = 0;
      const char* name = lua_tolstring(L, -2, &n);
      lua_pushlstring(L, name, n);
      lua_rawget(L, table_idx);
      const bool present = !lua_isnil(L, -1);
      lua_pop(L, 1);
      if (!present) {
        lua_pushliteral(L, "default");
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1)) {
          lua_pushlstring(L, name, n);
          lua_insert(L, -2);
          lua_rawset(L, table_idx);
        } else {
          lua_pop(L, 1);
          lua_pushliteral(L, "required");
          lua_rawget(L, -2);
          if (lua_toboolean(L, -1)) err = std::string("config.") + std::string(name, n) + ": required";
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
  if (!err.empty()) lua_pop(L, 1);  // lua_next left its key on the stack when we broke out
  lua_settop(L, schema - 1);
  return err;
}

}  // namespace

Engine::Engine() {
  register_bindings(vm_);
  register_shared_bindings(vm_);
  register_async_bindings(vm_);
}
Engine::~Engine() = default;

std::unique_ptr<CompiledScripts> Engine::compile(const Snapshot& snap) {
  auto c = std::make_unique<CompiledScripts>();
  const Budget budget = load_budget(snap);
  c->handles.resize(snap.scripts.size());
  c->errors.resize(snap.scripts.size());
  for (std::size_t i = 0; i < snap.scripts.size(); ++i) {
    const ScriptSource& s = snap.scripts[i];
    if (!vm_.load(s.path, s.source, budget, c->handles[i], c->errors[i])) c->handles[i] = ScriptHandle{};
    c->handles[i].name = s.name;
  }
  lua_State* L = vm_.state();
  const std::size_t globals = snap.config.scripts.global.size();
  c->conf_refs.resize(snap.route_scripts.size());
  c->route_phases.assign(snap.route_scripts.size(), 0);
  for (std::size_t r = 0; r < snap.route_scripts.size(); ++r) {
    for (std::size_t i = 0; i < snap.route_scripts[r].size(); ++i) {
      const ScriptAttachment& a = snap.route_scripts[r][i];
      const ScriptHandle& h = c->handles[a.script];
      c->route_phases[r] |= h.handlers_ref >= 0 ? h.phases : 0xff;
      const int schema = c->handles[a.script].schema_ref;
      if (a.ref->config.kind == ConfValue::Kind::null && schema < 0) {
        c->conf_refs[r].push_back(-1);
        continue;
      }
      if (a.ref->config.kind == ConfValue::Kind::null) lua_newtable(L);  // defaults go somewhere
      else push_conf(L, a.ref->config, 0);
      if (schema >= 0) {
        const std::string e = validate_conf(L, schema, a.ref->config, lua_gettop(L));
        const std::string where = i < globals ? "scripts.global[" + std::to_string(i) + "]"
                                              : "routes[" + std::to_string(r) + "].scripts[" + std::to_string(i - globals) + "]";
        const std::string line = snap.config.path + ":" + std::to_string(a.ref->line) + ": " + where + "." + e;
        if (!e.empty() && std::find(c->config_errors.begin(), c->config_errors.end(), line) == c->config_errors.end())
          c->config_errors.push_back(line);
      }
      c->conf_refs[r].push_back(luaL_ref(L, LUA_REGISTRYINDEX));
    }
  }
  return c;
}

void Engine::release(CompiledScripts& c) {
  lua_State* L = vm_.state();
  for (auto& refs : c.conf_refs)
    for (int ref : refs)
      if (ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, ref);
  c.conf_refs.clear();
  for (ScriptHandle& h : c.handles)
    if (h.handlers_ref >= 0) vm_.unload(h);
  c.handles.clear();
}

namespace {

// Settles one handler's run; true when the phase goes on with the next script.
bool settle(RunResult& r, const ScriptHost& host, PhaseReport& report) {
  report.script = host.script_name;
  if (r.outcome == Outcome::yielded) {
    report.verdict = PhaseReport::waiting;
    return false;
  }
  if (r.outcome != Outcome::ok) {
    report.verdict = PhaseReport::failed;
    report.outcome = r.outcome;
    report.message = std::move(r.message);
    return false;
  }
  if (host.exited()) {
    report.verdict = PhaseReport::responded;
    return false;
  }
  return true;
}

}  // namespace

PhaseReport Engine::run_phase(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                              ScriptHost& host) {
  return run_from(snap, c, route, p, host, 0);
}

PhaseReport Engine::run_from(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                             ScriptHost& host, std::size_t first) {
  PhaseReport report;
  const auto& attachments = snap.route_scripts[route];
  for (std::size_t i = first; i < attachments.size(); ++i) {
    const ScriptAttachment& a = attachments[i];
    const ScriptHandle& h = c.handles[a.script];
    host.script_name = snap.scripts[a.script].name;
    if (h.handlers_ref < 0) {  // it failed to load on this worker (e.g. its load budget)
      report.verdict = PhaseReport::failed;
      report.outcome = Outcome::runtime_error;
      report.message = c.errors[a.script].empty() ? "script not loaded" : c.errors[a.script];
      report.script = host.script_name;
      return report;
    }
    if (!h.has(p)) continue;
    const int conf = c.conf_refs[route][i];
    const Budget budget{a.cpu_ms, static_cast<std::size_t>(a.memory)};
    host.wait = Wait::none;
    host.waiting_at = static_cast<std::uint16_t>(i);
    RunResult r = vm_.run(h, p, budget, &host, conf, &host.suspended);
    if (!settle(r, host, report)) return report;
  }
  report.script = {};
  return report;
}

PhaseReport Engine::resume_phase(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                                 ScriptHost& host) {
  PhaseReport report;
  const std::size_t at = host.waiting_at;
  host.script_name = snap.scripts[snap.route_scripts[route][at].script].name;
  const Wait was = host.wait;
  host.wait = Wait::none;
  RunResult r = vm_.resume(host.suspended, &host, [&host, was](lua_State* L) { return push_wait_results(L, host, was); });
  if (!settle(r, host, report)) return report;
  return run_from(snap, c, route, p, host, at + 1);
}

void Engine::abandon(ScriptHost& host) {
  vm_.abandon(host.suspended);
  host.wait = Wait::none;
}

void Engine::end_request(ScriptHost& host) {
  abandon(host);
  release_request(vm_.state(), host);
}

std::string check_scripts(const Snapshot& snap) {
  if (snap.scripts.empty()) return {};
  Engine engine;
  auto c = engine.compile(snap);
  std::string out;
  for (const auto* list : {&c->errors, &c->config_errors})
    for (const std::string& e : *list) {
      if (e.empty()) continue;
      if (!out.empty()) out += '\n';
      out += e;
    }
  engine.release(*c);
  return out;
}

std::string check_script_dir(const Snapshot& snap, std::size_t& count) {
  namespace fs = std::filesystem;
  std::string errors;
  std::error_code ec;
  if (!fs::is_directory(snap.scripts_dir, ec)) return errors;
  Engine engine;
  const Budget budget = load_budget(snap);
  for (const auto& entry : fs::directory_iterator(snap.scripts_dir, ec)) {
    if (entry.path().extension() != ".lua" || !entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    ScriptHandle h;
    std::string err;
    ++count;
    if (engine.vm().load(entry.path().lexically_normal().string(), text.str(), budget, h, err)) engine.vm().unload(h);
    else errors += (errors.empty() ? "" : "\n") + err;
  }
  return errors;
}

}  // namespace lg::lua
