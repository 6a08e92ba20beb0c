// Validation of responses produced by scripts: the gateway uses it for gw.response.exit, tests
// for the corpus' `{status=, headers=, body=}` tables. Reads only with raw access (no
// metamethod ever runs), so it is safe to call outside a script's budget.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct lua_State;

namespace lg::lua {

inline constexpr std::size_t kMaxScriptBody = 1u << 20;   // bytes
inline constexpr std::size_t kMaxScriptHeaders = 100;     // header lines

struct ScriptResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

bool valid_status(double status);                   // an integer in 100..599
bool valid_header_name(std::string_view name);      // an RFC 9110 token
bool valid_header_value(std::string_view value);    // no control character except HTAB

// Each reads the value at `idx` and returns false with `err` set if it is not acceptable.
// status: a number (integer 100..599). headers: nil, or a table name -> value, where value is a
// string, a number or an array of them (one line each). body: nil or a string <= kMaxScriptBody.
bool read_status(lua_State* L, int idx, int& out, std::string& err);
bool read_headers(lua_State* L, int idx, std::vector<std::pair<std::string, std::string>>& out,
                  std::string& err);
bool read_body(lua_State* L, int idx, std::string& out, std::string& err);

// A table {status=, headers=, body=} at `idx`.
bool read_response(lua_State* L, int idx, ScriptResponse& out, std::string& err);

}  // namespace lg::lua
