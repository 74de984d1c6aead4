// The simulated CPU one input costs a node: the cost model of docs/cost-model.md.
//
//   cpu_us = request_us(role) + item_us(role) x ItemsOf(input) + send_us x messages sent
//            (at the store, instead of item_us x items: store_commit_us when it writes, and its
//            rows written, by table, and read)
//   seconds = cpu_us / 1e6 / cost.cpu_speed_factor
//
// Every figure is a [cost] key (sim/scenario.h) with its source in docs/cost-model.md. This file
// classifies message and effect types and counts the entries they carry; it decides nothing
// about the protocol.
#ifndef CHATLAB_SIM_WORLD_COST_H_
#define CHATLAB_SIM_WORLD_COST_H_

#include <cstddef>

#include "core/effects.h"
#include "core/messages.h"
#include "host/deployment.h"
#include "sim/scenario.h"

namespace chatlab::sim::world {

// The entries a message carries: the messages of a StoreAppendBatch or a forwarded buffer
// (ForwardBatch, QueuePublish, QueueDeliver: messages + receipts + typing), the users of a
// lookup, the outcomes or committed items of a batch answer, the rows of a read answer, the
// recipients of a presence push. At least 1: a message that carries one thing (or none, like a
// session open) counts as one item.
size_t ItemsOf(const Message& m);

// How a store input's work splits into the rows it writes (its Persist records, by table) and
// the rows it reads (the rows its answers carry).
struct StoreRows {
  size_t messages_written = 0;     // PersistMessage
  size_t memberships_written = 0;  // PersistMembership (two rows: both membership tables)
  size_t receipts_written = 0;     // PersistWatermark, PersistAggregate
  size_t rows_read = 0;            // StoreReadResult messages, StoreSyncResult heads,
                                   // StoreMembersResult members
};
StoreRows CountStoreRows(const Effects& out);

// Messages a node sends among its effects: SendToNode, SendToClient, PushToDevice.
size_t SendsOf(const Effects& out);

// CPU microseconds on the reference core that a node of role spends on input, given the effects
// it produced (cost.cpu_speed_factor is not applied).
double CpuUs(const Scenario& sc, host::Role role, const Message& input, const Effects& out);

}  // namespace chatlab::sim::world

#endif  // CHATLAB_SIM_WORLD_COST_H_
