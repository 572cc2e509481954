// Fuzzes the CreateLocalDeployment request parser (the payload any IPC client can
// send, and what the deployment queue stores): no crash, and what it accepts must
// survive the round trip through ToRequestJson unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploy/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto json = lichen::deploy::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  auto d = lichen::deploy::ParseCreateLocalDeployment(json);
  if (!d) return 0;
  const auto once = lichen::deploy::ToRequestJson(*d);
  auto again = lichen::deploy::ParseCreateLocalDeployment(once);
  if (!again || lichen::deploy::ToRequestJson(*again) != once) std::abort();
  (void)once.dump(-1, ' ', false, lichen::deploy::Json::error_handler_t::replace);
  return 0;
}
