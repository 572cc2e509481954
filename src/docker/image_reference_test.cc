#include "docker/image_reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace lichen::docker {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kSha256 = "sha256:" + std::string(64, 'a');
const std::string kSha256Mixed =
    "sha256:c4ffb87b09eba99383ee89b309d6d521c4ffb87b09eba99383ee89b309d6d521";
const std::string kEcrHost = "012345678901.dkr.ecr.us-east-1.amazonaws.com";

struct ValidCase {
  std::string name;
  std::string uri;
  std::string registry;
  std::string repository;
  std::string tag;
  std::string digest;
  bool tag_defaulted;
  RegistryKind kind;
  std::string ecr_registry_id;
  std::string ecr_region;
  std::string image_name;
  bool always_pull;
};

std::vector<ValidCase> ValidCases() {
  using K = RegistryKind;
  return {
      {"HubOfficialWithTag", "docker:mysql:8.0", "docker.io", "library/mysql", "8.0", "", false,
       K::kDockerHub, "", "", "docker.io/library/mysql:8.0", false},
      {"HubOfficialNoTag", "docker:redis", "docker.io", "library/redis", "latest", "", true,
       K::kDockerHub, "", "", "docker.io/library/redis:latest", true},
      {"HubUserImageIsNotARegistry", "docker:user/app", "docker.io", "user/app", "latest", "", true,
       K::kDockerHub, "", "", "docker.io/user/app:latest", true},
      {"HubUserImageWithTag", "docker:user/app:1.2.3", "docker.io", "user/app", "1.2.3", "", false,
       K::kDockerHub, "", "", "docker.io/user/app:1.2.3", false},
      {"HubNestedPath", "docker:org/team/app:v2", "docker.io", "org/team/app", "v2", "", false,
       K::kDockerHub, "", "", "docker.io/org/team/app:v2", false},
      {"HubOfficialWithDigest", "docker:mysql@" + kSha256Mixed, "docker.io", "library/mysql", "",
       kSha256Mixed, false, K::kDockerHub, "", "", "docker.io/library/mysql@" + kSha256Mixed,
       false},
      {"TagAndDigestPullsByDigest", "docker:mysql:8.0@" + kSha256, "docker.io", "library/mysql", "",
       kSha256, false, K::kDockerHub, "", "", "docker.io/library/mysql@" + kSha256, false},
      {"ExplicitLatestAlwaysPulls", "docker:nginx:latest", "docker.io", "library/nginx", "latest",
       "", false, K::kDockerHub, "", "", "docker.io/library/nginx:latest", true},
      {"UppercaseScheme", "DOCKER:mysql:8.0", "docker.io", "library/mysql", "8.0", "", false,
       K::kDockerHub, "", "", "docker.io/library/mysql:8.0", false},
      {"MixedCaseScheme", "DoCkEr:nginx:1.25-alpine", "docker.io", "library/nginx", "1.25-alpine",
       "", false, K::kDockerHub, "", "", "docker.io/library/nginx:1.25-alpine", false},
      {"BareReference", "mysql:8.0", "docker.io", "library/mysql", "8.0", "", false, K::kDockerHub,
       "", "", "docker.io/library/mysql:8.0", false},
      {"ImageNamedDocker", "docker:docker:24", "docker.io", "library/docker", "24", "", false,
       K::kDockerHub, "", "", "docker.io/library/docker:24", false},
      {"ExplicitDockerIo", "docker:docker.io/library/mysql:8.0", "docker.io", "library/mysql",
       "8.0", "", false, K::kDockerHub, "", "", "docker.io/library/mysql:8.0", false},
      {"DockerIoSingleName", "docker:docker.io/mysql", "docker.io", "library/mysql", "latest", "",
       true, K::kDockerHub, "", "", "docker.io/library/mysql:latest", true},
      {"IndexDockerIo", "docker:index.docker.io/mysql:8.0", "docker.io", "library/mysql", "8.0", "",
       false, K::kDockerHub, "", "", "docker.io/library/mysql:8.0", false},
      {"RegistryOneDockerIo", "docker:registry-1.docker.io/user/app:1", "docker.io", "user/app",
       "1", "", false, K::kDockerHub, "", "", "docker.io/user/app:1", false},
      {"LibraryPrefixWritten", "docker:library/mysql", "docker.io", "library/mysql", "latest", "",
       true, K::kDockerHub, "", "", "docker.io/library/mysql:latest", true},
      {"DottedSingleNameIsHubImage", "docker:example.com", "docker.io", "library/example.com",
       "latest", "", true, K::kDockerHub, "", "", "docker.io/library/example.com:latest", true},
      {"Separators", "docker:a__b-c---d/e.f_g:_Tag.1-x", "docker.io", "a__b-c---d/e.f_g",
       "_Tag.1-x", "", false, K::kDockerHub, "", "", "docker.io/a__b-c---d/e.f_g:_Tag.1-x", false},
      {"PublicEcr", "docker:public.ecr.aws/amazonlinux/amazonlinux:latest", "public.ecr.aws",
       "amazonlinux/amazonlinux", "latest", "", false, K::kPublicEcr, "", "",
       "public.ecr.aws/amazonlinux/amazonlinux:latest", true},
      {"PublicEcrUppercaseHost", "docker:PUBLIC.ECR.AWS/x/y:1", "PUBLIC.ECR.AWS", "x/y", "1", "",
       false, K::kPublicEcr, "", "", "PUBLIC.ECR.AWS/x/y:1", false},
      {"PrivateEcrWithRegion", "docker:" + kEcrHost + "/repo:tag", kEcrHost, "repo", "tag", "",
       false, K::kPrivateEcr, "012345678901", "us-east-1", kEcrHost + "/repo:tag", false},
      {"PrivateEcrWithoutRegion", "docker:012345678901.dkr.ecr.amazonaws.com/repo/image:v1",
       "012345678901.dkr.ecr.amazonaws.com", "repo/image", "v1", "", false, K::kPrivateEcr,
       "012345678901", "", "012345678901.dkr.ecr.amazonaws.com/repo/image:v1", false},
      {"PrivateEcrChina", "docker:012345678901.dkr.ecr.cn-north-1.amazonaws.com.cn/repo:1",
       "012345678901.dkr.ecr.cn-north-1.amazonaws.com.cn", "repo", "1", "", false, K::kPrivateEcr,
       "012345678901", "cn-north-1", "012345678901.dkr.ecr.cn-north-1.amazonaws.com.cn/repo:1",
       false},
      {"PrivateEcrFips", "docker:012345678901.dkr.ecr-fips.us-gov-west-1.amazonaws.com/repo:1",
       "012345678901.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "repo", "1", "", false,
       K::kPrivateEcr, "012345678901", "us-gov-west-1",
       "012345678901.dkr.ecr-fips.us-gov-west-1.amazonaws.com/repo:1", false},
      {"PrivateEcrWithPortAndDigest",
       "docker:012345678901.dkr.ecr.us-west-2.amazonaws.com:443/repo@" + kSha256,
       "012345678901.dkr.ecr.us-west-2.amazonaws.com:443", "repo", "", kSha256, false,
       K::kPrivateEcr, "012345678901", "us-west-2",
       "012345678901.dkr.ecr.us-west-2.amazonaws.com:443/repo@" + kSha256, false},
      {"LocalhostWithPort", "docker:localhost:5000/x", "localhost:5000", "x", "latest", "", true,
       K::kOther, "", "", "localhost:5000/x:latest", true},
      {"LocalhostWithoutPort", "docker:localhost/x:1", "localhost", "x", "1", "", false, K::kOther,
       "", "", "localhost/x:1", false},
      {"RegistryWithPort", "docker:registry.example.com:8443/team/app:2024.01",
       "registry.example.com:8443", "team/app", "2024.01", "", false, K::kOther, "", "",
       "registry.example.com:8443/team/app:2024.01", false},
      {"ReferenceParserExample", "docker:foo.bar:8080/path/to/image:v1.10", "foo.bar:8080",
       "path/to/image", "v1.10", "", false, K::kOther, "", "", "foo.bar:8080/path/to/image:v1.10",
       false},
      {"DottedFirstComponentIsRegistry", "docker:my.namespace/app", "my.namespace", "app", "latest",
       "", true, K::kOther, "", "", "my.namespace/app:latest", true},
      {"PortMakesFirstComponentRegistry", "docker:myhost:5000/app:1", "myhost:5000", "app", "1", "",
       false, K::kOther, "", "", "myhost:5000/app:1", false},
      {"UppercaseHostKept", "docker:Registry.Example.com/app:1", "Registry.Example.com", "app", "1",
       "", false, K::kOther, "", "", "Registry.Example.com/app:1", false},
      {"Ipv4Registry", "docker:192.168.1.10:5000/app:1", "192.168.1.10:5000", "app", "1", "", false,
       K::kOther, "", "", "192.168.1.10:5000/app:1", false},
      {"Ipv6Registry", "docker:[::1]:5000/app:1", "[::1]:5000", "app", "1", "", false, K::kOther,
       "", "", "[::1]:5000/app:1", false},
      {"Ipv6RegistryWithoutPort", "docker:[fe80::1]/app", "[fe80::1]", "app", "latest", "", true,
       K::kOther, "", "", "[fe80::1]/app:latest", true},
      {"OtherDigestAlgorithm", "docker:app@blake3+b64.v2:" + std::string(32, 'F'), "docker.io",
       "library/app", "", "blake3+b64.v2:" + std::string(32, 'F'), false, K::kDockerHub, "", "",
       "docker.io/library/app@blake3+b64.v2:" + std::string(32, 'F'), false},
      {"Sha512Digest", "docker:app@sha512:" + std::string(128, '0'), "docker.io", "library/app", "",
       "sha512:" + std::string(128, '0'), false, K::kDockerHub, "", "",
       "docker.io/library/app@sha512:" + std::string(128, '0'), false},
      {"LongestTag", "docker:app:" + std::string(128, 't'), "docker.io", "library/app",
       std::string(128, 't'), "", false, K::kDockerHub, "", "",
       "docker.io/library/app:" + std::string(128, 't'), false},
      // "docker.io/" + "u/" + 243 characters = 255.
      {"LongestName", "docker:u/" + std::string(243, 'a'), "docker.io",
       "u/" + std::string(243, 'a'), "latest", "", true, K::kDockerHub, "", "",
       "docker.io/u/" + std::string(243, 'a') + ":latest", true},
  };
}

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.uri; }

class ImageReferenceValid : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ImageReferenceValid, ParsesFields) {
  const ValidCase& c = GetParam();
  const Result<ImageReference> parsed = ParseImageReference(c.uri);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->registry, c.registry);
  EXPECT_EQ(parsed->repository, c.repository);
  EXPECT_EQ(parsed->tag, c.tag);
  EXPECT_EQ(parsed->digest, c.digest);
  EXPECT_EQ(parsed->tag_defaulted, c.tag_defaulted);
  EXPECT_EQ(parsed->kind, c.kind);
  EXPECT_EQ(parsed->ecr_registry_id, c.ecr_registry_id);
  EXPECT_EQ(parsed->ecr_region, c.ecr_region);
  EXPECT_EQ(parsed->ImageName(), c.image_name);
  EXPECT_EQ(parsed->AlwaysPull(), c.always_pull);
}

TEST_P(ImageReferenceValid, ImageNameRoundTrips) {
  const ValidCase& c = GetParam();
  const Result<ImageReference> parsed = ParseImageReference(c.uri);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  for (const std::string& again : {"docker:" + parsed->ImageName(), parsed->ImageName()}) {
    const Result<ImageReference> reparsed = ParseImageReference(again);
    ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
    EXPECT_EQ(reparsed->registry, parsed->registry);
    EXPECT_EQ(reparsed->repository, parsed->repository);
    EXPECT_EQ(reparsed->tag, parsed->tag);
    EXPECT_EQ(reparsed->digest, parsed->digest);
    EXPECT_EQ(reparsed->kind, parsed->kind);
    EXPECT_EQ(reparsed->ImageName(), parsed->ImageName());
    EXPECT_FALSE(reparsed->tag_defaulted);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ImageReferenceValid, ::testing::ValuesIn(ValidCases()),
                         [](const auto& test_info) { return test_info.param.name; });

struct InvalidCase {
  std::string name;
  std::string uri;
  std::vector<std::string> message_parts;
};

std::vector<InvalidCase> InvalidCases() {
  const std::string hex40(40, 'a');
  return {
      {"DoubleSlashAfterScheme",
       "docker://docker-uri",
       {"'docker://docker-uri'", "'//docker-uri' starts with '/'",
        "the scheme is 'docker:' followed directly by the image name, e.g. docker:mysql:8.0"}},
      {"SingleSlashAfterScheme", "docker:/app", {"'/app' starts with '/'", "docker:mysql:8.0"}},
      {"UrlInsteadOfName",
       "docker:https://registry.example.com/app",
       {"looks like a URL ('https://')"}},
      {"Empty", "", {"it is empty"}},
      {"SchemeAlone", "docker:", {"no image name follows 'docker:'"}},
      {"SchemeAloneUppercase", "DOCKER:", {"no image name follows 'docker:'"}},
      {"LeadingWhitespace", " docker:mysql", {"leading or trailing whitespace"}},
      {"TrailingNewline", "docker:mysql\n", {"leading or trailing whitespace"}},
      {"WhitespaceAfterScheme", "docker: mysql", {"' mysql' starts with whitespace"}},
      {"TrailingColon", "docker:mysql:", {"'mysql:' ends with ':' but no tag follows"}},
      {"TrailingAt", "docker:mysql@", {"'mysql@' ends with '@' but no digest follows"}},
      {"TrailingAtAfterTag", "docker:mysql:1@", {"ends with '@'"}},
      {"EmptyTagBeforeDigest", "docker:mysql:@" + kSha256, {"tag between ':' and '@' is empty"}},
      {"NoNameBeforeDigest", "docker:@" + kSha256, {"no image name before '@'"}},
      {"NoNameBeforeTag", "docker::8.0", {"no repository name before ':'"}},
      {"UppercaseRepository",
       "docker:MyApp",
       {"uppercase letters are not allowed in repository names ('MyApp')"}},
      {"UppercaseNamespace",
       "docker:MyUser/app",
       {"uppercase letters are not allowed in repository names ('MyUser')"}},
      {"UppercaseNestedComponent",
       "docker:public.ecr.aws/team/MyApp:1",
       {"uppercase letters are not allowed in repository names ('MyApp')"}},
      {"TagWithSpace", "docker:app:x y", {"tag 'x y' has invalid characters (' ')"}},
      {"TagWithColon", "docker:app:1:2", {"tag '1:2' has invalid characters (':')"}},
      {"SlashAfterTagColon", "docker:a/b:c/d", {"tag 'c/d' has invalid characters ('/')"}},
      {"TagLeadingDash", "docker:app:-x", {"tag '-x' must start with a letter, digit or '_'"}},
      {"TagTooLong",
       "docker:app:" + std::string(129, 't'),
       {"is too long (129 characters; at most 128)"}},
      {"DigestTooShort", "docker:app@sha256:abc", {"digest 'sha256:abc' is too short"}},
      {"OtherAlgorithmTooShort",
       "docker:app@md5:abc",
       {"digest 'md5:abc' is too short (3 hex digits; at least 32)"}},
      {"DigestWithoutAlgorithmSeparator", "docker:app@sha256", {"must be '<algorithm>:<hex>'"}},
      {"DigestWithoutAlgorithm", "docker:app@:" + std::string(64, 'a'), {"has no algorithm"}},
      {"DigestWithoutHex", "docker:app@sha256:", {"has no hex value"}},
      {"DigestAlgorithmStartsWithDigit",
       "docker:app@1sha:" + std::string(64, 'a'),
       {"digest algorithm '1sha' is invalid"}},
      {"DigestAlgorithmTrailingSeparator",
       "docker:app@sha+:" + std::string(64, 'a'),
       {"digest algorithm 'sha+' is invalid"}},
      {"DigestNonHex",
       "docker:app@sha256:" + std::string(63, 'a') + "g",
       {"has a non-hex character 'g'"}},
      {"DigestWithSecondAt", "docker:app@" + kSha256 + "@x", {"has a non-hex character '@'"}},
      {"EmptyPathComponent", "docker:a//b", {"repository path 'a//b' has an empty component"}},
      {"TrailingSlash", "docker:app/", {"repository path 'app/' ends with '/'"}},
      {"SlashAfterRegistryThenSlash", "docker:example.com//app", {"'/app' starts with '/'"}},
      {"DoubleDot", "docker:a..b", {"invalid separator '..'"}},
      {"DotDotComponent", "docker:a/../b", {"repository name '..' must start and end"}},
      {"TripleUnderscore", "docker:a___b", {"invalid separator '___'"}},
      {"MixedSeparator", "docker:a.-b", {"invalid separator '.-'"}},
      {"LeadingDash", "docker:-app", {"repository name '-app' must start and end"}},
      {"TrailingDash", "docker:app-", {"repository name 'app-' must start and end"}},
      {"InvalidCharacterInName",
       "docker:ap+p",
       {"repository name 'ap+p' has an invalid character '+'"}},
      {"NonAsciiInName", "docker:app\xc3\xa9", {"has an invalid character '\\xc3'"}},
      {"ControlCharacterEscaped", "docker:app\x01", {"'docker:app\\x01'", "'\\x01'"}},
      {"RegistryWithoutRepository",
       "docker:public.ecr.aws/",
       {"no repository follows registry 'public.ecr.aws'"}},
      {"RegistryWithOnlyTag", "docker:localhost:5000/:1", {"no repository follows registry"}},
      {"EmptyPort", "docker:localhost:/x", {"registry 'localhost:' has ':' but no port number"}},
      {"PortNotNumeric", "docker:localhost:50a0/x", {"has an invalid port '50a0'"}},
      {"PortOutOfRange", "docker:localhost:99999/x", {"port '99999'", "out of range"}},
      {"PortZero", "docker:localhost:0/x", {"port '0'", "out of range"}},
      {"HostUnderscore", "docker:my_registry.com/x", {"has an invalid character '_'"}},
      {"HostLabelDash", "docker:-bad.com/x", {"registry host label '-bad' must start and end"}},
      {"HostEmptyLabel", "docker:bad..com/x", {"registry host 'bad..com' has an empty label"}},
      {"HostNameMissing", "docker::5000/x", {"has no host name before the port"}},
      {"Ipv6Invalid", "docker:[zz]:5000/x", {"invalid IPv6 address 'zz'"}},
      {"Ipv6Unclosed", "docker:[::1/x", {"'[' without a closing ']'"}},
      {"Ipv6TrailingText", "docker:[::1]x/y", {"unexpected text 'x' after ']'"}},
      {"NameTooLong",
       "docker:" + std::string(238, 'a'),
       {"image name 'docker.io/library/", "is too long (256 characters; at most 255)"}},
      {"ImageId",
       "docker:" + std::string(64, 'e'),
       {"is a 64-hex-digit image ID", "@sha256:<digest>"}},
      {"PrivateEcrBadAccount",
       "docker:123.dkr.ecr.us-east-1.amazonaws.com/repo",
       {"private ECR registry '123.dkr.ecr.us-east-1.amazonaws.com'", "12-digit AWS account id",
        "'123'"}},
  };
}

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.uri; }

class ImageReferenceInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(ImageReferenceInvalid, FailsWithSpecificMessage) {
  const InvalidCase& c = GetParam();
  const Result<ImageReference> parsed = ParseImageReference(c.uri);
  ASSERT_FALSE(parsed.ok()) << "parsed as " << parsed->ImageName();
  const std::string& message = parsed.error().message;
  EXPECT_THAT(message, StartsWith("docker artifact URI '"));
  EXPECT_THAT(message, HasSubstr("' is not a valid image reference: "));
  for (const std::string& part : c.message_parts) {
    EXPECT_THAT(message, HasSubstr(part));
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ImageReferenceInvalid, ::testing::ValuesIn(InvalidCases()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(ImageReferenceTest, ErrorNamesTheWholeUri) {
  const Result<ImageReference> parsed = ParseImageReference("docker:user/App:1");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "docker artifact URI 'docker:user/App:1' is not a valid image reference: uppercase "
            "letters are not allowed in repository names ('App'); use lowercase");
}

TEST(ImageReferenceTest, HugeInputIsRejectedWithShortMessage) {
  std::string uri = "docker:";
  for (int i = 0; i < 200000; ++i) uri += "a/";
  uri += "a";
  const Result<ImageReference> parsed = ParseImageReference(uri);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.error().message, HasSubstr("is too long"));
  EXPECT_LT(parsed.error().message.size(), 1000u);
}

TEST(ImageReferenceTest, HugeTagIsRejectedWithShortMessage) {
  const Result<ImageReference> parsed =
      ParseImageReference("docker:app:" + std::string(1 << 20, '.'));
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.error().message.size(), 1000u);
}

// Fuzzer find: a registry host named "docker" with a port gives an ImageName() that starts
// with "docker:", which a bare parse reads as the scheme; the prefixed form round-trips.
TEST(ImageReferenceTest, RegistryHostNamedDockerRoundTripsWithScheme) {
  const Result<ImageReference> parsed = ParseImageReference("docker:docker:923/1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->registry, "docker:923");
  EXPECT_EQ(parsed->repository, "1");
  EXPECT_EQ(parsed->kind, RegistryKind::kOther);
  EXPECT_EQ(parsed->ImageName(), "docker:923/1:latest");

  const Result<ImageReference> with_scheme = ParseImageReference("docker:" + parsed->ImageName());
  ASSERT_TRUE(with_scheme.ok()) << with_scheme.error().message;
  EXPECT_EQ(with_scheme->registry, "docker:923");
  EXPECT_EQ(with_scheme->repository, "1");
  EXPECT_EQ(with_scheme->tag, "latest");

  const Result<ImageReference> bare = ParseImageReference(parsed->ImageName());
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->registry, "docker.io");
  EXPECT_EQ(bare->repository, "923/1");
}

TEST(ImageReferenceTest, DefaultConstructedReferenceIsUsable) {
  ImageReference ref;
  ref.registry = "docker.io";
  ref.repository = "library/mysql";
  EXPECT_EQ(ref.ImageName(), "docker.io/library/mysql");
  EXPECT_TRUE(ref.AlwaysPull());
  ref.tag = "8.0";
  EXPECT_FALSE(ref.AlwaysPull());
  ref.digest = kSha256;
  EXPECT_EQ(ref.ImageName(), "docker.io/library/mysql@" + kSha256);
}

TEST(ImageReferenceTest, DockerHubSpellingsGiveOneImageName) {
  const std::vector<std::string> spellings = {"docker:mysql:8.0",
                                              "docker:library/mysql:8.0",
                                              "docker:docker.io/mysql:8.0",
                                              "docker:docker.io/library/mysql:8.0",
                                              "docker:index.docker.io/library/mysql:8.0",
                                              "docker:Docker.IO/mysql:8.0"};
  for (const std::string& uri : spellings) {
    const Result<ImageReference> parsed = ParseImageReference(uri);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->ImageName(), "docker.io/library/mysql:8.0") << uri;
  }
}

}  // namespace
}  // namespace lichen::docker

namespace lichen::docker {
namespace {

// The reference accepts any 32+ hex digest; the Engine is stricter, and PullProblem
// says so before a pull is attempted.
TEST(ImageReferencePullProblem, EngineRulesAreReportedNotRejected) {
  const std::string hex40(40, 'a');
  struct Case {
    std::string uri;
    std::string words;
  } cases[] = {
      {"docker:app@sha256:" + hex40, "sha256 needs exactly 64 hex digits, got 40"},
      {"docker:app@sha256:" + std::string(65, 'a'), "is too long"},
      {"docker:app@SHA256:" + std::string(64, 'a'), "must be written in lowercase ('sha256')"},
      {"docker:app@sha256:" + std::string(64, 'A'), "must use lowercase hex digits"},
      {"docker:app@md5:" + std::string(32, 'a'), "not one the Docker Engine implements"},
  };
  for (const auto& c : cases) {
    auto ref = ParseImageReference(c.uri);
    ASSERT_TRUE(ref) << c.uri << ": " << ref.error().message;
    auto problem = ref->PullProblem();
    ASSERT_TRUE(problem.has_value()) << c.uri;
    EXPECT_NE(problem->find(c.words), std::string::npos) << *problem;
  }
  auto good = ParseImageReference("docker:app@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(good);
  EXPECT_FALSE(good->PullProblem().has_value());
  EXPECT_FALSE(ParseImageReference("docker:app:1.0")->PullProblem().has_value());
}

}  // namespace
}  // namespace lichen::docker
