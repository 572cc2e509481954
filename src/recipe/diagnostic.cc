#include "recipe/diagnostic.h"

#include <algorithm>

namespace lichen::recipe {

std::string Format(const Diagnostic& d, const std::string& file) {
  std::string out = file;
  if (d.location.line > 0) {
    out += ":" + std::to_string(d.location.line) + ":" + std::to_string(d.location.column);
  }
  out += d.severity == Severity::kError ? ": error: " : ": warning: ";
  // "ComponentVersion: ComponentVersion 'x' is ..." says the name twice; once is enough.
  if (!d.path.empty() && d.message.rfind(d.path, 0) != 0) out += d.path + ": ";
  out += d.message;
  return out;
}

bool HasErrors(const std::vector<Diagnostic>& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

bool Reporter::HasErrors() const { return recipe::HasErrors(*out_); }

size_t Reporter::ErrorCount() const {
  return static_cast<size_t>(std::count_if(out_->begin(), out_->end(), [](const Diagnostic& d) {
    return d.severity == Severity::kError;
  }));
}

void Reporter::Add(Severity severity, const std::string& path, std::string message) {
  // The same problem can be reached twice (a shared lifecycle checked per manifest).
  for (const auto& d : *out_) {
    if (d.severity == severity && d.path == path && d.message == message) return;
  }
  Location loc;
  if (tree_ != nullptr) loc = tree_->NearestLocation(path);
  out_->push_back(Diagnostic{severity, path, loc, std::move(message)});
}

}  // namespace lichen::recipe
