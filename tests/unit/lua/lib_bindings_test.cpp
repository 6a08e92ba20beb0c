// gw.json, gw.base64, gw.crypto, gw.time: exercised from sandboxed scripts, without a request
// (Vm::current_request == nullptr). A check that fails raises error() with what it got.
#include <catch2/catch.hpp>

#include <string>

#include "lua/bindings.hpp"
#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

const char* const kPrelude = R"LUA(
local function eq(got, want, what)
  if got ~= want then
    error((what or "value") .. ": got " .. tostring(got) .. ", want " .. tostring(want), 2)
  end
end
local function fails(fn, want_err, ...)  -- a misuse: the call raises an error containing want_err
  local ok, err = pcall(fn, ...)
  if ok then error("no error raised (want " .. want_err .. ")", 2) end
  if not tostring(err):find(want_err, 1, true) then error("error " .. tostring(err) .. ", want " .. want_err, 2) end
end
local function bad(fn, input, want_err)   -- a runtime failure: nil, err
  local v, err = fn(input)
  if v ~= nil or type(err) ~= "string" or not err:find(want_err, 1, true) then
    error(("%q: got %s, %s; want nil, %s"):format(tostring(input):sub(1, 60), tostring(v), tostring(err), want_err), 2)
  end
end
local function deep_eq(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
local json, b64, crypto = gw.json, gw.base64, gw.crypto
)LUA";

RunResult run_lib(const std::string& body, Phase phase = Phase::access) {
  Vm vm;
  lg::lua::register_bindings(vm);
  const std::string src = std::string("return { ") + lg::lua::phase_name(phase) + " = function()\n" + kPrelude + body +
                          "\nend }\n";
  ScriptHandle h = load_or_throw(vm, src, "scripts/lib.lua");
  const RunResult r = vm.run(h, phase, budget(10000, 256u << 20), nullptr, nullptr);
  vm.unload(h);
  return r;
}

#define REQUIRE_LUA_OK(...)                  \
  do {                                       \
    const RunResult r_ = run_lib(__VA_ARGS__); \
    INFO(r_.message);                        \
    REQUIRE(r_.outcome == Outcome::ok);      \
  } while (0)

}  // namespace

TEST_CASE("gw lib: the harness reports a failed check", "[lua-lib]") {
  const RunResult r = run_lib("eq(json.encode(1), '2', 'one')");
  CHECK(r.outcome == Outcome::runtime_error);
  CHECK(r.message.find("one: got 1, want 2") != std::string::npos);
}

TEST_CASE("gw lib: json.encode scalars and strings", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
eq(json.encode(1), "1"); eq(json.encode(-3), "-3"); eq(json.encode(0), "0")
eq(json.encode(0.5), "0.5"); eq(json.encode(0.1), "0.1"); eq(json.encode(1e300), "1e+300")
eq(json.encode(123456789012), "123456789012")
eq(json.encode(true), "true"); eq(json.encode(false), "false")
eq(json.encode(nil), "null"); eq(json.encode(json.null), "null")
eq(json.encode("a\"b\\c\n\t\1/"), [["a\"b\\c\n\t\u0001/"]])
eq(json.encode("caf\195\169 \240\159\152\128"), "\"caf\195\169 \240\159\152\128\"", "valid UTF-8 kept")
eq(json.encode("x\255y\192\175"), [["x\u00ffy\u00c0\u00af"]], "invalid bytes escaped")
eq(json.encode("a\0b"), [["a\u0000b"]])
fails(json.encode, "value expected")
fails(json.encode, "NaN or infinity", 0/0)
fails(json.encode, "NaN or infinity", math.huge)
fails(json.encode, "NaN or infinity", -math.huge)
fails(json.encode, "cannot encode a function", function() end)
fails(json.encode, "cannot encode a function", { f = pairs })
fails(json.encode, "cannot encode a thread", coroutine.create(function() end))
)LUA");
}

TEST_CASE("gw lib: json.encode tables: arrays, objects, cycles, depth", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
eq(json.encode({1, "two", true, json.null}), '[1,"two",true,null]')
eq(json.encode({a = 1}), '{"a":1}')
eq(json.encode({}), "{}", "the empty table is an object")
eq(json.encode({{}, {x = {false}}}), '[{},{"x":[false]}]')
eq(json.encode({["1"] = "s"}), '{"1":"s"}', "string keys that look like numbers")
local obj = json.decode(json.encode({a = 1, b = {2, 3}, ["c\n"] = "d"}))
eq(obj.a, 1); eq(obj.b[2], 3); eq(obj["c\n"], "d")
local shared = {1}
eq(json.encode({shared, shared}), "[[1],[1]]", "a table seen twice is not a cycle")
fails(json.encode, "mixes string and integer keys", {1, 2, a = 3})
fails(json.encode, "sparse array", {[1] = 1, [3] = 3})
fails(json.encode, "sparse array", {[2] = 1})
fails(json.encode, "keys must be strings or 1..n", {[1.5] = 1})
fails(json.encode, "keys must be strings or 1..n", {[0] = 1})
fails(json.encode, "keys must be strings or 1..n", {[-1] = 1})
fails(json.encode, "keys must be strings or 1..n", {[true] = 1})
fails(json.encode, "keys must be strings or 1..n", {[{}] = 1})
local t = {}; t.self = t
fails(json.encode, "cycle", t)
local a, b = {}, {}; a[1] = b; b.back = a
fails(json.encode, "cycle", a)
local deep = {}
for i = 1, 63 do deep = {deep} end                -- 64 levels
eq(#json.encode(deep), 63 * 2 + 2)
fails(json.encode, "nesting deeper than 64", {deep})
local big = {}
local s = string.rep("x", 1024 * 1024)
for i = 1, 5 do big[i] = s end
fails(json.encode, "larger than 4 MiB", big)
)LUA");
}

TEST_CASE("gw lib: json.decode values, escapes, surrogates, null", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local v = json.decode(' {"a": [1, 2, {"b": null}], "c": "x", "d": {}, "e": []} \n')
eq(v.a[1], 1); eq(v.a[2], 2); eq(#v.a, 2 + 1); eq(v.a[3].b, json.null); eq(v.c, "x")
eq(type(v.d), "table"); eq(next(v.d), nil); eq(next(v.e), nil)
eq(json.decode("true"), true); eq(json.decode("false"), false); eq(json.decode("null"), json.null)
eq(type(json.null), "userdata"); eq(json.decode('"s"'), "s")
eq(json.decode("0"), 0); eq(json.decode("-0.5e2"), -50); eq(json.decode("1E+2"), 100)
eq(json.decode("12.25"), 12.25); eq(json.decode("-7"), -7); eq(json.decode("1e-400"), 0, "underflow")
eq(json.decode("1.7976931348623157e308"), 1.7976931348623157e308)
eq(json.decode([["\"\\\/\b\f\n\r\t"]]), "\"\\/\b\f\n\r\t")
eq(json.decode([["\u0041\u00e9\u20AC"]]), "A\195\169\226\130\172")
eq(json.decode([["\ud83d\ude00"]]), "\240\159\152\128", "surrogate pair")
eq(json.decode([["\uDBFF\uDFFF"]]), "\244\143\191\191", "U+10FFFF")
eq(json.decode([["\u0000"]]), "\0")
eq(json.decode('"caf\195\169"'), "caf\195\169", "raw UTF-8")
fails(function() gw.json.null = 1 end, "")
fails(json.decode, "string expected", 123)
fails(json.decode, "string expected")
fails(json.decode, "string expected", {})
)LUA");
}

TEST_CASE("gw lib: json.decode rejects every class of invalid text", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local d = json.decode
bad(d, "", "invalid JSON at byte 1: unexpected end of input")
bad(d, "   ", "at byte 4: unexpected end of input")
bad(d, "[1,", "at byte 4: unexpected end of input")
bad(d, "[1", "at byte 3: unexpected end of input")
bad(d, '{"a":1', "at byte 7: unexpected end of input")
bad(d, "[1,]", "at byte 4: unexpected character")
bad(d, '{"a":1,}', "at byte 8: expected a string key")
bad(d, "{a:1}", "at byte 2: expected a string key")
bad(d, "{'a':1}", "at byte 2: expected a string key")
bad(d, "[1 2]", "at byte 4: expected ',' or ']'")
bad(d, '{"a" 1}', "at byte 6: expected ':'")
bad(d, '{"a":1 "b":2}', "at byte 8: expected ',' or '}'")
bad(d, "// c\n1", "at byte 1: unexpected character")
bad(d, "/* c */ 1", "at byte 1: unexpected character")
bad(d, "[1] // c", "at byte 5: unexpected data after the value")
bad(d, "NaN", "at byte 1: unexpected character")
bad(d, "Infinity", "at byte 1: unexpected character")
bad(d, "-Infinity", "at byte 2: invalid number")
bad(d, "nul", "at byte 1: invalid literal")
bad(d, "truex", "at byte 5: unexpected data after the value")
bad(d, "True", "at byte 1: unexpected character")
bad(d, "01", "at byte 2: unexpected data after the value")
bad(d, "-", "at byte 2: invalid number")
bad(d, "1.", "at byte 3: invalid number")
bad(d, "1.e5", "at byte 3: invalid number")
bad(d, "1e", "at byte 3: invalid number")
bad(d, "1e+", "at byte 4: invalid number")
bad(d, ".5", "at byte 1: unexpected character")
bad(d, "+1", "at byte 1: unexpected character")
bad(d, "0x10", "at byte 2: unexpected data after the value")
bad(d, "1e400", "at byte 1: number out of range")
bad(d, "-" .. string.rep("9", 400), "at byte 1: number out of range")
bad(d, '"abc', "at byte 5: unterminated string")
bad(d, '"abc\\', "at byte 5: unterminated string")
bad(d, '"a\nb"', "at byte 3: control character in string")
bad(d, '"a\tb"', "at byte 3: control character in string")
bad(d, [["\x"]], "at byte 2: invalid escape")
bad(d, [["\u12"]], "at byte 2: invalid \\u escape")
bad(d, [["\u12G4"]], "at byte 2: invalid \\u escape")
bad(d, [["\ud800"]], "at byte 2: unpaired surrogate")
bad(d, [["\ud800\u0041"]], "at byte 2: unpaired surrogate")
bad(d, [["x\udc00\ud800"]], "at byte 3: unpaired surrogate")
bad(d, '"\\ud800\\', "at byte 2: unpaired surrogate")
bad(d, '"a\255"', "at byte 3: invalid UTF-8")
bad(d, '"\237\160\128"', "at byte 2: invalid UTF-8")      -- an encoded surrogate
bad(d, '"\192\175"', "at byte 2: invalid UTF-8")          -- overlong
bad(d, '"\226\130"', "at byte 2: invalid UTF-8")          -- truncated sequence
bad(d, "\239\187\191{}", "at byte 1: unexpected character") -- BOM
bad(d, '{"a":1,"a":2}', "at byte 8: duplicate object key")
bad(d, '{"a":null,"a":null}', "duplicate object key")
bad(d, "[1]\0", "at byte 4: unexpected data after the value")
bad(d, "\0", "at byte 1: unexpected character")
-- depth: 64 levels are fine, 65 are not
local ok = d(string.rep("[", 64) .. string.rep("]", 64))
eq(type(ok), "table")
bad(d, string.rep("[", 65) .. string.rep("]", 65), "at byte 65: nesting deeper than 64 levels")
bad(d, string.rep('{"a":', 65) .. "1" .. string.rep("}", 65), "nesting deeper than 64 levels")
bad(d, string.rep("[", 100000), "nesting deeper than 64 levels")
-- size: 4 MiB is the limit
local max = 4 * 1024 * 1024
eq(#d('"' .. string.rep("a", max - 2) .. '"'), max - 2)
bad(d, string.rep(" ", max) .. "1", "JSON text larger than 4 MiB")
)LUA");
}

TEST_CASE("gw lib: json round trips and fuzzed input", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local v = { a = {1, 2.5, {b = "x\0y"}}, n = json.null, t = true, f = false, s = "\240\159\152\128\"",
            neg = -1e-300, big = 2^53 + 2 }
if not deep_eq(json.decode(json.encode(v)), v) then error("round trip: " .. json.encode(v)) end
local texts = { '[1,"a",null,true,false,{"k":[0.25,-1e+300]}]', '{"a":{"b":{"c":[[1]]}}}', '"\\u0001"',
                '[0,-0.5,1e-07,123456789]', '{"x\\"y":"z"}' }
for _, t in ipairs(texts) do eq(json.encode(json.decode(t)), t, "round trip") end
-- an arbitrary byte string survives when it is valid UTF-8
local all = {}
for c = 0, 127 do all[#all + 1] = string.char(c) end
local s = table.concat(all)
eq(json.decode(json.encode(s)), s)
-- mutated documents: decode never raises, and returns a value or nil, err
local seed = '{"a":[1,2.5e-3,"x\\u00e9\\ud83d\\ude00",{"b":null,"c":[true,false]}],"d":"\195\169"}'
local alphabet = '{}[]:,"\\u0123456789abcdefABCDEF.eE+- \t\ntrufalsn\0\128\192\237\255'
for i = 1, 20000 do
  local t = seed
  for _ = 1, (i % 4) + 1 do
    local pos = math.random(1, #t + 1)
    local op = math.random(3)
    local k = math.random(#alphabet)
    local c = alphabet:sub(k, k)
    if op == 1 then t = t:sub(1, pos - 1) .. c .. t:sub(pos)
    elseif op == 2 then t = t:sub(1, pos - 1) .. t:sub(pos + 1)
    else t = t:sub(1, pos - 1) .. c .. t:sub(pos + 1) end
  end
  if math.random(10) == 1 then t = t:sub(1, math.random(0, #t)) end
  local ok, val, err = pcall(json.decode, t)
  if not ok then error("decode raised on " .. ("%q"):format(t) .. ": " .. tostring(val)) end
  if val == nil and type(err) ~= "string" then error("no error message for " .. ("%q"):format(t)) end
  if val ~= nil and val ~= json.null and type(val) == "table" then json.encode(val) end
end
)LUA");
}

TEST_CASE("gw lib: base64 (RFC 4648 vectors, strict decoding)", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local vectors = { {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                  {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"} }
for _, v in ipairs(vectors) do
  eq(b64.encode(v[1]), v[2]); eq(b64.decode(v[2]), v[1])
  local url = v[2]:gsub("=", "")
  eq(b64.encode_url(v[1]), url); eq(b64.decode_url(url), v[1]); eq(b64.decode_url(v[2]), v[1], "padded url")
end
eq(b64.encode("\251\255\191"), "+/+/"); eq(b64.encode_url("\251\255\191"), "-_-_")
eq(b64.encode("\251\255"), "+/8="); eq(b64.encode_url("\251\255"), "-_8")
eq(b64.decode("+/8="), "\251\255"); eq(b64.decode_url("-_8"), "\251\255")
local bin = {}
for c = 0, 255 do bin[#bin + 1] = string.char(c) end
bin = table.concat(bin)
eq(b64.decode(b64.encode(bin)), bin); eq(b64.decode_url(b64.encode_url(bin)), bin)
bad(b64.decode, "Zg", "length is not a multiple of 4")
bad(b64.decode, "Zg=", "length is not a multiple of 4")
bad(b64.decode, "Zm9v\n", "length is not a multiple of 4")
bad(b64.decode, "Zm9 ", "unexpected character")
bad(b64.decode, "Zm\n9", "unexpected character")
bad(b64.decode, "Z===", "unexpected character")
bad(b64.decode, "Zg==Zg==", "unexpected character")
bad(b64.decode, "=Zg=", "unexpected character")
bad(b64.decode, "-_8=", "unexpected character")
bad(b64.decode, "Zh==", "non-zero trailing bits")
bad(b64.decode, "Zm9=", "non-zero trailing bits")
bad(b64.decode_url, "+/8", "unexpected character")
bad(b64.decode_url, "Z", "truncated input")
bad(b64.decode_url, "Zm9vY", "truncated input")
bad(b64.decode_url, "Zg=", "bad padding")
bad(b64.decode_url, "Zm8==", "bad padding")
bad(b64.decode_url, "Zh", "non-zero trailing bits")
fails(b64.encode, "string expected", {})
fails(b64.encode, "string expected", 12)
fails(b64.decode, "string expected")
)LUA");
}

TEST_CASE("gw lib: crypto (FIPS 180 / RFC 4231 vectors)", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local hex = crypto.hex
eq(#crypto.sha256("abc"), 32)
eq(hex(crypto.sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
eq(hex(crypto.sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
eq(hex(crypto.hmac_sha256(string.rep("\11", 20), "Hi There")),
   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "RFC 4231 case 1")
eq(hex(crypto.hmac_sha256("Jefe", "what do ya want for nothing?")),
   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 case 2")
eq(hex(crypto.hmac_sha256("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
eq(#crypto.hmac_sha256(string.rep("k", 200), string.rep("m", 100000)), 32)
eq(hex(""), ""); eq(hex("\0\255\16\171"), "00ff10ab")
eq(crypto.equals("abc", "abc"), true); eq(crypto.equals("abc", "abd"), false)
eq(crypto.equals("abc", "ab"), false); eq(crypto.equals("", ""), true)
eq(crypto.equals("a\0b", "a\0c"), false)
local r1, r2 = crypto.random_bytes(16), crypto.random_bytes(16)
eq(#r1, 16); eq(#crypto.random_bytes(1), 1); eq(#crypto.random_bytes(1024), 1024)
if r1 == r2 then error("random_bytes repeated itself") end
fails(crypto.random_bytes, "1..1024", 0)
fails(crypto.random_bytes, "1..1024", 1025)
fails(crypto.random_bytes, "1..1024", 1.5)
fails(crypto.random_bytes, "1..1024", -1)
fails(crypto.random_bytes, "number expected")
fails(crypto.sha256, "string expected", nil)
fails(crypto.hmac_sha256, "string expected", "key")
fails(crypto.equals, "string expected", "a", 1)
fails(crypto.hex, "string expected", {})
)LUA");
}

TEST_CASE("gw lib: time", "[lua-lib]") {
  REQUIRE_LUA_OK(R"LUA(
local now = gw.time.now()
eq(type(now), "number")
if math.abs(now - os.time()) > 2 then error("now " .. now .. " vs os.time " .. os.time()) end
local ms = now * 1000
if math.abs(ms - math.floor(ms + 0.5)) > 1e-3 then error("not millisecond precision: " .. now) end
local a = gw.time.monotonic_ms()
eq(a, math.floor(a), "integer ms")
local b, n = a, 0
while b == a and n < 1e8 do b = gw.time.monotonic_ms(); n = n + 1 end
if not (b > a) then error("monotonic_ms did not increase: " .. a .. " " .. b) end
if gw.time.monotonic_ms() < b then error("monotonic_ms went back") end
)LUA");
}

TEST_CASE("gw lib: every phase, no request needed", "[lua-lib]") {
  const char* body = R"LUA(
eq(json.encode({ok = true}), '{"ok":true}')
eq(b64.decode(b64.encode("x")), "x")
eq(#crypto.sha256("x"), 32)
eq(type(gw.time.now()), "number")
)LUA";
  for (Phase p : {Phase::rewrite, Phase::access, Phase::response, Phase::log}) {
    INFO(lg::lua::phase_name(p));
    REQUIRE_LUA_OK(body, p);
  }
}
