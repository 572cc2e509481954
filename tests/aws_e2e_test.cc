// AWS plumbing end to end on the real daemon: S3 artifacts downloaded from a local
// s3rver during a deployment, and the token exchange service handing credentials to
// components (the AWS SDK for JavaScript's container provider, and plain HTTP).
//
// The runtime configuration names static keys (a device that is not an IoT thing), so
// no IoT credentials endpoint is needed; s3rver checks the SigV4 signatures made with
// them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <chrono>
#include <string>
#include <vector>

#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

constexpr const char* kBucket = "lichen-artifacts";
constexpr const char* kAccessKey = "S3RVER";  // s3rver's built-in account
constexpr const char* kSecretKey = "S3RVER";

// A loopback TCP port nobody listens on right now.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Sha256Base64(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  unsigned char out[64] = {};
  const int n = EVP_EncodeBlock(out, digest, sizeof digest);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

// s3rver on a free loopback port with its own data folder, killed with the test.
class S3rver {
 public:
  explicit S3rver(const std::string& dir) : dir_(dir + "/s3rver") {
    fs::create_directories(dir_);
    port_ = FreePort();
    process_ = RunningCommand::Start({SourceDir() + "/tools/s3rver/node_modules/.bin/s3rver",
                                      "--directory", dir_, "--address", "127.0.0.1", "--port",
                                      std::to_string(port_), "--silent"});
  }
  ~S3rver() { (void)process_.Finish(0ms); }  // kills its process group

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  ::testing::AssertionResult WaitReady() {
    const bool up = WaitFor(
        [&] {
          auto r = RunCommand(
              {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", endpoint() + "/"},
              5000ms);
          return r.exit_code == 0 && r.out == "200";
        },
        20000ms, 50ms);
    if (up) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "s3rver did not answer on " << endpoint()
                                         << " (is tools/s3rver installed? scripts/setup.sh)";
  }
  // Anonymous writes: s3rver accepts them, and they keep the test independent of the
  // signer under test.
  ::testing::AssertionResult Put(const std::string& path, const std::string& file = "") {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w",
                                     "%{http_code}",  "-X", "PUT"};
    if (!file.empty()) argv.insert(argv.end(), {"--data-binary", "@" + file});
    argv.push_back(endpoint() + path);
    auto r = RunCommand(argv, 60000ms);
    if (r.exit_code == 0 && r.out == "200") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "PUT " << path << ": " << r.Describe();
  }

 private:
  std::string dir_;
  int port_ = 0;
  RunningCommand process_;
};

class AwsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
    n_ = std::make_unique<Nucleus>();
    s3_ = std::make_unique<S3rver>(n_->dir());
    ASSERT_TRUE(s3_->WaitReady());
    ASSERT_TRUE(s3_->Put(std::string("/") + kBucket));
    n_->WriteConfig(n_->DefaultConfig() + "        s3:\n          endpoint: \"" + s3_->endpoint() +
                    "\"\n"
                    "        credentials:\n          accessKeyId: \"" +
                    kAccessKey + "\"\n          secretAccessKey: \"" + kSecretKey + "\"\n");
    ASSERT_TRUE(n_->Start());
    recipes_ = n_->dir() + "/recipes";
    fs::create_directories(recipes_);
  }

  Nucleus& n() { return *n_; }

  // Uploads `content` as s3://kBucket/key.
  void Upload(const std::string& key, const std::string& content) {
    const std::string local = n().dir() + "/upload.bin";
    WriteFile(local, content);
    ASSERT_TRUE(s3_->Put(std::string("/") + kBucket + "/" + key, local));
  }

  void WriteRecipe(const std::string& name, const std::string& version, const std::string& body) {
    WriteFile(recipes_ + "/" + name + "-" + version + ".yaml",
              "RecipeFormatVersion: '2020-01-25'\nComponentName: " + name +
                  "\nComponentVersion: '" + version + "'\n" + body);
  }

  CommandResult Deploy(const std::vector<std::string>& roots,
                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"deployment", "create", "-r", recipes_};
    for (const auto& r : roots) args.insert(args.end(), {"-m", r});
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--wait", "--timeout", "60"});
    return n().Cli(args, 70000ms);
  }

  std::unique_ptr<Nucleus> n_;
  std::unique_ptr<S3rver> s3_;
  std::string recipes_;
};

// --- S3 artifacts ----------------------------------------------------------------------

TEST_F(AwsE2E, S3ArtifactsDeployFromAnS3CompatibleServer) {
  const std::string content = "greetings from s3rver\n";
  Upload("app/1.0.0/hello.txt", content);
  // More objects in the same component: they are fetched concurrently.
  Upload("app/1.0.0/a.bin", std::string(300000, 'a'));
  Upload("app/1.0.0/b.bin", std::string(200000, 'b'));
  WriteRecipe("com.example.S3App", "1.0.0",
              R"(Manifests:
  - Artifacts:
      - Uri: s3://lichen-artifacts/app/1.0.0/hello.txt
        Digest: )" +
                  Sha256Base64(content) + R"(
        Algorithm: SHA-256
      - Uri: s3://lichen-artifacts/app/1.0.0/a.bin
        Digest: )" +
                  Sha256Base64(std::string(300000, 'a')) + R"(
        Algorithm: SHA-256
      - Uri: s3://lichen-artifacts/app/1.0.0/b.bin
    Lifecycle:
      Run: cat {artifacts:path}/hello.txt && sleep 600
)");
  auto d = Deploy({"com.example.S3App=1.0.0"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe() << "\n" << n().Log();
  const std::string stored = n().root() + "/packages/artifacts/com.example.S3App/1.0.0/";
  EXPECT_EQ(ReadFile(stored + "hello.txt"), content);
  EXPECT_EQ(ReadFile(stored + "a.bin"), std::string(300000, 'a'));
  EXPECT_EQ(ReadFile(stored + "b.bin"), std::string(200000, 'b'));
  EXPECT_FALSE(fs::exists(stored + "a.bin.part"));
  EXPECT_TRUE(n().WaitLog("com.example.S3App", "greetings from s3rver"))
      << n().Log("com.example.S3App");
}

TEST_F(AwsE2E, AMissingObjectFailsNamingBucketAndKeyAndKeepsWhatRuns) {
  const std::string content = "v1\n";
  Upload("keep/1.0.0/v.txt", content);
  WriteRecipe("com.example.Keep", "1.0.0", R"(Manifests:
  - Artifacts:
      - Uri: s3://lichen-artifacts/keep/1.0.0/v.txt
    Lifecycle:
      Run: exec sleep 600
)");
  auto first = Deploy({"com.example.Keep=1.0.0"});
  ASSERT_EQ(first.exit_code, 0) << first.Describe() << "\n" << n().Log();
  auto before = n().ProcessOf("com.example.Keep", "sleep 600");
  ASSERT_TRUE(before.has_value());

  WriteRecipe("com.example.Keep", "2.0.0", R"(Manifests:
  - Artifacts:
      - Uri: s3://lichen-artifacts/keep/2.0.0/missing.txt
    Lifecycle:
      Run: exec sleep 600
)");
  auto second = Deploy({"com.example.Keep=2.0.0"});
  EXPECT_NE(second.exit_code, 0) << second.Describe();
  EXPECT_NE(second.out.find("FAILED"), std::string::npos) << second.Describe();
  EXPECT_NE(second.out.find("lichen-artifacts"), std::string::npos) << second.Describe();
  EXPECT_NE(second.out.find("keep/2.0.0/missing.txt"), std::string::npos) << second.Describe();
  EXPECT_NE(second.out.find("S3_"), std::string::npos) << second.Describe();
  auto after = n().ProcessOf("com.example.Keep", "sleep 600");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->pid, before->pid);
  EXPECT_EQ(n().Component("com.example.Keep")->version, "1.0.0");
}

TEST_F(AwsE2E, ADigestMismatchFailsAndLeavesNothingHalfWritten) {
  Upload("bad/1.0.0/data.bin", "the real bytes\n");
  WriteRecipe("com.example.Bad", "1.0.0",
              R"(Manifests:
  - Artifacts:
      - Uri: s3://lichen-artifacts/bad/1.0.0/data.bin
        Digest: )" +
                  Sha256Base64("other bytes") + R"(
        Algorithm: SHA-256
    Lifecycle:
      Run: exec sleep 600
)");
  auto d = Deploy({"com.example.Bad=1.0.0"});
  EXPECT_NE(d.exit_code, 0) << d.Describe();
  EXPECT_NE(d.out.find("ARTIFACT_CHECKSUM_MISMATCH"), std::string::npos) << d.Describe();
  const std::string folder = n().root() + "/packages/artifacts/com.example.Bad/1.0.0";
  std::error_code ec;
  if (fs::exists(folder, ec)) {
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      ADD_FAILURE() << "left in the store: " << entry.path();
    }
  }
}

// --- token exchange service ------------------------------------------------------------

TEST_F(AwsE2E, TheJavaScriptSdkContainerProviderGetsCredentialsAsAComponent) {
  WriteRecipe("com.example.Creds", "1.0.0",
              R"(ComponentDependencies:
  aws.greengrass.TokenExchangeService:
    VersionRequirement: ^2.0.0
    DependencyType: HARD
Manifests:
  - Lifecycle:
      Run: node )" +
                  SourceDir() +
                  R"(/tests/data/aws/container_credentials.js && sleep 600
)");
  auto d = Deploy({"com.example.Creds=1.0.0"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe() << "\n" << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.Creds", "credentials: accessKeyId=S3RVER secretLength=6"))
      << n().Log("com.example.Creds");
}

TEST_F(AwsE2E, TheCredentialsEndpointChecksTheTokenMethodAndPath) {
  WriteRecipe("com.example.Env", "1.0.0", R"(Manifests:
  - Lifecycle:
      Run: exec sleep 600
)");
  auto d = Deploy({"com.example.Env=1.0.0"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  auto p = n().ProcessOf("com.example.Env", "sleep 600");
  ASSERT_TRUE(p.has_value());
  auto env_of = [&](const std::string& key) {
    const std::string prefix = key + "=";
    for (size_t at = 0; at < p->environ.size();) {
      size_t end = p->environ.find('\0', at);
      if (end == std::string::npos) end = p->environ.size();
      std::string entry = p->environ.substr(at, end - at);
      if (entry.rfind(prefix, 0) == 0) return entry.substr(prefix.size());
      at = end + 1;
    }
    return std::string();
  };
  const std::string uri = env_of("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const std::string token = env_of("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  ASSERT_EQ(uri.rfind("http://localhost:", 0), 0u) << uri;
  ASSERT_FALSE(token.empty());

  auto status = [](std::vector<std::string> extra, const std::string& url) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-o",
                                     "/dev/null",     "-w", "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return RunCommand(argv, 10000ms).out;
  };
  EXPECT_EQ(status({"-H", "Authorization: " + token}, uri), "200");
  EXPECT_EQ(status({}, uri), "403");
  EXPECT_EQ(status({"-H", "Authorization: not-a-token"}, uri), "403");
  EXPECT_EQ(status({"-X", "POST", "-H", "Authorization: " + token}, uri), "405");
  const std::string base = uri.substr(0, uri.find('/', std::string("http://").size()));
  EXPECT_EQ(status({"-H", "Authorization: " + token}, base + "/elsewhere"), "400");
  // Both loopback families answer: clients that resolve localhost to ::1 failed against
  // the Java nucleus.
  const std::string port = base.substr(base.rfind(':') + 1);
  EXPECT_EQ(status({"-H", "Authorization: " + token},
                   "http://127.0.0.1:" + port + "/2016-11-01/credentialprovider/"),
            "200");
  EXPECT_EQ(status({"-g", "-H", "Authorization: " + token},
                   "http://[::1]:" + port + "/2016-11-01/credentialprovider/"),
            "200");
  auto body =
      RunCommand({"/usr/bin/curl", "-s", "-H", "Authorization: " + token, uri}, 10000ms).out;
  auto json = Json::parse(body, nullptr, false);
  ASSERT_TRUE(json.is_object()) << body;
  EXPECT_EQ(json.value("AccessKeyId", ""), kAccessKey);
  EXPECT_EQ(json.value("SecretAccessKey", ""), kSecretKey);
  EXPECT_TRUE(json.contains("Expiration")) << body;
}

// The AWS guide's TES-from-a-container setup: `--network host` and the two variables
// passed with -e. Needs dockerd (scripts/services.sh start); the component runs as root
// because it uses the Docker socket.
TEST_F(AwsE2E, AContainerOnTheHostNetworkGetsCredentials) {
  std::string docker = "/usr/bin/docker";
  if (::access("/usr/local/bin/docker", X_OK) == 0) docker = "/usr/local/bin/docker";
  auto ping = RunCommand({docker, "version", "--format", "{{.Server.Version}}"}, 20000ms);
  ASSERT_EQ(ping.exit_code, 0) << "dockerd is not reachable: run scripts/services.sh start\n"
                               << ping.Describe();
  const std::string image = "lichen-test/busybox:1";
  auto made =
      RunCommand({"/bin/bash", SourceDir() + "/tests/docker/make_test_image.sh", image}, 120000ms);
  ASSERT_EQ(made.exit_code, 0) << made.Describe();

  WriteRecipe("com.example.ContainerCreds", "1.0.0",
              R"(ComponentDependencies:
  aws.greengrass.TokenExchangeService:
    VersionRequirement: ^2.0.0
Manifests:
  - Lifecycle:
      Run: >-
        docker run --rm --network host -v )" +
                  SourceDir() +
                  R"(/tests/data/aws:/probe:ro
        -e AWS_CONTAINER_CREDENTIALS_FULL_URI -e AWS_CONTAINER_AUTHORIZATION_TOKEN
        )" + image +
                  R"( sh /probe/wget_credentials.sh && exec sleep 600
)");
  auto d = Deploy({"com.example.ContainerCreds=1.0.0"},
                  {"--runWith", "com.example.ContainerCreds:posixUser=root"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe() << "\n" << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.ContainerCreds", R"("AccessKeyId":"S3RVER")", 30000ms))
      << n().Log("com.example.ContainerCreds");
}

}  // namespace
}  // namespace lichen::harness
