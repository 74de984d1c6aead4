// The queue broker's contract run against the core's QueueBroker (the model the simulator runs)
// and the RabbitMQ-backed RabbitQueueBroker chatd deploys with --rabbitmq (docs/engines.md),
// against a rabbitmq-server this test starts. The same cases, the same expected deliveries: one
// entry in flight per consumer, in publish order, an ack releasing the next, stale and duplicate
// acks changing nothing, queues kept apart, a full queue dropping its oldest waiting entry.
// Where the two differ on purpose (docs/engines.md, "Where it differs from the model"), the
// first difference is pinned here from both sides; the others are about timing and failures.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/queue_broker.h"
#include "gtest/gtest.h"
#include "real-transport/engines/rabbit_queue_broker.h"
#include "tests/real/harness.h"
#include "tests/real/rabbit_harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;
constexpr NodeId kBroker(6);
constexpr NodeId kA(101), kB(102), kC(103);

// A batch told apart by its tag (the body of its one message).
ForwardBatch Batch(const std::string& tag) {
  ForwardBatch b;
  ChatMessage m;
  m.conv = ConversationId::Direct(UserId(1), UserId(2));
  m.message_id = 7;
  m.sender = UserId(1);
  m.body = tag;
  b.messages.push_back(Routed<ChatMessage>{{UserId(2)}, m});
  return b;
}

ProtocolConfig Config(uint32_t queue_max = 100000) {
  ProtocolConfig c;
  c.forwarding = ForwardingStrategy::kQueue;
  c.broker_queue_max = queue_max;
  return c;
}

// One implementation of the broker, fed messages from chat servers; what it delivered to each.
class BrokerUnderTest {
 public:
  virtual ~BrokerUnderTest() = default;
  virtual void Submit(NodeId from, Message msg) = 0;
  // The tags delivered to `consumer` so far, once `expected` have come (or a wait ran out) and
  // nothing more came for a moment.
  virtual std::vector<std::string> Delivered(NodeId consumer, size_t expected) = 0;
  // Acks consumer's latest delivery.
  void AckLatest(NodeId consumer) { Submit(consumer, QueueAck{latest_[consumer]}); }
  uint64_t latest(NodeId consumer) { return latest_[consumer]; }
  const ForwardBatch& last_batch(NodeId consumer) { return last_batch_[consumer]; }

 protected:
  void Record(const Effects& out) {
    for (const Effect& e : out) {
      const auto* send = std::get_if<SendToNode>(&e);
      if (send == nullptr) continue;
      const auto* d = std::get_if<QueueDeliver>(&send->msg);
      ASSERT_NE(d, nullptr) << "the broker sends only QueueDeliver";
      ASSERT_EQ(d->batch.messages.size(), 1u);
      delivered_[send->to].push_back(d->batch.messages[0].payload.body);
      latest_[send->to] = d->seq;
      last_batch_[send->to] = d->batch;
    }
  }
  std::map<NodeId, std::vector<std::string>> delivered_;
  std::map<NodeId, uint64_t> latest_;
  std::map<NodeId, ForwardBatch> last_batch_;
};

class CoreBroker final : public BrokerUnderTest {
 public:
  explicit CoreBroker(const ProtocolConfig& config) : node_(Options(config)) {
    Effects out;
    node_.Start(now_, out);  // arms the tick, which these cases never fire
  }
  void Submit(NodeId from, Message msg) override {
    Effects out;
    node_.OnMessage(now_ += 1000, from, msg, out);
    Record(out);
  }
  std::vector<std::string> Delivered(NodeId consumer, size_t) override {
    return delivered_[consumer];
  }

 private:
  static NodeOptions Options(const ProtocolConfig& config) {
    NodeOptions o;
    o.self = kBroker;
    o.config = config;
    return o;
  }
  TimeUs now_ = 1'000'000;
  QueueBroker node_;
};

// One RabbitQueueBroker per chat server, as in a deployment (one per chatd process), all on one
// RabbitMQ, each publishing with its own connection.
class RabbitBroker final : public BrokerUnderTest {
 public:
  RabbitBroker(const LocalRabbit& rabbit, std::string prefix, const ProtocolConfig& config)
      : rabbit_(rabbit), prefix_(std::move(prefix)), config_(config) {}
  void Submit(NodeId from, Message msg) override {
    const bool subscribe = std::holds_alternative<QueueSubscribe>(msg);
    RabbitQueueBroker& broker = For(from);
    broker.Submit(0, from, std::move(msg), [](Effects) {});
    // A subscribe returns once the queue is declared and consumed, as the model's does at once:
    // a publish to a queue not declared yet would be dropped (see BrokerDifferences).
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (subscribe && !broker.consuming() && Clock::now() < deadline) Pump(milliseconds(10));
    ASSERT_TRUE(!subscribe || broker.consuming()) << "no consumer after 10 s";
    Pump(milliseconds(20));
  }
  std::vector<std::string> Delivered(NodeId consumer, size_t expected) override {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (delivered_[consumer].size() < expected && Clock::now() < deadline) {
      io_.run_one_for(milliseconds(10));
    }
    Pump(milliseconds(150));  // anything that should not come has time to
    return delivered_[consumer];
  }
  RabbitQueueBroker& For(NodeId server) {
    auto& b = brokers_[server];
    if (b == nullptr) {
      RabbitLink::Options link;
      link.address = *ParseRabbitUrl(rabbit_.url());
      b = std::make_unique<RabbitQueueBroker>(io_, link, prefix_, server, config_,
                                              [this](Effects out) { Record(out); });
    }
    return *b;
  }

 private:
  void Pump(milliseconds d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) io_.run_one_for(milliseconds(5));
  }
  const LocalRabbit& rabbit_;
  const std::string prefix_;
  const ProtocolConfig config_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::map<NodeId, std::unique_ptr<RabbitQueueBroker>> brokers_;  // after io_, which they use
};

// One rabbitmq-server for the suite, started by the first case that needs it (ctest runs each
// case in a process of its own, so the "core" cases start none).
class BrokerConformance : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    delete rabbit_;
    rabbit_ = nullptr;
  }
  std::unique_ptr<BrokerUnderTest> Make(const ProtocolConfig& config) {
    if (GetParam() == "core") return std::make_unique<CoreBroker>(config);
    if (rabbit_ == nullptr) rabbit_ = new LocalRabbit();
    EXPECT_EQ(rabbit_->error(), "");
    return std::make_unique<RabbitBroker>(*rabbit_, absl::StrCat("t", next_prefix_++, "."),
                                          config);
  }
  static inline LocalRabbit* rabbit_ = nullptr;
  static inline int next_prefix_ = 0;
};

using Tags = std::vector<std::string>;

TEST_P(BrokerConformance, OneEntryInFlightInPublishOrderEachAckReleasingTheNext) {
  auto broker = Make(Config());
  broker->Submit(kA, QueueSubscribe{1});
  for (const char* tag : {"b1", "b2", "b3"}) broker->Submit(kB, QueuePublish{kA, Batch(tag)});
  EXPECT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 2), (Tags{"b1", "b2"}));
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 3), (Tags{"b1", "b2", "b3"}));
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 3), (Tags{"b1", "b2", "b3"}));  // and nothing more
}

TEST_P(BrokerConformance, DuplicateAndUnknownAcksChangeNothing) {
  auto broker = Make(Config());
  broker->Submit(kA, QueueSubscribe{1});
  broker->Submit(kB, QueuePublish{kA, Batch("b1")});
  broker->Submit(kB, QueuePublish{kA, Batch("b2")});
  ASSERT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  const uint64_t first = broker->latest(kA);
  broker->Submit(kA, QueueAck{first + 1000});  // never delivered
  EXPECT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  broker->Submit(kA, QueueAck{first});
  broker->Submit(kA, QueueAck{first});  // a duplicate: must not release b3's turn early
  broker->Submit(kB, QueuePublish{kA, Batch("b3")});
  EXPECT_EQ(broker->Delivered(kA, 2), (Tags{"b1", "b2"}));
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 3), (Tags{"b1", "b2", "b3"}));
}

TEST_P(BrokerConformance, EachServerConsumesOnlyItsOwnQueue) {
  auto broker = Make(Config());
  broker->Submit(kA, QueueSubscribe{1});
  broker->Submit(kB, QueueSubscribe{1});
  broker->Submit(kC, QueuePublish{kA, Batch("to-a")});
  broker->Submit(kC, QueuePublish{kB, Batch("to-b")});
  broker->Submit(kA, QueuePublish{kB, Batch("a-to-b")});
  EXPECT_EQ(broker->Delivered(kA, 1), (Tags{"to-a"}));
  EXPECT_EQ(broker->Delivered(kB, 1), (Tags{"to-b"}));
  broker->AckLatest(kB);
  EXPECT_EQ(broker->Delivered(kB, 2), (Tags{"to-b", "a-to-b"}));
  EXPECT_EQ(broker->Delivered(kC, 0), (Tags{}));
}

TEST_P(BrokerConformance, ASubscribeRepeatedByTheSameConsumerRedeliversNothing) {
  auto broker = Make(Config());
  broker->Submit(kA, QueueSubscribe{1});
  broker->Submit(kB, QueuePublish{kA, Batch("b1")});
  ASSERT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  broker->Submit(kA, QueueSubscribe{1});  // the chat server's periodic re-subscribe
  EXPECT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  broker->AckLatest(kA);
  broker->Submit(kB, QueuePublish{kA, Batch("b2")});
  EXPECT_EQ(broker->Delivered(kA, 2), (Tags{"b1", "b2"}));
}

TEST_P(BrokerConformance, AFullQueueDropsItsOldestWaitingEntryNotTheOneInFlight) {
  auto broker = Make(Config(/*queue_max=*/3));  // the one in flight and two waiting
  broker->Submit(kA, QueueSubscribe{1});
  broker->Submit(kB, QueuePublish{kA, Batch("b1")});
  ASSERT_EQ(broker->Delivered(kA, 1), (Tags{"b1"}));
  for (const char* tag : {"b2", "b3", "b4", "b5"}) broker->Submit(kB, QueuePublish{kA, Batch(tag)});
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 2), (Tags{"b1", "b4"}));
  broker->AckLatest(kA);
  EXPECT_EQ(broker->Delivered(kA, 3), (Tags{"b1", "b4", "b5"}));
}

TEST_P(BrokerConformance, TheBatchArrivesWhole) {
  auto broker = Make(Config());
  broker->Submit(kA, QueueSubscribe{1});
  ForwardBatch batch = Batch("whole");
  const ConversationId conv = batch.messages[0].payload.conv;
  batch.receipts.push_back({{UserId(1)}, ReceiptUpdate{conv, ReceiptKind::kRead, UserId(2), 7}});
  batch.typing.push_back({{UserId(2)}, TypingUpdate{conv, UserId(1), true}});
  broker->Submit(kB, QueuePublish{kA, batch});
  ASSERT_EQ(broker->Delivered(kA, 1), (Tags{"whole"}));
  EXPECT_EQ(broker->last_batch(kA), batch);
}

INSTANTIATE_TEST_SUITE_P(CoreAndRabbit, BrokerConformance, ::testing::Values("core", "rabbitmq"),
                         [](const auto& info) { return info.param; });

// ---- Where RabbitMQ differs from the model, on purpose (docs/engines.md) ---------------------

// The model creates a queue on the first publish to it; RabbitMQ's queue exists once its
// consumer declared it, and the default exchange drops a publish to a queue that does not exist.
// Nothing acknowledged depends on either: a chat server that was never up has no users online.
TEST(BrokerDifferences, APublishBeforeTheConsumerEverSubscribedIsKeptByTheModelDroppedOnRabbit) {
  CoreBroker core(Config());
  core.Submit(kB, QueuePublish{kA, Batch("early")});
  core.Submit(kA, QueueSubscribe{1});
  EXPECT_EQ(core.Delivered(kA, 1), (Tags{"early"}));

  LocalRabbit rabbit;
  ASSERT_EQ(rabbit.error(), "");
  RabbitBroker on_rabbit(rabbit, "d.", Config());
  on_rabbit.Submit(kB, QueuePublish{kA, Batch("early")});
  on_rabbit.Submit(kA, QueueSubscribe{1});
  on_rabbit.Submit(kB, QueuePublish{kA, Batch("after")});
  EXPECT_EQ(on_rabbit.Delivered(kA, 1), (Tags{"after"}));
}

}  // namespace
}  // namespace chatlab::real::testing
