#include "ipc/client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <cstring>
#include <filesystem>
#include <thread>

#include "ipc/server.h"

namespace lichen::ipc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kToken[] = "good-token-12345";

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ =
        (fs::temp_directory_path() / ("lichen-client-" + std::to_string(::getpid()) + ".sock"))
            .string();
    server_ = std::make_unique<IpcServer>(
        io_, [](const std::string& token) -> std::optional<std::string> {
          if (token == kToken) return std::string("lichen.cli");
          return std::nullopt;
        });
    server_->Register("aws.greengrass#Echo", [](std::shared_ptr<Call> call) {
      Json out = call->request();
      out["caller"] = call->component();
      call->Respond(out);
    });
    server_->Register("aws.greengrass#Empty",
                      [](std::shared_ptr<Call> call) { call->Respond(Json::object()); });
    server_->Register("aws.greengrass#Missing", [](std::shared_ptr<Call> call) {
      call->Error("ResourceNotFoundError", "no component com.example.Nope",
                  {{"resourceType", "component"}, {"resourceName", "com.example.Nope"}});
    });
    server_->Register("aws.greengrass#Hang", [this](std::shared_ptr<Call> call) {
      hanging_.push_back(call);  // never answered
    });
    server_->Register("aws.greengrass#Crash", [this](std::shared_ptr<Call>) {
      boost::asio::post(io_, [this] { server_->Close(); });
    });
    server_->Register("aws.greengrass#Ticks", [this](std::shared_ptr<Call> call) {
      call->Respond(Json{{"subscribed", true}}, /*terminate=*/false);
      call->OnClose([this] { ++closed_streams_; });
      call->Event("aws.greengrass#Tick", Json{{"n", 1}});
    });
    ASSERT_TRUE(server_->Listen(socket_));
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] {
      hanging_.clear();
      server_->Close();
    });
    io_.stop();
    thread_.join();
    server_.reset();
  }

  boost::asio::io_context io_;
  std::unique_ptr<IpcServer> server_;
  std::thread thread_;
  std::string socket_;
  std::vector<std::shared_ptr<Call>> hanging_;  // touched on the io thread only
  std::atomic<int> closed_streams_{0};
};

TEST_F(ClientTest, CallsGetTheReplyOnTheirStream) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  EXPECT_TRUE(client.connected());
  for (int i = 0; i < 3; ++i) {  // several calls on one connection: streams 1, 2, 3
    auto reply = client.Call("aws.greengrass#Echo", Json{{"n", i}}, 5s);
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_EQ((*reply)["n"], i);
    EXPECT_EQ((*reply)["caller"], "lichen.cli");
  }
  auto empty = client.Call("aws.greengrass#Empty", Json::object(), 5s);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, Json::object());
}

TEST_F(ClientTest, ModeledErrorsCarryTheShapeAndMessage) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  auto reply = client.Call("aws.greengrass#Missing", Json::object(), 5s);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, "ResourceNotFoundError");
  EXPECT_EQ(reply.error().message, "no component com.example.Nope");
  // The connection survives a modeled error.
  EXPECT_TRUE(client.Call("aws.greengrass#Echo", Json::object(), 5s));
}

TEST_F(ClientTest, UnknownOperationsAreErrorsWithoutAShape) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  auto reply = client.Call("aws.greengrass#Nope", Json::object(), 5s);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, "");
  EXPECT_NE(reply.error().message.find("unknown operation aws.greengrass#Nope"), std::string::npos)
      << reply.error().message;
}

TEST_F(ClientTest, RefusedTokenIsAClearError) {
  IpcClient client;
  auto r = client.Connect(socket_, "wrong-token", 5s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("refused the auth token"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(client.connected());
  EXPECT_FALSE(client.Call("aws.greengrass#Echo", Json::object(), 1s));
}

TEST_F(ClientTest, MissingSocketAsksWhetherTheNucleusRuns) {
  IpcClient client;
  const std::string path = socket_ + ".absent";
  auto r = client.Connect(path, kToken, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "is the nucleus running? no socket at " + path);
}

TEST_F(ClientTest, StaleSocketFileAsksWhetherTheNucleusRuns) {
  // A socket file left by a nucleus that died: the file is there, nobody listens.
  const std::string path = socket_ + ".stale";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  IpcClient client;
  auto r = client.Connect(path, kToken, 5s);
  ::unlink(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is the nucleus running?"), std::string::npos)
      << r.error().message;
}

TEST_F(ClientTest, ServerGoingAwayDuringACallFailsIt) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  auto reply = client.Call("aws.greengrass#Crash", Json::object(), 5s);
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("closed the connection"), std::string::npos)
      << reply.error().message;
  EXPECT_FALSE(client.connected());
  // The socket is gone too: a new connection is told so.
  IpcClient again;
  auto r = again.Connect(socket_, kToken, 5s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is the nucleus running?"), std::string::npos);
}

TEST_F(ClientTest, EveryWaitIsBoundedByTheTimeout) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.Call("aws.greengrass#Hang", Json::object(), 200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().message, "no reply to aws.greengrass#Hang within 200 ms");
  EXPECT_LT(took, 3s);
  // The connection is still good for the next call.
  ASSERT_TRUE(client.connected());
  auto next = client.Call("aws.greengrass#Echo", Json{{"x", 1}}, 5s);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ((*next)["x"], 1);
}

TEST_F(ClientTest, HandshakeIsBoundedWhenTheServerNeverAnswers) {
  // A listener that accepts nothing and answers nothing.
  const std::string path = socket_ + ".mute";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  IpcClient client;
  auto r = client.Connect(path, kToken, 200ms);
  ::close(fd);
  ::unlink(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no answer to the IPC handshake"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(client.connected());
}

TEST_F(ClientTest, StreamingOperationsAreClosedAfterTheResponse) {
  IpcClient client;
  ASSERT_TRUE(client.Connect(socket_, kToken, 5s));
  auto reply = client.Call("aws.greengrass#Ticks", Json::object(), 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ((*reply)["subscribed"], true);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (closed_streams_ == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(closed_streams_, 1);
  // The event that was in flight is skipped, not taken as the next call's reply.
  auto next = client.Call("aws.greengrass#Echo", Json{{"y", 2}}, 5s);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ((*next)["y"], 2);
}

}  // namespace
}  // namespace lichen::ipc
