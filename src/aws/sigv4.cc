#include "aws/sigv4.h"

#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <stdexcept>

#include "common/text.h"

namespace lichen::aws {
namespace {

bool Unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~';
}

using text::Lower;

// Trimmed, with every run of whitespace made one space (what AWS and the JS SDK do).
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (text::IsSpace(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) {
      out += ' ';
    }
    space = false;
    out += c;
  }
  return out;
}

// Hop-by-hop and client-identifying headers a proxy may change; AWS SDKs never sign
// them, so neither do we (the oracle test holds us to the same list).
bool Unsignable(const std::string& lower) {
  static const char* const kNames[] = {
      "authorization", "cache-control",     "connection", "expect",     "from",
      "keep-alive",    "max-forwards",      "pragma",     "referer",    "te",
      "trailer",       "transfer-encoding", "upgrade",    "user-agent", "x-amzn-trace-id"};
  for (const char* n : kNames) {
    if (lower == n) {
      return true;
    }
  }
  return lower.rfind("proxy-", 0) == 0 || lower.rfind("sec-", 0) == 0;
}

// Non-S3 services sign the normalized path ("." and ".." resolved, empty segments
// dropped), encoded a second time.
std::string NormalizedPath(std::string_view wire) {
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= wire.size()) {
    size_t end = wire.find('/', start);
    if (end == std::string_view::npos) {
      end = wire.size();
    }
    const std::string_view seg = wire.substr(start, end - start);
    if (seg == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out = (!wire.empty() && wire.front() == '/') ? "/" : "";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) {
      out += '/';
    }
    out += segments[i];
  }
  if (!segments.empty() && wire.back() == '/') {
    out += '/';
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string EncodePath(std::string_view path) { return UriEncode(path, true); }

std::string CanonicalQuery(const Params& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [k, v] : query) {
    encoded.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  // Sorted by encoded name, then encoded value (repeated names).
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) {
      out += '&';
    }
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SignedRequest Sign(const SigningRequest& request, const Credentials& credentials,
                   const SigningOptions& options) {
  const bool s3 = options.service == "s3";
  const std::string amz_date = AmzDate(options.time);
  const std::string date = amz_date.substr(0, 8);
  const std::string payload_hash =
      options.payload_hash.empty() ? std::string(kEmptyPayloadHash) : options.payload_hash;

  SignedRequest out;
  out.headers.emplace_back("host", request.host);
  out.headers.emplace_back("x-amz-date", amz_date);
  if (s3) {
    out.headers.emplace_back("x-amz-content-sha256", payload_hash);
  }
  if (!credentials.session_token.empty()) {
    out.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }

  // Our own headers win over the caller's of the same name.
  std::map<std::string, std::string> canonical;
  for (const auto& [name, value] : out.headers) {
    canonical[name] = CanonicalValue(value);
  }
  for (const auto& [name, value] : request.headers) {
    std::string lower = Lower(name);
    if (Unsignable(lower) || lower == "host" || lower == "x-amz-date" ||
        lower == "x-amz-security-token" || (s3 && lower == "x-amz-content-sha256")) {
      continue;
    }
    auto [it, inserted] = canonical.emplace(lower, CanonicalValue(value));
    if (!inserted) {
      it->second += ',' + CanonicalValue(value);
    }
  }
  std::string header_block;
  std::string signed_headers;
  for (const auto& [name, value] : canonical) {
    header_block += name + ':' + value + '\n';
    if (!signed_headers.empty()) {
      signed_headers += ';';
    }
    signed_headers += name;
  }

  const std::string wire_path = EncodePath(request.path.empty() ? "/" : request.path);
  const std::string canonical_path = s3 ? wire_path : UriEncode(NormalizedPath(wire_path), true);

  out.canonical_request = request.method + '\n' + canonical_path + '\n' +
                          CanonicalQuery(request.query) + '\n' + header_block + '\n' +
                          signed_headers + '\n' + payload_hash;
  const std::string scope = date + '/' + options.region + '/' + options.service + "/aws4_request";
  out.string_to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + '\n' + scope + '\n' + Sha256Hex(out.canonical_request);

  std::string key = HmacSha256("AWS4" + credentials.secret_access_key, date);
  key = HmacSha256(key, options.region);
  key = HmacSha256(key, options.service);
  key = HmacSha256(key, "aws4_request");
  const std::string signature = Hex(HmacSha256(key, out.string_to_sign));

  out.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + '/' + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
  out.headers.emplace_back("authorization", out.authorization);
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL: SHA-256 is not available");
  }
}

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }

std::string Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string Hex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return Hex(h.Finish());
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace lichen::aws
