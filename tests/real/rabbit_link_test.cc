// The RabbitMQ link (real-transport/engines/rabbit_link.h) against a rabbitmq-server the test
// starts: URLs are checked with errors that say what is wrong; a consumer delivers in order,
// one at a time; a link outlives a RabbitMQ restart (kill -9) by reconnecting and consuming
// again by itself; an idle link keeps its connection through several heartbeat intervals, and
// detects a silent server by them; a server that is not there is reported, naming where.
#include "real-transport/engines/rabbit_link.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/real/harness.h"
#include "tests/real/rabbit_harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;

TEST(RabbitUrl, ParsesWhatAmqpUrlsSpellAndRefusesTheRestSayingWhy) {
  auto a = ParseRabbitUrl("amqp://chat:secret@10.0.0.5:5673/prod");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 5673);
  EXPECT_EQ(a->user, "chat");
  EXPECT_EQ(a->password, "secret");
  EXPECT_EQ(a->vhost, "prod");
  auto d = ParseRabbitUrl("amqp://127.0.0.1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->port, 5672);
  EXPECT_EQ(d->user, "guest");
  EXPECT_EQ(d->vhost, "/");
  EXPECT_EQ(ParseRabbitUrl("amqp://127.0.0.1/")->vhost, "/");
  for (const char* bad : {"127.0.0.1:5672", "amqps://h/", "amqp://h:99999/", "amqp://h:port/"}) {
    auto r = ParseRabbitUrl(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("amqp://user:password@host:port/vhost"), std::string::npos);
  }
}

// A consumer of queue "q" and a publisher, on one io_context.
struct Pair {
  explicit Pair(const LocalRabbit& rabbit, int heartbeat_s = 5) {
    RabbitLink::Options o;
    o.address = *ParseRabbitUrl(rabbit.url());
    o.queue = "q";
    o.heartbeat_s = heartbeat_s;
    o.on_error = [this](std::string why) { errors.push_back(std::move(why)); };
    consumer.emplace(io, o, [this](RabbitLink::Delivery d) { got.push_back(std::move(d)); });
    o.on_error = nullptr;
    publisher.emplace(io, o, [](RabbitLink::Delivery) { ADD_FAILURE() << "not consuming"; });
    consumer->Consume();
  }
  bool WaitConsuming(std::chrono::seconds wait = std::chrono::seconds(15)) {
    return Run(wait, [&] { return consumer->consuming(); });
  }
  bool WaitGot(size_t n) {
    return Run(std::chrono::seconds(5), [&] { return got.size() >= n; });
  }
  template <typename Rep, typename Period, typename F>
  bool Run(std::chrono::duration<Rep, Period> wait, F done) {
    const auto deadline = Clock::now() + wait;
    while (!done() && Clock::now() < deadline) io.run_one_for(milliseconds(10));
    return done();
  }
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::vector<RabbitLink::Delivery> got;
  std::vector<std::string> errors;
  std::optional<RabbitLink> consumer, publisher;  // after io, which they use
};

TEST(RabbitLink, DeliversInOrderOneAtATimeEachAckReleasingTheNext) {
  LocalRabbit rabbit;
  ASSERT_EQ(rabbit.error(), "");
  Pair p(rabbit);
  ASSERT_TRUE(p.WaitConsuming());
  for (int i = 1; i <= 3; ++i) p.publisher->Publish("q", "m" + std::to_string(i));
  ASSERT_TRUE(p.WaitGot(1));
  p.Run(milliseconds(200), [] { return false; });
  ASSERT_EQ(p.got.size(), 1u) << "prefetch 1: one unacked delivery at a time";
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.WaitGot(i + 1));
    EXPECT_EQ(p.got[i].body, "m" + std::to_string(i + 1));
    p.consumer->Ack(p.got[i].generation, p.got[i].tag);
  }
  EXPECT_TRUE(p.Run(std::chrono::seconds(2), [&] { return p.consumer->idle(); }));
  EXPECT_EQ(p.consumer->stats().acked.load(), 3u);
}

TEST(RabbitLink, ARestartedRabbitIsReconnectedAndConsumedAgainByItself) {
  LocalRabbit rabbit;
  ASSERT_EQ(rabbit.error(), "");
  Pair p(rabbit);
  ASSERT_TRUE(p.WaitConsuming());
  p.publisher->Publish("q", "before");
  ASSERT_TRUE(p.WaitGot(1));
  const uint64_t old_generation = p.got[0].generation;
  rabbit.Restart();  // kill -9: the queue, and "before" unacked in it, are gone
  ASSERT_EQ(rabbit.error(), "");
  const auto restarted = Clock::now();
  ASSERT_TRUE(p.Run(std::chrono::seconds(20), [&] {
    return p.consumer->consuming() && p.consumer->stats().connects.load() >= 2;
  })) << "the consumer did not come back";
  std::printf("consuming again %.2f s after RabbitMQ answered again\n",
              std::chrono::duration<double>(Clock::now() - restarted).count());
  // An ack for the old connection's delivery is dropped, not sent (RabbitMQ would close the new
  // channel for a tag it never gave).
  p.consumer->Ack(old_generation, p.got[0].tag);
  p.publisher->Publish("q", "after");
  ASSERT_TRUE(p.WaitGot(2));
  EXPECT_EQ(p.got[1].body, "after");
  EXPECT_GT(p.got[1].generation, old_generation);
  EXPECT_EQ(p.consumer->stats().acks_dropped.load(), 1u);
  p.consumer->Ack(p.got[1].generation, p.got[1].tag);
  EXPECT_TRUE(p.Run(std::chrono::seconds(2), [&] { return p.consumer->stats().acked == 1; }));
  ASSERT_FALSE(p.errors.empty()) << "the lost connection was not reported";
  EXPECT_NE(p.errors[0].find("rabbitmq 127.0.0.1:"), std::string::npos) << p.errors[0];
}

TEST(RabbitLink, AnIdleLinkKeepsItsConnectionThroughHeartbeats) {
  LocalRabbit rabbit;
  ASSERT_EQ(rabbit.error(), "");
  Pair p(rabbit, /*heartbeat_s=*/1);
  ASSERT_TRUE(p.WaitConsuming());
  p.Run(std::chrono::seconds(5), [] { return false; });  // RabbitMQ drops after 2 missed beats
  EXPECT_EQ(p.consumer->stats().connects.load(), 1u);
  EXPECT_EQ(p.consumer->stats().errors.load(), 0u);
  p.publisher->Publish("q", "still there");
  ASSERT_TRUE(p.WaitGot(1));
  EXPECT_EQ(p.got[0].body, "still there");
}

// A server that goes silent (SIGSTOP: the TCP connection stays up) is detected by its missing
// heartbeats, even by a link that has nothing to send, and consumed again once it answers.
TEST(RabbitLink, ASilentServerIsDetectedByItsMissingHeartbeats) {
  LocalRabbit rabbit;
  ASSERT_EQ(rabbit.error(), "");
  Pair p(rabbit, /*heartbeat_s=*/1);
  ASSERT_TRUE(p.WaitConsuming());
  rabbit.Pause();
  const auto paused = Clock::now();
  const bool detected = p.Run(std::chrono::seconds(10), [&] { return !p.errors.empty(); });
  std::printf("silent server detected after %.2f s (heartbeat 1 s)\n",
              std::chrono::duration<double>(Clock::now() - paused).count());
  const bool consuming_while_silent = p.consumer->consuming();
  rabbit.Resume();
  ASSERT_TRUE(detected) << "a silent server went unnoticed";
  EXPECT_FALSE(consuming_while_silent);
  ASSERT_TRUE(p.Run(std::chrono::seconds(20), [&] { return p.consumer->consuming(); }));
  p.publisher->Publish("q", "after the pause");
  ASSERT_TRUE(p.WaitGot(1));
  EXPECT_EQ(p.got[0].body, "after the pause");
}

TEST(RabbitLink, AServerThatIsNotThereIsReportedNamingWhere) {
  boost::asio::io_context io;
  std::vector<std::string> errors;
  RabbitLink::Options o;
  o.address = *ParseRabbitUrl("amqp://127.0.0.1:" + std::to_string(FreePort()) + "/");
  o.queue = "q";
  o.on_error = [&](std::string why) { errors.push_back(std::move(why)); };
  RabbitLink link(io, o, [](RabbitLink::Delivery) {});
  link.Consume();
  link.Publish("q", "lost");
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (errors.empty() && Clock::now() < deadline) io.run_one_for(milliseconds(10));
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("rabbitmq 127.0.0.1:" + std::to_string(o.address.port) + ": connect"),
            std::string::npos)
      << errors[0];
  EXPECT_FALSE(link.consuming());
  EXPECT_FALSE(link.idle()) << "the publish waits for a connection";
}

}  // namespace
}  // namespace chatlab::real::testing
