// chatd with forwarding=queue on RabbitMQ (docs/engines.md) with real processes: a 3-process
// cluster whose queue broker is a rabbitmq-server the test starts (and whose mapping, presence and
// notification are on Redis, so that no chatd process is special). Messages between processes
// travel through RabbitMQ; a RabbitMQ restart (kill -9, its queues gone) during a burst loses no
// acknowledged message, stores none twice, and live pushes resume once the links reconnect; the
// kill -9 schedule of each chatd process in turn holds as on Redis alone. With --rabbitmq but
// another forwarding, chatd refuses to start, saying why.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/real/engine_cluster.h"
#include "tests/real/harness.h"
#include "tests/real/rabbit_harness.h"

namespace chatlab::real::testing {
namespace {

TEST(ChatdOnRabbit, MessagesBetweenProcessesTravelThroughRabbitMq) {
  EngineCluster env({.more = {}, .rabbit = true});
  const auto alice = env.Login("u1");
  const auto bob = env.Login("u2");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a, b;
  ASSERT_EQ(a.Connect(env.process(2).address(), alice.token), "");
  ASSERT_EQ(b.Connect(env.process(3).address(), bob.token), "");
  ClientMsgId next = 1;
  ASSERT_GE(SecondsUntilLive(a, b, conv, &next, milliseconds(10000)), 0)
      << "no live push across processes through RabbitMQ";
  // Process 3's broker delivered it: the push came through its queue, not a peer link.
  const std::string metrics =
      HttpCall(env.process(3).address(), "GET", "/metrics", "", "").value().body;
  EXPECT_EQ(metrics.find("chatlab_engine_deliveries_total{service=\"broker\"} 0"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("chatlab_engine_connects_total{engine=\"rabbitmq\"} 1\n"),
            std::string::npos)
      << metrics;
}

TEST(ChatdOnRabbit, ARabbitRestartDuringABurstLosesNothingAndLivePushesResume) {
  EngineCluster env({.more = {}, .rabbit = true});
  const Resumed resumed = RestartDuringABurst(
      env,
      [&] {
        env.rabbit->Restart();  // kill -9; back (after the VM boots) without its queues
        ASSERT_EQ(env.rabbit->error(), "");
      },
      milliseconds(10000));
  std::printf(
      "live pushes resumed %.2f s after the restarted RabbitMQ answered (the burst's remaining "
      "acks took %.2f s of it)\n",
      resumed.seconds, resumed.acks_seconds);
  ASSERT_GE(resumed.seconds, 0);
  EXPECT_LT(resumed.seconds, resumed.acks_seconds + kResumeSlackS + 2);
  const std::string metrics =
      HttpCall(env.process(3).address(), "GET", "/metrics", "", "").value().body;
  EXPECT_NE(metrics.find("chatlab_engine_connects_total{engine=\"rabbitmq\"} 2\n"),
            std::string::npos)
      << "the link did not reconnect once:\n"
      << metrics;
}

TEST(ChatdOnRabbit, KillNineOfEachProcessInTurnLosesNothingAndTheOthersStayLive) {
  EngineCluster env({.more = {"--store_shards", "3"}, .rabbit = true});
  KillEachProcessInTurn(env);
}

TEST(ChatdOnRabbit, RabbitMqWithAnotherForwardingIsRefusedSayingWhy) {
  TempDir dir;
  const std::string log = dir / "chatd.log";
  const int status = RunCommand({CHATD_BIN, "--data_dir", dir.path(), "--forwarding", "direct",
                                 "--rabbitmq", "amqp://127.0.0.1/"},
                                log);
  EXPECT_NE(status, 0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("--rabbitmq holds the queue broker of forwarding=queue, and forwarding is "
                      "direct"),
            std::string::npos)
      << text;
  const int bad_url = RunCommand({CHATD_BIN, "--data_dir", dir.path(), "--forwarding", "queue",
                                  "--rabbitmq", "127.0.0.1:5672"},
                                 log);
  EXPECT_NE(bad_url, 0);
  std::ifstream again(log);
  const std::string all((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("--rabbitmq: \"127.0.0.1:5672\" is not an amqp://"), std::string::npos) << all;
}

}  // namespace
}  // namespace chatlab::real::testing
