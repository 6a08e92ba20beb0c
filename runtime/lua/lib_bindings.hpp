// Pure utility functions for scripts: gw.json, gw.base64, gw.crypto, gw.time (no I/O, no
// request needed, allowed in every phase). Misuse raises an error; bad data returns nil, err.
#pragma once
struct lua_State;

namespace lg::lua {
class Vm;

// Registers gw.json.*, gw.base64.*, gw.crypto.*, gw.time.* (and the gw.json.null sentinel).
void register_lib_bindings(Vm& vm);

namespace detail {
// gw.json.encode / gw.json.decode (runtime/lua/json.cpp). gw.json.null is a NULL lightuserdata
// (like cjson.null / ngx.null).
int json_encode(lua_State* L);
int json_decode(lua_State* L);
}  // namespace detail
}  // namespace lg::lua
