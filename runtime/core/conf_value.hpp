// A configuration value of any shape (null, bool, number, string, list, map), used for the
// per-route config tables handed to scripts. Plain data: converted to a Lua table by runtime/lua.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lg {

struct ConfValue {
  enum class Kind { null, boolean, number, string, list, map } kind = Kind::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<ConfValue> items;                          // list
  std::vector<std::pair<std::string, ConfValue>> fields;  // map, in file order
};

}  // namespace lg
