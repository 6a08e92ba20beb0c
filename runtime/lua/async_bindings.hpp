// gw calls that wait: gw.sleep, gw.http.request, gw.http.multi, gw.request.get_body; and the
// request-body and method edits of gw.service.request. A waiting call yields the handler's
// coroutine to the worker; the engine resumes it with push_wait_results() when the wait ends.
#pragma once
#include "lua/script_host.hpp"

struct lua_State;

namespace lg::lua {
class Vm;

void register_async_bindings(Vm& vm);
// Pushes what the waiting call returns to the handler; returns how many values.
int push_wait_results(lua_State* L, ScriptHost& host, Wait what);

inline constexpr std::size_t kMaxMultiCalls = 32;
inline constexpr double kMaxSleepSeconds = 600;
}  // namespace lg::lua
