#include "nucleus/aws_access.h"

#include <charconv>

namespace lichen::nucleus {

std::shared_ptr<aws::CachingCredentialProvider> MakeCredentialProvider(const RuntimeConfig& runtime,
                                                                       std::string* source) {
  const AwsSettings& a = runtime.aws;
  std::shared_ptr<aws::CredentialProvider> inner;
  if (a.uses_iot_credentials()) {
    aws::IotCredentialsConfig c;
    // iotCredEndpoint may carry a port (an S3-compatible lab setup, tests).
    c.endpoint = a.iot_cred_endpoint;
    if (auto colon = c.endpoint.rfind(':'); colon != std::string::npos) {
      uint16_t port = 0;
      const char* first = c.endpoint.data() + colon + 1;
      const char* last = c.endpoint.data() + c.endpoint.size();
      if (auto [p, ec] = std::from_chars(first, last, port); ec == std::errc() && p == last) {
        c.port = port;
        c.endpoint.resize(colon);
      }
    }
    c.role_alias = a.iot_role_alias;
    c.thing_name = runtime.thing_name;
    c.certificate = a.certificate_path;
    c.private_key = a.private_key_path;
    c.root_ca = runtime.root_ca_path;
    c.proxy = a.proxy_url;
    c.no_proxy = a.no_proxy;
    inner = std::make_shared<aws::IotCredentialProvider>(std::move(c));
    if (source) *source = "AWS IoT credentials provider at " + a.iot_cred_endpoint;
  } else if (!a.static_access_key_id.empty()) {
    inner = std::make_shared<aws::StaticCredentialProvider>(aws::Credentials{
        a.static_access_key_id, a.static_secret_access_key, a.static_session_token, std::nullopt});
    if (source) *source = "static keys from lichen.credentials (not an IoT thing)";
  } else if (!a.credentials_file.empty()) {
    inner =
        std::make_shared<aws::FileCredentialProvider>(a.credentials_file, a.credentials_profile);
    if (source) {
      *source =
          "profile " + a.credentials_profile + " of " + a.credentials_file + " (not an IoT thing)";
    }
  } else {
    return nullptr;
  }
  return std::make_shared<aws::CachingCredentialProvider>(std::move(inner));
}

std::shared_ptr<aws::S3Client> MakeS3Client(const RuntimeConfig& runtime,
                                            std::shared_ptr<aws::CredentialProvider> credentials) {
  if (!credentials) return nullptr;
  aws::S3Options o;
  if (!runtime.aws_region.empty()) o.region = runtime.aws_region;
  o.endpoint = runtime.aws.s3_endpoint;
  o.proxy = runtime.aws.proxy_url;
  o.no_proxy = runtime.aws.no_proxy;
  return std::make_shared<aws::S3Client>(std::move(o), std::move(credentials));
}

}  // namespace lichen::nucleus
