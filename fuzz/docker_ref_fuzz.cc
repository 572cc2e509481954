// Fuzzes ParseImageReference: no crash on any input, bounded error messages, and every
// accepted reference round-trips through its ImageName().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "docker/image_reference.h"

namespace {

using lichen::Result;
using lichen::docker::ImageReference;
using lichen::docker::ParseImageReference;
using lichen::docker::RegistryKind;

constexpr std::string_view kErrorPrefix = "docker artifact URI '";
constexpr std::size_t kMaxMessageLength = 4096;

void Check(bool condition, const char* what, std::string_view input) {
  if (condition) return;
  std::fprintf(stderr, "invariant failed: %s\ninput: '%.*s'\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

bool SameReference(const ImageReference& a, const ImageReference& b) {
  return a.registry == b.registry && a.repository == b.repository && a.tag == b.tag &&
         a.digest == b.digest && a.kind == b.kind && a.ecr_registry_id == b.ecr_registry_id &&
         a.ecr_region == b.ecr_region && a.ImageName() == b.ImageName();
}

bool HasUppercase(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

bool HasSchemePrefix(std::string_view s) {
  constexpr std::string_view kScheme = "docker:";
  if (s.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != kScheme[i]) return false;
  }
  return true;
}

void CheckAccepted(const ImageReference& ref, std::string_view input) {
  Check(!ref.registry.empty(), "registry is set", input);
  Check(!ref.repository.empty(), "repository is set", input);
  Check(!HasUppercase(ref.repository), "repository is lowercase", input);
  Check(ref.tag.empty() != ref.digest.empty(), "exactly one of tag and digest", input);
  Check(!ref.tag_defaulted || ref.tag == "latest", "a defaulted tag is latest", input);
  Check(ref.AlwaysPull() == (ref.digest.empty() && ref.tag == "latest"), "pull policy", input);
  Check(ref.registry.size() + 1 + ref.repository.size() <= 255, "name length", input);
  Check((ref.kind == RegistryKind::kPrivateEcr) == !ref.ecr_registry_id.empty(),
        "ECR registry id only for private ECR", input);
  Check(ref.kind == RegistryKind::kPrivateEcr || ref.ecr_region.empty(),
        "ECR region only for private ECR", input);
  Check(ref.kind != RegistryKind::kDockerHub || ref.registry == "docker.io",
        "Docker Hub is docker.io", input);
  Check(ref.kind != RegistryKind::kDockerHub || ref.repository.find('/') != std::string::npos,
        "Docker Hub repositories have a namespace", input);

  const std::string name = ref.ImageName();
  for (const std::string& again : {"docker:" + name, name}) {
    // A bare name that starts with "docker:" (registry host "docker" with a port) reads as
    // having the scheme, as documented: only the prefixed form must round-trip then.
    if (again == name && HasSchemePrefix(name)) continue;
    const Result<ImageReference> reparsed = ParseImageReference(again);
    Check(reparsed.ok(), "ImageName() parses again", again);
    Check(SameReference(*reparsed, ref), "ImageName() parses to the same reference", again);
    Check(!reparsed->tag_defaulted, "ImageName() has an explicit tag or digest", again);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Result<ImageReference> parsed = ParseImageReference(input);
  if (!HasSchemePrefix(input)) {
    // The scheme is optional: a bare reference and "docker:" + it mean the same.
    const Result<ImageReference> with_scheme = ParseImageReference("docker:" + std::string(input));
    Check(with_scheme.ok() == parsed.ok(), "the scheme is optional", input);
    if (parsed.ok()) Check(SameReference(*parsed, *with_scheme), "the scheme is optional", input);
  }
  if (parsed.ok()) {
    CheckAccepted(*parsed, input);
  } else {
    const std::string& message = parsed.error().message;
    Check(message.starts_with(kErrorPrefix), "the error names the URI", input);
    Check(message.size() <= kMaxMessageLength, "the error message is bounded", input);
  }
  return 0;
}
