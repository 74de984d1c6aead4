// Unit tests for the queue broker, driven directly with a manual clock.
#include "core/queue_broker.h"

#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr NodeId kSelf(100);
constexpr NodeId kPublisher(1);
constexpr NodeId kDest(3);
constexpr NodeId kOtherDest(7);
constexpr TimeUs kSecond = kUsPerSecond;

// Defaults spelled out so the timings below read on their own.
ProtocolConfig Config() {
  ProtocolConfig config;
  config.server_tick_us = 100 * kUsPerMs;
  config.request_timeout_us = 2 * kSecond;
  config.queue_consumer_timeout_us = 10 * kSecond;
  config.queue_stale_after_us = 30 * kSecond;
  config.broker_queue_max = 100;
  return config;
}

NodeOptions Options(const ProtocolConfig& config) {
  NodeOptions options;
  options.self = kSelf;
  options.config = config;
  return options;
}

ForwardBatch Batch(uint64_t request_id) {
  ForwardBatch batch;
  batch.request_id = request_id;
  return batch;
}

struct Delivery {
  NodeId to;
  QueueDeliver deliver;
};

// Every QueueDeliver sent, in effect order.
std::vector<Delivery> Deliveries(const Effects& out) {
  std::vector<Delivery> deliveries;
  for (const Effect& e : out) {
    const auto* send = std::get_if<SendToNode>(&e);
    if (send != nullptr && std::holds_alternative<QueueDeliver>(send->msg)) {
      deliveries.push_back(Delivery{send->to, std::get<QueueDeliver>(send->msg)});
    }
  }
  return deliveries;
}

// The seqs of every QueueDeliver sent to `to`, in order.
std::vector<uint64_t> Seqs(const Effects& out, NodeId to = kDest) {
  std::vector<uint64_t> seqs;
  for (const Delivery& d : Deliveries(out)) {
    if (d.to == to) {
      seqs.push_back(d.deliver.seq);
    }
  }
  return seqs;
}

class QueueBrokerTest : public ::testing::Test {
 protected:
  explicit QueueBrokerTest(const ProtocolConfig& config = Config()) : broker_(Options(config)) {
    Effects out;
    broker_.Start(0, out);
  }

  Effects Publish(TimeUs now, uint64_t request_id, NodeId dest = kDest) {
    Effects out;
    broker_.OnMessage(now, kPublisher, QueuePublish{dest, Batch(request_id)}, out);
    return out;
  }
  Effects Subscribe(TimeUs now, uint64_t incarnation, NodeId from = kDest) {
    Effects out;
    broker_.OnMessage(now, from, QueueSubscribe{incarnation}, out);
    return out;
  }
  Effects Ack(TimeUs now, uint64_t seq, NodeId from = kDest) {
    Effects out;
    broker_.OnMessage(now, from, QueueAck{seq}, out);
    return out;
  }
  Effects Tick(TimeUs now) {
    Effects out;
    broker_.OnTimer(now, QueueBroker::kTickTimerId, out);
    return out;
  }

  QueueBroker broker_;
};

TEST(QueueBrokerStartTest, StartArmsTheTick) {
  QueueBroker broker(Options(Config()));
  Effects out;
  broker.Start(500, out);
  ASSERT_EQ(out.size(), 1u);
  const auto& timer = std::get<ArmTimer>(out[0]);
  EXPECT_EQ(timer.timer_id, QueueBroker::kTickTimerId);
  EXPECT_EQ(timer.at_us, 500 + 100 * kUsPerMs);
}

TEST_F(QueueBrokerTest, TickRearmsAndIgnoresEarlyOrForeignTimers) {
  Effects out = Tick(100 * kUsPerMs);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<ArmTimer>(out[0]).at_us, 200 * kUsPerMs);
  EXPECT_TRUE(Tick(150 * kUsPerMs).empty());  // a duplicate of the fired tick
  out.clear();
  broker_.OnTimer(300 * kUsPerMs, 99, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(Tick(300 * kUsPerMs).size(), 1u);
}

TEST_F(QueueBrokerTest, PublishWithoutSubscriberQueues) {
  EXPECT_TRUE(Publish(0, 1).empty());
  EXPECT_TRUE(Publish(0, 2).empty());
  EXPECT_EQ(broker_.depth(kDest), 2u);
  EXPECT_EQ(broker_.depth(kOtherDest), 0u);
  EXPECT_FALSE(broker_.subscribed(kDest));
  EXPECT_EQ(broker_.stats().published, 2u);
  EXPECT_EQ(broker_.stats().delivered, 0u);
  EXPECT_EQ(broker_.stats().depth_max, 2u);
}

TEST_F(QueueBrokerTest, SubscribeDeliversOnlyTheHead) {
  Publish(10, 1);
  Publish(20, 2);
  Publish(30, 3);
  const Effects out = Subscribe(40, 7);
  const auto deliveries = Deliveries(out);
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(deliveries[0].to, kDest);
  EXPECT_EQ(deliveries[0].deliver, (QueueDeliver{1, 10, Batch(1)}));
  EXPECT_TRUE(broker_.subscribed(kDest));
  EXPECT_EQ(broker_.in_flight_seq(kDest), 1u);
  EXPECT_EQ(broker_.stats().delivered, 1u);
}

TEST_F(QueueBrokerTest, PublishDeliversAtOnceOnlyWhenNothingInFlight) {
  Subscribe(0, 7);
  EXPECT_EQ(Seqs(Publish(10, 1)), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(Publish(20, 2).empty());  // seq 1 still in flight
  EXPECT_EQ(broker_.depth(kDest), 2u);
}

TEST_F(QueueBrokerTest, AcksAdvanceInOrder) {
  Subscribe(0, 7);
  Publish(10, 1);
  Publish(20, 2);
  Publish(30, 3);
  const Effects out2 = Ack(40, 1);
  ASSERT_EQ(Deliveries(out2).size(), 1u);
  EXPECT_EQ(Deliveries(out2)[0].deliver, (QueueDeliver{2, 20, Batch(2)}));
  EXPECT_EQ(Seqs(Ack(50, 2)), (std::vector<uint64_t>{3}));
  EXPECT_TRUE(Ack(60, 3).empty());
  EXPECT_EQ(broker_.depth(kDest), 0u);
  EXPECT_EQ(broker_.in_flight_seq(kDest), 0u);
  EXPECT_EQ(broker_.stats().acked, 3u);
  EXPECT_EQ(broker_.stats().delivered, 3u);
  EXPECT_EQ(Seqs(Publish(70, 4)), (std::vector<uint64_t>{4}));  // idle again: at once
}

TEST_F(QueueBrokerTest, SeqsArePerDestination) {
  Subscribe(0, 7, kDest);
  Subscribe(0, 8, kOtherDest);
  EXPECT_EQ(Seqs(Publish(10, 1, kDest), kDest), (std::vector<uint64_t>{1}));
  EXPECT_EQ(Seqs(Publish(10, 2, kOtherDest), kOtherDest), (std::vector<uint64_t>{1}));
  EXPECT_EQ(Seqs(Ack(20, 1, kDest)), (std::vector<uint64_t>{}));
  EXPECT_EQ(broker_.depth(kOtherDest), 1u);  // kDest's ack did not touch it
}

TEST_F(QueueBrokerTest, StaleAcksAreIgnored) {
  Ack(0, 1);  // unknown queue
  Subscribe(0, 7);
  Ack(0, 1);  // nothing in flight
  Publish(10, 1);
  Publish(10, 2);
  Ack(20, 2);              // not the in-flight seq
  Ack(20, 1, kOtherDest);  // right seq, wrong consumer
  EXPECT_EQ(broker_.in_flight_seq(kDest), 1u);
  Ack(30, 1);
  Ack(30, 1);  // duplicate
  EXPECT_EQ(broker_.stats().stale_acks, 5u);
  EXPECT_EQ(broker_.stats().acked, 1u);
  EXPECT_EQ(broker_.in_flight_seq(kDest), 2u);
}

TEST_F(QueueBrokerTest, UnackedEntryIsRedeliveredAfterRequestTimeout) {
  Subscribe(0, 7);
  Publish(0, 1);
  Publish(0, 2);
  EXPECT_TRUE(Seqs(Tick(2 * kSecond)).empty());  // exactly the timeout: not older yet
  const Effects out = Tick(2 * kSecond + 100 * kUsPerMs);
  ASSERT_EQ(Deliveries(out).size(), 1u);
  EXPECT_EQ(Deliveries(out)[0].deliver, (QueueDeliver{1, 0, Batch(1)}));
  EXPECT_TRUE(std::holds_alternative<ArmTimer>(out.back()));
  EXPECT_TRUE(Seqs(Tick(4 * kSecond)).empty());  // measured from the redelivery
  EXPECT_EQ(Seqs(Tick(4 * kSecond + 200 * kUsPerMs)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(broker_.stats().redelivered, 2u);
  EXPECT_EQ(broker_.stats().delivered, 1u);
  EXPECT_EQ(Seqs(Ack(5 * kSecond, 1)), (std::vector<uint64_t>{2}));
}

TEST_F(QueueBrokerTest, TickVisitsDestinationsInAscendingOrder) {
  Subscribe(0, 8, kOtherDest);
  Subscribe(0, 7, kDest);
  Publish(0, 1, kOtherDest);
  Publish(0, 2, kDest);
  const auto deliveries = Deliveries(Tick(3 * kSecond));
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_EQ(deliveries[0].to, kDest);
  EXPECT_EQ(deliveries[1].to, kOtherDest);
}

TEST_F(QueueBrokerTest, SilentConsumerIsPresumedDeadAndPurged) {
  Subscribe(0, 7);
  Publish(0, 1);
  Publish(1 * kSecond, 2);
  Publish(2 * kSecond, 3);
  Tick(10 * kSecond);  // exactly the consumer timeout: still alive
  EXPECT_TRUE(broker_.subscribed(kDest));
  const Effects out = Tick(10 * kSecond + 100 * kUsPerMs);
  EXPECT_TRUE(Deliveries(out).empty());
  EXPECT_FALSE(broker_.subscribed(kDest));
  EXPECT_EQ(broker_.depth(kDest), 0u);
  EXPECT_EQ(broker_.in_flight_seq(kDest), 0u);
  EXPECT_EQ(broker_.stats().dropped_dead_consumer, 3u);
  EXPECT_EQ(broker_.stats().consumers_dead, 1u);

  // Nothing is sent to it any more; its late ack is stale.
  EXPECT_TRUE(Publish(11 * kSecond, 4).empty());
  EXPECT_TRUE(Ack(11 * kSecond, 1).empty());
  EXPECT_EQ(broker_.stats().stale_acks, 1u);
  // It comes back by subscribing (same incarnation: it was alive behind a partition).
  EXPECT_EQ(Seqs(Subscribe(12 * kSecond, 7)), (std::vector<uint64_t>{4}));
}

TEST_F(QueueBrokerTest, AckingConsumerIsNotPresumedDead) {
  Subscribe(0, 7);
  Publish(0, 1);
  Publish(0, 2);
  Ack(9 * kSecond, 1);  // seq 2 in flight since 9 s
  Tick(15 * kSecond);
  EXPECT_TRUE(broker_.subscribed(kDest));
  EXPECT_EQ(broker_.in_flight_seq(kDest), 2u);
  Tick(19 * kSecond + 100 * kUsPerMs);
  EXPECT_FALSE(broker_.subscribed(kDest));
  EXPECT_EQ(broker_.stats().dropped_dead_consumer, 1u);
}

TEST_F(QueueBrokerTest, UnsubscribedQueueDropsStaleEntriesOnTick) {
  Publish(0, 1);
  Publish(20 * kSecond, 2);
  Tick(30 * kSecond);  // exactly stale_after: kept
  EXPECT_EQ(broker_.depth(kDest), 2u);
  Tick(31 * kSecond);
  EXPECT_EQ(broker_.depth(kDest), 1u);
  EXPECT_EQ(broker_.stats().dropped_stale, 1u);
  const auto deliveries = Deliveries(Subscribe(32 * kSecond, 7));
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].deliver, (QueueDeliver{2, 20 * kSecond, Batch(2)}));
}

TEST(QueueBrokerSlowConsumerTest, SubscribedQueueKeepsOldEntries) {
  ProtocolConfig config = Config();
  config.queue_consumer_timeout_us = 100 * kSecond;
  QueueBroker broker(Options(config));
  Effects out;
  broker.Start(0, out);
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(1)}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(2)}, out);
  broker.OnTimer(60 * kSecond, QueueBroker::kTickTimerId, out);
  EXPECT_EQ(broker.depth(kDest), 2u);
  EXPECT_EQ(broker.stats().dropped_stale, 0u);
}

TEST_F(QueueBrokerTest, NewIncarnationForgetsInFlightAndDropsStale) {
  Subscribe(0, 7);
  Publish(0, 1);  // in flight to incarnation 7, which then crashes
  Publish(1 * kSecond, 2);
  Publish(34 * kSecond, 3);
  const Effects out = Subscribe(35 * kSecond, 8);  // stale: enqueued before 5 s
  ASSERT_EQ(Deliveries(out).size(), 1u);
  EXPECT_EQ(Deliveries(out)[0].deliver, (QueueDeliver{3, 34 * kSecond, Batch(3)}));
  EXPECT_EQ(broker_.depth(kDest), 1u);
  EXPECT_EQ(broker_.stats().dropped_stale, 2u);
  EXPECT_EQ(broker_.stats().restarts, 2u);  // the first subscribe counts too
  // The old incarnation's late ack matches nothing.
  Ack(36 * kSecond, 1);
  EXPECT_EQ(broker_.stats().stale_acks, 1u);
  EXPECT_EQ(broker_.in_flight_seq(kDest), 3u);
}

TEST_F(QueueBrokerTest, NewIncarnationRedeliversRecentInFlightEntry) {
  Subscribe(0, 7);
  Publish(0, 1);
  EXPECT_EQ(Seqs(Subscribe(1 * kSecond, 8)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(broker_.stats().dropped_stale, 0u);
  EXPECT_EQ(broker_.stats().delivered, 2u);
}

TEST_F(QueueBrokerTest, SameIncarnationResubscribeChangesNothing) {
  Subscribe(0, 7);
  Publish(0, 1);
  Publish(0, 2);
  EXPECT_TRUE(Subscribe(1 * kSecond, 7).empty());  // keepalive: no redelivery
  EXPECT_EQ(broker_.in_flight_seq(kDest), 1u);
  EXPECT_EQ(broker_.depth(kDest), 2u);
  EXPECT_EQ(broker_.stats().subscribes, 2u);
  EXPECT_EQ(broker_.stats().restarts, 1u);
}

TEST(QueueBrokerOverflowTest, FullQueueDropsOldestWaitingEntry) {
  ProtocolConfig config = Config();
  config.broker_queue_max = 3;
  QueueBroker broker(Options(config));
  Effects out;
  broker.Start(0, out);
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);
  for (uint64_t i = 1; i <= 4; ++i) {
    broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(i)}, out);
  }
  // Seq 1 is in flight and kept; seq 2 was the oldest waiting.
  EXPECT_EQ(broker.depth(kDest), 3u);
  EXPECT_EQ(broker.stats().dropped_overflow, 1u);
  EXPECT_EQ(broker.stats().depth_max, 3u);
  out.clear();
  broker.OnMessage(1, kDest, QueueAck{1}, out);
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{3}));
  EXPECT_EQ(broker.stats().acked, 1u);
}

TEST(QueueBrokerOverflowTest, FullUnsubscribedQueueDropsHead) {
  ProtocolConfig config = Config();
  config.broker_queue_max = 2;
  QueueBroker broker(Options(config));
  Effects out;
  for (uint64_t i = 1; i <= 3; ++i) {
    broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(i)}, out);
  }
  EXPECT_EQ(broker.stats().dropped_overflow, 1u);
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{2}));
}

TEST(QueueBrokerOverflowTest, SingleSlotQueueReplacesInFlightEntry) {
  ProtocolConfig config = Config();
  config.broker_queue_max = 1;
  QueueBroker broker(Options(config));
  Effects out;
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(1)}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(2)}, out);
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(broker.in_flight_seq(kDest), 2u);
  broker.OnMessage(1, kDest, QueueAck{1}, out);
  EXPECT_EQ(broker.stats().stale_acks, 1u);
  EXPECT_EQ(broker.depth(kDest), 1u);
}

TEST(QueueBrokerOverflowTest, ZeroSlotQueueDropsEverything) {
  ProtocolConfig config = Config();
  config.broker_queue_max = 0;
  QueueBroker broker(Options(config));
  Effects out;
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(1)}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(broker.depth(kDest), 0u);
  EXPECT_EQ(broker.stats().dropped_overflow, 1u);
}

TEST(QueueBrokerLimitTest, DestinationsBeyondTheLimitAreRefused) {
  QueueBroker broker(Options(Config()), /*destinations_max=*/1);
  Effects out;
  broker.OnMessage(0, kPublisher, QueuePublish{kDest, Batch(1)}, out);
  broker.OnMessage(0, kPublisher, QueuePublish{kOtherDest, Batch(2)}, out);
  broker.OnMessage(0, kOtherDest, QueueSubscribe{7}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(broker.depth(kOtherDest), 0u);
  EXPECT_FALSE(broker.subscribed(kOtherDest));
  EXPECT_EQ(broker.stats().queues_refused, 2u);
  EXPECT_EQ(broker.stats().published, 1u);
  broker.OnMessage(0, kDest, QueueSubscribe{7}, out);  // an existing queue still works
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{1}));
}

TEST_F(QueueBrokerTest, UnexpectedMessagesAreCountedAndIgnored) {
  Effects out;
  broker_.OnMessage(0, kDest, MapLookup{1, {}}, out);
  broker_.OnMessage(0, kDest, QueueDeliver{1, 0, Batch(1)}, out);
  broker_.OnMessage(0, kPublisher, QueuePublish{NodeId(), Batch(1)}, out);
  broker_.OnMessage(0, NodeId(), QueueSubscribe{7}, out);
  broker_.OnMessage(0, NodeId(), QueueAck{1}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(broker_.stats().unexpected_messages, 5u);
  EXPECT_EQ(broker_.stats().published, 0u);
  EXPECT_EQ(broker_.stats().subscribes, 0u);
  EXPECT_EQ(broker_.stats().stale_acks, 0u);
}

}  // namespace
}  // namespace chatlab
