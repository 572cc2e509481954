// Fuzzes what Lichen reads from AWS and from the device's AWS configuration: the IoT
// credentials provider's answer, a shared credentials file, ISO 8601 expirations,
// s3:// artifact URIs, ECR's GetAuthorizationToken answer and ECR registry host names.
// The first byte picks the parser.
//
// Invariants: no crash or sanitizer report; a parsed answer has non-empty keys; an s3://
// URI that parses has a bucket and a key and names them again when re-assembled; an ECR
// answer that parses has a user and a password; an ECR host that parses has a 12-digit id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aws/credential_providers.h"
#include "aws/ecr.h"
#include "aws/s3.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      auto c = lichen::aws::ParseIotCredentialsResponse(input);
      if (c.ok() && (c->access_key_id.empty() || c->secret_access_key.empty())) std::abort();
      break;
    }
    case 1: {
      const size_t split = input.find('\n');
      const std::string_view profile =
          split == std::string_view::npos ? "default" : input.substr(0, split);
      auto c = lichen::aws::ParseSharedCredentials(input, profile);
      if (c.ok() && (c->access_key_id.empty() || c->secret_access_key.empty())) std::abort();
      break;
    }
    case 2:
      (void)lichen::aws::ParseIso8601(input);
      break;
    case 3: {
      auto loc = lichen::aws::ParseS3Uri(input);
      if (loc.ok()) {
        if (loc->bucket.empty() || loc->key.empty()) std::abort();
        if (input.find(loc->bucket) == std::string_view::npos) std::abort();
      }
      break;
    }
    case 4: {
      auto a = lichen::aws::ParseEcrAuthorizationResponse(input);
      if (a.ok() && (a->username.empty() || a->password.empty())) std::abort();
      break;
    }
    case 5: {
      auto r = lichen::aws::ParseEcrRegistryHost(input);
      if (r && r->registry_id.size() != 12) std::abort();
      break;
    }
  }
  return 0;
}
