#include "recipe/loader.h"

#include <fstream>
#include <sstream>

#include "docker/image_reference.h"
#include "recipe/artifact_uri.h"
#include "recipe/keys.h"
#include "recipe/lifecycle.h"
#include "recipe/scalar.h"
#include "semver/range.h"

namespace lichen::recipe {
namespace {

constexpr std::array<std::string_view, 11> kTopKeys = {
    "RecipeFormatVersion",   "ComponentName",      "ComponentVersion", "ComponentType",
    "ComponentDescription",  "ComponentPublisher", "ComponentSource",  "ComponentConfiguration",
    "ComponentDependencies", "Manifests",          "Lifecycle"};
constexpr std::array<std::string_view, 1> kConfigurationKeys = {"DefaultConfiguration"};
constexpr std::array<std::string_view, 2> kDependencyKeys = {"VersionRequirement",
                                                             "DependencyType"};
constexpr std::array<std::string_view, 5> kManifestKeys = {"Platform", "Lifecycle", "Selections",
                                                           "Artifacts", "Name"};
constexpr std::array<std::string_view, 5> kArtifactKeys = {"URI", "Digest", "Algorithm",
                                                           "Unarchive", "Permission"};
constexpr std::array<std::string_view, 2> kPermissionKeys = {"Read", "Execute"};

constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxVersionLength = 64;

// Case-insensitive view of one mapping in the file. Lookups mark keys as used so that
// what is left can be reported as unknown.
class Fields {
 public:
  Fields(const Json& object, std::string path, Reporter& reporter)
      : object_(object), path_(std::move(path)), reporter_(reporter) {}

  // The value under `name` (any case), or nullptr. `path_out` gets the path as written.
  const Json* Get(std::string_view name, std::string* path_out = nullptr) {
    const Json* found = nullptr;
    for (const auto& [k, v] : object_.items()) {
      if (!EqualsIgnoreCase(k, name)) continue;
      if (found != nullptr) {
        reporter_.Warn(ChildPath(path_, k), "'" + k +
                                                "' is given twice (keys ignore case); the "
                                                "first one is used");
        continue;
      }
      found = &v;
      used_.push_back(k);
      if (path_out != nullptr) *path_out = ChildPath(path_, k);
    }
    if (found == nullptr && path_out != nullptr) *path_out = ChildPath(path_, name);
    return found;
  }

  void WarnUnknown(std::span<const std::string_view> known, std::string_view where) {
    for (const auto& item : object_.items()) {
      const std::string& k = item.key();
      if (std::find(used_.begin(), used_.end(), k) != used_.end()) continue;
      bool is_known = std::any_of(known.begin(), known.end(),
                                  [&k](std::string_view n) { return EqualsIgnoreCase(k, n); });
      if (is_known) continue;
      std::string msg = "unknown key '" + k + "' in " + std::string(where) + ", ignored";
      if (auto s = SuggestKey(k, known)) msg += " (did you mean '" + *s + "'?)";
      reporter_.Warn(ChildPath(path_, k), msg);
    }
  }

 private:
  const Json& object_;
  std::string path_;
  Reporter& reporter_;
  std::vector<std::string> used_;
};

bool IsPlaceholderText(const std::string& s) {
  // GDK and template projects leave {COMPONENT_NAME}, COMPONENT_VERSION, NEXT_PATCH,
  // <component-name>, $component_name, {{name}} or USER_SETTING for a tool to fill in.
  if (s.find('{') != std::string::npos && s.find('}') != std::string::npos) return true;
  if (s.find('<') != std::string::npos && s.find('>') != std::string::npos) return true;
  if (!s.empty() && s[0] == '$') return true;
  bool has_upper = false;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') {
      has_upper = true;
    } else if (c != '_' && !(c >= '0' && c <= '9')) {
      return false;
    }
  }
  return has_upper && s.find('_') != std::string::npos;
}

const char* kTemplateHint =
    " (template placeholder?): this file looks like a template that a build tool such as "
    "'gdk component build' fills in; deploy the built recipe, or write the real value";

std::optional<std::string> RequiredText(Fields& fields, std::string_view name, Reporter& reporter,
                                        std::string* path_out) {
  const Json* v = fields.Get(name, path_out);
  if (v == nullptr || v->is_null()) {
    reporter.Error("", std::string(name) + " is missing");
    return std::nullopt;
  }
  auto text = ScalarText(*v);
  if (!text) {
    reporter.Error(*path_out, std::string(name) + " must be text, not " + TypeName(*v));
    return std::nullopt;
  }
  return text;
}

void ReadOptionalText(Fields& fields, std::string_view name, Reporter& reporter, std::string* out) {
  std::string path;
  const Json* v = fields.Get(name, &path);
  if (v == nullptr || v->is_null()) return;
  if (auto text = ScalarText(*v)) {
    *out = *text;
  } else {
    reporter.Error(path, std::string(name) + " must be text, not " + TypeName(*v));
  }
}

template <typename Enum, size_t N>
std::optional<Enum> ReadEnum(const Json& v,
                             const std::array<std::pair<std::string_view, Enum>, N>& table) {
  auto text = ScalarText(v);
  if (!text) return std::nullopt;
  for (const auto& [name, value] : table) {
    if (EqualsIgnoreCase(*text, name)) return value;
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
std::string EnumChoices(const std::array<std::pair<std::string_view, Enum>, N>& table) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += table[i].first;
  }
  return out;
}

constexpr std::array<std::pair<std::string_view, ComponentType>, 4> kComponentTypes = {{
    {"aws.greengrass.generic", ComponentType::kGeneric},
    {"aws.greengrass.plugin", ComponentType::kPlugin},
    {"aws.greengrass.lambda", ComponentType::kLambda},
    {"aws.greengrass.nucleus", ComponentType::kNucleus},
}};
constexpr std::array<std::pair<std::string_view, DependencyType>, 2> kDependencyTypes = {{
    {"HARD", DependencyType::kHard},
    {"SOFT", DependencyType::kSoft},
}};
constexpr std::array<std::pair<std::string_view, Unarchive>, 2> kUnarchiveKinds = {{
    {"NONE", Unarchive::kNone},
    {"ZIP", Unarchive::kZip},
}};
constexpr std::array<std::pair<std::string_view, PermissionType>, 3> kPermissionTypes = {{
    {"NONE", PermissionType::kNone},
    {"OWNER", PermissionType::kOwner},
    {"ALL", PermissionType::kAll},
}};

class Loader {
 public:
  Loader(const SourceTree& tree, std::vector<Diagnostic>* out)
      : tree_(tree), reporter_(&tree, out) {}

  std::optional<Recipe> Load() {
    for (const auto& [path, message] : tree_.warnings) reporter_.Warn(path, message);
    const Json& root = tree_.root;
    if (!root.is_object()) {
      reporter_.Error("",
                      "a recipe is a mapping of fields (RecipeFormatVersion, ComponentName, "
                      "...), but this file holds " +
                          TypeName(root));
      return std::nullopt;
    }
    Recipe r;
    Fields top(root, "", reporter_);
    ReadHeader(top, r);
    ReadConfiguration(top, r);
    ReadDependencies(top, r);
    ReadManifests(top, r);
    ReadGlobalLifecycle(top, r);
    top.WarnUnknown(kTopKeys, "the recipe");
    ValidateLifecycles(r);
    if (reporter_.HasErrors()) return std::nullopt;
    return r;
  }

 private:
  void ReadHeader(Fields& top, Recipe& r) {
    std::string path;
    if (auto fv = RequiredText(top, "RecipeFormatVersion", reporter_, &path)) {
      r.format_version = *fv;
      if (*fv != "2020-01-25") {
        reporter_.Error(path, "RecipeFormatVersion " + Quote(*fv) +
                                  " is not supported: the only recipe format is '2020-01-25'");
      }
    }
    if (auto name = RequiredText(top, "ComponentName", reporter_, &path)) {
      r.name = *name;
      if (!IsLegalComponentName(*name)) {
        std::string msg = "ComponentName " + Quote(*name) + " is not a legal name";
        if (IsPlaceholderText(*name)) {
          msg += kTemplateHint;
        } else {
          msg += ": use letters, digits, '-', '_' and '.', at most 128 characters";
        }
        reporter_.Error(path, msg);
      }
    }
    if (auto version = RequiredText(top, "ComponentVersion", reporter_, &path)) {
      auto parsed = semver::Version::ParseStrict(*version);
      if (parsed) {
        r.version = *parsed;
      } else if (IsPlaceholderText(*version)) {
        reporter_.Error(path,
                        "ComponentVersion " + Quote(*version) + " is not semver" + kTemplateHint);
      } else {
        reporter_.Error(path, "ComponentVersion " + Quote(*version) +
                                  " is not a valid version: " + parsed.error().message);
      }
      (void)kMaxVersionLength;
    }
    std::string type_path;
    if (const Json* t = top.Get("ComponentType", &type_path); t != nullptr && !t->is_null()) {
      if (auto type = ReadEnum(*t, kComponentTypes)) {
        r.type = *type;
      } else {
        reporter_.Error(type_path, "ComponentType " + Quote(*t) + " is not one of " +
                                       EnumChoices(kComponentTypes));
      }
    }
    ReadOptionalText(top, "ComponentDescription", reporter_, &r.description);
    ReadOptionalText(top, "ComponentPublisher", reporter_, &r.publisher);
    ReadOptionalText(top, "ComponentSource", reporter_, &r.source);
  }

  void ReadConfiguration(Fields& top, Recipe& r) {
    std::string path;
    const Json* cc = top.Get("ComponentConfiguration", &path);
    if (cc == nullptr || cc->is_null()) return;
    if (!cc->is_object()) {
      reporter_.Error(path,
                      "ComponentConfiguration must be a mapping with DefaultConfiguration, "
                      "not " +
                          TypeName(*cc));
      return;
    }
    Fields fields(*cc, path, reporter_);
    std::string dpath;
    if (const Json* d = fields.Get("DefaultConfiguration", &dpath); d != nullptr && !d->is_null()) {
      if (!d->is_object()) {
        reporter_.Error(dpath, "DefaultConfiguration must be a mapping, not " + TypeName(*d));
      } else {
        r.default_configuration = *d;
      }
    }
    fields.WarnUnknown(kConfigurationKeys, "ComponentConfiguration");
  }

  void ReadDependencies(Fields& top, Recipe& r) {
    std::string path;
    const Json* deps = top.Get("ComponentDependencies", &path);
    if (deps == nullptr || deps->is_null()) return;
    if (!deps->is_object()) {
      reporter_.Error(path,
                      "ComponentDependencies must be a mapping of component names to "
                      "{VersionRequirement, DependencyType}, not " +
                          TypeName(*deps));
      return;
    }
    for (const auto& [name, spec] : deps->items()) {
      const std::string p = ChildPath(path, name);
      Dependency dep;
      dep.name = name;
      if (!IsLegalComponentName(name)) {
        std::string msg = "dependency name " + Quote(name) + " is not a legal component name";
        if (IsPlaceholderText(name)) msg += kTemplateHint;
        reporter_.Error(p, msg);
      }
      if (name == r.name) reporter_.Error(p, "a component cannot depend on itself");
      if (spec.is_null()) {
        r.dependencies.push_back(dep);
        continue;
      }
      if (!spec.is_object()) {
        reporter_.Error(p,
                        "a dependency is a mapping with VersionRequirement and DependencyType, "
                        "not " +
                            TypeName(spec));
        continue;
      }
      Fields fields(spec, p, reporter_);
      std::string vpath;
      if (const Json* v = fields.Get("VersionRequirement", &vpath); v != nullptr && !v->is_null()) {
        auto text = ScalarText(*v);
        if (!text) {
          reporter_.Error(vpath, "VersionRequirement must be text, not " + TypeName(*v));
        } else {
          dep.version_requirement = *text;
          if (auto range = semver::Range::Parse(*text); !range) {
            reporter_.Error(vpath, "VersionRequirement " + Quote(*text) +
                                       " is not a valid version range: " + range.error().message);
          }
        }
      }
      std::string tpath;
      if (const Json* t = fields.Get("DependencyType", &tpath); t != nullptr && !t->is_null()) {
        if (auto type = ReadEnum(*t, kDependencyTypes)) {
          dep.type = *type;
        } else {
          reporter_.Error(tpath, "DependencyType " + Quote(*t) + " is not HARD or SOFT");
        }
      }
      fields.WarnUnknown(kDependencyKeys, "a dependency");
      r.dependencies.push_back(dep);
    }
  }

  void ReadManifests(Fields& top, Recipe& r) {
    std::string path;
    const Json* manifests = top.Get("Manifests", &path);
    if (manifests == nullptr || manifests->is_null()) return;
    manifests_written_ = manifests->is_array() && !manifests->empty();
    if (!manifests->is_array()) {
      reporter_.Error(path, "Manifests must be a list, not " + TypeName(*manifests));
      return;
    }
    for (size_t i = 0; i < manifests->size(); ++i) {
      const Json& m = (*manifests)[i];
      const std::string p = IndexPath(path, i);
      if (m.is_null()) {
        reporter_.Error(p,
                        "null element in Manifests (a '-' with nothing under it?): remove it "
                        "or give it a Platform");
        continue;
      }
      if (!m.is_object()) {
        reporter_.Error(p,
                        "a manifest is a mapping (Platform, Lifecycle, Selections, Artifacts), "
                        "not " +
                            TypeName(m));
        continue;
      }
      r.manifests.push_back(ReadManifest(m, p));
    }
  }

  Manifest ReadManifest(const Json& m, const std::string& path) {
    Manifest out;
    Fields fields(m, path, reporter_);
    std::string p;
    if (const Json* platform = fields.Get("Platform", &p);
        platform != nullptr && !platform->is_null()) {
      if (!platform->is_object()) {
        reporter_.Error(
            p, "Platform must be a mapping such as {os: linux}, not " + TypeName(*platform));
      } else {
        out.platform = *platform;
      }
    }
    if (const Json* lc = fields.Get("Lifecycle", &p); lc != nullptr && !lc->is_null()) {
      if (!lc->is_object()) {
        reporter_.Error(p, "Lifecycle must be a mapping of steps, not " + TypeName(*lc));
      } else {
        out.lifecycle = *lc;
        manifest_lifecycle_paths_.push_back(p);
      }
    } else {
      manifest_lifecycle_paths_.push_back(ChildPath(path, "Lifecycle"));
    }
    if (const Json* sel = fields.Get("Selections", &p); sel != nullptr && !sel->is_null()) {
      if (!sel->is_array()) {
        reporter_.Error(p, "Selections must be a list of names, not " + TypeName(*sel));
      } else {
        for (size_t i = 0; i < sel->size(); ++i) {
          if (auto text = ScalarText((*sel)[i])) {
            out.selections.push_back(*text);
          } else {
            reporter_.Error(IndexPath(p, i), "a selection is a name, not " + TypeName((*sel)[i]));
          }
        }
      }
    }
    if (const Json* arts = fields.Get("Artifacts", &p); arts != nullptr && !arts->is_null()) {
      if (!arts->is_array()) {
        reporter_.Error(p, "Artifacts must be a list, not " + TypeName(*arts));
      } else {
        for (size_t i = 0; i < arts->size(); ++i) {
          const Json& a = (*arts)[i];
          const std::string ap = IndexPath(p, i);
          if (a.is_null()) continue;  // the reference drops null artifacts
          if (!a.is_object()) {
            reporter_.Error(ap, "an artifact is a mapping with a URI, not " + TypeName(a));
            continue;
          }
          if (auto art = ReadArtifact(a, ap)) out.artifacts.push_back(std::move(*art));
        }
      }
    }
    fields.WarnUnknown(kManifestKeys, "a manifest");
    return out;
  }

  std::optional<Artifact> ReadArtifact(const Json& a, const std::string& path) {
    Artifact out;
    Fields fields(a, path, reporter_);
    std::string p;
    const Json* uri = fields.Get("URI", &p);
    if (uri == nullptr || uri->is_null()) {
      reporter_.Error(path, "the artifact has no URI");
      return std::nullopt;
    }
    auto text = ScalarText(*uri);
    if (!text) {
      reporter_.Error(p, "URI must be text, not " + TypeName(*uri));
      return std::nullopt;
    }
    out.uri = *text;
    auto checked = CheckArtifactUri(out.uri);
    if (!checked) {
      reporter_.Error(p, checked.error().message);
    } else {
      out.scheme = checked->scheme;
      for (const auto& w : checked->warnings) reporter_.Warn(p, w);
    }
    ReadOptionalText(fields, "Digest", reporter_, &out.digest);
    ReadOptionalText(fields, "Algorithm", reporter_, &out.algorithm);
    if (!out.digest.empty() && !out.algorithm.empty()) {
      std::string dp;
      fields.Get("Digest", &dp);
      if (auto problem = CheckDigest(out.digest, out.algorithm)) reporter_.Warn(dp, *problem);
    }
    if (const Json* u = fields.Get("Unarchive", &p); u != nullptr && !u->is_null()) {
      if (auto kind = ReadEnum(*u, kUnarchiveKinds)) {
        out.unarchive = *kind;
      } else {
        reporter_.Error(p, "Unarchive " + Quote(*u) + " is not NONE or ZIP");
      }
    }
    if (const Json* perm = fields.Get("Permission", &p); perm != nullptr && !perm->is_null()) {
      if (!perm->is_object()) {
        reporter_.Error(
            p, "Permission must be a mapping with Read and Execute, not " + TypeName(*perm));
      } else {
        Fields pf(*perm, p, reporter_);
        std::string pp;
        if (const Json* rd = pf.Get("Read", &pp); rd != nullptr && !rd->is_null()) {
          if (auto t = ReadEnum(*rd, kPermissionTypes)) {
            out.permission.read = *t;
          } else {
            reporter_.Error(pp, "Read " + Quote(*rd) + " is not NONE, OWNER or ALL");
          }
        }
        if (const Json* ex = pf.Get("Execute", &pp); ex != nullptr && !ex->is_null()) {
          if (auto t = ReadEnum(*ex, kPermissionTypes)) {
            out.permission.execute = *t;
          } else {
            reporter_.Error(pp, "Execute " + Quote(*ex) + " is not NONE, OWNER or ALL");
          }
        }
        pf.WarnUnknown(kPermissionKeys, "Permission");
      }
    }
    fields.WarnUnknown(kArtifactKeys, "an artifact");
    return out;
  }

  void ReadGlobalLifecycle(Fields& top, Recipe& r) {
    std::string path;
    const Json* lc = top.Get("Lifecycle", &path);
    global_lifecycle_path_ = path;
    if (lc == nullptr || lc->is_null()) return;
    if (lc->is_object()) {
      r.global_lifecycle = *lc;
      return;
    }
    if (lc->is_array()) {
      // Nucleus Lite's documentation writes the recipe-wide Lifecycle as a list of
      // selector mappings; accept it by merging the items in order.
      Json merged = Json::object();
      for (size_t i = 0; i < lc->size(); ++i) {
        const Json& item = (*lc)[i];
        if (!item.is_object()) {
          reporter_.Error(IndexPath(path, i),
                          "Lifecycle list items must be mappings, not " + TypeName(item));
          return;
        }
        for (const auto& [k, v] : item.items()) merged[k] = v;
      }
      reporter_.Warn(path,
                     "Lifecycle is written as a list; the Java nucleus expects a mapping. "
                     "Lichen merges the list items into one mapping");
      r.global_lifecycle = std::move(merged);
      return;
    }
    reporter_.Error(path, "Lifecycle must be a mapping of steps, not " + TypeName(*lc));
  }

  // Checks the lifecycle that each manifest would run, so that selector-filtered
  // steps are checked exactly as a device would see them.
  void ValidateLifecycles(const Recipe& r) {
    if (r.manifests.empty() && !manifests_written_) {
      reporter_.Warn("",
                     "the recipe has no Manifests: Lichen runs its recipe-wide Lifecycle on "
                     "every platform, but the Java nucleus refuses such a recipe "
                     "(RECIPE_MISSING_MANIFEST)");
      Manifest any;
      BuildLifecycle(EffectiveLifecycleJson(r, any), global_lifecycle_path_, reporter_);
      return;
    }
    for (size_t i = 0; i < r.manifests.size(); ++i) {
      const Manifest& m = r.manifests[i];
      bool own = m.lifecycle.is_object() && !m.lifecycle.empty();
      const std::string& base = own && i < manifest_lifecycle_paths_.size()
                                    ? manifest_lifecycle_paths_[i]
                                    : global_lifecycle_path_;
      BuildLifecycle(EffectiveLifecycleJson(r, m), base, reporter_);
    }
  }

  const SourceTree& tree_;
  Reporter reporter_;
  std::string global_lifecycle_path_ = "Lifecycle";
  bool manifests_written_ = false;
  std::vector<std::string> manifest_lifecycle_paths_;
};

}  // namespace

bool IsLegalComponentName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

LoadResult LoadRecipe(std::string_view text, SourceFormat format) {
  LoadResult out;
  auto tree = ParseSource(text, format);
  if (!tree) {
    out.diagnostics.push_back(Diagnostic{Severity::kError, "", Location{}, tree.error().message});
    // Lift "line:col: " out of the message into the location.
    auto& d = out.diagnostics.back();
    auto colon = d.message.find(": ");
    if (colon != std::string::npos) {
      const std::string head = d.message.substr(0, colon + 2);
      const std::string rest = d.message.substr(colon + 2);
      int line = 0, col = 0;
      if (std::sscanf(rest.c_str(), "%d:%d: ", &line, &col) == 2 && line > 0) {
        d.location = Location{line, col};
        auto skip = rest.find(": ");
        d.message = head + rest.substr(skip + 2);
      }
    }
    return out;
  }
  Loader loader(*tree, &out.diagnostics);
  out.recipe = loader.Load();
  if (format == SourceFormat::kJson && !out.diagnostics.empty()) {
    AddJsonLocations(text, &*tree);
    for (auto& d : out.diagnostics) d.location = tree->NearestLocation(d.path);
  }
  return out;
}

LoadResult LoadRecipeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult out;
    out.diagnostics.push_back(
        Diagnostic{Severity::kError, "", Location{},
                   "cannot read the file: " + std::string(std::strerror(errno))});
    return out;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return LoadRecipe(buf.str(), FormatForPath(path));
}

bool IsRecipeFileName(std::string_view name) {
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  auto ext = name.substr(dot);
  return EqualsIgnoreCase(ext, ".json") || EqualsIgnoreCase(ext, ".yaml") ||
         EqualsIgnoreCase(ext, ".yml");
}

}  // namespace lichen::recipe
