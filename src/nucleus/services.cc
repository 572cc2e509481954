#include "nucleus/services.h"

#include <sys/random.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <filesystem>

#include "lifecycle/cgroup.h"
#include "recipe/effective.h"
#include "recipe/interpolate.h"

extern char** environ;

namespace lichen::nucleus {
namespace {

namespace fs = std::filesystem;
using lifecycle::State;

const char* ScriptFor(State state) {
  switch (state) {
    case State::kNew:
      return "Install";
    case State::kStarting:
      return "Startup";
    case State::kStopping:
      return "Shutdown";
    case State::kErrored:
      return "Recover";
    default:
      return "Run";
  }
}

// The lifecycle key of `kind`, found case-insensitively as recipes may spell it.
Json StepJson(const Json& lifecycle, std::string_view kind) {
  if (!lifecycle.is_object()) return Json();
  for (auto it = lifecycle.begin(); it != lifecycle.end(); ++it) {
    if (config::KeyEquals(it.key(), kind)) return it.value();
  }
  return Json();
}

bool Stopped(const lifecycle::Component& c) {
  return c.Settled() && (c.state() == State::kFinished || c.state() == State::kBroken);
}

}  // namespace

std::string RandomToken(size_t length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string token;
  while (token.size() < length) {
    unsigned char bytes[64];
    ssize_t n = getrandom(bytes, sizeof bytes, 0);
    // 248 = 62 * 4: rejecting bytes above it keeps every character equally likely.
    for (ssize_t i = 0; i < n && token.size() < length; ++i) {
      if (bytes[i] < 248) token.push_back(kAlphabet[bytes[i] % 62]);
    }
  }
  return token;
}

Services::Services(boost::asio::io_context& io, ServiceEnvironment env, logs::Logs& logs,
                   config::Tree& tree, lifecycle::ProcessLedger* ledger)
    : io_(io), env_(std::move(env)), logs_(logs), tree_(tree), ledger_(ledger) {}

Services::~Services() { *alive_ = false; }

Result<lifecycle::ComponentSpec> Services::BuildSpec(
    const std::string& name, const ServiceDefinition& def, const std::string& svcuid,
    const std::map<std::string, ServiceDefinition>& all, std::string* install_key,
    std::string* run_key, std::string* bootstrap_key) {
  const auto& recipe = def.recipe;
  const std::string version = recipe.version.ToStringWithBuild();
  auto configuration_of = [&](const std::string& component, const recipe::Recipe* r) {
    auto json = tree_.ToJson({"services", component, "configuration"});
    if (json && json->is_object()) return *json;
    return r ? r->default_configuration : Json::object();
  };

  recipe::SpecialiseOptions options;
  options.platform = env_.platform;
  options.root = env_.root;
  options.thing_name = env_.runtime.thing_name;
  options.configuration = configuration_of(name, &recipe);
  if (env_.runtime.interpolate_component_configuration) {
    // Off by default, as in the nucleus: configuration values may hold text that only
    // looks like a variable.
    recipe::InterpolationContext ctx;
    ctx.root = env_.root;
    ctx.thing_name = env_.runtime.thing_name;
    ctx.self = recipe::VariableSource{name, recipe.version.ToStringWithBuild(), nullptr};
    std::vector<std::string> ignored;
    options.configuration = recipe::InterpolateTree(*options.configuration, ctx, &ignored);
  }
  std::map<std::string, Json> dependency_configs;
  for (const auto& [dep, type] : def.dependencies) {
    auto it = all.find(dep);
    if (it == all.end()) continue;
    dependency_configs[dep] = configuration_of(dep, &it->second.recipe);
  }
  for (const auto& [dep, conf] : dependency_configs) {
    options.dependencies[dep] =
        recipe::VariableSource{dep, all.at(dep).recipe.version.ToStringWithBuild(), &conf};
  }
  auto effective = recipe::Specialise(recipe, options);
  if (!effective.ok()) return MakeError(effective.error().message);

  lifecycle::ComponentSpec spec;
  spec.name = name;
  spec.lifecycle = effective->lifecycle;
  spec.shell = env_.runtime.posix_shell;
  spec.stop_grace = env_.runtime.stop_grace;
  spec.work_dir = recipe::WorkPath(env_.root, name);
  if (!env_.cgroup_base.empty() && lifecycle::MakeCgroup(env_.cgroup_base + "/" + name)) {
    spec.cgroup = env_.cgroup_base + "/" + name;
  }

  std::optional<std::string> user = def.run_with_user;
  if (!user || user->empty()) user = env_.runtime.run_with_default_user;
  if (user && !user->empty()) {
    // One lookup per user and Apply: the group list alone probes the NSS sources.
    auto cached = run_as_cache_.find(*user);
    if (cached == run_as_cache_.end()) {
      auto run_as = lifecycle::LookupRunAs(*user);
      if (!run_as.ok()) {
        return MakeError("cannot run " + name + " as '" + *user + "': " + run_as.error().message);
      }
      cached = run_as_cache_.emplace(*user, *run_as).first;
    }
    spec.run_as = cached->second;
  } else if (::geteuid() == 0) {
    return MakeError("no user to run " + name +
                     " as: set runWithDefault.posixUser in the runtime configuration, or "
                     "deploy with --runWith " +
                     name + ":posixUser=USER");
  }

  std::error_code ec;
  fs::create_directories(spec.work_dir, ec);
  if (ec) return MakeError(spec.work_dir + ": " + ec.message());
  if (spec.run_as && ::geteuid() == 0) {
    if (::chown(spec.work_dir.c_str(), spec.run_as->uid, spec.run_as->gid) != 0) {
      return MakeError(spec.work_dir + ": cannot give it to " + spec.run_as->user);
    }
    fs::permissions(spec.work_dir, fs::perms::owner_all, ec);
  }

  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    spec.env.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  auto set = [&spec](const std::string& key, const std::string& value) {
    for (auto& [k, v] : spec.env) {
      if (k == key) {
        v = value;
        return;
      }
    }
    spec.env.emplace_back(key, value);
  };
  if (spec.run_as) {
    set("HOME", spec.run_as->home);
    set("USER", spec.run_as->user);
    set("LOGNAME", spec.run_as->user);
  }
  set("SVCUID", svcuid);
  set("AWS_CONTAINER_AUTHORIZATION_TOKEN", svcuid);
  set("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", env_.socket_path);
  set("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH", env_.socket_path);
  set("GGC_VERSION", env_.version);
  if (!env_.runtime.aws_region.empty()) {
    set("AWS_REGION", env_.runtime.aws_region);
    set("AWS_DEFAULT_REGION", env_.runtime.aws_region);
  }
  if (!env_.runtime.thing_name.empty()) set("AWS_IOT_THING_NAME", env_.runtime.thing_name);
  if (!env_.runtime.root_ca_path.empty()) set("GG_ROOT_CA_PATH", env_.runtime.root_ca_path);
  if (!env_.credentials_uri.empty())
    set("AWS_CONTAINER_CREDENTIALS_FULL_URI", env_.credentials_uri);
  // Both spellings: curl and most SDKs read the lower case, others the upper case.
  if (const auto& proxy = env_.runtime.aws.proxy_url; !proxy.empty()) {
    for (const char* k : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}) {
      set(k, proxy);
    }
  }
  // With a proxy, loopback is always exempt: a request to the token exchange service
  // carries the component's token and must not leave the device.
  if (!env_.runtime.aws.proxy_url.empty() || !env_.runtime.aws.no_proxy.empty()) {
    std::string no_proxy = "localhost,127.0.0.1,::1";
    if (!env_.runtime.aws.no_proxy.empty()) no_proxy += "," + env_.runtime.aws.no_proxy;
    set("no_proxy", no_proxy);
    set("NO_PROXY", no_proxy);
  }
  // The component's own Docker socket labels what it creates, so its containers go when
  // it stops. Only for a user who may use the daemon anyway: the socket must not hand
  // Docker to anyone else (then DOCKER_HOST is left alone and docker fails as usual).
  if (janitor_ != nullptr) {
    const uid_t uid = spec.run_as ? spec.run_as->uid : ::geteuid();
    const gid_t gid = spec.run_as ? spec.run_as->gid : ::getegid();
    auto may = docker::UserMayUseSocket(env_.runtime.docker.socket, uid,
                                        spec.run_as ? std::optional<gid_t>(gid) : std::nullopt);
    if (!may.ok()) janitor_->Close(name);  // no longer in the daemon's group: no socket
    if (may.ok()) {
      auto host = janitor_->Open(name, spec.run_as ? std::optional<uid_t>(uid) : std::nullopt,
                                 spec.run_as ? std::optional<gid_t>(gid) : std::nullopt);
      if (host.ok()) {
        set("DOCKER_HOST", *host);
      } else {
        logs_.Log(logs::Level::kWarn, "Services", "docker-socket",
                  "containers this component creates will not be removed when it stops",
                  {{"serviceName", name}, {"reason", host.error().message}});
      }
    } else if (may.error().code != docker::kDockerDaemonUnavailable) {
      logs_.Log(logs::Level::kDebug, "Services", "docker-socket",
                "no Docker socket for this component",
                {{"serviceName", name}, {"reason", may.error().message}});
    }
  }
  for (const auto& [k, v] : env_.runtime.setenv) set(k, v);

  *install_key = version + "|" + (user ? *user : "") + "|" +
                 StepJson(effective->lifecycle_json, "install").dump() + "|" +
                 StepJson(effective->lifecycle_json, "bootstrap").dump();
  // Bootstrap runs for a new component and when its version or Bootstrap step changes
  // (the caller compares keys); empty when there is no Bootstrap step.
  const Json bootstrap = StepJson(effective->lifecycle_json, "bootstrap");
  *bootstrap_key = bootstrap.is_null() ? std::string() : version + "|" + bootstrap.dump();
  Json env_json = Json::array();
  for (const auto& [k, v] : spec.env) {
    if (k != "SVCUID" && k != "AWS_CONTAINER_AUTHORIZATION_TOKEN") env_json.push_back(k + "=" + v);
  }
  *run_key = effective->lifecycle_json.dump() + "|" + env_json.dump();
  return spec;
}

std::map<std::string, std::string> Services::Apply(
    const std::map<std::string, ServiceDefinition>& desired,
    const std::set<std::string>& redeploy) {
  std::map<std::string, std::string> problems;
  std::vector<std::string> started;  // new components, started after the loop
  run_as_cache_.clear();             // users and groups may have changed since the last Apply
  for (auto it = services_.begin(); it != services_.end();) {
    if (desired.count(it->first)) {
      ++it;
      continue;
    }
    logs_.Log(logs::Level::kInfo, "Services", "service-remove", "removing a component",
              {{"serviceName", it->first}});
    auto node = services_.extract(it++);
    auto& m = removing_.insert(std::move(node)).position->second;
    m.stop_requested = true;
    if (m.component) m.component->Stop();
  }
  for (const auto& [name, def] : desired) {
    auto found = services_.find(name);
    std::string install_key, run_key, bootstrap_key;
    const std::string svcuid = found != services_.end() ? found->second.svcuid : RandomToken(16);
    auto spec = BuildSpec(name, def, svcuid, desired, &install_key, &run_key, &bootstrap_key);
    if (!spec.ok()) {
      problems[name] = spec.error().message;
      logs_.Log(logs::Level::kError, "Services", "service-spec-error", spec.error().message,
                {{"serviceName", name}});
      continue;
    }
    if (found == services_.end()) {
      Managed m;
      m.definition = def;
      m.svcuid = svcuid;
      m.install_key = install_key;
      m.run_key = run_key;
      m.bootstrap_key = bootstrap_key;
      spec->bootstrap = !bootstrap_key.empty() && redeploy.count(name) > 0;
      m.component = std::make_unique<lifecycle::Component>(
          io_, std::move(*spec), *this, [this, name = name] { return DependenciesReady(name); });
      services_.emplace(name, std::move(m));
      started.push_back(name);
      continue;
    }
    Managed& m = found->second;
    m.definition = def;
    const bool reinstall = install_key != m.install_key;
    const bool restart = run_key != m.run_key;
    spec->bootstrap =
        !bootstrap_key.empty() && bootstrap_key != m.bootstrap_key && redeploy.count(name) > 0;
    m.install_key = install_key;
    m.run_key = run_key;
    m.bootstrap_key = bootstrap_key;
    if (!m.component) continue;
    if (reinstall) {
      m.stop_requested = false;
      m.component->UpdateSpec(std::move(*spec));
      m.component->Reinstall();
    } else if (restart) {
      m.stop_requested = false;
      m.component->UpdateSpec(std::move(*spec));
      if (m.component->state() == State::kBroken) {
        m.component->Reinstall();
      } else {
        m.component->Restart();
      }
    } else if (redeploy.count(name)) {
      if (m.component->state() == State::kBroken) {
        m.component->Reinstall();
      } else if (m.stop_requested) {
        m.stop_requested = false;
        m.component->Start();
      }
    }
  }
  // New components start only once every one of them is in place: a component started
  // earlier would take a dependency that is not added yet for a built-in one, and start
  // before it.
  for (const auto& name : started) {
    if (auto it = services_.find(name); it != services_.end() && it->second.component) {
      it->second.component->Start();
    }
  }
  for (auto& [name, m] : services_) {
    if (m.component) m.component->DependenciesChanged();
  }
  Notify();
  return problems;
}

void Services::Refresh() {
  std::map<std::string, ServiceDefinition> current;
  for (const auto& [name, m] : services_) current[name] = m.definition;
  Apply(current, {});
}

bool Services::DependenciesReady(const std::string& name) const {
  auto it = services_.find(name);
  if (it == services_.end()) return true;
  for (const auto& [dep, type] : it->second.definition.dependencies) {
    if (type != deploy::DependencyType::kHard) continue;
    auto d = services_.find(dep);
    if (d == services_.end() || !d->second.component) continue;  // built in: always there
    auto s = d->second.component->state();
    if (s != State::kRunning && s != State::kFinished) return false;
  }
  return true;
}

bool Services::BlockedByBroken(const std::string& name) const {
  auto it = services_.find(name);
  if (it == services_.end() || !it->second.component) return false;
  if (it->second.component->state() != State::kInstalled) return false;
  for (const auto& [dep, type] : it->second.definition.dependencies) {
    if (type != deploy::DependencyType::kHard) continue;
    auto d = services_.find(dep);
    if (d != services_.end() && d->second.component &&
        (d->second.component->state() == State::kBroken || BlockedByBroken(dep))) {
      return true;
    }
  }
  return false;
}

std::vector<Services::Info> Services::List() const {
  std::vector<Info> out;
  for (const auto& [name, m] : services_) {
    if (!m.component) continue;
    out.push_back(InfoOf(name, m));
  }
  return out;
}

std::optional<Services::Info> Services::Find(const std::string& name) const {
  auto it = services_.find(name);
  if (it == services_.end() || !it->second.component) return std::nullopt;
  return InfoOf(name, it->second);
}

Services::Info Services::InfoOf(const std::string& name, const Managed& m) const {
  Info info{name, m.definition.recipe.version.ToStringWithBuild(), m.component->state(),
            m.component->Settled()};
  const auto& steps = m.component->spec().lifecycle;
  info.run_based = steps.Find(recipe::StepKind::kRun) != nullptr &&
                   steps.Find(recipe::StepKind::kStartup) == nullptr;
  info.running_since = m.component->running_since();
  info.failed_runs = m.component->failed_runs();
  return info;
}

bool Services::Restart(const std::string& name) {
  auto it = services_.find(name);
  if (it == services_.end() || !it->second.component || stopping_all_) return false;
  auto& m = it->second;
  m.stop_requested = false;
  // A restart asked for by a person is a fresh start, BROKEN included.
  if (m.component->state() == State::kBroken) {
    m.component->Reinstall();
  } else if (m.component->state() == State::kFinished ||
             m.component->state() == State::kInstalled) {
    m.component->Start();
  } else {
    m.component->Restart();
  }
  return true;
}

bool Services::Stop(const std::string& name) {
  auto it = services_.find(name);
  if (it == services_.end() || !it->second.component) return false;
  it->second.stop_requested = true;
  it->second.component->Stop();
  // A component whose Run ended by itself is FINISHED already: Stop changes nothing, but
  // its detached containers go now.
  if (janitor_ != nullptr && it->second.component->state() == State::kFinished) {
    janitor_->Clean(name, env_.runtime.stop_grace, [this, alive = alive_] {
      if (*alive) Notify();
    });
  }
  return true;
}

bool Services::ReportState(const std::string& name, State state) {
  auto it = services_.find(name);
  if (it == services_.end() || !it->second.component) return false;
  return it->second.component->ReportState(state);
}

std::optional<std::string> Services::ComponentForToken(const std::string& token) const {
  if (token.empty()) return std::nullopt;
  for (const auto& [name, m] : services_) {
    if (m.svcuid == token) return name;
  }
  return std::nullopt;
}

void Services::StopAll(std::function<void()> done) {
  stopping_all_ = true;
  stop_all_done_ = std::move(done);
  // Every Shutdown step has its own timeout and every kill its grace period; this bound
  // only guards against a bug leaving the runtime unable to exit.
  stop_all_timer_ = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::seconds(120));
  stop_all_timer_->async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || !stop_all_done_) return;
    logs_.Log(logs::Level::kError, "Services", "shutdown-timeout",
              "components did not stop in time; killing what is left");
    services_.clear();  // destroying a Component kills its process groups
    removing_.clear();
    auto finished = std::move(stop_all_done_);
    stop_all_done_ = nullptr;
    finished();
  });
  PumpStopAll();
}

void Services::PumpStopAll() {
  if (!stopping_all_ || !stop_all_done_) return;
  bool all_stopped = false;
  // A Stop() of a component that is already FINISHED changes no state, so no callback
  // comes back here: go round again until a pass asks nothing new (each pass asks at
  // least one more component, so this ends).
  for (bool asked = true; asked;) {
    asked = false;
    all_stopped = true;
    for (auto& [name, m] : services_) {
      if (!m.component) continue;
      if (m.stop_requested && Stopped(*m.component)) continue;
      all_stopped = false;
      if (m.stop_requested) continue;
      // Dependents stop before what they depend on.
      bool dependents_stopped = true;
      for (const auto& [other, om] : services_) {
        if (other == name || !om.component || !om.definition.dependencies.count(name)) continue;
        if (!(om.stop_requested && Stopped(*om.component))) dependents_stopped = false;
      }
      if (dependents_stopped) {
        m.stop_requested = true;
        m.component->Stop();
        asked = true;
      }
    }
  }
  for (auto& [name, m] : removing_) {
    if (m.component && !Stopped(*m.component)) all_stopped = false;
  }
  if (all_stopped) {
    stop_all_timer_.reset();
    auto done = std::move(stop_all_done_);
    stop_all_done_ = nullptr;
    boost::asio::post(io_, std::move(done));
  }
}

void Services::ReapRemoved() {
  for (auto it = removing_.begin(); it != removing_.end();) {
    if (!it->second.component || Stopped(*it->second.component)) {
      // A component whose Run ended by itself may have left detached containers. Not
      // when it is back already: those are the new instance's to clean before its start.
      if (janitor_ != nullptr && services_.count(it->first) == 0) {
        janitor_->Clean(it->first, env_.runtime.stop_grace,
                        [this, alive = alive_, name = it->first] {
                          if (!*alive || services_.count(name) != 0) return;
                          janitor_->Close(name);
                          logs_.CloseComponentLog(name);  // the followers' last lines are in
                        });
      }
      logs_.CloseComponentLog(it->first);
      if (!env_.cgroup_base.empty()) lifecycle::RemoveCgroup(env_.cgroup_base + "/" + it->first);
      it = removing_.erase(it);
    } else {
      ++it;
    }
  }
}

void Services::Notify() {
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    ReapRemoved();
    if (on_change_) on_change_();
  });
}

void Services::OnStateChange(lifecycle::Component& c, State from, State to,
                             const std::string& reason) {
  const std::string& name = c.name();
  logs::Event event;
  event.level =
      (to == State::kErrored || to == State::kBroken) ? logs::Level::kWarn : logs::Level::kInfo;
  event.logger = "GenericExternalService";
  event.event_type = "service-set-state";
  event.message = reason;
  const logs::KeyValue contexts[] = {{"serviceName", name},
                                     {"currentState", lifecycle::ToString(from)},
                                     {"newState", lifecycle::ToString(to)}};
  event.contexts = contexts;
  logs_.Log(event);
  logs_.LogComponent(name, event);

  if (!stopping_all_) {
    for (auto& [other, m] : services_) {
      if (!m.component || other == name) continue;
      auto dep = m.definition.dependencies.find(name);
      if (dep == m.definition.dependencies.end() || dep->second != deploy::DependencyType::kHard) {
        continue;
      }
      if (to == State::kRunning || to == State::kFinished) {
        m.component->DependenciesChanged();
      } else if ((to == State::kErrored || to == State::kBroken ||
                  (from == State::kStopping && to == State::kInstalled)) &&
                 (m.component->state() == State::kRunning ||
                  m.component->state() == State::kStarting)) {
        // A HARD dependency went down: its dependents restart and wait for it.
        m.component->Restart();
      }
    }
  }
  if (stopping_all_)
    boost::asio::post(io_, [this, alive = alive_] {
      if (*alive) PumpStopAll();
    });
  Notify();
}

void Services::OnOutput(lifecycle::Component& c, lifecycle::OutputStream stream,
                        std::string_view line) {
  const std::string script = logs::ScriptName(c.name(), ScriptFor(c.state()));
  logs_.ComponentOutput({c.name(), script, lifecycle::ToString(c.state())},
                        stream == lifecycle::OutputStream::kStdout ? logs::OutputStream::kStdout
                                                                   : logs::OutputStream::kStderr,
                        line);
}

void Services::ContainerOutput(const std::string& component, const std::string& container,
                               bool is_stderr, const std::string& line) {
  auto found = services_.find(component);
  const std::string state = found != services_.end() && found->second.component
                                ? lifecycle::ToString(found->second.component->state())
                                : "FINISHED";
  const std::string script = logs::ScriptName(component, "docker:" + container);
  logs_.ComponentOutput({component, script, state},
                        is_stderr ? logs::OutputStream::kStderr : logs::OutputStream::kStdout,
                        line);
}

void Services::OnEvent(lifecycle::Component& c, const std::string& message) {
  logs::Event event;
  event.level = logs::Level::kInfo;
  event.logger = "GenericExternalService";
  event.event_type = "lifecycle";
  event.message = message;
  const logs::KeyValue contexts[] = {{"serviceName", c.name()},
                                     {"currentState", lifecycle::ToString(c.state())}};
  event.contexts = contexts;
  logs_.LogComponent(c.name(), event);
}

void Services::ReleaseExternal(lifecycle::Component& c, Release when,
                               std::function<void()> done) {
  if (janitor_ == nullptr) {
    done();
    return;
  }
  // A start waits for what the last run left to go: a new `docker run --name` would clash
  // with it. When the daemon is restarting, that is a wait for the daemon, which also
  // keeps the restart from failing (and counting towards BROKEN) while it is away. A stop
  // never waits for Docker.
  const std::chrono::milliseconds wait_for_daemon = when == Release::kBeforeStart
                                                        ? env_.runtime.docker.daemon_wait
                                                        : std::chrono::milliseconds(0);
  // Removals, rollbacks and StopAll re-check their wait after the component moves on.
  janitor_->Clean(
      c.name(), env_.runtime.stop_grace,
      [this, alive = alive_, done = std::move(done)] {
        done();
        if (*alive) Notify();
      },
      wait_for_daemon);
}

void Services::OnProcessStarted(lifecycle::Component&, pid_t pgid) {
  if (ledger_) ledger_->Record(pgid);
}

}  // namespace lichen::nucleus
