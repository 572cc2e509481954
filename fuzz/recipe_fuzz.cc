// Fuzzes recipe loading end to end: JSON and YAML parsing, validation, platform
// selection, lifecycle building and variable interpolation. Any crash, leak,
// sanitizer report or exception escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "recipe/effective.h"
#include "recipe/loader.h"

namespace {

void Exercise(const std::string& text, lichen::recipe::SourceFormat format) {
  using namespace lichen::recipe;
  LoadResult r = LoadRecipe(text, format);
  for (const auto& d : r.diagnostics) (void)Format(d, "fuzz");
  if (!r.recipe) return;
  SpecialiseOptions o;
  o.platform = {{"os", "linux"}, {"architecture", "amd64"}};
  o.root = "/gg";
  o.thing_name = "thing";
  auto e = Specialise(*r.recipe, o);
  if (e) (void)e->lifecycle_json.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Exercise(text, lichen::recipe::SourceFormat::kYaml);
  Exercise(text, lichen::recipe::SourceFormat::kJson);
  return 0;
}
