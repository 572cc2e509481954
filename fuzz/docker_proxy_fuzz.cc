// Fuzzes the Docker socket proxy's request parser (what a component sends to its Docker
// socket): the input is split into reads at points the first bytes choose, and fed to a
// RequestRewriter.
//
// Invariants: no crash or unbounded growth; once Feed fails it keeps failing; without a
// create, what is forwarded is exactly a prefix of what was read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "docker/socket_proxy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t step = 1 + data[0] % 64;  // read size
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::map<std::string, std::string> labels = {{"lichen.component", "Fuzz"}};
  lichen::docker::RequestRewriter rewriter(labels, 64 * 1024);
  std::string forwarded;
  bool failed = false;
  for (size_t at = 0; at < input.size(); at += step) {
    auto out = rewriter.Feed(input.substr(at, step));
    if (!out.ok()) {
      failed = true;
      continue;
    }
    if (failed) std::abort();  // a broken stream must stay broken
    forwarded += *out;
  }
  // Only creates are rewritten; everything else passes byte for byte. A rewritten create
  // may grow (labels, and numbers written out in full: 1E9 becomes 1000000000.0), so this
  // holds only without creates.
  if (rewriter.containers_created() == 0 && input.substr(0, forwarded.size()) != forwarded) {
    std::abort();
  }
  return 0;
}
