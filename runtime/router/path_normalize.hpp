// Request path normalization, applied before routing so that /x/../admin, /%61dmin or //admin
// cannot dodge the policies of /admin (RFC 3986 §6.2.2, §5.2.4).
#pragma once
#include <string>
#include <string_view>

namespace lg {

// Normalizes the path part of a request-target (no query) into `out`:
//  1. percent-escapes are decoded exactly once when they encode an unreserved character
//     (ALPHA DIGIT - . _ ~); other escapes stay encoded with upper-case hex;
//  2. rejected: malformed escapes, %00, encoded '/' or '\', overlong or invalid UTF-8 lead
//     bytes in escapes (%C0, %C1, %F5-%FF, %E0%80-%9F, %F0%80-%8F), raw bytes that are not
//     allowed in a path (CTL, SP, DEL, '#', '\', bytes >= 0x80);
//  3. runs of '/' collapse to one;
//  4. "." and ".." segments are removed; ".." never climbs above the root.
// The result always starts with '/'. Returns nullptr on success, or a static reason on rejection
// (the request then gets 400).
const char* normalize_path(std::string_view raw, std::string& out);

}  // namespace lg
