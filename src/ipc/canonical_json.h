// JSON text that is already in the form nlohmann's dump() writes (indent -1), so that
// parsing it and dumping it again gives the same bytes. A request in that form can be
// checked and copied into an event as text, without building a Json and serialising it
// again (the IPC publish path: every SDK client sends compact JSON).
//
// Deliberately narrow: no whitespace outside strings; integers of at most 18 digits (no
// "-0", no fraction or exponent: dump() may write those differently); strings of printable
// ASCII with no escapes but \" \\ \b \f \n \r \t (dump() rewrites \/, \u and invalid
// UTF-8; other UTF-8 is left to the parser too); objects of at most 32 members with
// distinct keys (dump() keeps one of duplicates); at most 128 levels. Other valid JSON is
// simply not canonical: callers parse it as usual.
#pragma once

#include <optional>
#include <string_view>

namespace lichen::ipc {

// Whether `text` is exactly one canonical JSON value / object.
bool IsCanonicalJson(std::string_view text);
bool IsCanonicalJsonObject(std::string_view text);

// In the text of a canonical object: the text of the value of member `key` (compared with
// the text between the key's quotes), or nothing. Only for text that IsCanonicalJsonObject
// accepts.
std::optional<std::string_view> CanonicalMember(std::string_view object, std::string_view key);

}  // namespace lichen::ipc
