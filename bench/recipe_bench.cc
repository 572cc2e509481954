// Parse + validate throughput over real recipes: the files of
// ../shared/corpus/recipes (when present) and examples/.
//   build/bench/recipe_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "recipe/effective.h"
#include "recipe/loader.h"

namespace {

namespace fs = std::filesystem;

struct File {
  std::string text;
  lichen::recipe::SourceFormat format;
};

std::vector<File> LoadFiles(lichen::recipe::SourceFormat only, bool filter) {
  std::vector<File> files;
  const fs::path src = LICHEN_SOURCE_DIR;
  for (const fs::path& dir : {src / ".." / "shared" / "corpus" / "recipes", src / "examples"}) {
    if (!fs::exists(dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      const auto name = e.path().filename().string();
      if (!e.is_regular_file() || !lichen::recipe::IsRecipeFileName(name)) continue;
      auto format = lichen::recipe::FormatForPath(name);
      if (filter && format != only) continue;
      std::ifstream in(e.path());
      std::ostringstream buf;
      buf << in.rdbuf();
      files.push_back({buf.str(), format});
    }
  }
  return files;
}

void Run(benchmark::State& state, const std::vector<File>& files) {
  size_t bytes = 0;
  for (const auto& f : files) bytes += f.text.size();
  for (auto _ : state) {
    for (const auto& f : files) {
      auto r = lichen::recipe::LoadRecipe(f.text, f.format);
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * files.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["recipes"] = static_cast<double>(files.size());
}

void BM_LoadAllRecipes(benchmark::State& state) {
  static const auto files = LoadFiles(lichen::recipe::SourceFormat::kYaml, false);
  Run(state, files);
}
void BM_LoadJsonRecipes(benchmark::State& state) {
  static const auto files = LoadFiles(lichen::recipe::SourceFormat::kJson, true);
  Run(state, files);
}
void BM_LoadYamlRecipes(benchmark::State& state) {
  static const auto files = LoadFiles(lichen::recipe::SourceFormat::kYaml, true);
  Run(state, files);
}

BENCHMARK(BM_LoadAllRecipes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadJsonRecipes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadYamlRecipes)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
