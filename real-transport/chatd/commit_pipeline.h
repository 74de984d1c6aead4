// The durability gate: how chatd keeps core/effects.h's promise that a node's Persist record is
// durable before any later effect of that node is carried out, with group commit.
//
// Apply takes one core call's effects, in order:
//   1. a Persist record goes into the open batch;
//   2. an effect of a node that has a record not yet durable (of this call, or of an earlier
//      one still in a batch) is held, tagged with the batch of that node's newest record;
//   3. every other effect is carried out now, with host::Dispatch against the environment.
// One batch commits at a time, on the storage thread (CommitThread, below); records arriving
// meanwhile gather in the next batch, which is submitted when the running one returns. When a
// batch has committed, the held effects of its batch and earlier ones are carried out, in the
// order they were held. So an ack leaves only after its record is on disk, and a read never
// shows what is not durable. docs/chatd.md, "Durability", is the design.
//
// A failed commit is fatal: the owner's `fatal` is called with the storage's error and must stop
// the process (chatd logs it and exits 1: memory has run ahead of disk; a restart restores).
// If fatal returns (a test), the pipeline commits nothing more and never releases what it holds.
//
// Reads: Read runs a store's LoadHistory, and Find its LoadDedup, on the storage thread, after
// every batch submitted before it. The store's effect is itself held while the store has a record
// not yet durable, so the read sees everything the store persisted before asking
// (core/effects.h). A failed read is fatal, as a failed commit is.
//
// Keep-alive: for a storage whose right to write lapses unless renewed (Storage::keepalive_ms,
// PostgreSQL's lease), the storage thread calls Storage::KeepAlive when that long has passed
// since the last commit or renewal; a failure (the lease was taken over: fenced) is fatal.
//
// Threading: Apply, and everything the pipeline calls on the environment, run on the owner's
// thread. The storage thread only runs Storage::Commit and hands its result to `post`, which
// must run the given function on the owner's thread (chatd: asio::post to its io_context).
// Nothing here reads the clock except the commit latency measured on the storage thread.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_COMMIT_PIPELINE_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_COMMIT_PIPELINE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "core/effects.h"
#include "core/types.h"
#include "host/dispatch.h"
#include "real-transport/storage/storage.h"
#include "real-transport/util.h"

namespace chatlab::real {

class CommitThread;

class CommitPipeline {
 public:
  struct Stats {
    uint64_t commits = 0;      // batches committed
    uint64_t records = 0;      // records submitted
    uint64_t reads = 0;        // LoadHistory and LoadDedup reads submitted
    Histogram commit_latency;  // one Storage::Commit, seconds
  };
  using Post = std::function<void(std::function<void()>)>;
  using Fatal = std::function<void(const absl::Status&)>;
  using Loaded = std::function<void(std::vector<ChatMessage>)>;
  using Found = std::function<void(std::optional<ChatMessage>)>;

  // storage and env must outlive the pipeline.
  CommitPipeline(Storage& storage, host::NodeEnv& env, Post post, Fatal fatal);
  ~CommitPipeline();  // Stop()
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Carries out, holds or batches each of one core call's effects of node `from` (above).
  // Persist records are the pipeline's own: env.Persist is never called.
  void Apply(NodeId from, Effects& effects);

  // Reads load's rows on the storage thread; loaded gets them on the owner's thread (never after
  // a fatal error).
  void Read(const LoadHistory& load, Loaded loaded);
  // Looks load's dedup key up on the storage thread (Storage::FindMessage); found gets the
  // answer on the owner's thread, likewise.
  void Find(const LoadDedup& load, Found found);

  // Joins the storage thread once every submitted batch has committed. Completions posted by
  // then may never run (chatd stops its loop first); nothing may be applied afterwards.
  void Stop();

  // Nothing open, committing or held: every record is durable and every effect carried out.
  bool idle() const { return !committing_ && open_.empty() && held_.empty(); }
  bool committing() const { return committing_; }
  size_t held() const { return held_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Held {
    uint64_t batch;
    NodeId from;
    Effect effect;
  };
  bool Gated(NodeId node) const;
  // Runs read on the storage thread and hands its value to done on the owner's thread; an
  // error is fatal.
  template <typename T>
  void SubmitRead(std::function<absl::StatusOr<T>(Storage&)> read, std::function<void(T)> done);
  void MaybeCommit();
  void OnCommitted(uint64_t batch, const absl::Status& status, double seconds);

  Storage& storage_;
  host::NodeEnv& env_;
  Post post_;
  Fatal fatal_;
  std::vector<PersistRecord> open_;  // the open batch, numbered open_batch_
  uint64_t open_batch_ = 1;
  bool committing_ = false;     // batch open_batch_ - 1 is on the storage thread
  uint64_t durable_batch_ = 0;  // every batch up to this one has committed
  bool failed_ = false;
  // Per node that persisted: the batch of its newest record. The node is gated while that
  // batch is > durable_batch_.
  absl::btree_map<NodeId, uint64_t> newest_batch_;
  // Held effects in the order they were held. Invariant: every batch > durable_batch_, and
  // one node's batches ascend.
  std::deque<Held> held_;
  Stats stats_;
  std::unique_ptr<CommitThread> thread_;  // last: stopped before the rest goes
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_COMMIT_PIPELINE_H_
