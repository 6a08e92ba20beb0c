#include "core/query_string.hpp"

namespace lg {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool find_query_arg(std::string_view query, std::string_view name, bool skip_bare, std::string_view& value,
                    bool& bare) {
  std::size_t i = 0;
  while (i <= query.size()) {
    std::size_t j = query.find('&', i);
    if (j == std::string_view::npos) j = query.size();
    const std::string_view pair = query.substr(i, j - i);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name && !(skip_bare && eq == std::string_view::npos)) {
      bare = eq == std::string_view::npos;
      value = bare ? std::string_view{} : pair.substr(eq + 1);
      return true;
    }
    i = j + 1;
  }
  return false;
}

void percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && hex_digit(in[i + 1]) >= 0 && hex_digit(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit(in[i + 1]) * 16 + hex_digit(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
}

bool percent_decode_strict(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int h = hex_digit(in[i + 1]), l = hex_digit(in[i + 2]);
      if (h < 0 || l < 0) return false;
      c = static_cast<char>(h * 16 + l);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    out.push_back(c);
  }
  return true;
}

}  // namespace lg
