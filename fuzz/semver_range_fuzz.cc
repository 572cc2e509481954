// libFuzzer target for the npm range parser: the input is parsed both as a range and as a
// version. Crashes, sanitizer reports and broken invariants (a range that cannot re-parse its
// own ToString(), a version that cannot re-parse its own text) all abort.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "semver/range.h"
#include "semver/version.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "%s\ninput (%zu bytes): %.*s\ndetail: %s\n", what, input.size(),
               static_cast<int>(input.size()), input.data(), detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lichen::semver::Range;
  using lichen::semver::Version;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const auto version = Version::Parse(input);
  if (version.ok()) {
    const auto again = Version::Parse(version->ToStringWithBuild());
    if (!again.ok() || !(*again == *version) || again->build != version->build) {
      Fail("version does not round-trip", input, version->ToStringWithBuild());
    }
  }

  const auto range = Range::Parse(input);
  if (!range.ok()) {
    return 0;
  }
  const std::string text = range->ToString();
  const auto reparsed = Range::Parse(text);
  if (!reparsed.ok()) {
    Fail("Range::Parse(range.ToString()) failed", input, text + ": " + reparsed.error().message);
  }
  if (version.ok()) {
    static_cast<void>(range->Satisfies(*version));
  }
  // Probe a few fixed versions too, so Satisfies runs on every valid range.
  for (const char* probe : {"0.0.0", "1.2.3", "1.2.3-alpha.1", "2.0.0-0"}) {
    static_cast<void>(range->Satisfies(*Version::Parse(probe)));
  }
  return 0;
}
