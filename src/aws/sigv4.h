// AWS Signature Version 4 for requests sent in the Authorization header.
//
// The caller describes the request with its path and query *unencoded*; the signer
// encodes them the way AWS canonicalizes them, and EncodePath / CanonicalQuery give the
// same bytes for the URL so that what is signed is exactly what is sent.
//
// S3 differs from other services in two ways, both applied when service == "s3": the
// path is encoded once and not normalized (keys may contain "//" or "..") and every
// request carries x-amz-content-sha256 (the payload hash, or UNSIGNED-PAYLOAD).
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"

namespace lichen::aws {

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string: the payload hash of GET and HEAD.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

using Params = std::vector<std::pair<std::string, std::string>>;

struct SigningRequest {
  std::string method;  // GET, HEAD, PUT, POST, ...
  std::string host;    // as in the Host header: "s3.eu-west-1.amazonaws.com", "127.0.0.1:9000"
  std::string path;    // unencoded, starting with "/": "/bucket/my key+1.txt"
  Params query;        // unencoded names and values; order does not matter
  Params headers;      // further headers to sign and send (content-type, range, ...)
};

struct SigningOptions {
  std::string region;   // "us-east-1"
  std::string service;  // "s3", "ecr", ...
  std::chrono::system_clock::time_point time;
  // Hex SHA-256 of the body, or kUnsignedPayload (S3 only). Empty: the hash of an
  // empty body.
  std::string payload_hash;
};

struct SignedRequest {
  // Everything to send besides the caller's own headers: host, x-amz-date,
  // x-amz-content-sha256 (S3), x-amz-security-token (session credentials), authorization.
  Params headers;
  std::string authorization;
  // What was signed, for diagnostics when a server disagrees.
  std::string canonical_request;
  std::string string_to_sign;
};

// RFC 3986 percent-encoding as AWS wants it: unreserved characters stay, everything
// else is %XX with upper-case hex; '/' stays when keep_slash.
std::string UriEncode(std::string_view s, bool keep_slash);
// The path as it goes on the wire (encoded once, '/' kept).
std::string EncodePath(std::string_view path);
// Encoded and sorted "a=1&b=2": both the canonical query and the URL's query string.
std::string CanonicalQuery(const Params& query);
// "20150830T123600Z" and "20150830".
std::string AmzDate(std::chrono::system_clock::time_point t);

SignedRequest Sign(const SigningRequest& request, const Credentials& credentials,
                   const SigningOptions& options);

// Incremental SHA-256 (the payload hash, and the digest of a download as it streams).
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Raw 32 bytes; the object can not be updated afterwards.
  std::string Finish();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string Hex(std::string_view bytes);
std::string Base64(std::string_view bytes);
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace lichen::aws
