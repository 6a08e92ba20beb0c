#include <catch2/catch.hpp>

#include <cmath>
#include <lua.hpp>

#include "lua/response.hpp"

using namespace lg::lua;

namespace {

struct State {
  lua_State* L = luaL_newstate();
  State() { luaL_openlibs(L); }
  ~State() { lua_close(L); }
  // Evaluates `expr` and reads it as a response.
  bool read(const std::string& expr, ScriptResponse& out, std::string& err) {
    if (luaL_dostring(L, ("return " + expr).c_str()) != 0) throw std::runtime_error(lua_tostring(L, -1));
    const bool ok = read_response(L, -1, out, err);
    lua_settop(L, 0);
    return ok;
  }
  std::string error_of(const std::string& expr) {
    ScriptResponse r;
    std::string err;
    return read(expr, r, err) ? "(valid)" : err;
  }
};

}  // namespace

TEST_CASE("lua response: status, header and body rules", "[lua]") {
  CHECK(valid_status(100));
  CHECK(valid_status(599));
  CHECK_FALSE(valid_status(99));
  CHECK_FALSE(valid_status(600));
  CHECK_FALSE(valid_status(200.5));
  CHECK_FALSE(valid_status(std::nan("")));
  CHECK_FALSE(valid_status(INFINITY));
  CHECK(valid_header_name("X-Script"));
  CHECK(valid_header_name("a!#$%&'*+-.^_`|~9"));
  CHECK_FALSE(valid_header_name(""));
  CHECK_FALSE(valid_header_name("Bad Name"));
  CHECK_FALSE(valid_header_name("Bad:"));
  CHECK_FALSE(valid_header_name("caf\xc3\xa9"));
  CHECK(valid_header_value("text/html; q=0.9\tx"));
  CHECK(valid_header_value(""));
  CHECK_FALSE(valid_header_value("a\r\nSet-Cookie: x"));
  CHECK_FALSE(valid_header_value(std::string("a\0b", 3)));
  CHECK_FALSE(valid_header_value("a\x7f"));
}

TEST_CASE("lua response: read_response", "[lua]") {
  State s;
  ScriptResponse r;
  std::string err;
  REQUIRE(s.read("{ status = 200, headers = { ['X-A'] = 'a', ['X-N'] = 12, ['Set-Cookie'] = { 'a=1', 'b=2' } }, "
                 "body = 'clean' }",
                 r, err));
  CHECK(r.status == 200);
  CHECK(r.body == "clean");
  CHECK(r.headers.size() == 4);
  CHECK(s.error_of("{ status = 204 }") == "(valid)");
  CHECK(s.error_of("nil") == "the script did not return a response table");
  CHECK(s.error_of("{ status = '200' }") == "response status must be an integer in 100..599");
  CHECK(s.error_of("{ status = 0/0 }") == "response status must be an integer in 100..599");
  CHECK(s.error_of("{ status = 200, headers = { ['Bad Name:'] = 'x' } }") == "invalid response header name");
  CHECK(s.error_of("{ status = 200, headers = { [''] = 'y' } }") == "invalid response header name");
  CHECK(s.error_of("{ status = 200, headers = { 'x' } }") == "response header names must be strings");
  CHECK(s.error_of("{ status = 200, headers = { A = 'x\\r\\nB: y' } }") == "invalid value for response header 'A'");
  CHECK(s.error_of("{ status = 200, headers = { A = true } }") == "response header values must be strings");
  CHECK(s.error_of("{ status = 200, headers = 'A: b' }") == "response headers must be a table");
  CHECK(s.error_of("(function() local h = {} for i = 1, 101 do h['H' .. i] = 'v' end return { status = 200, headers = h } end)()") ==
        "too many response headers");
  CHECK(s.error_of("{ status = 200, body = ('B'):rep(2^20) }") == "(valid)");
  CHECK(s.error_of("{ status = 200, body = ('B'):rep(2^20 + 1) }") == "response body larger than 1048576 bytes");
  CHECK(s.error_of("{ status = 200, body = {} }") == "response body must be a string");
  // Raw reads only: no metamethod runs.
  CHECK(s.error_of("setmetatable({}, { __index = function() error('ran') end })") ==
        "response status must be an integer in 100..599");
}
