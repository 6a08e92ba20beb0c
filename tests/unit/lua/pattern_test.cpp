// The sandbox's find/match/gmatch/gsub against LuaJIT's own, expression by expression.
#include <catch2/catch.hpp>

#include <lua.hpp>
#include <sstream>

#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

const char* const kExprs[] = {
    "('hello world'):find('o w')",
    "('hello'):find('l+')",
    "('hello'):find('l', 1, true)",
    "('a.b'):find('.', 1, true)",
    "('a.b'):find('%.')",
    "('abc'):find('')",
    "('abc'):find('', 10)",
    "('abc'):find('c', -1)",
    "('abc'):find('a', -10)",
    "('abc'):find('b', 3)",
    "('hello'):match('(h)(e)')",
    "('key=val'):match('(%w+)=(%w+)')",
    "('  trim me  '):match('^%s*(.-)%s*$')",
    "('abc'):match('()b()')",
    "('abc'):match('^b')",
    "('abc'):match('c$')",
    "('a$c'):match('$c')",
    "('2024-01-15'):match('(%d+)-(%d+)-(%d+)')",
    "('(foo(bar))baz'):match('%b()')",
    "('THE (quick) fox'):gsub('%f[%a]%a+', 'X')",
    "('say \"hi\" now'):match('([\"\\'])(.-)%1')",
    "('x1 y2 z3'):gsub('(%a)(%d)', '%2%1')",
    "('hello world'):gsub('o', '0')",
    "('hello world'):gsub('o', '0', 1)",
    "('hello'):gsub('', '-')",
    "('abc'):gsub('%w', '%0%0')",
    "('abc'):gsub('b', '%%')",
    "('abc'):gsub('^a', 'X')",
    "('$name and $other'):gsub('%$(%w+)', { name = 'N' })",
    "('a,b,,c'):gsub(',', function() return nil end)",
    "('a b c'):gsub('%w', function(c) return c:upper() end)",
    "('a b c'):gsub('%w', function(c) return false end)",
    "('abc'):gsub('.', { a = 1, b = true })",
    "(function() local t = {} for w in ('one two  three'):gmatch('%a+') do t[#t + 1] = w end return table.concat(t, '|') end)()",
    "(function() local t = {} for k, v in ('a=1, b=2'):gmatch('(%w+)=(%w+)') do t[#t + 1] = k .. v end return table.concat(t, '|') end)()",
    "(function() local t = {} for p in ('abc'):gmatch('()') do t[#t + 1] = p end return table.concat(t, '|') end)()",
    "(function() local t = {} for w in ('^a^a'):gmatch('^a') do t[#t + 1] = w end return #t end)()",
    "('AbC dEf 12 _!'):gsub('%u', 'U')",
    "('AbC dEf 12 _!'):gsub('%L', '.')",
    "('tab\\there\\n'):gsub('%s', '_')",
    "('a1!b2?'):gsub('%p', 'P')",
    "('a1!b2?'):gsub('%W', '')",
    "('0xFFg'):match('%x+', 3)",
    "('a\\0b'):gsub('%z', 'Z')",
    "('\\1\\31x'):gsub('%c', 'C')",
    "('abc]def'):match('[%]]')",
    "('a-b'):match('[a%-]+')",
    "('hello'):match('[^aeiou]+')",
    "('hello'):match('[l-o]+')",
    "('x'):match('[]')",
    "('abc'):match('%')",
    "('abc'):match('(()')",
    "('abc'):match('%1')",
    "('abc'):gsub('(a)', '%2')",
    "('abc'):gsub('a', 1)",
    "('abc'):gsub('a')",
    "('abc'):gsub('a', {}, 'x')",
    "('abc'):find(('(a)'):rep(33))",
    "('aaa'):match('a-a')",
    "('aaa'):match('a-$')",
    "('aaab'):match('a*b')",
    "('aaab'):match('a+?')",
    "('b'):match('a?b')",
    "(12345):find('34')",
    "string.find(12345, 3)",
    "string.match('abc', 'b', 2.0)",
    "('x'):rep(10):gsub('x', 'yy', 3.0)",
    "('%d'):gsub('%%d', '%%%%')",
    "('hello'):find('l', 0)",
    "('f(a,b)'):match('%((.-)%)')",
    "('[[x]]'):match('%[%[(.*)%]%]')",
    "('one;two'):match('^(.-);(.*)$')",
    "('path/to/file.lua'):match('([^/]+)%.lua$')",
    "('Content-Type: text/html'):match('^([%w-]+):%s*(.+)$')",
};

// Runs kExprs and returns one line per expression: the results' types and values, or "error".
std::string program() {
  std::string p =
      "local function pack(...) return { n = select('#', ...), ... } end\n"
      "local function ser(r) local out = {} for i = 2, r.n do out[#out + 1] = type(r[i]) .. ':' .. tostring(r[i]) end "
      "return table.concat(out, ',') end\n"
      "local cases = {\n";
  for (const char* e : kExprs) p += "function() return " + std::string(e) + " end,\n";
  p += "}\nlocal lines = {}\n"
       "for i, f in ipairs(cases) do local r = pack(pcall(f)) lines[i] = r[1] and ser(r) or 'error' end\n"
       "local result = table.concat(lines, '\\n')\n";
  return p;
}

std::string split_line(const std::string& all, std::size_t n) {
  std::istringstream in(all);
  std::string line;
  for (std::size_t i = 0; i <= n && std::getline(in, line); ++i) {
  }
  return line;
}

}  // namespace

TEST_CASE("lua patterns: the sandbox matcher agrees with LuaJIT's", "[lua]") {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  REQUIRE(luaL_dostring(L, (program() + "return result").c_str()) == 0);
  const std::string reference = lua_tostring(L, -1);
  lua_close(L);

  Vm vm;
  register_test_functions(vm);
  const Ran r = run_body(vm, program() + "return gw.test.respond({ status = 200, body = result })");
  REQUIRE(r.result.outcome == Outcome::ok);
  const std::string got = r.req.response.body;
  for (std::size_t i = 0; i < std::size(kExprs); ++i) {
    INFO(kExprs[i]);
    CHECK(split_line(got, i) == split_line(reference, i));
  }
}

TEST_CASE("lua patterns: limits", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  Ran r = run_body(vm, "local m = ('a'):rep(300):match(('a?'):rep(300)) return m");
  CHECK(r.result.outcome == Outcome::runtime_error);
  CHECK(r.result.message == "t.lua:2: pattern too complex");
  r = run_body(vm, "local m = ('x'):rep(40):find(('(x)'):rep(33)) return m");
  CHECK(r.result.message == "t.lua:2: too many captures");
  r = run_body(vm, "local m = ('x'):find('[x') return m");
  CHECK(r.result.message == "t.lua:2: malformed pattern (missing ']')");
  // Long subjects are fine when the pattern is linear.
  r = run_body(vm,
               "local s = ('ab'):rep(2^19)\n"
               "local n = select(2, s:gsub('a', 'c'))\n"
               "return gw.test.respond({ status = 200, body = (n == 2^19 and s:find('ba', 1, true) == 2) and 'clean' or 'bad' })");
  CHECK(r.kind == "OK_CLEAN");
}
