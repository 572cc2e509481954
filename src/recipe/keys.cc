#include "recipe/keys.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "common/text.h"

namespace lichen::recipe {
namespace {

using text::ToLower;

// Optimal string alignment distance (Damerau-Levenshtein without repeated edits).
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = ToLower(a[i - 1]) == ToLower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && ToLower(a[i - 1]) == ToLower(b[j - 2]) &&
          ToLower(a[i - 2]) == ToLower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

}  // namespace

std::optional<std::string> SuggestKey(std::string_view key,
                                      std::span<const std::string_view> known) {
  if (key.size() > 64) return std::nullopt;  // not a typo, and keeps the table small
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (std::string_view k : known) {
    size_t dist = EditDistance(key, k);
    // Short words need a closer match or everything looks like everything.
    size_t limit = k.size() <= 4 ? 1 : (k.size() <= 8 ? 2 : 3);
    if (dist <= limit && (!best || dist < best_distance)) {
      best = std::string(k);
      best_distance = dist;
    }
  }
  return best;
}

}  // namespace lichen::recipe
