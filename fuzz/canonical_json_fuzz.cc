// Fuzzes the canonical-JSON scanner (ipc/canonical_json.h). Input: the text itself.
// Invariants: whatever IsCanonicalJson accepts is valid JSON that the parser the IPC server
// uses (nlohmann::ordered_json, the project's Json) parses and dump()s back to exactly the
// same bytes (the PublishToTopic fast path copies such text into events unchanged);
// IsCanonicalJsonObject accepts exactly the accepted texts that are objects; in an accepted
// object, CanonicalMember finds every member whose key needs no escape, with the text of its
// value, and nothing for a key that is not there.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/canonical_json.h"

namespace {

using Json = nlohmann::ordered_json;

void Check(bool condition, const char* what, std::string_view text) {
  if (condition) return;
  std::fprintf(stderr, "invariant failed: %s\ninput (%zu bytes): %.*s\n", what, text.size(),
               static_cast<int>(text.size()), text.data());
  std::abort();
}

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool canonical = lichen::ipc::IsCanonicalJson(text);
  const bool object = lichen::ipc::IsCanonicalJsonObject(text);
  Check(!object || canonical, "an accepted object is accepted as a value", text);
  if (!canonical) return 0;

  const Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  Check(!parsed.is_discarded(), "accepted text parses", text);
  Check(Dump(parsed) == text, "accepted text survives parse and dump byte for byte", text);
  Check(object == parsed.is_object(), "IsCanonicalJsonObject accepts exactly the objects", text);
  if (!object) return 0;

  for (const auto& [key, value] : parsed.items()) {
    const std::string quoted = Dump(Json(key));
    // CanonicalMember compares the text between the quotes: only unescaped keys are found.
    if (quoted.size() != key.size() + 2) continue;
    const std::optional<std::string_view> member = lichen::ipc::CanonicalMember(text, key);
    Check(member.has_value(), "every member is found", text);
    Check(*member == Dump(value), "a member's text is its value's dump", text);
  }
  Check(!lichen::ipc::CanonicalMember(text, "\x01 not a key").has_value(),
        "an absent key is not found", text);
  return 0;
}
