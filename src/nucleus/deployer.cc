#include "nucleus/deployer.h"

#include <sys/random.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>

#include "deploy/builtins.h"
#include "deploy/catalog.h"
#include "docker/image_reference.h"
#include "recipe/effective.h"
#include "recipe/loader.h"

namespace lichen::nucleus {
namespace {

namespace fs = std::filesystem;
using lifecycle::State;

constexpr std::string_view kRecords = "deployments";
constexpr std::string_view kCurrent = "deployment";
constexpr size_t kMaxFinishedRecords = 100;

// Children of `services` that are bookkeeping, not components.
bool IsReservedService(std::string_view name) {
  return config::KeyEquals(name, "main") || config::KeyEquals(name, "DeploymentService") ||
         config::KeyEquals(name, deploy::kNucleus);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewDeploymentId() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // UUID version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

std::string DependencyText(const std::string& name, deploy::DependencyType type) {
  return name + (type == deploy::DependencyType::kHard ? ":HARD" : ":SOFT");
}

// Everything PreparePlan needs, copied so it can run off the loop.
struct PrepareInput {
  deploy::LocalDeployment request;
  std::map<std::string, std::map<std::string, std::string>> group_roots;
  std::map<std::string, std::string> run_with;  // component -> posixUser now
  std::string root;
  recipe::Platform platform;
  RuntimeConfig runtime;
  std::shared_ptr<aws::S3Client> s3;            // null: no AWS access configured
  std::shared_ptr<docker::ImagePuller> images;  // null: no Docker support
};

Error Failure(std::string code, std::string message) {
  return Error{std::move(message), std::move(code)};
}

std::string ResolutionCode(const std::string& message) {
  if (message.find("cycle") != std::string::npos) return "COMPONENT_CIRCULAR_DEPENDENCY_ERROR";
  if (message.find("is not available") != std::string::npos)
    return "NO_AVAILABLE_COMPONENT_VERSION";
  return "COMPONENT_VERSION_REQUIREMENTS_NOT_MET";
}

// Runs on the worker: reads recipes, resolves, and puts recipes and artifacts in the store.
Result<Plan> PreparePlan(const PrepareInput& in) {
  const auto& req = in.request;
  store::ComponentStore store(in.root);
  store.SetS3Client(in.s3);
  store.SetImagePuller(in.images);

  struct FromDir {
    recipe::Recipe recipe;
    std::string path;
  };
  std::map<std::pair<std::string, std::string>, FromDir> from_dir;
  std::vector<std::string> problems;
  if (!req.recipe_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(req.recipe_dir, ec)) {
      return Failure("LOCAL_RECIPE_NOT_FOUND",
                     "recipe folder " + req.recipe_dir + " does not exist");
    }
    std::vector<std::string> files;
    for (fs::recursive_directory_iterator it(req.recipe_dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file() && recipe::IsRecipeFileName(it->path().filename().string())) {
        files.push_back(it->path().string());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto loaded = recipe::LoadRecipeFile(file);
      if (!loaded.recipe) {
        for (const auto& d : loaded.diagnostics) {
          if (d.severity != recipe::Severity::kError) continue;
          problems.push_back(file + ":" + std::to_string(d.location.line) + ":" +
                             std::to_string(d.location.column) + ": " +
                             (d.path.empty() ? "" : d.path + ": ") + d.message);
          break;
        }
        continue;
      }
      auto key = std::make_pair(loaded.recipe->name, loaded.recipe->version.ToStringWithBuild());
      from_dir[key] = FromDir{std::move(*loaded.recipe), file};
    }
  }

  // Root components: the group's roots - removed + merged.
  auto group_roots = in.group_roots;
  auto& roots = group_roots[req.group_name];
  for (const auto& name : req.components_to_remove) roots.erase(name);
  for (const auto& [name, version] : req.components_to_add) roots[name] = version;
  if (roots.empty()) group_roots.erase(req.group_name);
  std::map<std::string, std::string> requirements;
  for (const auto& [group, members] : group_roots) {
    for (const auto& [name, version] : members) {
      if (group == req.group_name || !requirements.count(name)) requirements[name] = version;
    }
  }

  std::vector<std::string> store_problems;
  std::map<std::pair<std::string, std::string>, recipe::Recipe> recipes;
  for (auto& r : store.LoadAll(&store_problems)) {
    recipes[{r.name, r.version.ToStringWithBuild()}] = std::move(r);
  }
  for (const auto& [key, f] : from_dir) recipes[key] = f.recipe;  // the folder wins
  std::vector<recipe::Recipe> all;
  for (const auto& [key, r] : recipes) all.push_back(r);
  auto catalog = deploy::CatalogFromRecipes(all, nullptr);
  auto resolved = deploy::ResolveWithBuiltins(requirements, catalog);
  if (!resolved.ok()) {
    const std::string& why = resolved.error().message;
    for (const auto& p : problems) {
      for (const auto& [name, version] : req.components_to_add) {
        if (why.find(name) != std::string::npos && p.find(name) != std::string::npos) {
          // The loader refuses a malformed image reference; the nucleus names that case.
          const bool bad_image = p.find("docker artifact URI") != std::string::npos;
          return Failure(bad_image ? "DOCKER_ARTIFACT_URI_NOT_VALID" : "RECIPE_PARSE_ERROR", p);
        }
      }
    }
    std::string message = why;
    if (!problems.empty()) {
      message +=
          " (recipe folder problems: " + problems.front() +
          (problems.size() > 1 ? " and " + std::to_string(problems.size() - 1) + " more" : "") +
          ")";
    }
    return Failure(ResolutionCode(why), message);
  }

  for (const auto& [name, update] : req.configuration) {
    if (!resolved->resolution.versions.count(name)) {
      return Failure("COMPONENT_CONFIGURATION_NOT_VALID",
                     "--update-config names " + name + ", which is not in the deployment");
    }
  }

  Plan plan;
  plan.group_roots = group_roots;
  std::map<std::string, Result<lifecycle::RunAs>> users;  // one lookup per user
  const bool have_docker_manager =
      resolved->builtins.count(std::string(deploy::kDockerApplicationManager)) > 0;
  const bool have_token_exchange =
      resolved->builtins.count(std::string(deploy::kTokenExchangeService)) > 0;
  for (const auto& [name, version] : resolved->resolution.versions) {
    const std::string v = version.ToStringWithBuild();
    const recipe::Recipe& r = recipes.at({name, v});
    recipe::SpecialiseOptions options;
    options.platform = in.platform;
    options.root = in.root;
    options.thing_name = in.runtime.thing_name;
    auto effective = recipe::Specialise(r, options);
    if (!effective.ok()) return Failure("RECIPE_MISSING_MANIFEST", effective.error().message);
    for (const auto& a : effective->artifacts) {
      if (a.scheme == "docker" && !have_docker_manager) {
        return Failure("MISSING_DOCKER_APPLICATION_MANAGER",
                       name + " " + v + " has the docker artifact " + a.uri +
                           " but does not "
                           "depend on " +
                           std::string(deploy::kDockerApplicationManager));
      }
      if (a.scheme != "docker") continue;
      // Before anything is pulled: a malformed reference, or a private ECR image
      // without the service whose credentials sign GetAuthorizationToken.
      auto ref = docker::ParseImageReference(a.uri);
      if (!ref.ok()) {
        return Failure("DOCKER_ARTIFACT_URI_NOT_VALID",
                       name + " " + v + ": " + ref.error().message);
      }
      if (ref->kind == docker::RegistryKind::kPrivateEcr && !have_token_exchange) {
        return Failure("MISSING_TOKEN_EXCHANGE_SERVICE",
                       name + " " + v + " has the private ECR image " + a.uri +
                           " but does not depend on " + std::string(deploy::kTokenExchangeService) +
                           ", whose credentials are needed to pull it");
      }
    }

    std::optional<std::string> user;
    if (auto it = req.run_with.find(name); it != req.run_with.end() && it->second.posix_user) {
      if (!it->second.posix_user->empty()) user = *it->second.posix_user;
    } else if (auto cur = in.run_with.find(name); cur != in.run_with.end()) {
      user = cur->second;
    }
    std::optional<std::string> effective_user = user ? user : in.runtime.run_with_default_user;
    std::optional<artifact::Owner> owner;
    if (effective_user) {
      auto cached = users.find(*effective_user);
      if (cached == users.end()) {
        cached = users.emplace(*effective_user, lifecycle::LookupRunAs(*effective_user)).first;
      }
      const auto& run_as = cached->second;
      if (!run_as.ok()) {
        return Failure("RUN_WITH_CONFIG_NOT_VALID", name + ": cannot run as '" + *effective_user +
                                                        "': " + run_as.error().message);
      }
      owner = artifact::Owner{run_as->uid, run_as->gid};
    } else if (::geteuid() == 0) {
      return Failure("RUN_WITH_CONFIG_NOT_VALID",
                     "no user to run " + name +
                         " as: set runWithDefault.posixUser in the runtime "
                         "configuration, or deploy with --runWith " +
                         name + ":posixUser=USER");
    }

    if (auto f = from_dir.find({name, v}); f != from_dir.end()) {
      auto put = store.PutRecipeFile(f->second.path, r);
      if (!put.ok()) return Failure("IO_WRITE_ERROR", put.error().message);
    }
    auto prepared = store.PrepareArtifacts(r, effective->artifacts, req.artifact_dir, owner);
    if (!prepared.ok()) {
      return Failure(prepared.error().code.empty() ? "IO_ERROR" : prepared.error().code,
                     prepared.error().message);
    }

    ServiceDefinition def;
    def.recipe = r;
    def.dependencies = resolved->resolution.dependencies[name];
    def.run_with_user = user;
    plan.services[name] = std::move(def);
    plan.touched.insert(name);
  }
  return plan;
}

}  // namespace

std::string ErrorType(const std::string& code) {
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {"RECIPE_PARSE_ERROR", "COMPONENT_RECIPE_ERROR"},
      {"RECIPE_MISSING_MANIFEST", "COMPONENT_RECIPE_ERROR"},
      {"ARTIFACT_CHECKSUM_MISMATCH", "COMPONENT_RECIPE_ERROR"},
      {"UNSUPPORTED_ARTIFACT_SCHEME", "COMPONENT_RECIPE_ERROR"},
      {"COMPONENT_CIRCULAR_DEPENDENCY_ERROR", "REQUEST_ERROR"},
      {"COMPONENT_VERSION_REQUIREMENTS_NOT_MET", "REQUEST_ERROR"},
      {"NO_AVAILABLE_COMPONENT_VERSION", "REQUEST_ERROR"},
      {"MISSING_DOCKER_APPLICATION_MANAGER", "REQUEST_ERROR"},
      {"MISSING_TOKEN_EXCHANGE_SERVICE", "REQUEST_ERROR"},
      // The nucleus's types for its Docker codes.
      {"DOCKER_ARTIFACT_URI_NOT_VALID", "COMPONENT_RECIPE_ERROR"},
      {"DOCKER_SERVICE_UNAVAILABLE", "DEPENDENCY_ERROR"},
      {"USER_NOT_AUTHORIZED_FOR_DOCKER", "PERMISSION_ERROR"},
      {"DOCKER_PULL_ERROR", "DEPENDENCY_ERROR"},
      {"DOCKER_LOGIN_ERROR", "DEPENDENCY_ERROR"},
      {"GET_ECR_CREDENTIAL_ERROR", "PERMISSION_ERROR"},
      {"RUN_WITH_CONFIG_NOT_VALID", "REQUEST_ERROR"},
      {"COMPONENT_CONFIGURATION_NOT_VALID", "REQUEST_ERROR"},
      {"LOCAL_RECIPE_NOT_FOUND", "DEVICE_ERROR"},
      {"LOCAL_ARTIFACT_NOT_FOUND", "DEVICE_ERROR"},
      {"ARTIFACT_UNARCHIVE_ERROR", "DEVICE_ERROR"},
      {"IO_ERROR", "DEVICE_ERROR"},
      {"IO_WRITE_ERROR", "DEVICE_ERROR"},
      {"SET_PERMISSION_ERROR", "DEVICE_ERROR"},
      {"COMPONENT_BROKEN", "USER_COMPONENT_ERROR"},
      {"DEPLOYMENT_TIMEOUT", "USER_COMPONENT_ERROR"},
      {"S3_ACCESS_DENIED", "PERMISSION_ERROR"},
      {"S3_HEAD_OBJECT_ACCESS_DENIED", "PERMISSION_ERROR"},
      {"S3_RESOURCE_NOT_FOUND", "REQUEST_ERROR"},
      {"S3_HEAD_OBJECT_RESOURCE_NOT_FOUND", "REQUEST_ERROR"},
      {"S3_BAD_REQUEST", "REQUEST_ERROR"},
      {"ARTIFACT_DOWNLOAD_ERROR", "NETWORK_ERROR"},
  };
  auto it = kTypes.find(code);
  return it == kTypes.end() ? "UNKNOWN_ERROR" : it->second;
}

std::vector<std::string> ErrorStack(const std::string& code) {
  std::vector<std::string> stack = {"DEPLOYMENT_FAILURE"};
  if (code == "COMPONENT_VERSION_REQUIREMENTS_NOT_MET" ||
      code == "COMPONENT_CIRCULAR_DEPENDENCY_ERROR") {
    stack.push_back("NO_AVAILABLE_COMPONENT_VERSION");
  } else if (code == "ARTIFACT_CHECKSUM_MISMATCH" || code == "LOCAL_ARTIFACT_NOT_FOUND" ||
             code == "ARTIFACT_UNARCHIVE_ERROR" || code == "UNSUPPORTED_ARTIFACT_SCHEME" ||
             code.rfind("S3_", 0) == 0) {
    stack.push_back("ARTIFACT_DOWNLOAD_ERROR");
  } else if (code == "RECIPE_PARSE_ERROR" || code == "RECIPE_MISSING_MANIFEST") {
    stack.push_back("COMPONENT_PACKAGE_LOADING_ERROR");
  } else if (code == "COMPONENT_BROKEN" || code == "DEPLOYMENT_TIMEOUT") {
    stack.push_back("COMPONENT_UPDATE_ERROR");
  }
  if (stack.back() != code) stack.push_back(code);
  return stack;
}

Deployer::Deployer(boost::asio::io_context& io, config::StateStore& state, config::Tree& tree,
                   Services& services, store::ComponentStore& store, logs::Logs& logs,
                   const ServiceEnvironment& env)
    : io_(io),
      state_(state),
      tree_(tree),
      services_(services),
      store_(store),
      logs_(logs),
      env_(env),
      deadline_(io),
      recheck_(io) {
  services_.OnAnyChange([this] { CheckSettled(); });
}

Deployer::~Deployer() {
  *alive_ = false;
  services_.OnAnyChange(nullptr);
  pool_.join();
}

std::map<std::string, ServiceDefinition> Deployer::DefinitionsFromTree(
    std::vector<std::string>* problems) {
  std::map<std::string, ServiceDefinition> out;
  const config::Node* services = tree_.Find({"services"});
  if (!services) return out;
  for (const auto& child : services->children()) {
    if (!child->is_container() || IsReservedService(child->name())) continue;
    const config::Node* version = child->Child("version");
    if (!version || !version->value().is_string()) continue;
    const std::string name = child->name();
    auto loaded = store_.LoadRecipe(name, version->value().get<std::string>());
    if (!loaded.ok()) {
      problems->push_back(loaded.error().message);
      continue;
    }
    ServiceDefinition def;
    def.recipe = std::move(*loaded);
    if (const config::Node* deps = child->Child("dependencies"); deps && deps->value().is_array()) {
      for (const auto& d : deps->value()) {
        if (!d.is_string()) continue;
        std::string text = d.get<std::string>();
        auto colon = text.rfind(':');
        if (colon == std::string::npos) continue;
        def.dependencies[text.substr(0, colon)] = text.substr(colon + 1) == "SOFT"
                                                      ? deploy::DependencyType::kSoft
                                                      : deploy::DependencyType::kHard;
      }
    }
    if (const config::Node* rw = child->Child("runWith")) {
      if (const config::Node* user = rw->Child("posixUser"); user && user->value().is_string()) {
        def.run_with_user = user->value().get<std::string>();
      }
    }
    out[name] = std::move(def);
  }
  return out;
}

void Deployer::Recover() {
  std::vector<std::string> problems;
  auto defs = DefinitionsFromTree(&problems);
  for (const auto& p : problems) {
    logs_.Log(logs::Level::kError, "Deployer", "component-load-error", p);
  }
  for (const auto& [name, problem] : services_.Apply(defs, {})) {
    (void)name;
    (void)problem;  // Services logged it
  }
  auto current = state_.Get(kCurrent, "current");
  if (current.ok() && *current) {
    Json saved = Json::parse(**current, nullptr, false);
    auto front = state_.FrontDeployment();
    if (!saved.is_discarded() && front.ok() && *front && (*front)->seq == saved.value("seq", -1)) {
      Json body = Json::parse((*front)->body, nullptr, false);
      auto request =
          deploy::ParseCreateLocalDeployment(body.is_discarded() ? Json() : body["request"]);
      if (request.ok()) {
        Active a;
        a.id = saved.value("id", "");
        a.seq = (*front)->seq;
        a.request = std::move(*request);
        a.snapshot = saved["snapshot"];
        for (const auto& t : saved["touched"]) a.touched.insert(t.get<std::string>());
        const std::string phase = saved.value("phase", "");
        if (saved.contains("failure")) {
          a.failure = DeploymentFailure{saved["failure"].value("code", ""),
                                        saved["failure"].value("message", "")};
        }
        active_ = std::move(a);
        logs_.Log(logs::Level::kInfo, "Deployer", "deployment-resume",
                  "resuming a deployment interrupted by a restart",
                  {{"deploymentId", active_->id}, {"phase", phase}});
        if (phase == "rolling_back") {
          StartRollback();
        } else {
          active_->phase = Phase::kApplying;
          BeginWait();
        }
        return;
      }
    }
    // The marker does not match the queue: the deployment it names already finished.
    (void)state_.Delete(kCurrent, "current");
  }
  Pump();
}

Result<std::string> Deployer::Submit(const deploy::LocalDeployment& deployment) {
  if (shutting_down_) return MakeError("ServiceError", "the runtime is shutting down");
  const std::string id = NewDeploymentId();
  Json body = {{"id", id}, {"request", deploy::ToRequestJson(deployment)}};
  Json record = {{"deploymentId", id},
                 {"status", "QUEUED"},
                 {"createdOn", std::to_string(NowMs())},
                 {"deploymentStatusDetails", Json::object()}};
  auto txn = state_.Begin();
  if (!txn.ok()) return MakeError("ServiceError", txn.error().message);
  auto queued = state_.EnqueueDeployment(body.dump());
  if (!queued.ok()) return MakeError("ServiceError", queued.error().message);
  auto put = state_.Put(kRecords, id, record.dump());
  if (!put.ok()) return MakeError("ServiceError", put.error().message);
  auto committed = txn->Commit();
  if (!committed.ok()) return MakeError("ServiceError", committed.error().message);
  logs_.Log(logs::Level::kInfo, "Deployer", "deployment-queued", "deployment queued",
            {{"deploymentId", id}});
  boost::asio::post(io_, [this, alive = alive_] {
    if (*alive) Pump();
  });
  return id;
}

Json Deployer::Record(const std::string& id) {
  auto got = state_.Get(kRecords, id);
  if (!got.ok() || !*got) return Json();
  Json record = Json::parse(**got, nullptr, false);
  return record.is_discarded() ? Json() : record;
}

Result<Json> Deployer::Status(const std::string& id) {
  Json record = Record(id);
  if (record.is_null()) return MakeError("ResourceNotFoundError", "no deployment with id " + id);
  if (active_ && active_->id == id && active_->phase == Phase::kPreparing &&
      !active_->progress.empty()) {
    std::string text;
    for (const auto& [item, where] : active_->progress) {
      text += (text.empty() ? "" : "; ") + item + " " + where;
    }
    record["progress"] = text;
  }
  return record;
}

void Deployer::NoteProgress(const std::string& item, const std::string& text) {
  if (!active_ || active_->phase != Phase::kPreparing) return;
  active_->progress[item] = text;
}

std::vector<Json> Deployer::List() {
  std::vector<Json> out;
  auto all = state_.List(kRecords);
  if (!all.ok()) return out;
  for (const auto& [id, text] : *all) {
    Json record = Json::parse(text, nullptr, false);
    if (!record.is_discarded()) out.push_back(std::move(record));
  }
  std::stable_sort(out.begin(), out.end(), [](const Json& a, const Json& b) {
    return std::stoll(a.value("createdOn", "0")) < std::stoll(b.value("createdOn", "0"));
  });
  return out;
}

Result<std::string> Deployer::Cancel(const std::string& id) {
  Json record = Record(id);
  if (record.is_null()) return MakeError("ResourceNotFoundError", "no deployment with id " + id);
  const std::string status = record.value("status", "");
  if (active_ && active_->id == id) {
    if (active_->phase == Phase::kPreparing) {
      active_->cancel_requested = true;
      return std::string("cancel requested: the deployment stops before it changes anything");
    }
    return MakeError("ServiceError",
                     "deployment " + id + " is already being applied and cannot be canceled");
  }
  if (status != "QUEUED") {
    return MakeError("ServiceError", "deployment " + id + " is " + status + ", not QUEUED");
  }
  auto queue = state_.ListDeployments();
  if (!queue.ok()) return MakeError("ServiceError", queue.error().message);
  for (const auto& q : *queue) {
    Json body = Json::parse(q.body, nullptr, false);
    if (body.is_discarded() || body.value("id", "") != id) continue;
    auto txn = state_.Begin();
    if (!txn.ok()) return MakeError("ServiceError", txn.error().message);
    record["status"] = "CANCELED";
    if (!state_.RemoveDeployment(q.seq).ok() || !state_.Put(kRecords, id, record.dump()).ok() ||
        !txn->Commit().ok()) {
      return MakeError("ServiceError", "could not record the cancellation");
    }
    return std::string("deployment " + id + " canceled");
  }
  return MakeError("ServiceError", "deployment " + id + " is no longer queued");
}

void Deployer::Shutdown() {
  shutting_down_ = true;
  deadline_.cancel();
}

void Deployer::Pump() {
  if (active_ || shutting_down_) return;
  auto front = state_.FrontDeployment();
  if (!front.ok() || !*front) return;
  Json body = Json::parse((*front)->body, nullptr, false);
  const int64_t seq = (*front)->seq;
  Active a;
  a.seq = seq;
  a.phase = Phase::kPreparing;
  a.id = body.is_discarded() ? "" : body.value("id", "");
  auto request = deploy::ParseCreateLocalDeployment(body.is_discarded() ? Json() : body["request"]);
  active_ = std::move(a);
  if (!request.ok()) {
    Finish("REJECTED", "REJECTED",
           DeploymentFailure{"DEPLOYMENT_DOCUMENT_NOT_VALID", request.error().message});
    return;
  }
  active_->request = std::move(*request);
  PutRecordField(active_->id, "IN_PROGRESS", "", std::nullopt);
  logs_.Log(logs::Level::kInfo, "Deployer", "deployment-start", "deployment started",
            {{"deploymentId", active_->id}});
  StartPrepare();
}

void Deployer::StartPrepare() {
  PrepareInput in;
  in.request = active_->request;
  in.root = env_.root;
  in.platform = env_.platform;
  in.runtime = env_.runtime;
  in.s3 = store_.s3_client();
  in.images = store_.image_puller();
  if (auto roots = tree_.ToJson({"services", "DeploymentService", "GroupToRootComponents"});
      roots && roots->is_object()) {
    for (auto g = roots->begin(); g != roots->end(); ++g) {
      if (!g.value().is_object()) continue;
      for (auto c = g.value().begin(); c != g.value().end(); ++c) {
        if (c.value().is_object() && c.value().contains("version")) {
          in.group_roots[g.key()][c.key()] = c.value()["version"].get<std::string>();
        }
      }
    }
  }
  if (const config::Node* services = tree_.Find({"services"})) {
    for (const auto& child : services->children()) {
      const config::Node* rw = child->Child("runWith");
      const config::Node* user = rw ? rw->Child("posixUser") : nullptr;
      if (user && user->value().is_string()) {
        in.run_with[child->name()] = user->value().get<std::string>();
      }
    }
  }
  boost::asio::post(pool_, [this, alive = alive_, in = std::move(in)] {
    auto plan = PreparePlan(in);
    boost::asio::post(io_, [this, alive, plan = std::move(plan)]() mutable {
      if (*alive) OnPrepared(std::move(plan));
    });
  });
}

void Deployer::OnPrepared(Result<Plan> plan) {
  if (!active_) return;
  if (active_->cancel_requested) {
    Finish("CANCELED", "", std::nullopt);
    return;
  }
  if (shutting_down_) {
    // Leave it queued and IN_PROGRESS-free: the next start prepares it again.
    PutRecordField(active_->id, "QUEUED", "", std::nullopt);
    active_.reset();
    return;
  }
  if (!plan.ok()) {
    Fail(DeploymentFailure{plan.error().code, plan.error().message});
    return;
  }
  Apply(std::move(*plan));
}

void Deployer::Apply(Plan plan) {
  // Newer wins in the tree: a clock that stepped back must not make this update stale.
  const config::Node* top = tree_.Find({});
  const int64_t ts = std::max(NowMs(), top ? top->modtime() + 1 : int64_t{0});
  // Compute every configuration first: a bad RESET pointer must change nothing.
  std::map<std::string, Json> configs;
  for (const auto& [name, def] : plan.services) {
    auto current = tree_.ToJson({"services", name, "configuration"});
    std::vector<std::string> reset;
    Json merge = Json::object();
    if (auto it = active_->request.configuration.find(name);
        it != active_->request.configuration.end()) {
      reset = it->second.reset;
      merge = it->second.merge;
    }
    auto result = config::ApplyConfigurationUpdate(current ? *current : Json(),
                                                   def.recipe.default_configuration, reset, merge);
    if (!result.ok()) {
      Fail(DeploymentFailure{"COMPONENT_CONFIGURATION_NOT_VALID",
                             name + ": " + result.error().message});
      return;
    }
    configs[name] = std::move(*result);
  }

  active_->snapshot = tree_.Snapshot({"services"});
  active_->touched = plan.touched;
  if (const config::Node* services = tree_.Find({"services"})) {
    std::vector<std::string> gone;
    for (const auto& child : services->children()) {
      if (!IsReservedService(child->name()) && !plan.services.count(child->name())) {
        gone.push_back(child->name());
      }
    }
    for (const auto& name : gone) (void)tree_.Remove({"services", name}, ts);
  }
  for (const auto& [name, def] : plan.services) {
    (void)tree_.Replace({"services", name, "configuration"}, configs[name], ts);
    (void)tree_.Set({"services", name, "version"}, def.recipe.version.ToStringWithBuild(), ts);
    Json deps = Json::array();
    for (const auto& [dep, type] : def.dependencies) deps.push_back(DependencyText(dep, type));
    (void)tree_.Set({"services", name, "dependencies"}, deps, ts);
    if (def.run_with_user) {
      (void)tree_.Set({"services", name, "runWith", "posixUser"}, *def.run_with_user, ts);
    } else {
      (void)tree_.Remove({"services", name, "runWith"}, ts);
    }
  }
  Json roots = Json::object();
  for (const auto& [group, members] : plan.group_roots) {
    for (const auto& [name, version] : members) roots[group][name] = {{"version", version}};
  }
  (void)tree_.Replace({"services", "DeploymentService", "GroupToRootComponents"}, roots, ts);

  Json touched = Json::array();
  for (const auto& t : plan.touched) touched.push_back(t);
  Json current = {{"id", active_->id},
                  {"seq", active_->seq},
                  {"phase", "applying"},
                  {"snapshot", active_->snapshot},
                  {"touched", touched}};
  auto txn = state_.Begin();
  bool ok = txn.ok() && state_.SaveConfig(tree_).ok() &&
            state_.Put(kCurrent, "current", current.dump()).ok() && txn->Commit().ok();
  if (!ok) {
    // Nothing was committed: put the in-memory tree back and fail without a change.
    (void)tree_.Restore({"services"}, active_->snapshot);
    Fail(DeploymentFailure{"IO_WRITE_ERROR",
                           "could not save the new configuration to " + state_.path()});
    return;
  }
  active_->phase = Phase::kApplying;
  auto problems = services_.Apply(plan.services, plan.touched);
  if (!problems.empty()) {
    Fail(DeploymentFailure{"RUN_WITH_CONFIG_NOT_VALID",
                           problems.begin()->first + ": " + problems.begin()->second});
    return;
  }
  BeginWait();
}

void Deployer::BeginWait() {
  active_->waiting_since = std::chrono::steady_clock::now();
  deadline_.expires_after(env_.runtime.deployment_timeout);
  deadline_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || !active_) return;
    std::string waiting;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& name : active_->touched) {
      auto info = services_.Find(name);
      if (!info) continue;
      std::string why;
      if (!info->settled) {
        why = lifecycle::ToString(info->state);
      } else if (auto at = CountsAsUpAt(*info); at && now < *at) {
        why = "RUNNING, not up long enough yet";
      } else {
        continue;
      }
      waiting += (waiting.empty() ? "" : ", ") + name + " (" + why + ")";
    }
    const std::string message = "components did not settle within " +
                                std::to_string(env_.runtime.deployment_timeout.count()) +
                                " s: " + (waiting.empty() ? "components being removed" : waiting);
    if (active_->phase == Phase::kRollingBack) {
      FinishRollback(false);
    } else {
      Fail(DeploymentFailure{"DEPLOYMENT_TIMEOUT", message});
    }
  });
  boost::asio::post(io_, [this, alive = alive_] {
    if (*alive) CheckSettled();
  });
}

std::optional<std::chrono::steady_clock::time_point> Deployer::CountsAsUpAt(
    const Services::Info& info) const {
  if (info.state != State::kRunning || !info.run_based) return std::nullopt;
  // A Run process that dies right after starting must fail the deployment; one that
  // already failed during this wait must outlive its longest failed run.
  std::optional<std::chrono::milliseconds> failed_run;
  for (const auto& failed : info.failed_runs) {
    if (failed.at >= active_->waiting_since && (!failed_run || failed.lasted > *failed_run)) {
      failed_run = failed.lasted;
    }
  }
  return info.running_since + env_.runtime.RunStableAfter(failed_run);
}

void Deployer::CheckSettled() {
  if (!active_ || (active_->phase != Phase::kApplying && active_->phase != Phase::kRollingBack)) {
    return;
  }
  if (shutting_down_) return;
  bool all_settled = services_.removing() == 0;
  const auto now = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> recheck_at;
  for (const auto& name : active_->touched) {
    auto info = services_.Find(name);
    if (!info) {
      all_settled = false;
      continue;
    }
    if (info->state == State::kBroken || services_.BlockedByBroken(name)) {
      const std::string message =
          info->state == State::kBroken
              ? name + " is BROKEN (it failed three times in a row; see logs/" + name + ".log)"
              : name + " cannot start: a HARD dependency is BROKEN";
      if (active_->phase == Phase::kRollingBack) {
        FinishRollback(false);
      } else {
        Fail(DeploymentFailure{"COMPONENT_BROKEN", message});
      }
      return;
    }
    if (!info->settled) {
      all_settled = false;
    } else if (auto at = CountsAsUpAt(*info); at && now < *at) {
      all_settled = false;
      if (!recheck_at || *at < *recheck_at) recheck_at = *at;
    }
  }
  if (recheck_at) {
    recheck_.expires_at(*recheck_at);
    recheck_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (!ec && *alive) CheckSettled();
    });
  }
  if (!all_settled) return;
  if (active_->phase == Phase::kRollingBack) {
    FinishRollback(true);
  } else {
    Succeed();
  }
}

void Deployer::Succeed() {
  deadline_.cancel();
  recheck_.cancel();
  Finish("SUCCEEDED", "SUCCESSFUL", std::nullopt);
  // Versions nothing runs any more leave the store now that no rollback needs them.
  std::vector<store::StoredVersion> keep;
  for (const auto& info : services_.List()) keep.push_back({info.name, info.version});
  auto* store = &store_;
  boost::asio::post(pool_, [store, keep = std::move(keep)] { store->RemoveAllExcept(keep); });
}

void Deployer::Fail(DeploymentFailure failure) {
  deadline_.cancel();
  recheck_.cancel();
  logs_.Log(logs::Level::kError, "Deployer", "deployment-failure", failure.message,
            {{"deploymentId", active_->id}, {"errorCode", failure.code}});
  if (active_->phase == Phase::kApplying) {
    if (active_->request.failure_policy == deploy::FailurePolicy::kRollback) {
      active_->failure = std::move(failure);
      StartRollback();
      return;
    }
    Finish("FAILED", "FAILED_ROLLBACK_NOT_REQUESTED", failure);
    return;
  }
  Finish("FAILED", "FAILED_NO_STATE_CHANGE", failure);
}

void Deployer::StartRollback() {
  active_->phase = Phase::kRollingBack;
  if (active_->snapshot.is_null()) {
    (void)tree_.Remove({"services"}, NowMs());
  } else {
    (void)tree_.Restore({"services"}, active_->snapshot);
  }
  Json touched = Json::array();
  std::vector<std::string> problems;
  auto defs = DefinitionsFromTree(&problems);
  active_->touched.clear();
  for (const auto& [name, def] : defs) {
    active_->touched.insert(name);
    touched.push_back(name);
  }
  Json failure = Json::object();
  if (active_->failure)
    failure = {{"code", active_->failure->code}, {"message", active_->failure->message}};
  Json current = {{"id", active_->id},       {"seq", active_->seq},
                  {"phase", "rolling_back"}, {"snapshot", active_->snapshot},
                  {"touched", touched},      {"failure", failure}};
  auto txn = state_.Begin();
  if (!(txn.ok() && state_.SaveConfig(tree_).ok() &&
        state_.Put(kCurrent, "current", current.dump()).ok() && txn->Commit().ok())) {
    logs_.Log(logs::Level::kError, "Deployer", "rollback-save-error",
              "could not save the rolled back configuration; it applies in memory");
  }
  logs_.Log(logs::Level::kInfo, "Deployer", "deployment-rollback", "rolling back",
            {{"deploymentId", active_->id}});
  services_.Apply(defs, active_->touched);
  BeginWait();
}

void Deployer::FinishRollback(bool complete) {
  deadline_.cancel();
  recheck_.cancel();
  Finish("FAILED", complete ? "FAILED_ROLLBACK_COMPLETE" : "FAILED_UNABLE_TO_ROLLBACK",
         active_->failure);
}

void Deployer::PutRecordField(const std::string& id, const std::string& status,
                              const std::string& detailed,
                              const std::optional<DeploymentFailure>& f) {
  Json record = Record(id);
  if (record.is_null()) {
    record = {{"deploymentId", id}, {"createdOn", std::to_string(NowMs())}};
  }
  record["status"] = status;
  Json details = Json::object();
  if (!detailed.empty()) details["detailedDeploymentStatus"] = detailed;
  if (f) {
    Json stack = Json::array();
    for (const auto& s : ErrorStack(f->code)) stack.push_back(s);
    details["deploymentErrorStack"] = stack;
    details["deploymentErrorTypes"] = Json::array({ErrorType(f->code)});
    details["deploymentFailureCause"] = f->message;
  }
  record["deploymentStatusDetails"] = details;
  (void)state_.Put(kRecords, id, record.dump());
}

void Deployer::Finish(const std::string& status, const std::string& detailed,
                      const std::optional<DeploymentFailure>& failure) {
  const std::string id = active_->id;
  {
    auto txn = state_.Begin();
    PutRecordField(id, status, detailed, failure);
    (void)state_.Delete(kCurrent, "current");
    (void)state_.RemoveDeployment(active_->seq);
    if (txn.ok()) {
      auto committed = txn->Commit();
      if (!committed.ok()) {
        logs_.Log(logs::Level::kError, "Deployer", "deployment-save-error",
                  committed.error().message);
      }
    }
  }
  logs_.Log(status == "SUCCEEDED" ? logs::Level::kInfo : logs::Level::kWarn, "Deployer",
            "deployment-finished", "deployment finished",
            {{"deploymentId", id}, {"status", status}, {"detailedStatus", detailed}});
  active_.reset();
  TrimHistory();
  if (on_finished_) on_finished_(id, status);
  boost::asio::post(io_, [this, alive = alive_] {
    if (*alive) Pump();
  });
}

void Deployer::TrimHistory() {
  auto all = List();
  size_t finished = 0;
  for (const auto& r : all) {
    const std::string s = r.value("status", "");
    if (s != "QUEUED" && s != "IN_PROGRESS") ++finished;
  }
  for (const auto& r : all) {
    if (finished <= kMaxFinishedRecords) break;
    const std::string s = r.value("status", "");
    if (s == "QUEUED" || s == "IN_PROGRESS") continue;
    (void)state_.Delete(kRecords, r.value("deploymentId", ""));
    --finished;
  }
}

}  // namespace lichen::nucleus
