#include "recipe/platform.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <regex>

#include "recipe/keys.h"
#include "recipe/scalar.h"

namespace lichen::recipe {
namespace {

// Platform labels are short; a longer regex or label is refused rather than risk
// std::regex's recursion on pathological input.
constexpr size_t kMaxRegexInput = 256;

bool RegexFullMatch(const std::string& pattern, const std::string& label) {
  if (pattern.size() > kMaxRegexInput || label.size() > kMaxRegexInput) return false;
  try {
    return std::regex_match(label, std::regex(pattern, std::regex::ECMAScript));
  } catch (const std::regex_error&) {
    return false;  // an invalid regex matches nothing, as a failed template should
  }
}

const std::string* Find(const Platform& p, const std::string& key) {
  for (const auto& [k, v] : p) {
    if (EqualsIgnoreCase(k, key)) return &v;
  }
  return nullptr;
}

bool TestField(const std::string& name, const std::string* label, const Json& templ) {
  if (templ.is_null()) return label == nullptr;
  if (label == nullptr) return templ == "*";  // "//" means "has a value"
  if (label->empty()) {
    // A blank attribute only satisfies wildcards.
    return templ == "*" || templ == "//";
  }
  if (!templ.is_string()) return false;
  const std::string& t = templ.get_ref<const std::string&>();
  if (t == "*" || t == "//") return true;
  if (t.size() > 2 && t.front() == '/' && t.back() == '/') {
    return RegexFullMatch(t.substr(1, t.size() - 2), *label);
  }
  if ((EqualsIgnoreCase(name, "os") || EqualsIgnoreCase(name, "architecture")) &&
      (t == "all" || t == "any")) {
    return true;
  }
  if (t.empty() || !std::isalnum(static_cast<unsigned char>(t[0]))) return false;
  return t == *label;
}

}  // namespace

Platform DetectPlatform() {
  Platform p;
  if (access("/proc", F_OK) == 0) p["os"] = "linux";
  struct utsname u {};
  if (uname(&u) == 0) {
    std::string m = u.machine;
    if (m == "x86_64" || m == "amd64") {
      p["architecture"] = "amd64";
    } else if (m == "i386" || m == "i486" || m == "i586" || m == "i686" || m == "x86") {
      p["architecture"] = "x86";
    } else if (m == "aarch64" || m == "arm64") {
      p["architecture"] = "aarch64";
    } else if (m.rfind("arm", 0) == 0) {
      p["architecture"] = "arm";
      p["architecture.detail"] = m;
    } else {
      p["architecture"] = m;
    }
  }
  return p;
}

void ApplyOverride(Platform& platform, const Json& overrides) {
  if (!overrides.is_object()) return;
  for (const auto& [k, v] : overrides.items()) {
    if (auto text = ScalarText(v)) platform[k] = *text;
  }
}

Result<Platform> ParsePlatformSpec(std::string_view spec) {
  Platform p;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string_view item =
        spec.substr(start, comma == std::string_view::npos ? spec.npos : comma - start);
    if (!item.empty()) {
      auto eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return MakeError("platform attribute '" + std::string(item) +
                         "' is not NAME=VALUE (e.g. os=linux,architecture=amd64)");
      }
      p[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return p;
}

std::string Describe(const Platform& platform) {
  std::string out;
  for (const auto& [k, v] : platform) {
    if (!out.empty()) out += ", ";
    out += k + "=" + v;
  }
  return out.empty() ? "(no attributes)" : out;
}

bool PlatformMatches(const Json& templates, const Platform& platform) {
  if (!templates.is_object() || templates.empty()) return true;
  for (const auto& [name, templ] : templates.items()) {
    const std::string* label = Find(platform, name);
    bool ok = false;
    if (templ.is_array()) {
      for (const auto& alt : templ) {
        if (TestField(name, label, alt)) {
          ok = true;
          break;
        }
      }
    } else {
      ok = TestField(name, label, templ);
    }
    if (!ok) return false;
  }
  return true;
}

std::optional<size_t> SelectManifest(const Recipe& recipe, const Platform& platform) {
  for (size_t i = 0; i < recipe.manifests.size(); ++i) {
    if (PlatformMatches(recipe.manifests[i].platform, platform)) return i;
  }
  return std::nullopt;
}

}  // namespace lichen::recipe
