// Registers the gw API (request, service, response, log, ctx) on a Vm.
#pragma once
struct lua_State;

namespace lg::lua {
class Vm;
class ScriptHost;

void register_bindings(Vm& vm);
// Drops what a request left in the VM (its gw.ctx table). Call once the request is done.
void release_request(lua_State* L, ScriptHost& h);
}  // namespace lg::lua
