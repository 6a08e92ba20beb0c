// Scripts in a worker: compiles a snapshot's scripts into the worker's Vm, and runs one phase of
// a route's scripts for a request. The proxy talks to scripts only through this and ScriptHost.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lua/script_host.hpp"
#include "lua/vm.hpp"

namespace lg {
struct Snapshot;
}

namespace lg::lua {

// One snapshot's scripts compiled into one worker's Vm. Requests pinned to that snapshot use it;
// it is released when the snapshot is.
struct CompiledScripts {
  std::vector<ScriptHandle> handles;        // per Snapshot::scripts; handlers_ref -1 if it failed
  std::vector<std::string> errors;          // per script: "" or "file:line: message"
  std::vector<std::vector<int>> conf_refs;  // per route, per attachment: its config table (-1: none)
  // Per route: bit (1 << Phase) set when any of its scripts handles that phase, so the proxy can
  // skip a phase no script defines (a script that failed to load sets every bit: it must fail).
  std::vector<std::uint8_t> route_phases;
  // "file:line: routes[0].scripts[1].config.header: expected string, got number" for attachments
  // whose config does not match the script's schema.
  std::vector<std::string> config_errors;
};

struct PhaseReport {
  // waiting: a handler waits in a host call (host.wait says on what); call resume_phase() when
  // the wait is over, or abandon() if the request goes away.
  enum Verdict : std::uint8_t { next, responded, failed, waiting } verdict = next;
  Outcome outcome = Outcome::ok;  // for failed
  std::string message;            // for failed: "scripts/x.lua:3: ..." (logs only)
  std::string_view script;        // the script that responded or failed
};

class Engine {
 public:
  Engine();
  ~Engine();
  Vm& vm() { return vm_; }
  std::unique_ptr<CompiledScripts> compile(const Snapshot& snap);
  void release(CompiledScripts& c);
  // Runs phase `p` of every script attached to `route`, global ones first, in order; stops at the
  // first script that fails or answers (gw.response.exit).
  PhaseReport run_phase(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                        ScriptHost& host);
  // Continues the phase after its wait ended: the waiting handler gets its results, then the
  // scripts after it run.
  PhaseReport resume_phase(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                           ScriptHost& host);
  void abandon(ScriptHost& host);      // drops a waiting handler
  void end_request(ScriptHost& host);  // drops the request's gw.ctx (and a waiting handler)

 private:
  PhaseReport run_from(const Snapshot& snap, const CompiledScripts& c, std::uint32_t route, Phase p,
                       ScriptHost& host, std::size_t first);
  Vm vm_;
};

// Compiles every script of a snapshot in a throwaway Vm (for `lunagate check` and before a reload
// is published). Returns the errors, one "file:line: message" per line; empty when all load.
std::string check_scripts(const Snapshot& snap);

// Compiles every *.lua of the snapshot's scripts folder, used by a route or not, so a broken file
// is found before a route names it. Sets `count` to the files read; returns the errors.
std::string check_script_dir(const Snapshot& snap, std::size_t& count);

}  // namespace lg::lua
