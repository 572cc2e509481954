#include "aws/sigv4.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace lichen::aws {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point At(const char* amz_date) {
  std::tm tm{};
  strptime(amz_date, "%Y%m%dT%H%M%SZ", &tm);
  return system_clock::from_time_t(timegm(&tm));
}

const Credentials kExampleKeys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                               "", std::nullopt};

std::string SignatureOf(const std::string& authorization) {
  return authorization.substr(authorization.rfind('=') + 1);
}

// The examples of the S3 "Signature Calculations for the Authorization Header" page.
TEST(SigV4, S3GetObjectExample) {
  SigningRequest r{
      "GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {{"Range", "bytes=0-9"}}};
  const auto s = Sign(r, kExampleKeys, {"us-east-1", "s3", At("20130524T000000Z"), ""});
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
      << s.canonical_request;
}

TEST(SigV4, S3PutObjectExample) {
  const std::string body = "Welcome to Amazon S3.";
  SigningRequest r{
      "PUT",
      "examplebucket.s3.amazonaws.com",
      "/test$file.text",
      {},
      {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}}};
  const auto s =
      Sign(r, kExampleKeys, {"us-east-1", "s3", At("20130524T000000Z"), Sha256Hex(body)});
  EXPECT_EQ(Sha256Hex(body), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(SignatureOf(s.authorization),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
      << s.canonical_request;
  EXPECT_NE(s.canonical_request.find("\n/test%24file.text\n"), std::string::npos);
}

TEST(SigV4, S3GetBucketLifecycleExample) {
  SigningRequest r{"GET", "examplebucket.s3.amazonaws.com", "/", {{"lifecycle", ""}}, {}};
  const auto s = Sign(r, kExampleKeys, {"us-east-1", "s3", At("20130524T000000Z"), ""});
  EXPECT_EQ(SignatureOf(s.authorization),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
      << s.canonical_request;
}

TEST(SigV4, S3ListObjectsExample) {
  SigningRequest r{
      "GET", "examplebucket.s3.amazonaws.com", "/", {{"prefix", "J"}, {"max-keys", "2"}}, {}};
  const auto s = Sign(r, kExampleKeys, {"us-east-1", "s3", At("20130524T000000Z"), ""});
  EXPECT_EQ(SignatureOf(s.authorization),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
      << s.canonical_request;
}

// The IAM ListUsers example of the general SigV4 documentation (not S3: no
// x-amz-content-sha256, path normalized and encoded twice).
TEST(SigV4, IamListUsersExample) {
  SigningRequest r{"GET",
                   "iam.amazonaws.com",
                   "/",
                   {{"Version", "2010-05-08"}, {"Action", "ListUsers"}},
                   {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}};
  const Credentials keys{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "",
                         std::nullopt};
  const auto s = Sign(r, keys, {"us-east-1", "iam", At("20150830T123600Z"), ""});
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
      << s.canonical_request;
}

TEST(SigV4, Encoding) {
  EXPECT_EQ(UriEncode("a b+c/d~e*f'(g)!%", false), "a%20b%2Bc%2Fd~e%2Af%27%28g%29%21%25");
  EXPECT_EQ(EncodePath("/b/dir/é x"), "/b/dir/%C3%A9%20x");
  EXPECT_EQ(CanonicalQuery({{"b", "2"}, {"a", "z"}, {"a", "y"}, {"c", ""}, {"a b", "="}}),
            "a=y&a=z&a%20b=%3D&b=2&c=");
  EXPECT_EQ(AmzDate(At("20240229T235959Z")), "20240229T235959Z");
}

TEST(SigV4, S3PathIsEncodedOnceOthersTwiceAndNormalized) {
  const SigningRequest r{"GET", "h", "/a//b/../c d", {}, {}};
  const auto s3 = Sign(r, kExampleKeys, {"us-east-1", "s3", At("20130524T000000Z"), ""});
  EXPECT_NE(s3.canonical_request.find("\n/a//b/../c%20d\n"), std::string::npos);
  const auto other = Sign(r, kExampleKeys, {"us-east-1", "ecr", At("20130524T000000Z"), ""});
  EXPECT_NE(other.canonical_request.find("\n/a/c%2520d\n"), std::string::npos);
}

TEST(SigV4, SessionTokenAndUnsignedPayload) {
  Credentials keys = kExampleKeys;
  keys.session_token = "tok/en+==";
  const SigningRequest r{"GET", "h", "/k", {}, {}};
  const auto s =
      Sign(r, keys, {"us-east-1", "s3", At("20130524T000000Z"), std::string(kUnsignedPayload)});
  EXPECT_NE(s.authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                 "x-amz-security-token,"),
            std::string::npos);
  bool token = false;
  bool content = false;
  for (const auto& [k, v] : s.headers) {
    token = token || (k == "x-amz-security-token" && v == "tok/en+==");
    content = content || (k == "x-amz-content-sha256" && v == "UNSIGNED-PAYLOAD");
  }
  EXPECT_TRUE(token);
  EXPECT_TRUE(content);
  EXPECT_TRUE(s.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
}

// ---- Oracle: the AWS SDK for JavaScript's signer (tools/sigv4-oracle) ----

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir) / name;
    if (!dir.empty() && access(p.c_str(), X_OK) == 0) {
      return p.string();
    }
  }
  return "";
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Case {
  SigningRequest request;
  Credentials credentials;
  SigningOptions options;
  std::optional<std::string> body;  // absent: no body (GET/HEAD)
  bool unsigned_payload = false;
};

// Deterministic, varied requests: reserved and non-ASCII characters in paths, names and
// values, repeated and empty parameters, padded header values, payloads from none to
// 256 KiB, session tokens, S3 and non-S3 services.
std::vector<Case> OracleCases() {
  std::mt19937_64 rng(0x5167'0aa5);
  auto pick = [&](const auto& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
  };
  const std::vector<std::string> pieces = {
      "a",    "key", "Dir", "0", "-_.~", " ",  "+",  "%", "%2F", "=",  "&", "?", "#",
      "*",    "'",   "(",   ")", "!",    "$",  ",",  ";", ":",   "@",  "[", "]", "é",
      "日本", "😀",   "..",  ".", "x y",  "\"", "<>", "^", "`",   "{}", "|", "\\"};
  const std::vector<std::string> methods = {"GET", "HEAD", "PUT", "POST"};
  const std::vector<std::string> services = {"s3", "s3", "s3", "ecr", "sts", "execute-api"};
  const std::vector<std::string> regions = {"us-east-1", "eu-central-1", "ap-southeast-2",
                                            "cn-north-1"};
  auto word = [&](int max_pieces) {
    std::string w;
    const int n = std::uniform_int_distribution<int>(1, max_pieces)(rng);
    for (int i = 0; i < n; ++i) {
      w += pick(pieces);
    }
    return w;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 400; ++i) {
    Case c;
    c.request.method = pick(methods);
    c.request.host =
        chance(50) ? "bucket.s3.amazonaws.com" : "127.0.0.1:" + std::to_string(1024 + i);
    std::string path;
    const int segments = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int s = 0; s < segments; ++s) {
      path += "/" + (chance(10) ? std::string() : word(4));
    }
    c.request.path = path.empty() ? "/" : path;
    const int params = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int p = 0; p < params; ++p) {
      std::string name = chance(30) ? "list-type" : word(2);
      c.request.query.emplace_back(name, chance(20) ? std::string() : word(3));
      if (chance(20)) {
        c.request.query.emplace_back(name, word(2));  // repeated name
      }
    }
    if (chance(40)) {
      c.request.headers.emplace_back("range", "bytes=" + std::to_string(i) + "-");
    }
    if (chance(40)) {
      c.request.headers.emplace_back("x-amz-meta-note", "  two  spaces\tand tab  " + word(2));
    }
    if (chance(30)) {
      c.request.headers.emplace_back("Content-Type", "application/octet-stream");
    }
    if (chance(20)) {
      c.request.headers.emplace_back("User-Agent", "lichen/0.1");  // never signed
    }
    c.credentials = {chance(50) ? "AKIDEXAMPLE" : "ASIA" + std::to_string(i),
                     "secret/" + std::to_string(i) + "+key=", "", std::nullopt};
    if (chance(40)) {
      c.credentials.session_token =
          "IQoJb3JpZ2luX2VjE" + std::string(static_cast<size_t>(i % 7) * 50, 'A') + "/+=";
    }
    c.options.service = pick(services);
    c.options.region = pick(regions);
    c.options.time =
        system_clock::from_time_t(1'700'000'000 + static_cast<std::time_t>(i) * 86'413);
    if (c.request.method == "PUT" || c.request.method == "POST") {
      const size_t sizes[] = {0, 1, 21, 4096, 1 << 18};
      std::string body(sizes[static_cast<size_t>(i) % 5], '\0');
      for (auto& ch : body) {
        ch = static_cast<char>(rng());
      }
      c.body = body;
    }
    c.unsigned_payload = c.options.service == "s3" && chance(25);
    if (c.unsigned_payload) {
      c.options.payload_hash = kUnsignedPayload;
    } else if (c.body) {
      c.options.payload_hash = Sha256Hex(*c.body);
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(SigV4Oracle, AgreesWithAwsSdkForJavaScript) {
  const char* source_dir = std::getenv("LICHEN_SOURCE_DIR");
  if (source_dir == nullptr) {
    FAIL() << "LICHEN_SOURCE_DIR is not set (run through ctest)";
  }
  const fs::path oracle_dir = fs::path(source_dir) / "tools" / "sigv4-oracle";
  if (!fs::exists(oracle_dir / "node_modules" / "@smithy" / "signature-v4" / "package.json")) {
    FAIL() << "the oracle is not installed: run `npm ci` in " << oracle_dir.string();
  }
  const std::string node = FindOnPath("node");
  if (node.empty()) {
    FAIL() << "node is not on PATH; the oracle test needs Node.js";
  }
  const auto cases = OracleCases();
  const fs::path work =
      fs::path(::testing::TempDir()) / ("sigv4-oracle-" + std::to_string(getpid()));
  fs::create_directories(work);
  {
    std::ofstream in(work / "requests.jsonl", std::ios::binary);
    for (const auto& c : cases) {
      nlohmann::json j = {{"method", c.request.method},
                          {"host", c.request.host},
                          {"path", c.request.path},
                          {"query", c.request.query},
                          {"headers", c.request.headers},
                          {"region", c.options.region},
                          {"service", c.options.service},
                          {"time", system_clock::to_time_t(c.options.time)},
                          {"accessKeyId", c.credentials.access_key_id},
                          {"secretAccessKey", c.credentials.secret_access_key},
                          {"sessionToken", c.credentials.session_token},
                          {"unsignedPayload", c.unsigned_payload}};
      if (c.body) {
        j["body"] = Hex(*c.body);
      }
      in << j.dump() << '\n';
    }
  }
  const std::string command =
      ShellQuote(node) + " " + ShellQuote((oracle_dir / "oracle.js").string()) + " " +
      ShellQuote((work / "requests.jsonl").string()) + " > " +
      ShellQuote((work / "sdk.txt").string()) + " 2> " + ShellQuote((work / "sdk.err").string());
  ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << ReadFile(work / "sdk.err");

  std::stringstream results(ReadFile(work / "sdk.txt"));
  std::string line;
  ASSERT_TRUE(std::getline(results, line));
  const std::string version = line;
  size_t index = 0;
  size_t disagreements = 0;
  while (std::getline(results, line) && line.rfind("end ", 0) != 0) {
    ASSERT_LT(index, cases.size());
    const auto& c = cases[index];
    const auto ours = Sign(c.request, c.credentials, c.options);
    if (ours.authorization != line && ++disagreements <= 5) {
      ADD_FAILURE() << "request " << index << " (" << c.request.method << " " << c.request.path
                    << ", " << c.options.service << ")\n ours: " << ours.authorization
                    << "\n sdk:  " << line << "\n our canonical request:\n"
                    << ours.canonical_request;
    }
    ++index;
  }
  EXPECT_EQ(index, cases.size()) << "the oracle answered fewer requests than asked";
  EXPECT_EQ(disagreements, 0u);
  std::cout << "[ sigv4 oracle ] " << version << ": " << index << " requests, " << disagreements
            << " disagreements\n";
  fs::remove_all(work);
}

}  // namespace
}  // namespace lichen::aws
