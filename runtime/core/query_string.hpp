// Query strings ("a=1&b=x%20y"): finding an argument and percent-decoding it. One place for the
// gateway's three readers: gw.request.get_query_arg, the policies' query parameters (key-auth,
// jwt) and the admin API.
#pragma once
#include <string>
#include <string_view>

namespace lg {

// The value of hex digit `c`, or -1.
int hex_digit(char c);

// The first argument `name` of `query`: its raw (still encoded) value in `value`, and `bare` set
// for a "name" without '='. With `skip_bare`, bare arguments are passed over (a later "name=v"
// is found). False when absent.
bool find_query_arg(std::string_view query, std::string_view name, bool skip_bare, std::string_view& value,
                    bool& bare);

// Form decoding: "%XX" escapes and '+' as a space; a malformed escape is kept as it is.
void percent_decode(std::string_view in, std::string& out);

// Strict decoding for identifiers: '+' stays '+', a malformed escape or a control byte (after
// decoding) makes it fail.
bool percent_decode_strict(std::string_view in, std::string& out);

}  // namespace lg
