// Unit tests for core/store.h with IdGenerator::kChatServer: ids minted by the chat servers on
// their own (skewed) clocks, and the store keeping every partition append-only in id order.
#include "core/store.h"

#include <cstdint>
#include <vector>

#include "core/snowflake.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace chatlab::store_test {
namespace {

ProtocolConfig ChatServerIds(IdScheme scheme = IdScheme::kTimestamp) {
  ProtocolConfig config;
  config.id_scheme = scheme;
  config.id_generator = IdGenerator::kChatServer;
  return config;
}

ChatMessage Minted(const ConversationId& conv, UserId sender, ClientMsgId cmid, MessageId id,
                   std::string body = "hi") {
  ChatMessage m = Msg(conv, sender, cmid, std::move(body));
  m.message_id = id;
  return m;
}

TEST(StoreMintedIdsTest, IdsAboveTheHeadAreStoredAsMinted) {
  MessageStore store(Options(ChatServerIds()));
  const AppendOutcome a = Append(store, kT0, Minted(kAliceBob, kAlice, 1, 1000));
  const AppendOutcome b = Append(store, kT0, Minted(kAliceBob, kBob, 1, 2500));
  ASSERT_EQ(a.code, Code::kOk);
  ASSERT_EQ(b.code, Code::kOk);
  EXPECT_EQ(a.message.message_id, 1000u);
  EXPECT_EQ(a.message.prev_msg_id, kNoMessage);
  EXPECT_EQ(b.message.message_id, 2500u);
  EXPECT_EQ(b.message.prev_msg_id, 1000u);
  EXPECT_EQ(store.stats().ids_minted_elsewhere, 2u);
  EXPECT_EQ(store.stats().ids_lifted, 0u);
  EXPECT_EQ(store.stats().out_of_order_ids, 0u);
  EXPECT_EQ(store.stats().id_collisions, 0u);
}

// A server 1 s behind the one that wrote the head: its id would sort above history the readers
// hold; it is stored at the head, and the lift is the skew.
TEST(StoreMintedIdsTest, AnIdBehindTheHeadIsLiftedAndCounted) {
  MessageStore store(Options(ChatServerIds()));
  const MessageId ahead = 5 * kUsPerSecond;
  const MessageId behind = ahead - kUsPerSecond;
  ASSERT_EQ(Append(store, kT0, Minted(kAliceBob, kAlice, 1, ahead)).code, Code::kOk);
  const AppendOutcome late = Append(store, kT0, Minted(kAliceBob, kBob, 1, behind));
  ASSERT_EQ(late.code, Code::kOk);
  EXPECT_EQ(late.message.message_id, ahead + 1);
  EXPECT_EQ(late.message.prev_msg_id, ahead);
  EXPECT_EQ(store.stats().out_of_order_ids, 1u);
  EXPECT_EQ(store.stats().id_collisions, 0u);
  EXPECT_EQ(store.stats().ids_lifted, 1u);
  EXPECT_EQ(store.stats().id_lift_max, static_cast<uint64_t>(kUsPerSecond) + 1);
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{ahead, ahead + 1}));
  // The next id above the new head is taken as minted again.
  EXPECT_EQ(Append(store, kT0, Minted(kAliceBob, kAlice, 2, ahead + 7)).message.prev_msg_id,
            ahead + 1);
}

// Two servers stamping the same microsecond: no overwrite (kStore's timestamp failure mode),
// both messages stored.
TEST(StoreMintedIdsTest, CollisionsAreLiftedNeverOverwritten) {
  MessageStore store(Options(ChatServerIds()));
  ASSERT_EQ(Append(store, kT0, Minted(kAliceBob, kAlice, 1, 100, "first")).code, Code::kOk);
  const AppendOutcome same = Append(store, kT0, Minted(kAliceBob, kBob, 1, 100, "second"));
  EXPECT_EQ(same.message.message_id, 101u);
  EXPECT_EQ(store.stats().id_collisions, 1u);
  EXPECT_EQ(store.stats().out_of_order_ids, 0u);  // equal to the head, not below it
  // Equal to a stored id below the head: both anomalies at once.
  const AppendOutcome old = Append(store, kT0, Minted(kAliceBob, kAlice, 2, 100, "third"));
  EXPECT_EQ(old.message.message_id, 102u);
  EXPECT_EQ(store.stats().id_collisions, 2u);
  EXPECT_EQ(store.stats().out_of_order_ids, 1u);
  EXPECT_EQ(store.stats().ids_lifted, 2u);
  const std::vector<ChatMessage> all = store.Messages(kAliceBob);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].body, "first");
  EXPECT_EQ(all[1].body, "second");
  EXPECT_EQ(all[2].body, "third");
}

TEST(StoreMintedIdsTest, SequenceIdsAreNumberedByTheStore) {
  MessageStore store(Options(ChatServerIds(IdScheme::kSequence)));
  EXPECT_EQ(Append(store, kT0, Msg(kAliceBob, kAlice, 1)).message.message_id, 1u);
  EXPECT_EQ(Append(store, kT0, Msg(kAliceBob, kBob, 1)).message.message_id, 2u);
  EXPECT_EQ(store.stats().ids_assigned_here, 2u);
  EXPECT_EQ(store.stats().ids_minted_elsewhere, 0u);
}

// A retry reaches the store with a freshly minted id (another server, a later instant): it is
// the same message, answered with the original ids, stored once.
TEST(StoreMintedIdsTest, ARetryWithAnotherMintedIdIsADuplicate) {
  MessageStore store(Options(ChatServerIds()));
  const AppendOutcome first = Append(store, kT0, Minted(kAliceBob, kAlice, 1, 500));
  const AppendOutcome retry = Append(store, kT0, Minted(kAliceBob, kAlice, 1, 900));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.message.message_id, first.message.message_id);
  EXPECT_EQ(store.Messages(kAliceBob).size(), 1u);
  EXPECT_EQ(store.stats().ids_lifted, 0u);
}

TEST(StoreMintedIdsTest, BatchedItemsAreLiftedInBatchOrder) {
  MessageStore store(Options(ChatServerIds()));
  StoreAppendBatch batch{9, {Minted(kAliceBob, kAlice, 1, 300), Minted(kAliceBob, kBob, 1, 200),
                             Minted(kAliceBob, kAlice, 2, 400)}};
  const auto result = Call<StoreAppendBatchResult>(store, kT0, batch);
  ASSERT_EQ(result.outcomes.size(), 3u);
  EXPECT_EQ(result.outcomes[0].message.message_id, 300u);
  EXPECT_EQ(result.outcomes[1].message.message_id, 301u);
  EXPECT_EQ(result.outcomes[1].message.prev_msg_id, 300u);
  EXPECT_EQ(result.outcomes[2].message.message_id, 400u);
  EXPECT_EQ(result.outcomes[2].message.prev_msg_id, 301u);
}

// Negative space: with the store as the generator, an id in the request is ignored.
TEST(StoreMintedIdsTest, TheStoreGeneratorIgnoresAnIdInTheRequest) {
  MessageStore store(Options(SequenceConfig()));
  EXPECT_EQ(Append(store, kT0, Minted(kAliceBob, kAlice, 1, 77777)).message.message_id, 1u);
  EXPECT_EQ(store.stats().ids_minted_elsewhere, 0u);
}

// After a restart the head comes back from the records, and lifting continues from it.
TEST(StoreMintedIdsTest, ARestoredStoreLiftsAboveTheRestoredHead) {
  MessageStore store(Options(ChatServerIds()));
  Effects out;
  store.OnMessage(kT0, kServer, StoreAppend{1, Minted(kAliceBob, kAlice, 1, 1000)}, out);
  MessageStore restarted(Options(ChatServerIds()));
  for (const Effect& e : out) {
    if (const auto* p = std::get_if<Persist>(&e)) {
      ASSERT_TRUE(restarted.Restore(p->record).ok());
    }
  }
  EXPECT_EQ(Append(restarted, kT0, Minted(kAliceBob, kBob, 1, 10)).message.message_id, 1001u);
  EXPECT_EQ(restarted.stats().ids_lifted, 1u);
}

}  // namespace
}  // namespace chatlab::store_test
