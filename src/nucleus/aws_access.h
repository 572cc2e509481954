// The runtime's way to AWS, built from the runtime configuration: one credential
// provider (behind one cache) shared by the token exchange service, S3 downloads and
// ECR logins.
#pragma once

#include <memory>
#include <string>

#include "aws/credential_providers.h"
#include "aws/s3.h"
#include "nucleus/runtime_config.h"

namespace lichen::nucleus {

// The IoT credentials provider when iotCredEndpoint is set, else lichen.credentials
// (keys or a shared credentials file), else nullptr (no AWS access configured).
// `source` says which, for the log.
std::shared_ptr<aws::CachingCredentialProvider> MakeCredentialProvider(const RuntimeConfig& runtime,
                                                                       std::string* source);

// The S3 client artifacts are downloaded with (region, lichen.s3.endpoint, root CA).
std::shared_ptr<aws::S3Client> MakeS3Client(const RuntimeConfig& runtime,
                                            std::shared_ptr<aws::CredentialProvider> credentials);

}  // namespace lichen::nucleus
