// The commit pipeline (real-transport/chatd/commit_pipeline.h) without sockets: a MemoryStorage
// as the disk, a recording host::NodeEnv as the environment, and a test-owned loop standing for
// chatd's io_context, so the test decides when a commit's completion runs.
//
// What it checks is the durability promise (core/effects.h Persist): an effect after a node's
// Persist is not carried out before that record is committed, it is after, in order, across
// several batches; other nodes are not held; records arriving during a commit share the next
// batch; a failed commit is fatal and releases nothing; Stop commits what was submitted.
#include "real-transport/chatd/commit_pipeline.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "host/dispatch.h"
#include "real-transport/storage/memory_storage.h"

namespace chatlab::real {
namespace {

constexpr NodeId kStore(1);
constexpr NodeId kServer(101);
// Longest wait for a commit's completion; a wait that must find none is kQuiet.
constexpr auto kWait = std::chrono::seconds(10);
constexpr auto kQuiet = std::chrono::milliseconds(100);

// Stands for chatd's io_context: completions posted from the storage thread wait here until the
// test runs them.
class Loop {
 public:
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      posted_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  // Runs the next posted function; false if none came within timeout.
  bool RunOne(std::chrono::milliseconds timeout = kWait) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, timeout, [this] { return !posted_.empty(); })) return false;
      fn = std::move(posted_.front());
      posted_.pop_front();
    }
    fn();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> posted_;
};

// Records every effect the pipeline carries out, labelled by its timer id (the test's effects
// are ArmTimer{label}), with how many records the storage had committed at that moment.
class RecordingEnv : public host::NodeEnv {
 public:
  struct Carried {
    NodeId from;
    uint64_t label;
    uint64_t committed_then;
  };
  explicit RecordingEnv(const MemoryStorage& storage) : storage_(storage) {}

  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs) override {
    carried.push_back({node, timer_id, storage_.records_committed()});
  }
  void SendToNode(NodeId, NodeId, Message) override { ADD_FAILURE() << "unexpected SendToNode"; }
  void SendToClient(NodeId, SessionId, Message) override { ADD_FAILURE() << "SendToClient"; }
  void CloseSession(NodeId, SessionId) override { ADD_FAILURE() << "unexpected CloseSession"; }
  void PushToDevice(NodeId, const chatlab::PushToDevice&) override { ADD_FAILURE() << "push"; }
  void Persist(NodeId, PersistRecord) override {
    ADD_FAILURE() << "the pipeline handed a Persist to the environment";
  }
  // Recorded with its token as the label; the test runs the read (CommitPipeline::Read).
  void LoadHistory(NodeId node, const chatlab::LoadHistory& load) override {
    carried.push_back({node, load.token, storage_.records_committed()});
    loads.push_back(load);
  }
  std::vector<chatlab::LoadHistory> loads;
  void LoadDedup(NodeId node, const chatlab::LoadDedup& load) override {
    carried.push_back({node, load.token, storage_.records_committed()});
    dedups.push_back(load);
  }
  std::vector<chatlab::LoadDedup> dedups;

  std::vector<uint64_t> Labels() const {
    std::vector<uint64_t> out;
    for (const Carried& c : carried) out.push_back(c.label);
    return out;
  }

  std::vector<Carried> carried;

 private:
  const MemoryStorage& storage_;
};

Effect Timer(uint64_t label) { return chatlab::ArmTimer{label, 0}; }
Effect Record(uint64_t user) {
  return chatlab::Persist{PersistMembership{UserId(user), GroupId(1), true}};
}

class CommitPipelineTest : public ::testing::Test {
 protected:
  CommitPipelineTest()
      : env_(storage_),
        pipeline_(
            storage_, env_, [this](std::function<void()> fn) { loop_.Post(std::move(fn)); },
            [this](const absl::Status& status) { fatal_.push_back(status); }) {}

  void Apply(NodeId from, Effects effects) { pipeline_.Apply(from, effects); }

  MemoryStorage storage_;
  RecordingEnv env_;
  Loop loop_;
  std::vector<absl::Status> fatal_;
  CommitPipeline pipeline_;
};

TEST_F(CommitPipelineTest, AnEffectAfterAPersistWaitsForItsCommit) {
  Apply(kStore, {Timer(1), Record(1), Timer(2), Timer(3)});
  // Before the Persist: carried at once. After it: held until the commit's completion runs.
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(pipeline_.held(), 2u);
  EXPECT_TRUE(pipeline_.committing());
  EXPECT_FALSE(pipeline_.idle());

  ASSERT_TRUE(loop_.RunOne());
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(env_.carried[0].committed_then, 0u);
  EXPECT_EQ(env_.carried[1].committed_then, 1u);  // the record was durable when 2 went out
  EXPECT_EQ(env_.carried[2].committed_then, 1u);
  EXPECT_TRUE(pipeline_.idle());
  EXPECT_EQ(pipeline_.stats().commits, 1u);
  EXPECT_EQ(pipeline_.stats().records, 1u);
  EXPECT_TRUE(fatal_.empty());
}

TEST_F(CommitPipelineTest, HeldEffectsGoOutInOrderAcrossBatches) {
  Apply(kStore, {Record(1), Timer(1)});  // batch 1, committing at once
  Apply(kStore, {Record(2), Timer(2)});  // batch 2, open while 1 commits
  Apply(kStore, {Timer(3)});             // no record of its own, but after the store's records
  Apply(kServer, {Timer(100)});          // another node: nothing of it is pending
  Apply(kStore, {Record(3), Timer(4)});  // joins batch 2
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{100}));
  EXPECT_EQ(pipeline_.held(), 4u);

  ASSERT_TRUE(loop_.RunOne());  // batch 1 committed: its effect only; batch 2 goes to commit
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{100, 1}));
  EXPECT_EQ(env_.carried[1].committed_then, 1u);
  EXPECT_TRUE(pipeline_.committing());

  ASSERT_TRUE(loop_.RunOne());  // batch 2 committed: the rest, in the order they were held
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{100, 1, 2, 3, 4}));
  for (size_t i = 2; i < env_.carried.size(); i++) EXPECT_EQ(env_.carried[i].committed_then, 3u);
  EXPECT_TRUE(pipeline_.idle());
  EXPECT_EQ(pipeline_.stats().commits, 2u);  // three records, two batches
  EXPECT_EQ(pipeline_.stats().records, 3u);

  // Everything durable: the store's next effect without a record goes out at once.
  Apply(kStore, {Timer(5)});
  EXPECT_EQ(env_.Labels().back(), 5u);

  // The records are in the storage in the order they were persisted.
  std::vector<uint64_t> users;
  ASSERT_TRUE(storage_.Reopen()
                  ->Load([&](const PersistRecord& r) {
                    users.push_back(std::get<PersistMembership>(r).user.value);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(users, (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(CommitPipelineTest, WithoutAPersistNothingIsHeldOrCommitted) {
  Apply(kStore, {Timer(1), Timer(2)});
  Apply(kServer, {Timer(3)});
  EXPECT_EQ(env_.Labels(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(pipeline_.idle());
  EXPECT_FALSE(loop_.RunOne(kQuiet));
  EXPECT_EQ(pipeline_.stats().commits, 0u);
}

TEST_F(CommitPipelineTest, AFailedCommitIsFatalAndReleasesNothing) {
  // A record no table holds: the storage refuses the batch.
  Apply(kStore, {Effect(chatlab::Persist{PersistDequeued{1}}), Timer(1)});
  ASSERT_TRUE(loop_.RunOne());
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_EQ(fatal_[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(env_.carried.empty());

  // fatal returned (only a test lets it): the pipeline commits nothing more.
  Apply(kStore, {Record(1), Timer(2)});
  EXPECT_FALSE(loop_.RunOne(kQuiet));
  EXPECT_TRUE(env_.carried.empty());
  EXPECT_EQ(storage_.records_committed(), 0u);
  EXPECT_EQ(pipeline_.stats().commits, 0u);
}

// The store's LoadHistory after a Persist waits for its commit like any effect, and the read it
// leads to (on the storage thread) sees the committed message.
TEST_F(CommitPipelineTest, AReadFollowsTheStoresCommits) {
  const ConversationId conv = ConversationId::Direct(UserId(1), UserId(2));
  ChatMessage m;
  m.conv = conv;
  m.message_id = 7;
  m.sender = UserId(1);
  m.body = "x";
  Apply(kStore, {Effect(chatlab::Persist{PersistMessage{m}}),
                 Effect(chatlab::LoadHistory{42, conv, 0, 10})});
  EXPECT_TRUE(env_.loads.empty());  // held behind the record
  ASSERT_TRUE(loop_.RunOne());
  ASSERT_EQ(env_.loads.size(), 1u);
  EXPECT_EQ(env_.carried.back().committed_then, 1u);
  std::vector<ChatMessage> rows;
  bool answered = false;
  pipeline_.Read(env_.loads[0], [&](std::vector<ChatMessage> r) {
    rows = std::move(r);
    answered = true;
  });
  ASSERT_TRUE(loop_.RunOne());  // the answer is posted to the owner's loop
  EXPECT_TRUE(answered);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], m);
  EXPECT_EQ(pipeline_.stats().reads, 1u);
  EXPECT_TRUE(fatal_.empty());
}

// The same for a dedup look-up: held behind the record, then found on the storage thread; a key
// never stored is answered with nothing.
TEST_F(CommitPipelineTest, ADedupLookupFollowsTheStoresCommits) {
  ChatMessage m;
  m.conv = ConversationId::Direct(UserId(1), UserId(2));
  m.message_id = 7;
  m.sender = UserId(1);
  m.client_msg_id = 33;
  m.body = "x";
  Apply(kStore, {Effect(chatlab::Persist{PersistMessage{m}}),
                 Effect(chatlab::LoadDedup{43, UserId(1), 33})});
  EXPECT_TRUE(env_.dedups.empty());  // held behind the record
  ASSERT_TRUE(loop_.RunOne());
  ASSERT_EQ(env_.dedups.size(), 1u);
  EXPECT_EQ(env_.carried.back().committed_then, 1u);
  std::vector<std::optional<ChatMessage>> answers;
  pipeline_.Find(env_.dedups[0], [&](std::optional<ChatMessage> f) { answers.push_back(f); });
  pipeline_.Find(chatlab::LoadDedup{44, UserId(1), 34},
                 [&](std::optional<ChatMessage> f) { answers.push_back(f); });
  ASSERT_TRUE(loop_.RunOne());
  ASSERT_TRUE(loop_.RunOne());
  ASSERT_EQ(answers.size(), 2u);
  ASSERT_TRUE(answers[0].has_value());
  EXPECT_EQ(*answers[0], m);
  EXPECT_FALSE(answers[1].has_value());
  EXPECT_EQ(pipeline_.stats().reads, 2u);
  EXPECT_TRUE(fatal_.empty());
}

TEST_F(CommitPipelineTest, StopCommitsWhatWasSubmitted) {
  Apply(kStore, {Record(1), Record(2), Timer(1)});
  pipeline_.Stop();  // chatd's shutdown: its loop has stopped, the storage thread finishes
  EXPECT_EQ(storage_.records_committed(), 2u);
}

}  // namespace
}  // namespace chatlab::real
