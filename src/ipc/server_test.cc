#include "ipc/server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "ipc/event_stream.h"

namespace lichen::ipc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A blocking test client speaking the wire protocol with the project's own codec.
class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  void SendRaw(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), (ssize_t)bytes.size());
  }
  void Send(int32_t type, int32_t flags, int32_t stream, std::vector<Header> extra,
            std::string payload) {
    Message m;
    m.headers = {{":message-type", type}, {":message-flags", flags}, {":stream-id", stream}};
    for (auto& h : extra) m.headers.push_back(std::move(h));
    m.payload = std::move(payload);
    SendRaw(*Encode(m));
  }
  void Connect(const std::string& token) {
    Send(4, 0, 0, {{":version", std::string("0.1.0")}}, "{\"authToken\":\"" + token + "\"}");
  }
  // The next message, or nullopt on timeout or a closed connection.
  std::optional<Message> Read(std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      auto next = decoder_.Next();
      if (next && next->has_value()) return std::move(**next);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }
  bool ClosedByServer(std::chrono::milliseconds limit = 5s) {
    while (!closed_ && Read(limit)) {
    }
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  Decoder decoder_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = (fs::temp_directory_path() / ("lichen-ipc-" + std::to_string(::getpid()) + ".sock"))
                  .string();
    server_ = std::make_unique<IpcServer>(
        io_, [](const std::string& token) -> std::optional<std::string> {
          if (token == "good-token-12345") return std::string("com.example.Caller");
          return std::nullopt;
        });
    server_->Register("aws.greengrass#Echo", [](std::shared_ptr<Call> call) {
      Json out = call->request();
      out["caller"] = call->component();
      call->Respond(out);
    });
    server_->Register("aws.greengrass#Ticks", [this](std::shared_ptr<Call> call) {
      call->Respond(Json::object(), /*terminate=*/false);
      call->OnClose([this] { ++closed_streams_; });
      for (int i = 0; i < 3; ++i) call->Event("aws.greengrass#Tick", Json{{"n", i}});
    });
    ASSERT_TRUE(server_->Listen(socket_));
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->Close(); });
    io_.stop();
    thread_.join();
    server_.reset();
  }
  boost::asio::io_context io_;
  std::unique_ptr<IpcServer> server_;
  std::thread thread_;
  std::string socket_;
  std::atomic<int> closed_streams_{0};
};

TEST_F(ServerTest, AcceptsAValidTokenAndAnswersRequests) {
  Client c(socket_);
  ASSERT_TRUE(c.connected());
  c.Connect("good-token-12345");
  auto ack = c.Read();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->GetInt32(":message-type"), 5);
  EXPECT_EQ(ack->GetInt32(":message-flags"), 1);

  c.Send(0, 0, 1, {{"operation", std::string("aws.greengrass#Echo")}}, R"({"x":1})");
  auto reply = c.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->GetInt32(":stream-id"), 1);
  EXPECT_EQ(reply->GetInt32(":message-flags"), 2);  // terminated: a plain request/response
  EXPECT_EQ(reply->GetString("service-model-type"), "aws.greengrass#EchoResponse");
  EXPECT_EQ(reply->GetString(":content-type"), "application/json");
  auto body = Json::parse(reply->payload);
  EXPECT_EQ(body["x"], 1);
  EXPECT_EQ(body["caller"], "com.example.Caller");
}

TEST_F(ServerTest, RefusesABadTokenAndCloses) {
  Client c(socket_);
  c.Connect("wrong");
  auto ack = c.Read();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->GetInt32(":message-type"), 5);
  EXPECT_EQ(ack->GetInt32(":message-flags"), 0);
  EXPECT_TRUE(c.ClosedByServer());
}

// Serialising a request again recurses per level: a request nested a million deep would
// overflow the stack. It is refused, and the connection goes on.
TEST_F(ServerTest, DeeplyNestedRequestsAreRefusedAndTheConnectionStays) {
  Client c(socket_);
  c.Connect("good-token-12345");
  ASSERT_TRUE(c.Read());
  const std::string deep = "{\"x\":" + std::string(1000000, '[') + std::string(1000000, ']') + "}";
  c.Send(0, 0, 1, {{"operation", std::string("aws.greengrass#Echo")}}, deep);
  auto refused = c.Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->GetInt32(":message-type"), 1);
  EXPECT_EQ(refused->GetString("service-model-type"), "aws.greengrass#ServiceError");
  EXPECT_NE(refused->payload.find("nests deeper than"), std::string::npos) << refused->payload;
  // Brackets inside strings do not count; 100 levels are fine.
  const std::string fine = "{\"s\":\"" + std::string(500, '[') +
                           "\",\"x\":" + std::string(100, '[') + std::string(100, ']') + "}";
  c.Send(0, 0, 2, {{"operation", std::string("aws.greengrass#Echo")}}, fine);
  auto echoed = c.Read();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->GetString("service-model-type"), "aws.greengrass#EchoResponse");
}

TEST_F(ServerTest, UnknownOperationsGetAnErrorWithoutAModelType) {
  Client c(socket_);
  c.Connect("good-token-12345");
  ASSERT_TRUE(c.Read());
  c.Send(0, 0, 1, {{"operation", std::string("aws.greengrass#Nope")}}, "{}");
  auto reply = c.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->GetInt32(":message-type"), 1);
  EXPECT_FALSE(reply->GetString("service-model-type").has_value());
  EXPECT_NE(reply->payload.find("Nope"), std::string::npos);
}

TEST_F(ServerTest, StreamsSendEventsAfterTheResponseAndNoticeTheClose) {
  Client c(socket_);
  c.Connect("good-token-12345");
  ASSERT_TRUE(c.Read());
  c.Send(0, 0, 1, {{"operation", std::string("aws.greengrass#Ticks")}}, "{}");
  auto first = c.Read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->GetString("service-model-type"), "aws.greengrass#TicksResponse");
  EXPECT_EQ(first->GetInt32(":message-flags"), 0);
  for (int i = 0; i < 3; ++i) {
    auto ev = c.Read();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->GetString("service-model-type"), "aws.greengrass#Tick");
    EXPECT_EQ(Json::parse(ev->payload)["n"], i);
  }
  c.Send(0, 2, 1, {}, "");  // the client closes the stream
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (closed_streams_ == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(closed_streams_, 1);
}

TEST_F(ServerTest, GarbageClosesOnlyThatClient) {
  Client good(socket_);
  good.Connect("good-token-12345");
  ASSERT_TRUE(good.Read());

  Client bad(socket_);
  bad.SendRaw(std::string(64, '\xff'));
  EXPECT_TRUE(bad.ClosedByServer());

  good.Send(0, 0, 1, {{"operation", std::string("aws.greengrass#Echo")}}, "{}");
  auto reply = good.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->GetString("service-model-type"), "aws.greengrass#EchoResponse");
}

TEST_F(ServerTest, SocketIsOpenToAllAndLongPathsAreRefused) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  boost::asio::io_context other;
  IpcServer s(other, nullptr);
  auto r = s.Listen("/tmp/" + std::string(200, 'x'));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("longer than"), std::string::npos);
}

}  // namespace
}  // namespace lichen::ipc
