// Drives a core service and its engine-backed stand-in (real-transport/engines/) one message at
// a time, for the conformance suites (docs/engines.md): both behind one interface, their answers
// in one comparable, printable form.
#ifndef CHATLAB_TESTS_REAL_ENGINE_HARNESS_H_
#define CHATLAB_TESTS_REAL_ENGINE_HARNESS_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "gtest/gtest.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/service_engine.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {

// A service's answers are node messages and pushes to devices: each as (to, name, bytes), a
// node message as its encoding, a push as its fields (to 0).
using Sends = std::vector<std::tuple<uint64_t, std::string, std::string>>;
inline Sends AsSends(const Effects& out) {
  Sends sends;
  for (const Effect& e : out) {
    if (const auto* send = std::get_if<SendToNode>(&e)) {
      sends.emplace_back(send->to.value, MessageName(send->msg), Encode(send->msg));
    } else if (const auto* push = std::get_if<PushToDevice>(&e)) {
      sends.emplace_back(0, "PushToDevice",
                         absl::StrCat(push->user.value, " ", ToString(push->conv), " ",
                                      push->message_id, " ", push->sender.value));
    } else {
      ADD_FAILURE() << "a service emits only SendToNode and PushToDevice";
    }
  }
  return sends;
}

// One implementation of a service.
class ServiceUnderTest {
 public:
  virtual ~ServiceUnderTest() = default;
  // The effects of one message at `now`; nullopt when the implementation lost it.
  virtual std::optional<Effects> Do(TimeUs now, NodeId from, Message msg) = 0;
};

// The core's service (the model).
class CoreService final : public ServiceUnderTest {
 public:
  explicit CoreService(std::unique_ptr<Node> node) : engine_(std::move(node)) {}
  std::optional<Effects> Do(TimeUs now, NodeId from, Message msg) override {
    std::optional<Effects> got;
    engine_.Submit(now, from, std::move(msg), [&](Effects e) { got = std::move(e); });
    return got;
  }

 private:
  CoreServiceEngine engine_;
};

// An engine on Redis (E: RedisUserMapping, RedisPresence) with a link of its own.
template <typename E>
class RedisService final : public ServiceUnderTest {
 public:
  RedisService(const LocalRedis& redis, const std::string& prefix, const ProtocolConfig& config)
      : link_(io_, LinkOptions(redis)), engine_(link_, prefix, config) {}
  std::optional<Effects> Do(TimeUs now, NodeId from, Message msg) override {
    // Shared with the callback: an answer that comes after the deadline lands here, not in a
    // stack frame that is gone.
    auto got = std::make_shared<std::optional<Effects>>();
    engine_.Submit(now, from, std::move(msg), [got](Effects e) { *got = std::move(e); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!got->has_value() && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(10));
    }
    return *got;
  }
  E& engine() { return engine_; }

 private:
  static RedisLink::Options LinkOptions(const LocalRedis& redis) {
    RedisLink::Options o;
    o.address = {"127.0.0.1", redis.port()};
    o.scripts = E::Scripts();
    return o;
  }

  boost::asio::io_context io_;
  // Keeps run_one_for waiting for the link's answers while nothing else is queued.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  RedisLink link_;
  E engine_;
};

// A conformance suite's fixture, parameterized "core" or "redis", with one redis-server for the
// suite: Make gives the core's node (the model) or the engine E on that server, under a key prefix
// of its own, so every case starts from an empty service.
class EngineConformance : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { redis_ = new LocalRedis(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  template <typename E>
  static std::unique_ptr<ServiceUnderTest> Make(const ProtocolConfig& config,
                                                std::unique_ptr<Node> model) {
    if (GetParam() == "core") return std::make_unique<CoreService>(std::move(model));
    EXPECT_EQ(redis_->error(), "");
    return std::make_unique<RedisService<E>>(*redis_, absl::StrCat("t", next_prefix_++, ":"),
                                             config);
  }
  static inline LocalRedis* redis_ = nullptr;
  static inline int next_prefix_ = 0;
};

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_ENGINE_HARNESS_H_
