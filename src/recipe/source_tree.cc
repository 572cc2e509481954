#include "recipe/source_tree.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/text.h"

namespace lichen::recipe {
namespace {

using text::Lower;

bool AllOf(std::string_view s, size_t from, bool (*pred)(char)) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i) {
    if (!pred(s[i])) return false;
  }
  return true;
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctal(char c) { return c >= '0' && c <= '7'; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Returns the byte offset of the first invalid UTF-8 sequence, or npos. Recipes are
// text; yaml-cpp passes bytes through, and JSON output would later refuse them.
size_t InvalidUtf8At(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong =
        (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++int_digits;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (int_digits == 0 && !dot) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && IsDigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

// Resolves an untagged plain scalar by the YAML 1.2 core schema.
Json ResolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view v = s;
  size_t sign = (v[0] == '-' || v[0] == '+') ? 1 : 0;
  if (AllOf(v, sign, IsDigit)) {
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (errno == 0 && end == s.c_str() + s.size()) return n;
    return s;  // too large for an integer: keep the text rather than lose digits
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'o' && AllOf(v, 2, IsOctal)) {
    errno = 0;
    long long n = std::strtoll(s.c_str() + 2, nullptr, 8);
    if (errno == 0) return n;
    return s;
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'x' && AllOf(v, 2, IsHex)) {
    errno = 0;
    long long n = std::strtoll(s.c_str() + 2, nullptr, 16);
    if (errno == 0) return n;
    return s;
  }
  if (IsCoreFloat(v)) return std::strtod(s.c_str(), nullptr);
  std::string l = Lower(v.substr(sign));
  if (l == ".inf") {
    // JSON has no infinity; keep the text so nothing is silently changed.
    return s;
  }
  return s;
}

Json ScalarToJson(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  const std::string& text = node.Scalar();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return text;
  if (tag == "?" || tag.empty() || tag.rfind("tag:yaml.org,2002:", 0) == 0)
    return ResolvePlain(text);
  return text;  // unknown local tags: keep the text
}

struct YamlWalker {
  SourceTree* tree;
  bool build;  // false: only record locations (the JSON tree came from nlohmann)

  Result<void> Walk(const YAML::Node& node, const std::string& path, int depth, Json* out) {
    if (depth > kMaxNestingDepth) {
      return MakeError(fmt(node) + "nesting deeper than " + std::to_string(kMaxNestingDepth) +
                       " levels");
    }
    const YAML::Mark mark = node.Mark();
    if (!path.empty() && mark.line >= 0) {
      tree->locations.emplace(path, Location{mark.line + 1, mark.column + 1});
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        if (build) *out = nullptr;
        return {};
      case YAML::NodeType::Scalar:
        // Escapes such as "\udc00" can produce bytes that are not UTF-8 text.
        if (InvalidUtf8At(node.Scalar()) != std::string_view::npos) {
          return MakeError(fmt(node) + "the value is not valid UTF-8 text");
        }
        if (build) *out = ScalarToJson(node);
        return {};
      case YAML::NodeType::Sequence: {
        if (build) *out = Json::array();
        size_t i = 0;
        for (const auto& item : node) {
          Json child;
          if (auto r = Walk(item, IndexPath(path, i), depth + 1, &child); !r) return r;
          if (build) out->push_back(std::move(child));
          ++i;
        }
        return {};
      }
      case YAML::NodeType::Map: {
        if (build) *out = Json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            return MakeError(fmt(kv.first) + "mapping keys must be plain text");
          }
          const std::string key = kv.first.Scalar();
          if (InvalidUtf8At(key) != std::string_view::npos) {
            return MakeError(fmt(kv.first) + "the key is not valid UTF-8 text");
          }
          const std::string child_path = ChildPath(path, key);
          Json child;
          if (auto r = Walk(kv.second, child_path, depth + 1, &child); !r) return r;
          if (build) {
            if (out->contains(key)) {
              tree->warnings.emplace_back(child_path,
                                          "duplicate key '" + key + "': the last value is used");
            }
            (*out)[key] = std::move(child);
          }
          if (kv.first.Mark().line >= 0) {
            // Point at the key rather than at its value: that is where a person looks.
            tree->locations[child_path] =
                Location{kv.first.Mark().line + 1, kv.first.Mark().column + 1};
          }
        }
        return {};
      }
    }
    return {};
  }

  static std::string fmt(const YAML::Node& node) {
    const YAML::Mark m = node.Mark();
    if (m.line < 0) return "";
    return std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": ";
  }
};

// Converts nlohmann's "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
// into "3:5: ..." so every parser error reads the same way.
std::string JsonErrorMessage(const nlohmann::json::parse_error& e) {
  std::string what = e.what();
  const std::string marker = "parse error at line ";
  auto pos = what.find(marker);
  if (pos != std::string::npos) {
    auto rest = what.substr(pos + marker.size());  // "3, column 5: msg"
    auto comma = rest.find(", column ");
    auto colon = rest.find(": ");
    if (comma != std::string::npos && colon != std::string::npos && comma < colon) {
      return rest.substr(0, comma) + ":" + rest.substr(comma + 9, colon - comma - 9) + ": " +
             rest.substr(colon + 2);
    }
  }
  auto bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

std::string LineColumnOf(std::string_view s, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col) + ": ";
}

int JsonDepth(const Json& j, int depth) {
  if (depth > kMaxNestingDepth) return depth;
  int deepest = depth;
  if (j.is_structured()) {
    for (const auto& child : j) {
      deepest = std::max(deepest, JsonDepth(child, depth + 1));
      if (deepest > kMaxNestingDepth) break;
    }
  }
  return deepest;
}

}  // namespace

Location SourceTree::LocationOf(const std::string& path) const {
  auto it = locations.find(path);
  return it == locations.end() ? Location{} : it->second;
}

Location SourceTree::NearestLocation(std::string path) const {
  while (true) {
    Location loc = LocationOf(path);
    if (loc.line > 0 || path.empty()) return loc;
    auto cut = path.find_last_of(".[");
    path = cut == std::string::npos ? std::string() : path.substr(0, cut);
  }
}

void AddJsonLocations(std::string_view text, SourceTree* tree) {
  // JSON is YAML, and yaml-cpp keeps line/column marks. Parsing twice costs as much
  // as the whole load, so it is done only when a message needs a position.
  try {
    YAML::Node node = YAML::Load(std::string(text));
    YamlWalker walker{tree, false};
    (void)walker.Walk(node, "", 0, nullptr);
  } catch (const std::exception&) {
    tree->locations.clear();  // locations are a courtesy; the JSON parse is what counts
  }
}

SourceFormat FormatForPath(std::string_view path) {
  auto dot = path.rfind('.');
  if (dot != std::string_view::npos && Lower(path.substr(dot)) == ".json")
    return SourceFormat::kJson;
  return SourceFormat::kYaml;
}

std::string ChildPath(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out = parent;
  out += '.';
  out += key;
  return out;
}

std::string IndexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

Result<SourceTree> ParseSource(std::string_view text, SourceFormat format) {
  SourceTree tree;
  if (format == SourceFormat::kJson) {
    // nlohmann's parser is iterative, so deep input cannot overflow the stack here; the
    // depth check below runs before anything recurses over the tree.
    try {
      tree.root = Json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
      std::string hint;
      // Comments are the most common reason a hand-written JSON recipe fails.
      if (e.byte >= 1 && e.byte <= text.size() && text[e.byte - 1] == '/') {
        hint = " (JSON does not allow comments; remove them, or write the recipe in YAML)";
      }
      return MakeError("not valid JSON: " + JsonErrorMessage(e) + hint);
    } catch (const nlohmann::json::exception& e) {
      // e.g. a number too large for any JSON number type (out_of_range 406).
      std::string what = e.what();
      auto bracket = what.find("] ");
      return MakeError("not valid JSON: " +
                       (bracket == std::string::npos ? what : what.substr(bracket + 2)));
    }
    if (JsonDepth(tree.root, 0) > kMaxNestingDepth) {
      return MakeError("not accepted: nesting deeper than " + std::to_string(kMaxNestingDepth) +
                       " levels");
    }
    return tree;  // locations come later, and only if a message needs them
  }

  if (size_t bad = InvalidUtf8At(text); bad != std::string_view::npos) {
    return MakeError("not valid YAML: " + LineColumnOf(text, bad) +
                     "the file is not UTF-8 text (invalid byte sequence)");
  }
  YAML::Node node;
  try {
    node = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    std::string where;
    if (e.mark.line >= 0) {
      where = std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": ";
    }
    return MakeError("not valid YAML: " + where + e.msg);
  } catch (const std::exception& e) {
    return MakeError(std::string("not valid YAML: ") + e.what());
  }
  YamlWalker walker{&tree, true};
  if (auto r = walker.Walk(node, "", 0, &tree.root); !r) {
    return MakeError("not accepted: " + r.error().message);
  }
  return tree;
}

}  // namespace lichen::recipe
