// Authorization of IPC operations: the `accessControl` policies components declare in
// their configuration, and the decision whether a component may call an operation on a
// resource. Pure logic (no I/O, no locks): the owner feeds each component's policies in
// and asks questions; everything runs on the daemon's loop thread.
//
// Behaviour follows the spec ("Authorization") and, where it is silent, the Greengrass
// nucleus (authorization/AuthorizationHandler.java, AuthorizationModule.java,
// AuthorizationPolicyParser.java, WildcardTrie.java):
// - Policies live in services.<component>.configuration.accessControl as
//   { "<serviceId>": { "<policyId>": {policyDescription, operations: [...],
//   resources: [...]} } }. The principal is the component that declares them.
// - Field names (operations, resources, policyDescription) are case-insensitive, as the
//   nucleus reads them (Jackson ACCEPT_CASE_INSENSITIVE_PROPERTIES). Service ids are
//   compared exactly, as the nucleus looks them up in its table of services; a service id
//   that only differs in case is reported with a hint.
// - Operations are full names ("aws.greengrass#PublishToTopic") or "*" (every operation
//   of that service). Names the service does not have are reported and ignored.
// - Resources: `*` matches any run of characters, `/` and the empty run included. In
//   aws.greengrass.ipc.mqttproxy, MQTT wildcards also apply where MQTT allows them: `+` as
//   a whole level is one level, `#` as the whole last level is the rest of the topic
//   (and `a/#` also matches `a`); anywhere else, and in every other service, `+` and `#`
//   are plain characters. `${*}`, `${?}` and `${$}` are a literal `*`, `?` and `$`; a
//   bare `?` (the nucleus does not support it as a wildcard) and any other `${...}` make
//   that resource invalid (reported, the policy's other resources still count).
//   `{iot:thingName}` is replaced by the thing name before anything else.
// - A policy without resources allows only checks that name no resource (the nucleus
//   stores a null resource); an empty resource name is never allowed.
// - Malformed input never fails the whole component: each policy (or resource, or
//   operation) that cannot be used is skipped and reported in a PolicyProblem. The
//   nucleus drops a component's whole accessControl on some of these; Lichen keeps what
//   can be read and says what it skipped.
//
// Matching cost: a resource is compiled once into literal characters and wildcards, and
// matched with the two-pointer glob algorithm (on a mismatch only the most recent `*`
// takes one more character). `+` and `#` never need backtracking: a valid `+` is
// followed by `/` or the end, so it takes exactly up to the next `/`. Matching is
// O(resource x topic) in the worst case and linear in practice; never exponential.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recipe/source_tree.h"

namespace lichen::ipc {

using Json = recipe::Json;

// Service ids that policies are written for (spec table).
inline constexpr std::string_view kPubSubService = "aws.greengrass.ipc.pubsub";
inline constexpr std::string_view kMqttProxyService = "aws.greengrass.ipc.mqttproxy";
inline constexpr std::string_view kSecretManagerService = "aws.greengrass.SecretManager";
inline constexpr std::string_view kShadowManagerService = "aws.greengrass.ShadowManager";
inline constexpr std::string_view kLifecycleService = "aws.greengrass.ipc.lifecycle";
inline constexpr std::string_view kCliService = "aws.greengrass.Cli";

// Replaced in resources by the core device's thing name.
inline constexpr std::string_view kThingNameVariable = "{iot:thingName}";

// The service whose policies govern `operation` (a full name such as
// "aws.greengrass#PublishToTopic"), or nullopt when no service does: either the
// operation needs no policy or it is unknown (see RequiresAuthorization).
std::optional<std::string_view> ServiceForOperation(std::string_view operation);

// False only for the operations the spec lets any component call without a policy:
// GetConfiguration, SubscribeToConfigurationUpdate, UpdateConfiguration (the handler
// still restricts it to the caller's own component) and UpdateState. Everything else,
// an unknown operation included, needs a policy: with no service for it, none can allow
// it.
bool RequiresAuthorization(std::string_view operation);

// Something in a component's accessControl that was skipped.
struct PolicyProblem {
  std::string service;  // as written; "" when about accessControl as a whole
  std::string policy;   // as written; "" when about a whole service entry
  std::string message;
  // True when the whole policy (or service entry) is ignored; false when only one of its
  // operations or resources is, or for a warning.
  bool ignored = true;
};

// "accessControl.<service>.<policy>: <message>" for logs.
std::string Describe(const PolicyProblem& problem);

class Authorizer {
 public:
  explicit Authorizer(std::string thing_name = "");

  // Replaces `component`'s policies with those of `access_control` (the value of its
  // configuration.accessControl; null or absent means none; a string holding JSON is
  // parsed, as the nucleus does for a leaf). Returns what was skipped, also kept in
  // problems(component).
  std::vector<PolicyProblem> SetPolicies(const std::string& component, const Json& access_control);
  void Remove(const std::string& component);

  // Policies are re-read with the new name in place of {iot:thingName}.
  void SetThingName(std::string thing_name);
  const std::string& thing_name() const { return thing_name_; }

  // Whether `component`'s policies for `service_id` let it call `operation` (a full name
  // the service has) on `resource`. nullopt checks the operation alone (any policy with
  // that operation allows it, whatever its resources), as the nucleus does for a null
  // resource. An unknown service, an operation the service does not have, or an empty
  // resource is never allowed.
  bool Allowed(std::string_view component, std::string_view service_id, std::string_view operation,
               std::optional<std::string_view> resource) const;

  // The nucleus's wording for a refusal (UnauthorizedError's message).
  static std::string DenialMessage(std::string_view component, std::string_view service_id,
                                   std::string_view operation, std::string_view resource);

  const std::vector<PolicyProblem>& problems(const std::string& component) const;
  size_t policy_count(const std::string& component) const;

  // A compiled resource pattern; public so tests can match resources directly.
  class Pattern {
   public:
    enum class Style { kStandard, kMqtt };
    // nullopt with `error` set when the resource is invalid.
    static std::optional<Pattern> Compile(std::string_view resource, Style style,
                                          std::string* error = nullptr);
    bool Matches(std::string_view text) const;

   private:
    enum class Kind : std::uint8_t { kLiteral, kStar, kPlus, kHash };
    struct Token {
      Kind kind;
      char c;
    };
    std::vector<Token> tokens_;
  };

 private:
  struct Policy {
    std::string id;
    std::string description;
    bool any_operation = false;
    std::vector<std::string> operations;
    std::vector<Pattern> resources;
  };
  struct ComponentPolicies {
    Json access_control;  // as given, to re-read when the thing name changes
    std::map<std::string, std::vector<Policy>, std::less<>> by_service;
    std::vector<PolicyProblem> problems;
  };

  ComponentPolicies Parse(const Json& access_control) const;

  std::string thing_name_;
  std::map<std::string, ComponentPolicies, std::less<>> components_;
};

}  // namespace lichen::ipc
