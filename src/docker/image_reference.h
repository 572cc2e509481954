// Parsing and classification of `docker:` component artifact URIs.
//
// clang-format off
// Grammar (Docker's distribution reference grammar):
//   uri       := ["docker:"] reference        ; scheme matched case-insensitively
//   reference := [registry "/"] path [":" tag] ["@" digest]
//   registry  := host [":" port] | "[" ipv6 "]" [":" port]
//   host      := label ("." label)*           ; label: [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?
//   path      := component ("/" component)*
//   component := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := algorithm ":" hex            ; hex: [0-9a-fA-F]{32,}
//   algorithm := [A-Za-z][A-Za-z0-9]* ([-_+.] [A-Za-z][A-Za-z0-9]*)*
// clang-format on
//
// Contract:
// - The part before the first "/" is a registry only when it looks like a host: it contains
//   a "." or a ":" (port), starts with "[" (IPv6), or is exactly "localhost". Otherwise the
//   whole name is a Docker Hub path ("user/app" is the repository "user/app" on Docker Hub).
// - Docker Hub (no registry, "docker.io", "index.docker.io", "registry-1.docker.io", any
//   case) is canonicalised to registry "docker.io"; a single-component Docker Hub path gets
//   the "library/" prefix. Every other registry is kept as written.
// - "name:tag@digest" is accepted and pulls by digest: the tag is dropped.
// - No tag and no digest: tag is "latest" and tag_defaulted is set (callers warn).
// - Digests follow the grammar above (at least 32 hex digits), as the reference does;
//   PullProblem() tells when the Docker Engine would still refuse one.
// - registry + "/" + repository is at most 255 characters.
// - A private ECR host must start with the 12-digit AWS account id.
// - A bare reference beginning with "docker:" is read as having the scheme: to name the
//   image "docker" itself, write the scheme (docker:docker:24). Likewise, to parse an
//   ImageName() again, prefix "docker:" (a registry host named "docker" with a port gives
//   names such as "docker:5000/app:1").
// Every failure is an Error whose message names the URI and says what to fix.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lichen::docker {

enum class RegistryKind { kDockerHub, kPublicEcr, kPrivateEcr, kOther };

struct ImageReference {
  // Registry host[:port]: "docker.io", "public.ecr.aws",
  // "123456789012.dkr.ecr.us-west-2.amazonaws.com", "localhost:5000".
  std::string registry;
  // Path without the registry: "library/mysql", "user/app", "repo/image".
  std::string repository;
  // Empty when a digest is given.
  std::string tag;
  // "algorithm:hex" (e.g. "sha256:<64 hex>") or empty.
  std::string digest;
  // Neither tag nor digest was written: "latest" was assumed.
  bool tag_defaulted = false;
  RegistryKind kind = RegistryKind::kOther;
  // Private ECR only: the account id (first host label).
  std::string ecr_registry_id;
  // Private ECR only: the label before "amazonaws"; empty when the host has no region label
  // (the caller then uses the device's region).
  std::string ecr_region;

  // The unambiguous name for `docker pull` and the Engine API:
  // "registry/repository:tag" or "registry/repository@digest",
  // e.g. "docker.io/library/mysql:8.0".
  std::string ImageName() const;
  // Pull policy: a digest never needs re-pulling; tag "latest" (written or assumed) always
  // pulls; any other tag pulls only when the image is absent.
  bool AlwaysPull() const;
  // The grammar accepts any digest of 32+ hex digits (as the reference does); the
  // Docker Engine is stricter (sha256 = exactly 64 lowercase hex digits, ...). Says
  // why a pull would be refused, so validators can warn before a deployment fails.
  std::optional<std::string> PullProblem() const;
};

// Parses "docker:<reference>" or a bare "<reference>".
Result<ImageReference> ParseImageReference(std::string_view uri);

}  // namespace lichen::docker
