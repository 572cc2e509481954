// A per-component Docker API socket: how Lichen knows which containers a component
// started, so that it can stop and remove them when the component stops, whatever the
// reason and whether or not the recipe has a Shutdown step.
//
// A component gets DOCKER_HOST=unix://<root>/docker/<component>.sock. The docker CLI,
// docker-compose and the Docker SDKs all honour it. This proxy forwards every byte to
// the real daemon's socket, except that a container-create request
// (POST [/vX.Y]/containers/create) gets the proxy's labels added to its JSON body
// (lichen.component=<name>, lichen.root=<root>). Cleanup then asks the daemon for the
// containers with those labels.
//
// What it does not see: a component that talks to /var/run/docker.sock directly (by
// path, or with `-H`), or containers created by another container. docs/DOCKER.md says
// so.
//
// Framing: requests are parsed (head, then a Content-Length or chunked body) so that
// every request on a keep-alive connection is seen; after a request that upgrades the
// connection (attach, exec: `Upgrade: tcp`) the rest flows untouched. Responses are never
// parsed. A head over 64 KiB or a create body over max_create_body is answered 400 and
// the connection closed.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lichen::docker {

// Label keys Lichen adds to the containers a component creates.
inline constexpr std::string_view kComponentLabel = "lichen.component";
inline constexpr std::string_view kRootLabel = "lichen.root";

struct SocketProxyOptions {
  std::string upstream = "/var/run/docker.sock";  // the real daemon
  std::map<std::string, std::string> labels;      // added to every container created
  // Who may connect: the socket is made 0600 and owned by this user (the component's).
  std::optional<uid_t> owner;
  std::optional<gid_t> group;
  size_t max_create_body = 4 * 1024 * 1024;
  // Called (on the loop) with a container id whenever a start request for it goes
  // through: the owner can then follow the container's output.
  std::function<void(const std::string& id)> on_container_started;
  // Called (on the loop) with a container id whenever an attach request for it goes
  // through: a client (docker-compose up, docker run) shows that container's output.
  std::function<void(const std::string& id)> on_container_attached;
};

// Rewrites a container- or network-create JSON body to carry `labels` (other labels are
// kept; ours win). Exposed for tests and fuzzing; errors name what was wrong.
Result<std::string> AddLabelsToCreateBody(std::string_view body,
                                          const std::map<std::string, std::string>& labels);

// "POST /v1.41/containers/create?name=x" -> true. `target` is the request target.
bool IsContainerCreate(std::string_view method, std::string_view target);
// Requests whose body gets the labels: container creates, and network creates (the
// networks of docker-compose, which `docker-compose down` would remove too).
bool IsLabelledCreate(std::string_view method, std::string_view target);
// "POST /v1.41/containers/<id>/start" -> "<id>".
std::optional<std::string> StartedContainer(std::string_view method, std::string_view target);
// "POST /v1.41/containers/<id>/attach?stream=1" -> "<id>".
std::optional<std::string> AttachedContainer(std::string_view method, std::string_view target);

// The client-to-daemon half of a connection: finds request boundaries (head, then a
// Content-Length or chunked body; after an upgrade, raw bytes) and rewrites create
// bodies. Pure (no I/O), so it is unit-tested and fuzzed on its own.
class RequestRewriter {
 public:
  RequestRewriter(std::map<std::string, std::string> labels, size_t max_create_body,
                  std::function<void(const std::string& id)> on_started = {},
                  std::function<void()> on_created = {},
                  std::function<void(const std::string& id)> on_attached = {});
  // Takes the next bytes from the client; returns the bytes to send to the daemon now
  // (possibly none, while a head or a create body is incomplete), or why the stream is
  // unusable (then every later call fails too).
  Result<std::string> Feed(std::string_view bytes);
  uint64_t containers_created() const { return containers_created_; }

 private:
  enum class Phase {
    kHead,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailer,
    kCreateBody,
    kRaw
  };
  void Advance(std::string& out, std::string& error);
  bool StartRequest(std::string head, std::string& out, std::string& error);
  bool EmitCreate(std::string& out, std::string& error);

  std::map<std::string, std::string> labels_;
  size_t max_create_body_;
  std::function<void(const std::string&)> on_started_;
  std::function<void()> on_created_;
  std::function<void(const std::string&)> on_attached_;
  std::string in_;
  std::string error_;
  Phase phase_ = Phase::kHead;
  Phase after_body_ = Phase::kHead;
  uint64_t remaining_ = 0;
  bool dechunk_ = false;  // a chunked create body is collected, not forwarded
  std::string create_head_;
  std::string create_body_;
  uint64_t containers_created_ = 0;
};

class SocketProxy {
 public:
  SocketProxy(boost::asio::io_context& io, std::string path, SocketProxyOptions options);
  ~SocketProxy();
  SocketProxy(const SocketProxy&) = delete;
  SocketProxy& operator=(const SocketProxy&) = delete;

  // Binds `path` (a stale file is replaced), sets its owner and mode, starts accepting.
  Result<void> Start();
  // Closes the listener and every connection, removes the socket file.
  void Stop();

  const std::string& path() const { return path_; }
  uint64_t containers_created() const { return containers_created_; }

 private:
  class Session;
  void Accept();

  boost::asio::io_context& io_;
  std::string path_;
  SocketProxyOptions options_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::set<std::shared_ptr<Session>> sessions_;
  uint64_t containers_created_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // handlers outliving us check it
};

}  // namespace lichen::docker
