#include "ipc/authorization.h"

#include <algorithm>
#include <array>

#include "config/tree.h"

namespace lichen::ipc {
namespace {

struct OperationEntry {
  std::string_view operation;
  std::string_view service;
};

// Which service's policies govern each operation (spec table; shadow and CLI operations
// as the nucleus and the Greengrass CLI register them).
constexpr std::array kOperations = {
    OperationEntry{"aws.greengrass#PublishToTopic", kPubSubService},
    OperationEntry{"aws.greengrass#SubscribeToTopic", kPubSubService},
    OperationEntry{"aws.greengrass#PublishToIoTCore", kMqttProxyService},
    OperationEntry{"aws.greengrass#SubscribeToIoTCore", kMqttProxyService},
    OperationEntry{"aws.greengrass#GetSecretValue", kSecretManagerService},
    OperationEntry{"aws.greengrass#GetThingShadow", kShadowManagerService},
    OperationEntry{"aws.greengrass#UpdateThingShadow", kShadowManagerService},
    OperationEntry{"aws.greengrass#DeleteThingShadow", kShadowManagerService},
    OperationEntry{"aws.greengrass#ListNamedShadowsForThing", kShadowManagerService},
    OperationEntry{"aws.greengrass#PauseComponent", kLifecycleService},
    OperationEntry{"aws.greengrass#ResumeComponent", kLifecycleService},
    OperationEntry{"aws.greengrass#GetComponentDetails", kCliService},
    OperationEntry{"aws.greengrass#ListComponents", kCliService},
    OperationEntry{"aws.greengrass#RestartComponent", kCliService},
    OperationEntry{"aws.greengrass#StopComponent", kCliService},
    OperationEntry{"aws.greengrass#CreateLocalDeployment", kCliService},
    OperationEntry{"aws.greengrass#GetLocalDeploymentStatus", kCliService},
    OperationEntry{"aws.greengrass#ListLocalDeployments", kCliService},
    OperationEntry{"aws.greengrass#CancelLocalDeployment", kCliService},
    OperationEntry{"aws.greengrass#CreateDebugPassword", kCliService},
    OperationEntry{"aws.greengrass#UpdateRecipesAndArtifacts", kCliService},
};

constexpr std::array kServices = {kPubSubService,        kMqttProxyService, kSecretManagerService,
                                  kShadowManagerService, kLifecycleService, kCliService};

constexpr std::array<std::string_view, 4> kNoPolicyOperations = {
    "aws.greengrass#GetConfiguration",
    "aws.greengrass#SubscribeToConfigurationUpdate",
    "aws.greengrass#UpdateConfiguration",
    "aws.greengrass#UpdateState",
};

constexpr std::string_view kAnyOperation = "*";

bool IsKnownService(std::string_view service) {
  return std::find(kServices.begin(), kServices.end(), service) != kServices.end();
}

bool ServiceHasOperation(std::string_view service, std::string_view operation) {
  return std::any_of(kOperations.begin(), kOperations.end(), [&](const OperationEntry& e) {
    return e.service == service && e.operation == operation;
  });
}

// The value of `key` in `object`, its name compared without case (as the nucleus reads
// policy fields); nullptr when absent.
const Json* FindField(const Json& object, std::string_view key) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (config::KeyEquals(it.key(), key)) return &it.value();
  }
  return nullptr;
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

std::optional<std::string_view> ServiceForOperation(std::string_view operation) {
  for (const auto& entry : kOperations) {
    if (entry.operation == operation) return entry.service;
  }
  return std::nullopt;
}

bool RequiresAuthorization(std::string_view operation) {
  return std::find(kNoPolicyOperations.begin(), kNoPolicyOperations.end(), operation) ==
         kNoPolicyOperations.end();
}

std::string Describe(const PolicyProblem& problem) {
  std::string where = "accessControl";
  if (!problem.service.empty()) where += "." + problem.service;
  if (!problem.policy.empty()) where += "." + problem.policy;
  return where + ": " + problem.message;
}

// --- Pattern ---

std::optional<Authorizer::Pattern> Authorizer::Pattern::Compile(std::string_view resource,
                                                                Style style, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<Pattern> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (resource.empty()) return fail("the resource is empty");
  Pattern pattern;
  auto& tokens = pattern.tokens_;
  auto push_star = [&tokens] {
    // "**" is "*": keeping one makes matching cheaper and changes nothing.
    if (tokens.empty() || tokens.back().kind != Kind::kStar) tokens.push_back({Kind::kStar, 0});
  };
  const bool mqtt = style == Style::kMqtt;
  // Alone, `#` is every topic (the nucleus's matchAll).
  if (mqtt && resource == "#") {
    push_star();
    return pattern;
  }
  const size_t n = resource.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = resource[i];
    if (c == '$' && i + 1 < n && resource[i + 1] == '{') {
      const bool valid =
          i + 3 < n && resource[i + 3] == '}' &&
          (resource[i + 2] == '*' || resource[i + 2] == '?' || resource[i + 2] == '$');
      if (!valid) {
        return fail("invalid escape sequence at offset " + std::to_string(i) +
                    " (only ${*}, ${?} and ${$} are escapes)");
      }
      tokens.push_back({Kind::kLiteral, resource[i + 2]});
      i += 3;
      continue;
    }
    if (c == '?') return fail("'?' is not a wildcard; write ${?} for the character");
    if (c == '*') {
      push_star();
      continue;
    }
    if (mqtt && c == '#' && i == n - 1 && i > 0 && resource[i - 1] == '/') {
      tokens.pop_back();  // the '/': kHash stands for "/#" (the rest, or nothing)
      tokens.push_back({Kind::kHash, 0});
      continue;
    }
    if (mqtt && c == '+' && (i == 0 || resource[i - 1] == '/') &&
        (i == n - 1 || resource[i + 1] == '/')) {
      tokens.push_back({Kind::kPlus, 0});
      continue;
    }
    tokens.push_back({Kind::kLiteral, c});
  }
  return pattern;
}

bool Authorizer::Pattern::Matches(std::string_view text) const {
  // Two-pointer glob: remember the last `*` and what it has taken; on a mismatch, let it
  // take one more character and retry what follows it. Committing to earlier stars is
  // safe because a later `*` can absorb anything they would have taken. A `+` is always
  // followed by `/`, the end or kHash, so it takes exactly the rest of the level and is
  // never a choice point.
  constexpr size_t kNone = static_cast<size_t>(-1);
  const size_t m = tokens_.size();
  const size_t n = text.size();
  size_t p = 0;
  size_t t = 0;
  size_t star_p = kNone;
  size_t star_t = 0;
  while (true) {
    if (p < m) {
      const Token& token = tokens_[p];
      switch (token.kind) {
        case Kind::kStar:
          star_p = p++;
          star_t = t;
          continue;
        case Kind::kPlus: {
          const size_t slash = text.find('/', t);
          t = slash == std::string_view::npos ? n : slash;
          ++p;
          continue;
        }
        case Kind::kHash:
          if (t == n || text[t] == '/') return true;
          break;
        case Kind::kLiteral:
          if (t < n && text[t] == token.c) {
            ++p;
            ++t;
            continue;
          }
          break;
      }
    } else if (t == n) {
      return true;
    }
    if (star_p == kNone || star_t >= n) return false;
    p = star_p + 1;
    t = ++star_t;
  }
}

// --- Authorizer ---

Authorizer::Authorizer(std::string thing_name) : thing_name_(std::move(thing_name)) {}

Authorizer::ComponentPolicies Authorizer::Parse(const Json& access_control) const {
  ComponentPolicies out;
  out.access_control = access_control;
  auto problem = [&out](std::string service, std::string policy, std::string message,
                        bool ignored = true) {
    out.problems.push_back({std::move(service), std::move(policy), std::move(message), ignored});
  };

  const Json* root = &access_control;
  Json parsed;
  if (root->is_null()) return out;
  if (root->is_string()) {
    // The nucleus accepts a leaf holding the policies as JSON text.
    parsed = Json::parse(root->get<std::string>(), nullptr, false);
    if (parsed.is_discarded()) {
      problem("", "", "is a string that is not JSON; no policy is used");
      return out;
    }
    root = &parsed;
  }
  if (!root->is_object()) {
    problem("", "", "must be an object of services; no policy is used");
    return out;
  }

  for (const auto& [service, policies] : root->items()) {
    if (!IsKnownService(service)) {
      std::string message = "unknown IPC service; its policies are ignored";
      for (auto known : kServices) {
        if (config::KeyEquals(known, service)) {
          message += " (service ids are case-sensitive: did you mean " + std::string(known) + "?)";
        }
      }
      problem(service, "", message);
      continue;
    }
    if (!policies.is_object()) {
      problem(service, "", "must be an object of policies; ignored");
      continue;
    }
    const auto style =
        service == kMqttProxyService ? Pattern::Style::kMqtt : Pattern::Style::kStandard;
    auto& list = out.by_service[service];
    for (const auto& [id, body] : policies.items()) {
      if (id.empty()) {
        problem(service, id, "a policy id must not be empty; ignored");
        continue;
      }
      if (!body.is_object()) {
        problem(service, id, "a policy must be an object; ignored");
        continue;
      }
      Policy policy;
      policy.id = id;
      if (const Json* d = FindField(body, "policyDescription"); d && d->is_string()) {
        policy.description = d->get<std::string>();
      }

      const Json* ops = FindField(body, "operations");
      if (!ops || !ops->is_array() || ops->empty()) {
        problem(service, id,
                ops && !ops->is_array() && !ops->is_null()
                    ? "operations must be a list; the policy is ignored"
                    : "operations is missing or empty; the policy is ignored");
        continue;
      }
      for (const auto& op : *ops) {
        if (!op.is_string()) {
          problem(service, id, "an operation must be a string; " + op.dump() + " is ignored",
                  false);
          continue;
        }
        const auto& name = op.get_ref<const std::string&>();
        if (name == kAnyOperation) {
          policy.any_operation = true;
        } else if (ServiceHasOperation(service, name)) {
          policy.operations.push_back(name);
        } else {
          std::string message = "'" + name + "' is not an operation of " + service + "; ignored";
          if (ServiceHasOperation(service, "aws.greengrass#" + name)) {
            message += " (write aws.greengrass#" + name + ")";
          }
          problem(service, id, message, false);
        }
      }
      if (!policy.any_operation && policy.operations.empty()) {
        problem(service, id, "no valid operation; the policy is ignored");
        continue;
      }

      const Json* resources = FindField(body, "resources");
      if (resources && !resources->is_null() && !resources->is_array()) {
        problem(service, id, "resources must be a list; the policy is ignored");
        continue;
      }
      if (!resources || resources->is_null() || resources->empty()) {
        problem(service, id, "no resources: the policy allows only checks that name no resource",
                false);
      } else {
        for (const auto& resource : *resources) {
          if (!resource.is_string()) {
            problem(service, id, "a resource must be a string; " + resource.dump() + " is ignored",
                    false);
            continue;
          }
          const std::string text =
              ReplaceAll(resource.get<std::string>(), kThingNameVariable, thing_name_);
          std::string error;
          auto pattern = Pattern::Compile(text, style, &error);
          if (!pattern) {
            problem(service, id, "resource '" + text + "': " + error + "; ignored", false);
            continue;
          }
          policy.resources.push_back(std::move(*pattern));
        }
        if (policy.resources.empty()) {
          // Unlike a policy without resources, this one meant to name some: allowing
          // resource-less checks would grant more than was written.
          problem(service, id, "no valid resource; the policy is ignored");
          continue;
        }
      }
      list.push_back(std::move(policy));
    }
  }
  return out;
}

std::vector<PolicyProblem> Authorizer::SetPolicies(const std::string& component,
                                                   const Json& access_control) {
  auto parsed = Parse(access_control);
  auto problems = parsed.problems;
  components_[component] = std::move(parsed);
  return problems;
}

void Authorizer::Remove(const std::string& component) { components_.erase(component); }

void Authorizer::SetThingName(std::string thing_name) {
  if (thing_name == thing_name_) return;
  thing_name_ = std::move(thing_name);
  for (auto& [component, policies] : components_) {
    policies = Parse(policies.access_control);
  }
}

bool Authorizer::Allowed(std::string_view component, std::string_view service_id,
                         std::string_view operation,
                         std::optional<std::string_view> resource) const {
  if (resource && resource->empty()) return false;
  if (!ServiceHasOperation(service_id, operation)) return false;
  auto c = components_.find(component);
  if (c == components_.end()) return false;
  auto s = c->second.by_service.find(service_id);
  if (s == c->second.by_service.end()) return false;
  for (const auto& policy : s->second) {
    if (!policy.any_operation && std::find(policy.operations.begin(), policy.operations.end(),
                                           operation) == policy.operations.end()) {
      continue;
    }
    if (!resource) return true;
    for (const auto& pattern : policy.resources) {
      if (pattern.Matches(*resource)) return true;
    }
  }
  return false;
}

std::string Authorizer::DenialMessage(std::string_view component, std::string_view service_id,
                                      std::string_view operation, std::string_view resource) {
  return "Principal " + std::string(component) + " is not authorized to perform " +
         std::string(service_id) + ":" + std::string(operation) + " on resource " +
         std::string(resource);
}

const std::vector<PolicyProblem>& Authorizer::problems(const std::string& component) const {
  static const std::vector<PolicyProblem> kNone;
  auto it = components_.find(component);
  return it == components_.end() ? kNone : it->second.problems;
}

size_t Authorizer::policy_count(const std::string& component) const {
  auto it = components_.find(component);
  if (it == components_.end()) return 0;
  size_t n = 0;
  for (const auto& [service, list] : it->second.by_service) n += list.size();
  return n;
}

}  // namespace lichen::ipc
