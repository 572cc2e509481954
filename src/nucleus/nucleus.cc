#include "nucleus/nucleus.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>

#include "config/state_store.h"
#include "docker/container_janitor.h"
#include "ipc/authorization.h"
#include "ipc/cloud_offline.h"
#include "ipc/pubsub.h"
#include "ipc/server.h"
#include "lifecycle/cgroup.h"
#include "lifecycle/child_reaper.h"
#include "lifecycle/process_ledger.h"
#include "logs/log.h"
#include "nucleus/aws_access.h"
#include "nucleus/cli_ipc_info.h"
#include "nucleus/cli_service.h"
#include "nucleus/config_service.h"
#include "nucleus/deployer.h"
#include "nucleus/docker_access.h"
#include "nucleus/runtime_config.h"
#include "nucleus/services.h"
#include "store/component_store.h"
#include "tes/tes_server.h"

#ifndef LICHEN_VERSION
#define LICHEN_VERSION "0.0.0"
#endif

namespace lichen::nucleus {
namespace {

namespace fs = std::filesystem;

// The Greengrass nucleus version whose behaviour Lichen follows, given to components as
// GGC_VERSION (scripts compare it to decide what the runtime supports).
constexpr const char* kGreengrassCompatVersion = "2.14.0";

// Unix socket paths hold at most 107 bytes. A longer root is reached through a short
// symlink in /tmp named after the root, so binding and connecting both fit.
Result<std::string> SocketPathFor(const std::string& root) {
  std::string path = root + "/ipc.socket";
  if (path.size() <= 107) return path;
  const std::string link =
      "/tmp/lichen-" + std::to_string(std::hash<std::string>{}(root) % 100000000);
  std::error_code ec;
  if (fs::is_symlink(link, ec)) {
    if (fs::read_symlink(link, ec) == root) return link + "/ipc.socket";
    fs::remove(link, ec);
  }
  fs::create_directory_symlink(root, link, ec);
  if (ec) return MakeError("cannot create " + link + " -> " + root + ": " + ec.message());
  return link + "/ipc.socket";
}

int Fail(const std::string& message) {
  std::cerr << "lichen nucleus: " << message << "\n";
  return 1;
}

}  // namespace

std::string CgroupBaseFor(const std::string& root) {
  auto cgroups = lifecycle::WritableCgroupRoot();
  if (!cgroups) return {};
  std::error_code ec;
  std::string normal = fs::absolute(root, ec).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return *cgroups + "/lichen-" + std::to_string(std::hash<std::string>{}(normal) % 100000000);
}

int RunNucleus(const NucleusOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  const std::string root = fs::absolute(options.root, ec).lexically_normal().string();
  if (ec) return Fail(options.root + ": " + ec.message());
  std::string root_trimmed = root;
  while (root_trimmed.size() > 1 && root_trimmed.back() == '/') root_trimmed.pop_back();

  RuntimeConfig runtime;
  if (!options.config_file.empty()) {
    auto loaded = LoadRuntimeConfig(options.config_file);
    if (!loaded.ok()) return Fail(loaded.error().message);
    runtime = std::move(*loaded);
  }
  for (const char* dir : {"config", "deployments", "logs", "packages/artifacts",
                          "packages/artifacts-unarchived", "packages/recipes", "work"}) {
    fs::create_directories(root_trimmed + "/" + dir, ec);
    if (ec) return Fail(root_trimmed + "/" + dir + ": " + ec.message());
  }

  // Orphans of component scripts (double-forked daemons) are re-parented to us, so the
  // reaper collects them and stops can find them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::signal(SIGPIPE, SIG_IGN);

  boost::asio::io_context io;
  lifecycle::ReaperFor(io);

  auto state = config::StateStore::Open(root_trimmed + "/config/state.db");
  if (!state.ok()) return Fail(state.error().message);
  auto loaded_tree = state->LoadConfig();
  if (!loaded_tree.ok()) return Fail(loaded_tree.error().message);
  config::Tree tree = std::move(*loaded_tree);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  (void)tree.Replace({"services", "aws.greengrass.Nucleus", "configuration"},
                     runtime.nucleus_configuration, now_ms);
  (void)tree.Set({"services", "aws.greengrass.Nucleus", "version"}, kGreengrassCompatVersion,
                 now_ms);

  logs::LogsOptions log_options;
  log_options.root = root_trimmed;
  log_options.config = runtime.logging;
  auto logs = logs::Logs::Open(log_options, &io);
  if (!logs.ok()) return Fail(logs.error().message);
  if (state->recovery()) {
    (*logs)->Log(logs::Level::kError, "Nucleus", "state-recovered",
                 "the state database was unreadable and was moved aside; starting empty",
                 {{"movedTo", state->recovery()->moved_to}, {"reason", state->recovery()->reason}});
  }

  auto socket_path = SocketPathFor(root_trimmed);
  if (!socket_path.ok()) return Fail(socket_path.error().message);

  ServiceEnvironment env;
  env.root = root_trimmed;
  env.socket_path = *socket_path;
  env.version = kGreengrassCompatVersion;
  env.platform = recipe::DetectPlatform();
  recipe::ApplyOverride(env.platform, runtime.platform_override);
  env.runtime = runtime;

  // Processes a crashed predecessor left running would otherwise run twice.
  lifecycle::ProcessLedger ledger(root_trimmed + "/config/processes");
  if (int killed = ledger.KillLeftovers(); killed > 0) {
    (*logs)->Log(logs::Level::kWarn, "Nucleus", "leftover-processes",
                 "stopped processes left running by a previous run that did not stop cleanly",
                 {{"count", std::to_string(killed)}});
  }

  // Each component's processes live in cgroups below this one, so no stop misses a
  // process that left its process group. What a crashed predecessor left is killed.
  if (const std::string base = CgroupBaseFor(root_trimmed); !base.empty()) {
    if (int left = lifecycle::KillAndRemoveCgroupTree(base); left > 0) {
      (*logs)->Log(logs::Level::kWarn, "Nucleus", "leftover-cgroups",
                   "killed processes left in component cgroups by a previous run",
                   {{"cgroups", std::to_string(left)}});
    }
    if (lifecycle::MakeCgroup(base)) env.cgroup_base = base;
  }

  // AWS access: one cached credential source for the token exchange service and for
  // S3 downloads. Without one, s3:// artifacts and the TES are unavailable (and say so).
  std::string credentials_source;
  auto credentials = MakeCredentialProvider(runtime, &credentials_source);
  const Services* token_owner = nullptr;  // set once Services exists; loop thread only
  std::unique_ptr<tes::TesServer> tes;
  if (credentials) {
    tes::TesOptions tes_options;
    tes_options.port = static_cast<uint16_t>(runtime.aws.tes_port);
    tes_options.log = [&logs](std::string_view line) {
      (*logs)->Log(logs::Level::kWarn, "TokenExchangeService", "tes", std::string(line));
    };
    // A component's AWS_CONTAINER_AUTHORIZATION_TOKEN is its SVCUID.
    tes_options.authorize = [&token_owner](std::string_view token) {
      return token_owner != nullptr && token_owner->ComponentForToken(std::string(token));
    };
    tes = std::make_unique<tes::TesServer>(io, credentials, std::vector<std::string>{},
                                           std::move(tes_options));
    auto port = tes->Start();
    if (!port.ok()) return Fail("token exchange service: " + port.error().message);
    env.credentials_uri =
        "http://localhost:" + std::to_string(*port) + std::string(tes::kCredentialsPath);
    (*logs)->Log(logs::Level::kInfo, "TokenExchangeService", "tes-start",
                 "serving credentials to components",
                 {{"uri", env.credentials_uri}, {"source", credentials_source}});
  }

  store::ComponentStore store(root_trimmed);
  store.SetS3Client(MakeS3Client(runtime, credentials));
  // Pull progress comes from the pulling threads; the log and the deployment status
  // belong to the loop.
  Deployer* deployer_ref = nullptr;  // set once the Deployer exists; loop thread only
  auto puller = MakeImagePuller(
      runtime, credentials,
      [&io, &logs](const std::string& image, const std::string& message) {
        boost::asio::post(io, [&logs, image, message] {
          (*logs)->Log(logs::Level::kInfo, "DockerApplicationManager", "docker-image", message,
                       {{"image", image}});
        });
      },
      [&io, &deployer_ref](const std::string& image, const docker::PullStatus& status) {
        boost::asio::post(io, [&deployer_ref, image, text = status.Describe()] {
          if (deployer_ref != nullptr) deployer_ref->NoteProgress("docker:" + image, text);
        });
      });
  store.SetImagePuller(puller);
  // Containers: each component gets its own Docker socket that labels what it creates,
  // and whatever a previous run left behind (a crash, a finished component) goes first.
  std::unique_ptr<docker::ContainerJanitor> janitor;
  Services* services_ref = nullptr;  // set once Services exists; loop thread only
  if (runtime.docker.track_containers) {
    docker::ContainerJanitorOptions janitor_options;
    janitor_options.engine.socket_path = runtime.docker.socket;
    janitor_options.engine.timeout = std::chrono::seconds(10);
    janitor_options.root = root_trimmed;
    janitor_options.socket_dir = fs::path(*socket_path).parent_path().string() + "/docker";
    janitor_options.log = [&logs](const std::string& component, const std::string& message) {
      (*logs)->Log(logs::Level::kInfo, "DockerContainers", "docker-cleanup", message,
                   {{"serviceName", component}});
    };
    // Detached containers print into their component's log.
    janitor_options.on_output = [&services_ref](const std::string& component,
                                                const std::string& container,
                                                docker::LogStream stream, const std::string& line) {
      if (services_ref != nullptr) {
        services_ref->ContainerOutput(component, container, stream == docker::LogStream::kStderr,
                                      line);
      }
    };
    janitor = std::make_unique<docker::ContainerJanitor>(io, std::move(janitor_options));
    if (fs::exists(runtime.docker.socket)) {
      if (int left = janitor->CleanAll(runtime.stop_grace); left > 0) {
        (*logs)->Log(logs::Level::kWarn, "Nucleus", "leftover-containers",
                     "removed containers left by a previous run",
                     {{"count", std::to_string(left)}});
      }
    }
  }
  Services services(io, env, **logs, tree, &ledger);
  services.SetContainerJanitor(janitor.get());
  services_ref = &services;
  token_owner = &services;
  Deployer deployer(io, *state, tree, services, store, **logs, env);
  deployer_ref = &deployer;

  // Declared before the server: its handlers hold references to both.
  ipc::Authorizer authorizer(runtime.thing_name);
  ipc::PubSub pubsub;
  // Policies are re-read whenever a component's accessControl changes (a deployment,
  // a rollback) or the component goes away.
  auto load_policies = [&](const std::string& component) {
    auto acl = tree.ToJson({"services", component, "configuration", "accessControl"});
    if (!acl) {
      authorizer.Remove(component);
      return;
    }
    for (const auto& problem : authorizer.SetPolicies(component, *acl)) {
      (*logs)->Log(logs::Level::kWarn, "Authorization", "policy-ignored", ipc::Describe(problem),
                   {{"serviceName", component}});
    }
  };
  if (const config::Node* all = tree.Find({"services"})) {
    for (const auto& child : all->children()) load_policies(child->name());
  }
  auto acl_watch = tree.Watch({"services"}, [&](const config::Change& change) {
    const auto& p = change.path;
    if (p.size() >= 2 &&
        (p.size() == 2 || (p.size() >= 4 && config::KeyEquals(p[2], "configuration") &&
                           config::KeyEquals(p[3], "accessControl")))) {
      load_policies(p[1]);
    }
  });

  const std::string cli_token = RandomToken(32);
  ipc::IpcServer server(io, [&](const std::string& token) -> std::optional<std::string> {
    if (token == cli_token) return std::string(kCliPrincipal);
    return services.ComponentForToken(token);
  });
  RegisterCliService(server, deployer, services, tree, authorizer);
  RegisterConfigService(server, tree, *state, services, **logs);
  ipc::RegisterPubSub(server, pubsub, authorizer);
  ipc::RegisterCloudOperationsOffline(server, authorizer);
  auto listening = server.Listen(*socket_path);
  if (!listening.ok()) return Fail(listening.error().message);
  auto written = WriteCliIpcInfo(root_trimmed, {*socket_path, cli_token}, runtime.cli_group);
  if (!written.ok()) return Fail(written.error().message);

  bool stopping = false;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int signal) {
        if (error) return;
        if (!stopping) {
          stopping = true;
          (*logs)->Log(logs::Level::kInfo, "Nucleus", "shutdown", "stopping every component",
                       {{"signal", std::to_string(signal)}});
          deployer.Shutdown();
          puller->Cancel();  // a pull under way would hold the exit for minutes
          if (janitor) janitor->StopWaiting();
          services.StopAll([&] {
            // Detached containers of components whose Run had finished.
            if (janitor) janitor->CleanAll(runtime.stop_grace);
            ledger.Clear();
            if (!env.cgroup_base.empty()) lifecycle::KillAndRemoveCgroupTree(env.cgroup_base);
            server.Close();
            if (tes) tes->Stop();
            (*logs)->Log(logs::Level::kInfo, "Nucleus", "shutdown-complete", "stopped");
            (*logs)->Flush();
            io.stop();
          });
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  // Components start from the loop, so the socket answers while they come up.
  boost::asio::post(io, [&] { deployer.Recover(); });
  const auto ready_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
  (*logs)->Log(logs::Level::kInfo, "Nucleus", "nucleus-start", "lichen " LICHEN_VERSION " started",
               {{"root", root_trimmed},
                {"socket", *socket_path},
                {"startupMicros", std::to_string(ready_us)}});
  io.run();
  return 0;
}

}  // namespace lichen::nucleus
