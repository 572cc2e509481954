// Agreement with ../shared/corpus/recipes/EXPECT.tsv: real recipes from public
// projects and the verdict a correct validator reaches for each.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "recipe/loader.h"

namespace lichen {
namespace {

namespace fs = std::filesystem;

fs::path SourceDir() {
  const char* dir = std::getenv("LICHEN_SOURCE_DIR");
  return dir != nullptr ? fs::path(dir) : fs::current_path();
}

TEST(Corpus, ValidatorAgreesWithExpectTsv) {
  const fs::path corpus = SourceDir() / ".." / "shared" / "corpus" / "recipes";
  const fs::path expect = corpus / "EXPECT.tsv";
  if (!fs::exists(expect)) GTEST_SKIP() << "no corpus at " << corpus << " (../shared is absent)";

  std::ifstream in(expect);
  std::string line;
  std::getline(in, line);  // header: file, expect, why
  size_t total = 0, agree = 0;
  while (std::getline(in, line)) {
    std::istringstream cols(line);
    std::string file, verdict, why;
    std::getline(cols, file, '\t');
    std::getline(cols, verdict, '\t');
    std::getline(cols, why);
    if (file.empty()) continue;
    ++total;
    auto result = recipe::LoadRecipeFile((corpus / file).string());
    const bool valid = result.recipe.has_value();
    if (valid == (verdict == "valid")) {
      ++agree;
      continue;
    }
    std::string said;
    for (const auto& d : result.diagnostics) said += "\n    " + recipe::Format(d, file);
    ADD_FAILURE() << file << ": expected " << verdict << " (" << why << "), Lichen says "
                  << (valid ? "valid" : "invalid") << said;
  }
  std::cout << "corpus agreement: " << agree << "/" << total << " recipes\n";
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace lichen
