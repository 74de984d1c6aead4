// The Redis link (real-transport/engines/redis_link.h) against a redis-server this test starts:
// answers in the order of the calls, refusals beyond queue_max included; scripts reloaded after
// Redis forgets them on a live connection; what is queued at destruction is still sent.
#include "real-transport/engines/redis_link.h"

#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

RedisLink::Options Options(const LocalRedis& redis) {
  RedisLink::Options o;
  o.address = {"127.0.0.1", redis.port()};
  return o;
}

// Runs `io` until `done` holds (or 10 s pass).
bool RunUntil(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!done() && Clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(10));
  return done();
}

class RedisLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(redis_.error(), ""); }
  LocalRedis redis_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
};

TEST_F(RedisLinkTest, RefusalsBeyondTheQueueAreAnsweredInOrderWithTheRest) {
  RedisLink::Options o = Options(redis_);
  o.queue_max = 2;
  RedisLink link(io_, o);
  std::vector<std::string> order;
  std::vector<absl::StatusCode> codes;
  const auto record = [&](std::string name) {
    return [&, name](RedisReply r) {
      order.push_back(name);
      codes.push_back(r.status().code());
    };
  };
  ASSERT_TRUE(RunUntil(io_, [&] { return link.stats().connects.load() == 1; }));
  redis_.Pause();  // the first pipeline waits for its answer
  link.Call({"PING"}, record("a"));
  ASSERT_TRUE(RunUntil(io_, [&] { return link.stats().pipelines.load() == 1; }));
  link.Call({"PING"}, record("b"));
  link.Call({"PING"}, record("c"));
  link.Call({"PING"}, record("d"));  // the third queued: beyond queue_max
  EXPECT_FALSE(link.idle());
  redis_.Resume();
  ASSERT_TRUE(RunUntil(io_, [&] { return link.idle(); }));
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(codes, (std::vector<absl::StatusCode>{absl::StatusCode::kOk, absl::StatusCode::kOk,
                                                  absl::StatusCode::kOk,
                                                  absl::StatusCode::kResourceExhausted}));
}

TEST_F(RedisLinkTest, ScriptsForgottenOnALiveConnectionAreLoadedAgain) {
  const std::string script = "return 7";
  RedisLink::Options o = Options(redis_);
  o.scripts = {script};
  std::vector<std::string> errors;
  o.on_error = [&](std::string why) { errors.push_back(std::move(why)); };
  RedisLink link(io_, o);
  const std::vector<std::string> eval = {"EVALSHA", RedisLink::ScriptSha(script), "0"};
  std::vector<RedisReply> got;
  const auto keep = [&](RedisReply r) { got.push_back(std::move(r)); };
  link.Call(eval, keep);
  link.Call({"SCRIPT", "FLUSH"}, keep);  // as a failover to a replica without them would
  link.Call(eval, keep);
  ASSERT_TRUE(RunUntil(io_, [&] { return got.size() == 3; }));
  ASSERT_TRUE(got[0].ok()) << got[0].status();
  EXPECT_EQ(got[0]->integer, 7);
  EXPECT_EQ(got[2].status().code(), absl::StatusCode::kUnavailable) << got[2].status();
  EXPECT_NE(got[2].status().message().find("NOSCRIPT"), std::string::npos);
  link.Call(eval, keep);  // the link reconnected and loaded the script again
  ASSERT_TRUE(RunUntil(io_, [&] { return got.size() == 4; }));
  ASSERT_TRUE(got[3].ok()) << got[3].status();
  EXPECT_EQ(got[3]->integer, 7);
  EXPECT_EQ(link.stats().connects.load(), 2u);
  ASSERT_TRUE(RunUntil(io_, [&] { return !errors.empty(); }));
  EXPECT_NE(errors[0].find("NOSCRIPT"), std::string::npos) << errors[0];
}

TEST_F(RedisLinkTest, WhatIsQueuedAtDestructionIsStillSent) {
  constexpr int kCommands = 500;
  {
    RedisLink link(io_, Options(redis_));
    for (int i = 0; i < kCommands; ++i) {
      link.Call({"RPUSH", "shutdown", absl::StrCat(i)}, [](RedisReply) {});
    }
  }  // destroyed at once: nothing was answered yet, most not even sent
  RedisLink check(io_, Options(redis_));
  std::vector<RedisReply> got;
  check.Call({"LLEN", "shutdown"}, [&](RedisReply r) { got.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io_, [&] { return got.size() == 1; }));
  ASSERT_TRUE(got[0].ok()) << got[0].status();
  EXPECT_EQ(got[0]->integer, kCommands);
}

TEST_F(RedisLinkTest, AnUnreachableServerIsReportedAndEveryCallAnswered) {
  redis_.Kill();
  RedisLink::Options o = Options(redis_);
  std::vector<std::string> errors;
  o.on_error = [&](std::string why) { errors.push_back(std::move(why)); };
  RedisLink link(io_, o);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    link.Call({"PING"}, [&](RedisReply r) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
      answered++;
    });
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return answered == 3 && !errors.empty(); }));
  EXPECT_TRUE(link.idle());
  EXPECT_NE(errors[0].find("cannot connect"), std::string::npos) << errors[0];
  EXPECT_EQ(errors.size(), 1u) << "one report per change of reason";
}

}  // namespace
}  // namespace chatlab::real::testing
