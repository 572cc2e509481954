// How deeply JSON text nests, measured before it is parsed. nlohmann's parser does not
// recurse, but serialising does (once per level), so input that will be serialised again
// is bounded here: a 16 MiB message of `[` would otherwise overflow the stack.
#pragma once

#include <cstddef>
#include <string_view>

namespace lichen {

// Whether `text` nests arrays and objects deeper than `limit` (characters inside strings
// do not count; malformed text is measured as far as it goes).
inline bool JsonNestsDeeperThan(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace lichen
