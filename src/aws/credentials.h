// AWS credentials and where they come from. Every AWS call Lichen makes (S3, ECR) and
// the token exchange service take credentials through this interface, so a test can
// hand in fixed ones and a device can use its IoT certificate.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"

namespace lichen::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  // When they stop working; nullopt for long-term keys that do not expire.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // Current credentials, or why there are none. May block (network); never call it on
  // the event loop.
  virtual Result<Credentials> Get() = 0;
};

}  // namespace lichen::aws
