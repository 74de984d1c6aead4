// Unit tests for core/batch_writer.h, driven directly through Start/OnMessage/OnTimer.
#include "core/batch_writer.h"

#include <cstdint>
#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr NodeId kStore(5);
constexpr NodeId kWriter(6);
constexpr NodeId kServerA(101);
constexpr NodeId kServerB(102);
constexpr UserId kAlice(1);
constexpr UserId kBob(2);
constexpr TimeUs kT0 = 1000 * kUsPerSecond;
constexpr TimeUs kWindow = 20 * kUsPerMs;
constexpr TimeUs kTick = 100 * kUsPerMs;
constexpr TimeUs kTimeout = 2 * kUsPerSecond;

ProtocolConfig WriterConfig() {
  ProtocolConfig config;
  config.write_path = WritePath::kBatched;
  config.writer_batch_max = 3;
  config.writer_queue_max = 5;
  config.writer_flush_window_us = kWindow;
  config.server_tick_us = kTick;
  config.request_timeout_us = kTimeout;
  return config;
}

NodeOptions Options(const ProtocolConfig& config = WriterConfig()) {
  NodeOptions options;
  options.self = kWriter;
  options.config = config;
  options.topology.store = kStore;
  options.topology.writer = kWriter;
  return options;
}

ChatMessage Msg(ClientMsgId cmid) {
  ChatMessage m;
  m.conv = ConversationId::Direct(kAlice, kBob);
  m.sender = kAlice;
  m.client_msg_id = cmid;
  m.body = "m";
  return m;
}

// Effects without the Persist records (the durability tests below look at those).
Effects WithoutPersist(Effects all) {
  std::erase_if(all, [](const Effect& e) { return std::holds_alternative<Persist>(e); });
  return all;
}

Effects Enqueue(BatchWriter& writer, TimeUs now, NodeId from, uint64_t request_id,
                ClientMsgId cmid) {
  Effects out;
  writer.OnMessage(now, from, WriterEnqueue{request_id, Msg(cmid)}, out);
  return WithoutPersist(std::move(out));
}

// The StoreAppendBatch messages sent to the store, in order.
std::vector<StoreAppendBatch> Batches(const Effects& out) {
  std::vector<StoreAppendBatch> batches;
  for (const Effect& e : out) {
    const auto* send = std::get_if<SendToNode>(&e);
    if (send == nullptr) continue;
    const auto* batch = std::get_if<StoreAppendBatch>(&send->msg);
    if (batch == nullptr) continue;
    EXPECT_EQ(send->to, kStore);
    batches.push_back(*batch);
  }
  return batches;
}

std::vector<ClientMsgId> Cmids(const StoreAppendBatch& batch) {
  std::vector<ClientMsgId> cmids;
  for (const ChatMessage& m : batch.messages) cmids.push_back(m.client_msg_id);
  return cmids;
}

// What the store would answer: every message stored with id 1000 + client_msg_id.
StoreAppendBatchResult ResultFor(const StoreAppendBatch& batch) {
  StoreAppendBatchResult result;
  result.request_id = batch.request_id;
  for (const ChatMessage& m : batch.messages) {
    AppendOutcome outcome;
    outcome.message = m;
    outcome.message.message_id = 1000 + m.client_msg_id;
    outcome.recipients = {kAlice, kBob};
    result.outcomes.push_back(outcome);
  }
  return result;
}

Effects Deliver(BatchWriter& writer, TimeUs now, const StoreAppendBatchResult& result) {
  Effects out;
  writer.OnMessage(now, kStore, result, out);
  return WithoutPersist(std::move(out));
}

Effects Fire(BatchWriter& writer, TimeUs now, uint64_t timer_id) {
  Effects out;
  writer.OnTimer(now, timer_id, out);
  return out;
}

// Fills the writer with cmids first..first+count-1 from kServerA at now; returns the batches
// these enqueues sent.
std::vector<StoreAppendBatch> Fill(BatchWriter& writer, TimeUs now, ClientMsgId first, int count) {
  std::vector<StoreAppendBatch> batches;
  for (int i = 0; i < count; ++i) {
    for (auto& b : Batches(Enqueue(writer, now, kServerA, first + i, first + i))) {
      batches.push_back(b);
    }
  }
  return batches;
}

TEST(BatchWriterTest, StartArmsTheTick) {
  BatchWriter writer(Options());
  Effects out;
  writer.Start(kT0, out);
  ASSERT_EQ(out.size(), 1u);
  const auto* arm = std::get_if<ArmTimer>(&out[0]);
  ASSERT_NE(arm, nullptr);
  EXPECT_EQ(arm->timer_id, BatchWriter::kTickTimerId);
  EXPECT_EQ(arm->at_us, kT0 + kTick);
}

TEST(BatchWriterTest, AcksBeforeTheStoreWrite) {
  BatchWriter writer(Options());
  const Effects out = Enqueue(writer, kT0, kServerA, 41, 1);
  ASSERT_EQ(out.size(), 2u);
  const auto* ack = std::get_if<SendToNode>(&out[0]);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->to, kServerA);
  EXPECT_EQ(std::get<WriterEnqueueResult>(ack->msg), (WriterEnqueueResult{41, Code::kOk}));
  const auto* arm = std::get_if<ArmTimer>(&out[1]);
  ASSERT_NE(arm, nullptr);
  EXPECT_EQ(arm->timer_id, BatchWriter::kFlushTimerId);
  EXPECT_EQ(arm->at_us, kT0 + kWindow);
  EXPECT_TRUE(Batches(out).empty());  // acked, not yet written: the read-after-write gap
  EXPECT_EQ(writer.queue_depth(), 1u);

  // With a batch of one, the ack still comes before the write in the same step.
  ProtocolConfig config = WriterConfig();
  config.writer_batch_max = 1;
  BatchWriter single(Options(config));
  const Effects now_out = Enqueue(single, kT0, kServerA, 42, 2);
  ASSERT_GE(now_out.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WriterEnqueueResult>(std::get<SendToNode>(now_out[0]).msg));
  EXPECT_EQ(Batches(now_out).size(), 1u);
}

TEST(BatchWriterTest, FlushesBySize) {
  BatchWriter writer(Options());
  EXPECT_TRUE(Fill(writer, kT0, 1, 2).empty());
  const std::vector<StoreAppendBatch> batches =
      Batches(Enqueue(writer, kT0 + 7 * kUsPerMs, kServerA, 3, 3));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].request_id, 1u);
  EXPECT_EQ(Cmids(batches[0]), (std::vector<ClientMsgId>{1, 2, 3}));  // FIFO
  EXPECT_EQ(writer.stats().flushes_by_size, 1u);
  EXPECT_EQ(writer.stats().flushes_by_timer, 0u);
  EXPECT_EQ(writer.stats().batches_sent, 1u);
  EXPECT_EQ(writer.stats().items_flushed, 3u);
  EXPECT_EQ(writer.stats().wait_us_total, static_cast<uint64_t>(2 * 7 * kUsPerMs));
  EXPECT_EQ(writer.in_flight(), 3u);
  EXPECT_EQ(writer.waiting(), 0u);
  // The window timer of those items fires later and finds nothing to do.
  EXPECT_TRUE(Batches(Fire(writer, kT0 + kWindow, BatchWriter::kFlushTimerId)).empty());
}

TEST(BatchWriterTest, FlushesByTimer) {
  BatchWriter writer(Options());
  Enqueue(writer, kT0, kServerA, 1, 1);
  const Effects second = Enqueue(writer, kT0 + 5 * kUsPerMs, kServerA, 2, 2);
  EXPECT_EQ(second.size(), 1u);  // the ack only: the buffer was not empty, no new timer
  EXPECT_TRUE(Batches(Fire(writer, kT0 + kWindow - 1, BatchWriter::kFlushTimerId)).empty());
  const std::vector<StoreAppendBatch> batches =
      Batches(Fire(writer, kT0 + kWindow, BatchWriter::kFlushTimerId));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(Cmids(batches[0]), (std::vector<ClientMsgId>{1, 2}));
  EXPECT_EQ(writer.stats().flushes_by_timer, 1u);
  EXPECT_EQ(writer.stats().flushes_by_size, 0u);
  // Mean batching delay: (20 ms + 15 ms) / 2.
  EXPECT_EQ(writer.stats().wait_us_total, static_cast<uint64_t>(35 * kUsPerMs));
  EXPECT_EQ(writer.stats().items_flushed, 2u);
}

TEST(BatchWriterTest, OneBatchInFlight) {
  BatchWriter writer(Options());
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);
  // Two more arrive while the first batch is in flight: they wait, even past their window.
  EXPECT_TRUE(Fill(writer, kT0 + kUsPerMs, 4, 2).empty());
  EXPECT_EQ(writer.waiting(), 2u);
  EXPECT_TRUE(Batches(Fire(writer, kT0 + kUsPerMs + kWindow, BatchWriter::kFlushTimerId)).empty());
  EXPECT_EQ(writer.queue_depth(), 5u);

  // The result commits the first batch and releases the next (its window has passed).
  const TimeUs t1 = kT0 + kUsPerMs + kWindow + 3;
  const Effects out = Deliver(writer, t1, ResultFor(first[0]));
  const std::vector<StoreAppendBatch> second = Batches(out);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].request_id, 2u);
  EXPECT_EQ(Cmids(second[0]), (std::vector<ClientMsgId>{4, 5}));
  EXPECT_TRUE(std::holds_alternative<WriterCommitted>(std::get<SendToNode>(out[0]).msg));
  EXPECT_EQ(writer.stats().flushes_by_timer, 1u);
  EXPECT_EQ(writer.stats().batches_committed, 1u);
  EXPECT_EQ(writer.queue_depth(), 2u);

  // Items arriving during the second flight whose window has not passed when it commits get a
  // timer at their deadline instead of an early flush.
  const TimeUs t2 = t1 + kUsPerMs;
  Fill(writer, t2, 6, 1);
  const Effects after = Deliver(writer, t2 + kUsPerMs, ResultFor(second[0]));
  EXPECT_TRUE(Batches(after).empty());
  ASSERT_FALSE(after.empty());
  const auto* arm = std::get_if<ArmTimer>(&after.back());
  ASSERT_NE(arm, nullptr);
  EXPECT_EQ(arm->timer_id, BatchWriter::kFlushTimerId);
  EXPECT_EQ(arm->at_us, t2 + kWindow);
  const std::vector<StoreAppendBatch> third =
      Batches(Fire(writer, t2 + kWindow, BatchWriter::kFlushTimerId));
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(Cmids(third[0]), (std::vector<ClientMsgId>{6}));
}

TEST(BatchWriterTest, SizeFlushRemainderWaitsForResult) {
  ProtocolConfig config = WriterConfig();
  config.writer_queue_max = 10;
  BatchWriter writer(Options(config));
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);
  Fill(writer, kT0, 4, 4);  // 4 waiting: more than one batch
  const std::vector<StoreAppendBatch> second = Batches(Deliver(writer, kT0, ResultFor(first[0])));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(Cmids(second[0]), (std::vector<ClientMsgId>{4, 5, 6}));
  EXPECT_EQ(writer.stats().flushes_by_size, 2u);
  EXPECT_EQ(writer.waiting(), 1u);
}

TEST(BatchWriterTest, RetriesOnTimeoutAndIgnoresLateDuplicate) {
  BatchWriter writer(Options());
  Effects start;
  writer.Start(kT0, start);
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);

  // A tick before the timeout re-arms itself and resends nothing.
  Effects out = Fire(writer, kT0 + kTick, BatchWriter::kTickTimerId);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<ArmTimer>(out[0]).at_us, kT0 + 2 * kTick);
  EXPECT_EQ(writer.stats().retries, 0u);

  // At the timeout the same messages go out again under a new request id.
  out = Fire(writer, kT0 + kTimeout, BatchWriter::kTickTimerId);
  const std::vector<StoreAppendBatch> resent = Batches(out);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].request_id, first[0].request_id + 1);
  EXPECT_EQ(resent[0].messages, first[0].messages);
  EXPECT_EQ(writer.stats().retries, 1u);
  EXPECT_EQ(writer.stats().batches_sent, 1u);  // still one batch
  EXPECT_EQ(writer.stats().items_flushed, 3u);

  // The retry's result commits; the first attempt's late result is ignored.
  out = Deliver(writer, kT0 + kTimeout + 1, ResultFor(resent[0]));
  EXPECT_EQ(out.size(), 1u);  // one WriterCommitted to kServerA
  EXPECT_EQ(writer.queue_depth(), 0u);
  out = Deliver(writer, kT0 + kTimeout + 2, ResultFor(first[0]));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(writer.stats().results_ignored, 1u);
  EXPECT_EQ(writer.stats().batches_committed, 1u);
  // With nothing in flight, later ticks resend nothing.
  out = Fire(writer, kT0 + 3 * kTimeout, BatchWriter::kTickTimerId);
  EXPECT_TRUE(Batches(out).empty());
}

TEST(BatchWriterTest, EarlierAttemptResultCommitsAndRetryResultIsIgnored) {
  BatchWriter writer(Options());
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);
  const std::vector<StoreAppendBatch> resent =
      Batches(Fire(writer, kT0 + kTimeout, BatchWriter::kTickTimerId));
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(Deliver(writer, kT0 + kTimeout, ResultFor(first[0])).size(), 1u);
  EXPECT_TRUE(Deliver(writer, kT0 + kTimeout, ResultFor(resent[0])).empty());
  EXPECT_EQ(writer.stats().batches_committed, 1u);
  EXPECT_EQ(writer.stats().results_ignored, 1u);
  // An id never used is ignored too.
  StoreAppendBatchResult unknown;
  unknown.request_id = 99;
  EXPECT_TRUE(Deliver(writer, kT0, unknown).empty());
  EXPECT_EQ(writer.stats().results_ignored, 2u);
}

TEST(BatchWriterTest, MalformedResultIsNotCommitted) {
  BatchWriter writer(Options());
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);
  StoreAppendBatchResult short_result = ResultFor(first[0]);
  short_result.outcomes.pop_back();
  EXPECT_TRUE(Deliver(writer, kT0, short_result).empty());
  EXPECT_EQ(writer.stats().results_malformed, 1u);
  EXPECT_EQ(writer.in_flight(), 3u);
  EXPECT_EQ(Batches(Fire(writer, kT0 + kTimeout, BatchWriter::kTickTimerId)).size(), 1u);
}

TEST(BatchWriterTest, RefusesWhenQueueFull) {
  BatchWriter writer(Options());  // queue max 5, batch max 3
  const std::vector<StoreAppendBatch> first = Fill(writer, kT0, 1, 3);
  ASSERT_EQ(first.size(), 1u);
  Fill(writer, kT0, 4, 2);  // in flight items still count: 5 held
  EXPECT_EQ(writer.queue_depth(), 5u);
  const Effects refused = Enqueue(writer, kT0, kServerB, 77, 6);
  ASSERT_EQ(refused.size(), 1u);
  const auto& send = std::get<SendToNode>(refused[0]);
  EXPECT_EQ(send.to, kServerB);
  EXPECT_EQ(std::get<WriterEnqueueResult>(send.msg),
            (WriterEnqueueResult{77, Code::kResourceExhausted}));
  EXPECT_EQ(writer.stats().rejected_full, 1u);
  EXPECT_EQ(writer.stats().enqueued, 5u);
  EXPECT_EQ(writer.queue_depth(), 5u);
  EXPECT_EQ(writer.stats().queue_depth_max, 5u);
  // The commit frees room.
  Deliver(writer, kT0, ResultFor(first[0]));
  const Effects accepted = Enqueue(writer, kT0, kServerB, 78, 6);
  EXPECT_EQ(std::get<WriterEnqueueResult>(std::get<SendToNode>(accepted[0]).msg).code, Code::kOk);
}

TEST(BatchWriterTest, CommittedGoesToEachOriginInNodeOrder) {
  BatchWriter writer(Options());
  Enqueue(writer, kT0, kServerB, 501, 1);
  Enqueue(writer, kT0, kServerA, 601, 2);
  const std::vector<StoreAppendBatch> batches = Batches(Enqueue(writer, kT0, kServerB, 502, 3));
  ASSERT_EQ(batches.size(), 1u);
  const StoreAppendBatchResult result = ResultFor(batches[0]);
  const Effects out = Deliver(writer, kT0 + 1, result);
  ASSERT_EQ(out.size(), 2u);
  const auto& to_a = std::get<SendToNode>(out[0]);
  const auto& to_b = std::get<SendToNode>(out[1]);
  EXPECT_EQ(to_a.to, kServerA);
  EXPECT_EQ(to_b.to, kServerB);
  EXPECT_EQ(std::get<WriterCommitted>(to_a.msg).items,
            (std::vector<CommittedItem>{{601, result.outcomes[1]}}));
  EXPECT_EQ(std::get<WriterCommitted>(to_b.msg).items,
            (std::vector<CommittedItem>{{501, result.outcomes[0]}, {502, result.outcomes[2]}}));
  EXPECT_EQ(writer.queue_depth(), 0u);
}

TEST(BatchWriterTest, UnexpectedInputIsCountedAndIgnored) {
  BatchWriter writer(Options());
  Effects out;
  writer.OnMessage(kT0, kServerA, StoreAppend{}, out);
  writer.OnMessage(kT0, kServerA, SendMessage{}, out);
  writer.OnMessage(kT0, NodeId(), WriterEnqueue{1, Msg(1)}, out);  // nowhere to commit to
  writer.OnTimer(kT0, 12345, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(writer.stats().unexpected_messages, 3u);
  EXPECT_EQ(writer.queue_depth(), 0u);
}

// ---- Durability: the queue is a log ------------------------------------------------------------

TEST(BatchWriterDurabilityTest, QueuedBeforeTheAckDequeuedOnCommit) {
  BatchWriter writer(Options());
  Effects out;
  writer.OnMessage(kT0, kServerA, WriterEnqueue{41, Msg(1)}, out);
  ASSERT_GE(out.size(), 2u);
  const auto* persist = std::get_if<Persist>(&out[0]);
  ASSERT_NE(persist, nullptr) << "the item must be durable before its ack";
  const auto* queued = std::get_if<PersistQueued>(&persist->record);
  ASSERT_NE(queued, nullptr);
  EXPECT_EQ(queued->origin, kServerA);
  EXPECT_EQ(queued->request_id, 41u);
  EXPECT_EQ(queued->message.client_msg_id, 1u);
  EXPECT_NE(std::get_if<SendToNode>(&out[1]), nullptr);  // the ack comes after
  const std::vector<StoreAppendBatch> batches = Batches(Fire(writer, kT0 + kWindow, 2));
  ASSERT_EQ(batches.size(), 1u);
  Effects commit;
  writer.OnMessage(kT0 + kWindow, kStore, ResultFor(batches[0]), commit);
  ASSERT_FALSE(commit.empty());
  const auto* dequeued = std::get_if<Persist>(&commit[0]);
  ASSERT_NE(dequeued, nullptr);
  EXPECT_EQ(std::get<PersistDequeued>(dequeued->record).count, 1u);
}

TEST(BatchWriterDurabilityTest, RestoreRebuildsTheQueueAndStartFlushesIt) {
  BatchWriter before(Options());
  std::vector<PersistRecord> disk;
  auto keep = [&disk](const Effects& out) {
    for (const Effect& e : out) {
      if (const auto* p = std::get_if<Persist>(&e)) disk.push_back(p->record);
    }
  };
  // Five items: the third fills a batch (writer_batch_max = 3), two wait behind it.
  std::vector<StoreAppendBatch> first;
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) {
    Effects out;
    before.OnMessage(kT0, kServerA, WriterEnqueue{cmid, Msg(cmid)}, out);
    keep(out);
    for (const StoreAppendBatch& b : Batches(out)) first.push_back(b);
  }
  // The first batch commits, then the writer crashes with the rest unwritten.
  ASSERT_EQ(first.size(), 1u);
  Effects commit;
  before.OnMessage(kT0 + kWindow, kStore, ResultFor(first[0]), commit);
  keep(commit);
  const size_t left = before.queue_depth();
  ASSERT_EQ(left, 2u);

  BatchWriter after(Options());
  for (const PersistRecord& r : disk) ASSERT_TRUE(after.Restore(r).ok());
  EXPECT_EQ(after.queue_depth(), left);
  EXPECT_EQ(after.stats().records_restored, disk.size());
  Effects start;
  after.Start(kT0 + 10 * kWindow, start);
  bool flush_armed = false;
  for (const Effect& e : start) {
    const auto* arm = std::get_if<ArmTimer>(&e);
    flush_armed = flush_armed || (arm != nullptr && arm->timer_id == BatchWriter::kFlushTimerId);
  }
  EXPECT_TRUE(flush_armed);
  // A store's record, or a dequeue of more than is queued, is refused: corrupt storage.
  EXPECT_FALSE(after.Restore(PersistMessage{Msg(9)}).ok());
  EXPECT_FALSE(after.Restore(PersistDequeued{left + 1}).ok());
}

}  // namespace
}  // namespace chatlab
