#include "recipe/interpolate.h"

#include <optional>

namespace lichen::recipe {
namespace {

bool IsWordOrDot(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}
// Component names may also contain '-', which the reference's pattern forgets.
bool IsNameChar(char c) { return IsWordOrDot(c) || c == '-'; }

// Reads a run of characters accepted by `pred` starting at `i`; returns its end.
template <typename Pred>
size_t Run(std::string_view s, size_t i, Pred pred) {
  while (i < s.size() && pred(s[i])) ++i;
  return i;
}

struct Placeholder {
  size_t length = 0;      // of the whole "{...}" text
  std::string component;  // empty for same-component variables
  std::string ns;
  std::string key;
};

// Matches "{ns:key}" or "{component:ns:key}" at s[0] == '{'. The key may hold any
// character but ':' and '}' (JSON pointers need '/', '~' and spaces).
std::optional<Placeholder> MatchAt(std::string_view s) {
  size_t a_end = Run(s, 1, IsNameChar);
  if (a_end == 1 || a_end >= s.size() || s[a_end] != ':') return std::nullopt;
  std::string_view first = s.substr(1, a_end - 1);
  // Cross-component form first: {component:ns:key}.
  size_t b_end = Run(s, a_end + 1, IsWordOrDot);
  if (b_end > a_end + 1 && b_end < s.size() && s[b_end] == ':') {
    size_t c_end = Run(s, b_end + 1, [](char c) { return c != ':' && c != '}'; });
    if (c_end > b_end + 1 && c_end < s.size() && s[c_end] == '}') {
      return Placeholder{c_end + 1, std::string(first),
                         std::string(s.substr(a_end + 1, b_end - a_end - 1)),
                         std::string(s.substr(b_end + 1, c_end - b_end - 1))};
    }
  }
  // Same-component form: {ns:key}; the namespace has no '-'.
  if (first.find('-') != std::string_view::npos) return std::nullopt;
  size_t k_end = Run(s, a_end + 1, [](char c) { return c != ':' && c != '}'; });
  if (k_end > a_end + 1 && k_end < s.size() && s[k_end] == '}') {
    return Placeholder{k_end + 1, "", std::string(first),
                       std::string(s.substr(a_end + 1, k_end - a_end - 1))};
  }
  return std::nullopt;
}

// Sorted keys, compact: what the reference's ObjectMapper writes for an object value.
std::string SerializeSorted(const Json& value) { return nlohmann::json(value).dump(); }

std::optional<std::string> LookupConfiguration(const VariableSource& src,
                                               const std::string& pointer, const std::string& text,
                                               std::vector<std::string>* problems) {
  if (src.configuration == nullptr) {
    problems->push_back(text + ": " + src.name + " has no configuration");
    return std::nullopt;
  }
  try {
    Json::json_pointer ptr(pointer);
    if (!src.configuration->contains(ptr)) {
      problems->push_back(text + ": no value at '" + pointer + "' in the configuration of " +
                          src.name);
      return std::nullopt;
    }
    const Json& v = src.configuration->at(ptr);
    if (v.is_string()) return v.get<std::string>();
    if (v.is_structured()) return SerializeSorted(v);
    return v.dump();  // numbers, booleans, and null as "null"
  } catch (const nlohmann::json::exception&) {
    problems->push_back(text + ": '" + pointer +
                        "' is not a JSON pointer (it starts with '/', "
                        "e.g. /mqtt/topic)");
    return std::nullopt;
  }
}

std::optional<std::string> LookupSystem(const InterpolationContext& ctx, const VariableSource& src,
                                        const std::string& ns, const std::string& key,
                                        const std::string& text,
                                        std::vector<std::string>* problems) {
  if (ns == "artifacts") {
    if (key == "path") return ArtifactPath(ctx.root, src.name, src.version);
    if (key == "decompressedPath") return DecompressedPath(ctx.root, src.name, src.version);
  } else if (ns == "work") {
    if (key == "path") return WorkPath(ctx.root, src.name);
  } else if (ns == "kernel") {
    if (key == "rootPath") return ctx.root;
  } else if (ns == "iot") {
    if (key == "thingName") return ctx.thing_name;
  } else {
    problems->push_back(text + ": unknown namespace '" + ns +
                        "' (known: artifacts, configuration, work, kernel, iot)");
    return std::nullopt;
  }
  problems->push_back(text + ": unknown variable '" + key + "' in namespace '" + ns + "'");
  return std::nullopt;
}

std::optional<std::string> Resolve(const Placeholder& p, const InterpolationContext& ctx,
                                   const std::string& text, std::vector<std::string>* problems) {
  const VariableSource* src = &ctx.self;
  if (!p.component.empty()) {
    auto it = ctx.dependencies.find(p.component);
    if (it == ctx.dependencies.end()) {
      problems->push_back(text + ": " + p.component + " is not a direct dependency of " +
                          ctx.self.name + ", so its variables cannot be used");
      return std::nullopt;
    }
    src = &it->second;
  }
  if (p.ns == "configuration") return LookupConfiguration(*src, p.key, text, problems);
  if (!p.component.empty() && (p.ns == "kernel" || p.ns == "iot")) {
    // Device-wide values do not belong to another component.
    problems->push_back(text + ": namespace '" + p.ns + "' cannot be used across components");
    return std::nullopt;
  }
  return LookupSystem(ctx, *src, p.ns, p.key, text, problems);
}

}  // namespace

std::string ArtifactPath(const std::string& root, const std::string& name,
                         const std::string& version) {
  return root + "/packages/artifacts/" + name + "/" + version;
}
std::string DecompressedPath(const std::string& root, const std::string& name,
                             const std::string& version) {
  return root + "/packages/artifacts-unarchived/" + name + "/" + version;
}
std::string WorkPath(const std::string& root, const std::string& name) {
  return root + "/work/" + name;
}

std::string InterpolateText(std::string_view text, const InterpolationContext& ctx,
                            std::vector<std::string>* problems) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t brace = text.find('{', i);
    if (brace == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, brace - i));
    auto p = MatchAt(text.substr(brace));
    if (!p) {
      out.push_back('{');
      i = brace + 1;
      continue;
    }
    const std::string whole(text.substr(brace, p->length));
    if (auto value = Resolve(*p, ctx, whole, problems)) {
      out += *value;
    } else {
      out += whole;
    }
    i = brace + p->length;
  }
  return out;
}

Json InterpolateTree(const Json& tree, const InterpolationContext& ctx,
                     std::vector<std::string>* problems) {
  if (tree.is_string()) return InterpolateText(tree.get_ref<const std::string&>(), ctx, problems);
  if (tree.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : tree.items()) out[k] = InterpolateTree(v, ctx, problems);
    return out;
  }
  if (tree.is_array()) {
    Json out = Json::array();
    for (const auto& v : tree) out.push_back(InterpolateTree(v, ctx, problems));
    return out;
  }
  return tree;
}

}  // namespace lichen::recipe
