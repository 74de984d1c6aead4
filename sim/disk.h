// The simulated disk under a node that persists (the message store, the batch writer).
//
// A node's Persist records (core/effects.h) become durable when an fsync that covers them ends.
// Group commit, as chatd's storage thread does it: a record written while no fsync runs starts
// one; records written while one runs wait for the next, which starts when the running one ends
// and covers every record written meanwhile. The node's effects that follow a Persist leave only
// once the record is durable (the world holds them), so an acknowledgement means durable.
//
// A crash loses every record not yet durable. With a torn write, the last of those records is
// half on the disk: recovery must find it (a checksum mismatch) and discard it rather than
// replay it, which Crash models by counting it and dropping it like the others. Recovery then
// replays durable() in the order written, through the node's Restore.
//
// Deterministic: no clock, no randomness; times are simulated seconds passed in.
#ifndef CHATLAB_SIM_DISK_H_
#define CHATLAB_SIM_DISK_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "core/effects.h"

namespace chatlab::sim {

class SimDisk {
 public:
  // REQUIRES: fsync_s >= 0 (0: every write is durable at once). index_messages: keep the
  // messages indexed for ReadMessages (a store with a bounded tail cache reads them back).
  // keep_records: keep every durable record for Durable and HotRecords, which only a restart
  // after a crash reads; a node the scenario never crashes passes false and keeps none (at a
  // million users they were a tenth of the simulator's memory). The index is kept either way.
  explicit SimDisk(double fsync_s, bool index_messages = false, bool keep_records = true);

  // Writes records at now. Returns the time they are durable (>= now). REQUIRES: now never
  // decreases from one call to the next.
  double Write(double now, std::vector<PersistRecord> records);

  struct CrashLoss {
    uint64_t lost = 0;   // records written but not durable: gone
    bool torn = false;   // the last of them was torn (only when lost > 0)
  };
  // The node crashed at now.
  CrashLoss Crash(double now, bool torn_write);

  // Every durable record, in the order written (what a restart replays). Settles writes whose
  // fsync ended by now first. REQUIRES: keep_records.
  const std::vector<PersistRecord>& Durable(double now);

  // Up to limit messages of conv with ids above after, ascending (the last write of an id wins),
  // as durable at now; with unsynced, also what is written but not yet durable. The store's
  // LoadHistory reads durable rows only: the world carries it out once every earlier record of
  // the store is durable, and a row a crash could still lose must not be shown. The oracle's
  // truth (a bounded tail cache) reads both, as the store's memory holds both.
  // REQUIRES: index_messages.
  std::vector<ChatMessage> ReadMessages(double now, const ConversationId& conv, MessageId after,
                                        uint32_t limit, bool unsynced);

  // What a restarted store with a bounded tail cache needs of Durable(now) (MessageStore::
  // Restore): every record but the messages, and of those each conversation's newest and the
  // newest `recent`, in the order written. REQUIRES: index_messages and keep_records.
  std::vector<PersistRecord> HotRecords(double now, uint64_t recent);

  // The first durable message written with (sender, client_msg_id) that is still on disk (not
  // overwritten by a later write of its id), or nothing: the store's LoadDedup, which, like
  // LoadHistory, reads durable rows only. REQUIRES: index_messages.
  std::optional<ChatMessage> FindMessage(double now, UserId sender, ClientMsgId client_msg_id);

  uint64_t fsyncs() const { return fsyncs_; }
  uint64_t records_written() const { return records_written_; }

 private:
  // Moves every record whose fsync ended by now into durable_.
  void Settle(double now);

  const double fsync_s_;
  const bool index_messages_;
  const bool keep_records_;
  // End of the latest fsync scheduled (running or waiting to start); -1 before the first.
  double last_end_s_ = -1;
  std::vector<PersistRecord> durable_;
  std::deque<std::pair<double, PersistRecord>> unsynced_;  // (durable at, record), in order
  // The PersistMessage records of durable_, by conversation and id (the last write wins).
  absl::btree_map<ConversationId, absl::btree_map<MessageId, ChatMessage>> durable_messages_;
  // Where each (sender, client_msg_id) was first written among durable_messages_.
  absl::btree_map<std::pair<UserId, ClientMsgId>, std::pair<ConversationId, MessageId>>
      durable_keys_;
  uint64_t fsyncs_ = 0;
  uint64_t records_written_ = 0;
};

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_DISK_H_
