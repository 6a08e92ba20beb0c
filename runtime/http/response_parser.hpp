// Strict parser for upstream response heads. Anything malformed is ParseResult::fail(502, ...):
// the upstream connection is then closed and never reused.
#pragma once
#include <cstddef>
#include <string_view>

#include "http/message.hpp"
#include "http/request_parser.hpp"

namespace lg::http {

// `request_was_head`: a response to HEAD has no body whatever its headers say.
// 1xx, 204 and 304 have no body. CL+TE, bad CL, unknown codings -> error.
ParseResult parse_response_head(std::string_view buf, std::size_t max_header_bytes,
                                std::size_t max_headers, bool request_was_head, HeadScan& scan,
                                ResponseHead& out);

}  // namespace lg::http
