#include "lua/engine.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "config/snapshot.hpp"
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

}  // namespace

Engine::Engine() {
  register_bindings(vm_);
  register_shared_bindings(vm_);
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
  c->conf_refs.resize(snap.route_scripts.size());
  for (std::size_t r = 0; r < snap.route_scripts.size(); ++r) {
    for (const ScriptAttachment& a : snap.route_scripts[r]) {
      if (a.ref->config.kind == ConfValue::Kind::null) {
        c->conf_refs[r].push_back(-1);
        continue;
      }
      push_conf(L, a.ref->config, 0);
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

PhaseReport Engine::run_phase(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                              ScriptHost& host) {
  PhaseReport report;
  const auto& attachments = snap.route_scripts[route];
  for (std::size_t i = 0; i < attachments.size(); ++i) {
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
    RunResult r = vm_.run(h, p, budget, &host, [conf](lua_State* L) {
      if (conf >= 0) lua_rawgeti(L, LUA_REGISTRYINDEX, conf);
      else lua_pushnil(L);
      return 1;
    });
    if (r.outcome == Outcome::yielded) {  // nothing may wait yet: a handler must finish in one go
      r.outcome = Outcome::runtime_error;
      r.message = snap.scripts[a.script].path + ": a handler yielded, which is not supported";
    }
    if (r.outcome != Outcome::ok) {
      report.verdict = PhaseReport::failed;
      report.outcome = r.outcome;
      report.message = std::move(r.message);
      report.script = host.script_name;
      return report;
    }
    if (host.exited()) {
      report.verdict = PhaseReport::responded;
      report.script = host.script_name;
      return report;
    }
  }
  return report;
}

void Engine::end_request(ScriptHost& host) { release_request(vm_.state(), host); }

std::string check_scripts(const Snapshot& snap) {
  if (snap.scripts.empty()) return {};
  Engine engine;
  auto c = engine.compile(snap);
  std::string out;
  for (const std::string& e : c->errors) {
    if (e.empty()) continue;
    if (!out.empty()) out += '\n';
    out += e;
  }
  engine.release(*c);
  return out;
}

}  // namespace lg::lua
