// Field names of the recipe format and spelling suggestions for near-misses.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/text.h"

namespace lichen::recipe {

using text::EqualsIgnoreCase;

// The known name closest to `key` (case-insensitive edit distance), if close enough
// to be a likely typo: "Lifecyle" -> "Lifecycle".
std::optional<std::string> SuggestKey(std::string_view key,
                                      std::span<const std::string_view> known);

}  // namespace lichen::recipe
