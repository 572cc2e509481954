#include "docker/image_reference.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.h"

namespace lichen::docker {
namespace {

constexpr std::string_view kScheme = "docker:";
constexpr std::string_view kDockerHubRegistry = "docker.io";
constexpr std::string_view kOfficialPrefix = "library/";
constexpr std::string_view kDefaultTag = "latest";
constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxTagLength = 128;
constexpr std::size_t kMinDigestHexLength = 32;
constexpr std::size_t kEcrAccountIdLength = 12;
constexpr std::size_t kImageIdLength = 64;
// Long inputs are cut in messages so that one bad recipe cannot flood the log.
constexpr std::size_t kMaxShownLength = 160;

// A detail of what is wrong, or nothing when the part is valid.
using Problem = std::optional<std::string>;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlpha(char c) { return IsLower(c) || IsUpper(c); }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsLowerAlnum(char c) { return IsLower(c) || IsDigit(c); }
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }
using text::IsSpace;
using text::Lower;
using text::StartsWithIgnoreCase;

// Printable form of user input for an error message: control and non-ASCII bytes are
// escaped as \xNN, and very long input is cut.
std::string Show(std::string_view s) {
  std::string out;
  const std::size_t shown = std::min(s.size(), kMaxShownLength);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(s[i]);
    if (byte == '\\') {
      out += "\\\\";
    } else if (byte < 0x20 || byte >= 0x7f) {
      std::array<char, 5> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", byte);
      out += buf.data();
    } else {
      out += static_cast<char>(byte);
    }
  }
  if (s.size() > shown) out += "... (" + std::to_string(s.size()) + " characters)";
  return out;
}

std::string Quoted(std::string_view s) { return "'" + Show(s) + "'"; }
std::string QuotedChar(char c) { return Quoted(std::string_view(&c, 1)); }

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

// The first path element names a registry only when it looks like a host.
bool LooksLikeHost(std::string_view first) {
  return first == "localhost" || first.find_first_of(".:") != std::string_view::npos ||
         (!first.empty() && first.front() == '[');
}

Problem CheckPort(std::string_view registry, std::string_view port) {
  if (port.empty()) return "registry " + Quoted(registry) + " has ':' but no port number after it";
  const bool digits = std::all_of(port.begin(), port.end(), IsDigit);
  if (!digits) {
    return "registry " + Quoted(registry) + " has an invalid port " + Quoted(port) +
           " (a port is a number from 1 to 65535)";
  }
  unsigned long value = 0;
  for (char c : port) {
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) break;
  }
  if (value == 0 || value > 65535) {
    return "registry " + Quoted(registry) + " has port " + Quoted(port) +
           ", which is out of range (1 to 65535)";
  }
  return std::nullopt;
}

Problem CheckHostName(std::string_view registry, std::string_view host) {
  if (host.empty()) return "registry " + Quoted(registry) + " has no host name before the port";
  for (std::string_view label : Split(host, '.')) {
    if (label.empty()) {
      return "registry host " + Quoted(host) +
             " has an empty label ('..', or a leading or trailing '.')";
    }
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') {
        return "registry host " + Quoted(host) + " has an invalid character " + QuotedChar(c) +
               " (a host name may contain letters, digits, '-' and '.')";
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return "registry host label " + Quoted(label) + " must start and end with a letter or digit";
    }
  }
  return std::nullopt;
}

Problem CheckRegistry(std::string_view registry) {
  std::string_view port;
  bool has_port = false;
  if (registry.front() == '[') {
    const std::size_t close = registry.find(']');
    if (close == std::string_view::npos) {
      return "registry " + Quoted(registry) + " has '[' without a closing ']'";
    }
    const std::string_view address = registry.substr(1, close - 1);
    if (address.empty() ||
        !std::all_of(address.begin(), address.end(), [](char c) { return IsHex(c) || c == ':'; })) {
      return "registry " + Quoted(registry) + " has an invalid IPv6 address " + Quoted(address) +
             " (hex digits and ':' between '[' and ']')";
    }
    const std::string_view after = registry.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return "registry " + Quoted(registry) + " has unexpected text " + Quoted(after) +
               " after ']' (only ':port' may follow)";
      }
      has_port = true;
      port = after.substr(1);
    }
  } else {
    std::string_view host = registry;
    const std::size_t colon = registry.find(':');
    if (colon != std::string_view::npos) {
      host = registry.substr(0, colon);
      port = registry.substr(colon + 1);
      has_port = true;
    }
    if (Problem p = CheckHostName(registry, host)) return p;
  }
  if (has_port) return CheckPort(registry, port);
  return std::nullopt;
}

Problem CheckPathComponent(std::string_view component) {
  if (std::any_of(component.begin(), component.end(), IsUpper)) {
    return "uppercase letters are not allowed in repository names (" + Quoted(component) +
           "); use lowercase";
  }
  for (char c : component) {
    if (!IsLowerAlnum(c) && c != '.' && c != '_' && c != '-') {
      return "repository name " + Quoted(component) + " has an invalid character " + QuotedChar(c) +
             " (allowed: lowercase letters, digits, '.', '_' and '-')";
    }
  }
  if (!IsLowerAlnum(component.front()) || !IsLowerAlnum(component.back())) {
    return "repository name " + Quoted(component) +
           " must start and end with a lowercase letter or digit";
  }
  std::size_t i = 0;
  while (i < component.size()) {
    if (IsLowerAlnum(component[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < component.size() && !IsLowerAlnum(component[j])) ++j;
    const std::string_view sep = component.substr(i, j - i);
    const bool dashes = std::all_of(sep.begin(), sep.end(), [](char c) { return c == '-'; });
    if (sep != "." && sep != "_" && sep != "__" && !dashes) {
      return "repository name " + Quoted(component) + " has an invalid separator " + Quoted(sep) +
             " (between letters and digits use one '.', one or two '_', or dashes)";
    }
    i = j;
  }
  return std::nullopt;
}

Problem CheckPath(std::string_view path) {
  if (path.empty()) return std::string("the repository name is empty");
  if (path.front() == '/') return "repository path " + Quoted(path) + " starts with '/'";
  if (path.back() == '/') return "repository path " + Quoted(path) + " ends with '/'";
  for (std::string_view component : Split(path, '/')) {
    if (component.empty()) {
      return "repository path " + Quoted(path) + " has an empty component ('//')";
    }
    if (Problem p = CheckPathComponent(component)) return p;
  }
  return std::nullopt;
}

Problem CheckTag(std::string_view tag) {
  if (tag.size() > kMaxTagLength) {
    return "tag " + Quoted(tag) + " is too long (" + std::to_string(tag.size()) +
           " characters; at most " + std::to_string(kMaxTagLength) + ")";
  }
  for (char c : tag) {
    if (!IsWordChar(c) && c != '.' && c != '-') {
      return "tag " + Quoted(tag) + " has invalid characters (" + QuotedChar(c) +
             "); a tag may contain letters, digits, '_', '.' and '-'";
    }
  }
  if (!IsWordChar(tag.front())) {
    return "tag " + Quoted(tag) + " must start with a letter, digit or '_'";
  }
  return std::nullopt;
}

Problem CheckDigestAlgorithm(std::string_view algorithm) {
  const std::string invalid = "digest algorithm " + Quoted(algorithm) +
                              " is invalid (letters and digits starting with a letter, parts "
                              "joined by '-', '_', '+' or '.'; e.g. sha256)";
  std::size_t i = 0;
  while (true) {
    if (i >= algorithm.size() || !IsAlpha(algorithm[i])) return invalid;
    while (i < algorithm.size() && IsAlnum(algorithm[i])) ++i;
    if (i == algorithm.size()) return std::nullopt;
    const char sep = algorithm[i];
    if (sep != '-' && sep != '_' && sep != '+' && sep != '.') return invalid;
    ++i;
  }
}

// Hex length the Docker Engine requires for the algorithms it implements; 0 for others.
std::size_t KnownDigestLength(std::string_view lower_algorithm) {
  if (lower_algorithm == "sha256") return 64;
  if (lower_algorithm == "sha384") return 96;
  if (lower_algorithm == "sha512") return 128;
  return 0;
}

Problem CheckDigest(std::string_view digest) {
  const std::size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return "digest " + Quoted(digest) + " must be '<algorithm>:<hex>', e.g. sha256:<64 hex digits>";
  }
  const std::string_view algorithm = digest.substr(0, colon);
  const std::string_view hex = digest.substr(colon + 1);
  if (algorithm.empty()) {
    return "digest " + Quoted(digest) +
           " has no algorithm before ':' (e.g. sha256:<64 hex digits>)";
  }
  if (Problem p = CheckDigestAlgorithm(algorithm)) return p;
  if (hex.empty()) return "digest " + Quoted(digest) + " has no hex value after ':'";
  for (char c : hex) {
    if (!IsHex(c)) {
      return "digest " + Quoted(digest) + " has a non-hex character " + QuotedChar(c) +
             " in its value";
    }
  }
  if (hex.size() < kMinDigestHexLength) {
    return "digest " + Quoted(digest) + " is too short (" + std::to_string(hex.size()) +
           " hex digits; at least " + std::to_string(kMinDigestHexLength) + ")";
  }
  return std::nullopt;
}

// What the Docker Engine adds to the grammar for the algorithms it implements.
Problem EngineDigestProblem(std::string_view digest) {
  const std::size_t colon = digest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view algorithm = digest.substr(0, colon);
  const std::string_view hex = digest.substr(colon + 1);
  const std::string lower_algorithm = Lower(algorithm);
  const std::size_t known = KnownDigestLength(lower_algorithm);
  if (known == 0) {
    return "digest algorithm " + Quoted(algorithm) +
           " is not one the Docker Engine implements (sha256, sha384, sha512)";
  }
  if (algorithm != lower_algorithm) {
    return "digest algorithm " + Quoted(algorithm) + " must be written in lowercase (" +
           Quoted(lower_algorithm) + ")";
  }
  if (hex.size() != known) {
    return "digest " + Quoted(digest) + " is too " + (hex.size() < known ? "short" : "long") +
           ": " + lower_algorithm + " needs exactly " + std::to_string(known) +
           " hex digits, got " + std::to_string(hex.size());
  }
  if (!std::all_of(hex.begin(), hex.end(), IsLowerHex)) {
    return "digest " + Quoted(digest) + " must use lowercase hex digits";
  }
  return std::nullopt;
}

bool IsDockerHubHost(std::string_view lower_registry) {
  return lower_registry == "docker.io" || lower_registry == "index.docker.io" ||
         lower_registry == "registry-1.docker.io";
}

// Fills kind, registry and the ECR fields; the path is already valid.
Problem Classify(std::string_view registry, ImageReference& ref) {
  const std::string lower = Lower(registry);
  if (registry.empty() || IsDockerHubHost(lower)) {
    ref.kind = RegistryKind::kDockerHub;
    ref.registry = kDockerHubRegistry;
    if (ref.repository.find('/') == std::string::npos) {
      ref.repository.insert(0, kOfficialPrefix);
    }
    return std::nullopt;
  }
  ref.registry = registry;
  if (lower.find("public.ecr.aws") != std::string::npos) {
    ref.kind = RegistryKind::kPublicEcr;
    return std::nullopt;
  }
  if (lower.find("dkr.ecr") == std::string::npos || lower.find("amazonaws") == std::string::npos) {
    ref.kind = RegistryKind::kOther;
    return std::nullopt;
  }
  ref.kind = RegistryKind::kPrivateEcr;
  // A host containing "dkr.ecr" is a host name, never an IPv6 literal: drop the port.
  const std::string_view host = std::string_view(lower).substr(0, lower.find(':'));
  const std::vector<std::string_view> labels = Split(host, '.');
  const std::string_view account = labels.front();
  if (account.size() != kEcrAccountIdLength ||
      !std::all_of(account.begin(), account.end(), IsDigit)) {
    return "private ECR registry " + Quoted(registry) +
           " must start with the 12-digit AWS account id, not " + Quoted(account) +
           " (e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com)";
  }
  ref.ecr_registry_id = account;
  const auto amazonaws = std::find(labels.begin(), labels.end(), "amazonaws");
  if (amazonaws != labels.end() && amazonaws != labels.begin()) {
    const std::string_view before = *(amazonaws - 1);
    const bool service_label = before == "dkr" || before == "ecr" || before.starts_with("ecr-");
    if (!service_label && amazonaws - 1 != labels.begin()) ref.ecr_region = before;
  }
  return std::nullopt;
}

bool IsImageId(std::string_view s) {
  return s.size() == kImageIdLength && std::all_of(s.begin(), s.end(), IsLowerHex);
}

}  // namespace

std::string ImageReference::ImageName() const {
  std::string name = registry.empty() ? repository : registry + "/" + repository;
  if (!digest.empty()) {
    name += "@" + digest;
  } else if (!tag.empty()) {
    name += ":" + tag;
  }
  return name;
}

std::optional<std::string> ImageReference::PullProblem() const {
  if (digest.empty()) return std::nullopt;
  return EngineDigestProblem(digest);
}

bool ImageReference::AlwaysPull() const {
  if (!digest.empty()) return false;
  return tag_defaulted || tag.empty() || tag == kDefaultTag;
}

Result<ImageReference> ParseImageReference(std::string_view uri) {
  const auto fail = [uri](const std::string& detail) {
    return Error{"docker artifact URI " + Quoted(uri) +
                 " is not a valid image reference: " + detail};
  };
  constexpr std::string_view kSchemeHint =
      "the scheme is 'docker:' followed directly by the image name, e.g. docker:mysql:8.0";

  if (uri.empty()) return fail("it is empty (expected e.g. docker:mysql:8.0)");
  if (IsSpace(uri.front()) || IsSpace(uri.back())) {
    return fail("it has leading or trailing whitespace");
  }
  std::string_view ref = uri;
  if (StartsWithIgnoreCase(ref, kScheme)) ref.remove_prefix(kScheme.size());
  if (ref.empty()) return fail("no image name follows 'docker:' (e.g. docker:mysql:8.0)");
  if (IsSpace(ref.front())) {
    return fail(Quoted(ref) + " starts with whitespace (" + std::string(kSchemeHint) + ")");
  }
  if (ref.front() == '/') {
    return fail(Quoted(ref) + " starts with '/' (" + std::string(kSchemeHint) + ")");
  }
  if (const std::size_t url = ref.find("://"); url != std::string_view::npos) {
    return fail(Quoted(ref) + " looks like a URL (" + Quoted(ref.substr(0, url + 3)) +
                "); write the image name directly after 'docker:', e.g. "
                "docker:registry.example.com/app:1.0");
  }

  // name[:tag][@digest]: the first '@' starts the digest.
  std::string_view name_and_tag = ref;
  std::string_view digest;
  bool has_digest = false;
  if (const std::size_t at = ref.find('@'); at != std::string_view::npos) {
    name_and_tag = ref.substr(0, at);
    digest = ref.substr(at + 1);
    has_digest = true;
    if (digest.empty()) {
      return fail(Quoted(ref) +
                  " ends with '@' but no digest follows (e.g. @sha256:<64 hex digits>)");
    }
    if (name_and_tag.empty()) return fail(Quoted(ref) + " has no image name before '@'");
  }

  // [registry/]path: the first element is a registry only when it looks like a host.
  std::string_view registry;
  std::string_view rest = name_and_tag;
  if (const std::size_t slash = name_and_tag.find('/'); slash != std::string_view::npos) {
    const std::string_view first = name_and_tag.substr(0, slash);
    if (LooksLikeHost(first)) {
      registry = first;
      rest = name_and_tag.substr(slash + 1);
      if (rest.empty() || rest.front() == ':') {
        return fail("no repository follows registry " + Quoted(registry) + " (e.g. " +
                    Show(registry) + "/app:1.0)");
      }
    }
  }

  // path[:tag]: with the registry gone, a ':' can only start the tag.
  std::string_view path = rest;
  std::string_view tag;
  bool has_tag = false;
  if (const std::size_t colon = rest.find(':'); colon != std::string_view::npos) {
    path = rest.substr(0, colon);
    tag = rest.substr(colon + 1);
    has_tag = true;
    if (tag.empty()) {
      if (has_digest) return fail("the tag between ':' and '@' is empty");
      return fail(Quoted(ref) + " ends with ':' but no tag follows (e.g. docker:mysql:8.0)");
    }
  }

  if (!registry.empty()) {
    if (Problem p = CheckRegistry(registry)) return fail(*p);
  }
  if (path.empty()) return fail(Quoted(ref) + " has no repository name before ':'");
  if (Problem p = CheckPath(path)) return fail(*p);
  if (registry.empty() && !has_tag && !has_digest && IsImageId(path)) {
    return fail(Quoted(path) +
                " is a 64-hex-digit image ID, which Docker does not accept as a repository "
                "name; name the image, optionally pinned with @sha256:<digest>");
  }
  if (has_tag) {
    if (Problem p = CheckTag(tag)) return fail(*p);
  }
  if (has_digest) {
    if (Problem p = CheckDigest(digest)) return fail(*p);
  }

  ImageReference result;
  result.repository = path;
  if (Problem p = Classify(registry, result)) return fail(*p);
  const std::size_t name_length = result.registry.size() + 1 + result.repository.size();
  if (name_length > kMaxNameLength) {
    return fail("image name " + Quoted(result.registry + "/" + result.repository) +
                " is too long (" + std::to_string(name_length) + " characters; at most " +
                std::to_string(kMaxNameLength) + ")");
  }
  if (has_digest) {
    // Docker pulls "name:tag@digest" by digest alone.
    result.digest = digest;
  } else if (has_tag) {
    result.tag = tag;
  } else {
    result.tag = kDefaultTag;
    result.tag_defaulted = true;
  }
  return result;
}

}  // namespace lichen::docker
