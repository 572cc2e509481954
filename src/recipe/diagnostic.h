// What a validator says about a file: errors make it unusable, warnings do not.
#pragma once

#include <string>
#include <vector>

#include "recipe/source_tree.h"

namespace lichen::recipe {

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  std::string path;  // field path as written: "Manifests[1].Artifacts[0].URI"; "" = whole file
  Location location;
  std::string message;
};

// "file:line:col: error: Manifests[0].Artifacts[1].URI: message"
std::string Format(const Diagnostic& d, const std::string& file);

bool HasErrors(const std::vector<Diagnostic>& diagnostics);

}  // namespace lichen::recipe

namespace lichen::recipe {

// Collects diagnostics and attaches source locations. A path with no recorded
// location (a value that came through selector filtering) gets its nearest
// ancestor's, so the message still points close to the problem.
class Reporter {
 public:
  // Both pointers must outlive the Reporter; `tree` may be null (no locations).
  Reporter(const SourceTree* tree, std::vector<Diagnostic>* out) : tree_(tree), out_(out) {}

  void Error(const std::string& path, std::string message) {
    Add(Severity::kError, path, std::move(message));
  }
  void Warn(const std::string& path, std::string message) {
    Add(Severity::kWarning, path, std::move(message));
  }
  bool HasErrors() const;
  size_t ErrorCount() const;

 private:
  void Add(Severity severity, const std::string& path, std::string message);
  const SourceTree* tree_;
  std::vector<Diagnostic>* out_;
};

}  // namespace lichen::recipe
