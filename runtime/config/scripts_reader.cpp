// The `scripts` section and the script lists of routes: which scripts run, their per-route
// config tables and budget overrides.
#include <cctype>
#include <cstdlib>
#include <set>

#include "config/config_checks.hpp"
#include "config/readers.hpp"

namespace lg::config_readers {

using namespace yaml_reader;
using namespace config_checks;

namespace {

void read_conf_value(const YAML::Node& n, ConfValue& out) {
  if (n.IsMap()) {
    out.kind = ConfValue::Kind::map;
    for (const auto& kv : n) {
      ConfValue v;
      read_conf_value(kv.second, v);
      out.fields.emplace_back(kv.first.Scalar(), std::move(v));
    }
  } else if (n.IsSequence()) {
    out.kind = ConfValue::Kind::list;
    for (const auto& item : n) {
      ConfValue v;
      read_conf_value(item, v);
      out.items.push_back(std::move(v));
    }
  } else if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    // Plain scalars that read as booleans or numbers become those; quoted ones stay strings.
    if (n.Tag() != "!") {
      if (s == "true" || s == "false") {
        out.kind = ConfValue::Kind::boolean;
        out.b = s == "true";
        return;
      }
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
        out.kind = ConfValue::Kind::number;
        out.n = d;
        return;
      }
    }
    out.kind = ConfValue::Kind::string;
    out.s = s;
  }
}

void read_budget(Problems& p, const Value& v, std::optional<Millis>& cpu, std::optional<std::uint64_t>& memory) {
  MapReader m(p, v);
  if (auto c = m.get("cpu")) {
    Millis d{};
    if (read_duration(p, *c, d)) cpu = d;
  }
  if (auto mem = m.get("memory")) {
    std::uint64_t n = 0;
    if (read_size(p, *mem, 64 * 1024, n)) memory = n;
  }
  m.finish();
}

bool read_script_name(Problems& p, const Value& v, std::string& out) {
  if (!read_string(p, v, out)) return false;
  if (out.size() > 4 && out.compare(out.size() - 4, 4, ".lua") == 0) {
    p.add(v.line, v.path, fmt::format("script {}: name it without \".lua\" (the file is <dir>/<name>.lua)", quoted(out)));
    return false;
  }
  if (!valid_name(out)) {
    p.add(v.line, v.path, fmt::format("invalid script name {} (letters, digits, '_', '.', '-'; the file is <dir>/<name>.lua)", quoted(out)));
    return false;
  }
  return true;
}

}  // namespace

void read_script_refs(Problems& p, const Value& v, std::vector<ScriptRef>& out) {
  std::vector<Value> items;
  list_items(p, v, items);
  std::set<std::string> seen;
  for (const Value& item : items) {
    ScriptRef ref;
    ref.line = item.line;
    if (item.node.IsMap()) {
      MapReader m(p, item);
      if (auto n = m.required("name")) read_script_name(p, *n, ref.name);
      if (auto c = m.get("config")) {
        if (!c->node.IsMap()) p.add(c->line, c->path, "expected a map, got " + describe(c->node));
        else read_conf_value(c->node, ref.config);
      }
      if (auto b = m.get("budget")) read_budget(p, *b, ref.cpu, ref.memory);
      m.finish();
    } else if (!read_script_name(p, item, ref.name)) {
      continue;
    }
    if (ref.name.empty()) continue;
    if (!seen.insert(ref.name).second) {
      p.add(item.line, item.path, fmt::format("script {} listed twice", quoted(ref.name)));
      continue;
    }
    out.push_back(std::move(ref));
  }
}

void read_scripts_section(Problems& p, const Value& v, ScriptsConfig& out) {
  MapReader m(p, v);
  if (auto d = m.get("dir")) read_string(p, *d, out.dir);
  if (auto w = m.get("watch")) read_bool(p, *w, out.watch);
  if (auto b = m.get("budget")) {
    std::optional<Millis> cpu;
    std::optional<std::uint64_t> memory;
    read_budget(p, *b, cpu, memory);
    if (cpu) out.cpu = *cpu;
    if (memory) out.memory = *memory;
  }
  if (auto w = m.get("wait_limit")) {
    Millis d{0};
    if (read_duration(p, *w, d)) {
      if (d.count() <= 0 || d.count() > 3'600'000) p.add(w->line, w->path, "must be between 1ms and 1h");
      else out.wait_limit = d;
    }
  }
  if (auto g = m.get("global")) read_script_refs(p, *g, out.global);
  m.finish();
}

}  // namespace lg::config_readers
