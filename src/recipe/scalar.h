// Lenient scalar reading: recipes write numbers and booleans as strings
// ("900", "true") and the reference nucleus coerces them, so Lichen does too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "recipe/source_tree.h"

namespace lichen::recipe {

// Text of a scalar (string, number, boolean); nullopt for null, objects, arrays.
std::optional<std::string> ScalarText(const Json& value);
// true/false, or the strings "true"/"false" in any case.
std::optional<bool> ScalarBool(const Json& value);
// A whole number, or a string of digits; nullopt for anything else (1.5, "ten").
std::optional<int64_t> ScalarInt(const Json& value);
// "string", "number", "object"... for messages.
std::string TypeName(const Json& value);
// A short, quoted rendering of a value for messages, cut at 80 characters.
std::string Quote(const Json& value);
std::string Quote(const std::string& text);

}  // namespace lichen::recipe
