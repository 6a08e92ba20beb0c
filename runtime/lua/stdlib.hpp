// The trusted Lua stdlib: the modules under stdlib/ (e.g. stdlib/lunagate/tablex.lua is module
// "lunagate.tablex"), compiled into the binary at build time by cmake/embed_stdlib.cmake (the
// generated source is in the build dir, never in git).
//
// Inside a Vm (sandbox.hpp, stdlib_loader.cpp) every module is run once, in a trusted
// environment of its own holding the sandbox's safe globals, with the JIT allowed; scripts get
// it through require(name) as one shared read-only proxy.
#pragma once
#include <span>
#include <string_view>

namespace lg::lua {

struct StdlibModule {
  std::string_view name;       // "lunagate.tablex"
  std::string_view chunkname;  // "stdlib/lunagate/tablex.lua" (in error messages)
  std::string_view source;     // Lua text
};

// Every embedded module, in the order of their (sorted) paths.
std::span<const StdlibModule> stdlib_modules();

}  // namespace lg::lua
