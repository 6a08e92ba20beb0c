// Every case of /work/shared/corpus/lua (MANIFEST.tsv) against the real loader and runner, in
// ONE Vm (so cross-script and cross-request pollution would show), with the gateway's default
// budgets: cpu 50 ms, memory 32 MiB per request, cpu 100 ms to load.
//
// Adapter: a case file is `return function(req) ... end`. Its text is wrapped, without adding a
// line, as
//     local __case = (function() <file text>
//     end)()
//     <check that __case is a function>
//     return { access = function(req) return gw.test.respond(__case(req)) end }
// and loaded under the case's own chunk name; gw.test.respond validates the returned response
// with lg::lua::read_response (the validation the gateway uses for gw.response.exit). The
// generated .ljbc files are loaded raw: the loader must refuse them by itself.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <vector>

#include "lua_support.hpp"

namespace {

using namespace lgtest::lua;

struct Case {
  std::string file, id, category;
  std::set<std::string> expect;
  int requests = 1;
  std::string victim;
};

std::string dir() { return std::string(LG_SHARED_DIR) + "/corpus/lua/"; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<Case> manifest() {
  std::istringstream in(slurp(dir() + "MANIFEST.tsv"));
  std::string line;
  std::getline(in, line);  // header
  std::vector<Case> cases;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto f = split(line, '\t');
    REQUIRE(f.size() == 6);
    Case c{f[0], f[1], f[2], {}, std::stoi(f[4]), f[5] == "-" ? "" : f[5]};
    for (const auto& e : split(f[3], '|')) c.expect.insert(e);
    cases.push_back(c);
  }
  return cases;
}

std::string adapt(const std::string& file, const std::string& text) {
  if (file.size() > 5 && file.substr(file.size() - 5) == ".ljbc") return text;
  return "local __case = (function() " + text +
         "\nend)()\n"
         "if type(__case) ~= 'function' then error('the case must return a function', 0) end\n"
         "return { access = function(req) return gw.test.respond(__case(req)) end }\n";
}

// Loads a case; "" and a handle on success, else "LOAD_REJECT".
std::string load_case(Vm& vm, const std::string& file, ScriptHandle& h, std::string& err) {
  const std::string src = adapt(file, slurp(dir() + file));
  return vm.load("corpus/lua/" + file, src, budget(100), h, err) ? "" : "LOAD_REJECT";
}

std::string expect_str(const std::set<std::string>& s) {
  std::string r;
  for (const auto& e : s) r += (r.empty() ? "" : "|") + e;
  return r;
}

}  // namespace

TEST_CASE("lua corpus: every case ends as expected, victims stay clean, the VM keeps serving", "[lua-corpus]") {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Case> cases = manifest();
  REQUIRE(cases.size() >= 40);
  Vm vm;
  register_test_functions(vm);
  ScriptHandle control;
  std::string err;
  REQUIRE(load_case(vm, "ok_positive_control.lua", control, err) == "");

  std::ostringstream table;
  table << "\n| id | expect | outcome(s) | ms | message |\n|---|---|---|---|---|\n";
  for (const Case& c : cases) {
    INFO("case " << c.id << " (" << c.file << "), expect " << expect_str(c.expect));
    const auto c0 = std::chrono::steady_clock::now();
    ScriptHandle h;
    std::string outcomes, message;
    if (load_case(vm, c.file, h, err) == "LOAD_REJECT") {
      INFO("load error: " << err);
      CHECK(c.expect.count("LOAD_REJECT") == 1);
      outcomes = "LOAD_REJECT";
      message = err;
    } else {
      for (int i = 0; i < c.requests; ++i) {
        const Ran r = run_access(vm, h);
        INFO("request " << i + 1 << ": " << r.kind << " / " << r.result.message << " / " << r.req.error);
        CHECK(c.expect.count(r.kind) == 1);
        CHECK(r.req.response.body.rfind("ESCAPED", 0) == std::string::npos);
        outcomes += (outcomes.empty() ? "" : ",") + r.kind;
        if (message.empty()) message = !r.result.message.empty() ? r.result.message : r.req.error;
      }
      vm.unload(h);
    }
    if (!c.victim.empty()) {
      ScriptHandle v;
      REQUIRE(load_case(vm, c.victim, v, err) == "");
      const Ran r = run_access(vm, v);
      INFO("victim " << c.victim << ": " << r.kind << " / " << r.result.message);
      CHECK(r.kind == "OK_CLEAN");
      CHECK(r.req.response.body.rfind("POLLUTED", 0) == std::string::npos);
      outcomes += "; victim " + r.kind;
      vm.unload(v);
    }
    const Ran ctl = run_access(vm, control);
    INFO("positive control after " << c.id << ": " << ctl.result.message);
    CHECK(ctl.kind == "OK_CLEAN");
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - c0);
    std::string shown = message.substr(0, 90);
    for (char& ch : shown)
      if (ch == '|') ch = '/';
    table << "| " << c.id << " | " << expect_str(c.expect) << " | " << outcomes << " | " << ms.count() << " | "
          << shown << " |\n";
  }
  const auto total = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << table.str() << "corpus total: " << total.count() << " ms, VM memory after: " << vm.memory_in_use()
            << " bytes\n";
  CHECK(total.count() < 30000);
}

TEST_CASE("lua corpus: gsub recursion ends as a Lua error on an 8 MiB thread", "[lua-corpus]") {
  std::string kind, message;
  run_on_thread(8u << 20, [&] {
    Vm vm;
    register_test_functions(vm);
    ScriptHandle h;
    std::string err;
    if (load_case(vm, "cstack_gsub_recursion.lua", h, err) != "") throw std::runtime_error(err);
    const Ran r = run_access(vm, h);
    kind = r.kind;
    message = r.result.message;
  });
  INFO(message);
  CHECK(kind == "RUNTIME_ERROR");
}
