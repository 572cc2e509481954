#include "nucleus/runtime_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lichen::nucleus {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("lichen-rc-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(RuntimeConfig, ReadsTheNucleusConfigYamlLayout) {
  auto path = WriteFile("full.yaml", R"(
system:
  thingName: "MyThing"
  rootCaPath: "/greengrass/v2/AmazonRootCA1.pem"
services:
  aws.greengrass.Nucleus:
    componentType: NUCLEUS
    configuration:
      awsRegion: "eu-west-1"
      runWithDefault:
        posixUser: "ggc_user:ggc_group"
        posixShell: "bash"
      platformOverride:
        architecture.detail: "armv7l"
      interpolateComponentConfiguration: "true"
      logging:
        level: "DEBUG"
        format: "JSON"
        fileSizeKB: 2048
        totalLogsSizeKB: 4096
      setenv:
        HTTP_PROXY: "http://proxy:3128"
      lichen:
        deploymentTimeoutSeconds: 42
        stopGraceMs: 250
)");
  auto config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->thing_name, "MyThing");
  EXPECT_EQ(config->root_ca_path, "/greengrass/v2/AmazonRootCA1.pem");
  EXPECT_EQ(config->aws_region, "eu-west-1");
  EXPECT_EQ(config->run_with_default_user, "ggc_user:ggc_group");
  EXPECT_EQ(config->posix_shell, "bash");
  EXPECT_EQ(config->platform_override["architecture.detail"], "armv7l");
  EXPECT_TRUE(config->interpolate_component_configuration);
  EXPECT_EQ(config->logging.level, logs::Level::kDebug);
  EXPECT_EQ(config->logging.format, logs::Format::kJson);
  EXPECT_EQ(config->logging.file_size_kb, 2048u);
  EXPECT_EQ(config->logging.total_logs_size_kb, 4096u);
  ASSERT_EQ(config->setenv.size(), 1u);
  EXPECT_EQ(config->setenv[0].first, "HTTP_PROXY");
  EXPECT_EQ(config->deployment_timeout, std::chrono::seconds(42));
  EXPECT_EQ(config->stop_grace, std::chrono::milliseconds(250));
  std::filesystem::remove(path);
}

TEST(RuntimeConfig, AcceptsTheConfigurationMapAloneAndKeysInAnyCase) {
  auto path = WriteFile("flat.json",
                        R"({"AWSREGION": "us-west-2", "RunWithDefault": {"PosixUser": "nobody"}})");
  auto config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->aws_region, "us-west-2");
  EXPECT_EQ(config->run_with_default_user, "nobody");
  EXPECT_EQ(config->logging.level, logs::Level::kInfo);  // the nucleus's default
  std::filesystem::remove(path);
}

TEST(RuntimeConfig, ErrorsNameTheFileAndTheKey) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"logging: {level: LOUD}", "logging.level"},
      {"logging: {fileSizeKB: -3}", "logging.fileSizeKB"},
      {"runWithDefault: [a, b]", "runWithDefault"},
      {"interpolateComponentConfiguration: maybe", "interpolateComponentConfiguration"},
      {"lichen: {deploymentTimeoutSeconds: 0}", "lichen.deploymentTimeoutSeconds"},
      {"setenv: {A: {b: c}}", "setenv.A"},
      {"awsRegion: [1]", "awsRegion"},
      {"iotCredEndpoint: creds.example", "iotRoleAlias"},
      {"networkProxy: [x]", "networkProxy"},
      {"lichen: {credentials: {accessKeyId: AKID}}", "lichen.credentials"},
      {"lichen: {s3: {endpoint: 'localhost:9000'}}", "lichen.s3.endpoint"},
      {"lichen: {docker: {pullAttempts: 0}}", "lichen.docker.pullAttempts"},
      {"lichen: {docker: {pullStallSeconds: -1}}", "lichen.docker.pullStallSeconds"},
      {"lichen: {docker: {daemonWaitSeconds: soon}}", "lichen.docker.daemonWaitSeconds"},
      {"lichen: {docker: {socket: docker.sock}}", "lichen.docker.socket"},
      {"{unclosed", "bad.yaml"},
  };
  for (const auto& c : cases) {
    auto path = WriteFile("bad.yaml", c.text);
    auto config = LoadRuntimeConfig(path);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_NE(config.error().message.find(c.expected), std::string::npos)
        << c.text << " -> " << config.error().message;
    EXPECT_NE(config.error().message.find(path), std::string::npos) << config.error().message;
    std::filesystem::remove(path);
  }
}

TEST(RuntimeConfig, ReadsWhereAwsCredentialsAndArtifactsComeFrom) {
  auto path = WriteFile("aws.yaml", R"(
system:
  thingName: "MyThing"
  certificateFilePath: "/greengrass/v2/device.pem.crt"
  privateKeyPath: "/greengrass/v2/private.pem.key"
  rootCaPath: "/greengrass/v2/AmazonRootCA1.pem"
services:
  aws.greengrass.Nucleus:
    configuration:
      awsRegion: "us-east-1"
      iotCredEndpoint: "c1.credentials.iot.us-east-1.amazonaws.com"
      iotRoleAlias: "GreengrassV2TokenExchangeRoleAlias"
      networkProxy:
        noProxyAddresses: "localhost,127.0.0.1"
        proxy: {url: "http://proxy.local:3128", username: "u", password: "p"}
      lichen:
        s3: {endpoint: "http://127.0.0.1:4569"}
  aws.greengrass.TokenExchangeService:
    configuration:
      port: 2020
)");
  auto config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const AwsSettings& aws = config->aws;
  EXPECT_TRUE(aws.uses_iot_credentials());
  EXPECT_EQ(aws.iot_role_alias, "GreengrassV2TokenExchangeRoleAlias");
  EXPECT_EQ(aws.certificate_path, "/greengrass/v2/device.pem.crt");
  EXPECT_EQ(aws.private_key_path, "/greengrass/v2/private.pem.key");
  EXPECT_EQ(aws.tes_port, 2020);
  EXPECT_EQ(aws.proxy_url, "http://u:p@proxy.local:3128");
  EXPECT_EQ(aws.no_proxy, "localhost,127.0.0.1");
  EXPECT_EQ(aws.s3_endpoint, "http://127.0.0.1:4569");
  std::filesystem::remove(path);

  // A device that is not an IoT thing names its keys (or a credentials file) itself.
  path = WriteFile("static.yaml", R"(
lichen:
  credentials: {accessKeyId: AKIDEXAMPLE, secretAccessKey: secret, sessionToken: tok}
)");
  config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->aws.uses_iot_credentials());
  EXPECT_TRUE(config->aws.has_credentials());
  EXPECT_EQ(config->aws.static_access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(config->aws.static_session_token, "tok");
  EXPECT_EQ(config->aws.tes_port, 0);
  std::filesystem::remove(path);
}

TEST(RuntimeConfig, ReadsTheDockerSettings) {
  auto path = WriteFile("docker.yaml", R"(
lichen:
  docker:
    socket: unix:///run/other/docker.sock
    pullAttempts: 2
    pullStallSeconds: 7
    daemonWaitSeconds: 0
)");
  auto config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->docker.socket, "/run/other/docker.sock");
  EXPECT_EQ(config->docker.pull_attempts, 2);
  EXPECT_EQ(config->docker.pull_stall_seconds, 7);
  EXPECT_EQ(config->docker.daemon_wait, std::chrono::milliseconds(0));
  std::filesystem::remove(path);

  path = WriteFile("docker-default.yaml", "lichen: {}\n");
  config = LoadRuntimeConfig(path);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->docker.pull_stall_seconds, 60);
  EXPECT_EQ(config->docker.daemon_wait, std::chrono::milliseconds(60000));
  std::filesystem::remove(path);
}

TEST(RuntimeConfig, AMissingFileIsAnError) {
  auto config = LoadRuntimeConfig("/nonexistent/lichen/config.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("/nonexistent/lichen/config.yaml"), std::string::npos);
}

TEST(RuntimeConfig, ARunThatFailedDuringTheDeploymentMustOutliveItTwice) {
  using std::chrono::milliseconds;
  RuntimeConfig config;
  config.run_stable = milliseconds(1000);
  EXPECT_EQ(config.RunStableAfter(std::nullopt), milliseconds(1000));
  EXPECT_EQ(config.RunStableAfter(milliseconds(100)), milliseconds(1000));  // never shorter
  EXPECT_EQ(config.RunStableAfter(milliseconds(900)), milliseconds(1800));
  EXPECT_EQ(config.RunStableAfter(milliseconds(60000)), milliseconds(10000));  // bounded
  config.run_stable = milliseconds(0);  // the window turned off stays off
  EXPECT_EQ(config.RunStableAfter(milliseconds(900)), milliseconds(0));
}

}  // namespace
}  // namespace lichen::nucleus
