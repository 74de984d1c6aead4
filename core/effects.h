// Effects: what a core state machine asks its environment to do.
//
// Core never performs I/O. Every handler takes `now` and appends effects to an Effects vector;
// the environment (sim/, real-transport/, the test harness) carries them out in order. The
// contract each environment must honour is written next to each effect.
#ifndef CHATLAB_CORE_EFFECTS_H_
#define CHATLAB_CORE_EFFECTS_H_

#include <cstdint>
#include <variant>
#include <vector>

#include "core/messages.h"
#include "core/types.h"

namespace chatlab {

// Send msg to another node. Best effort: the environment may lose, delay, duplicate or reorder
// it (a real network does); core copes.
struct SendToNode {
  NodeId to;
  Message msg;
};

// Chat server -> one of its client sessions. Messages on one session arrive in order or the
// session closes (a WebSocket is one ordered TCP stream). If the session is gone, drop it.
struct SendToClient {
  SessionId session;
  Message msg;
};

// Client -> the chat server of its current session. Same ordering contract as SendToClient.
// If the client is not connected the environment drops it.
struct SendToServer {
  Message msg;
};

// Client: please open a session to `server` (the environment picks a server if it is
// NodeId()). The environment later calls ClientSession::OnConnected or OnConnectFailed.
struct OpenSession {
  NodeId server;
};

// Close a session. From a chat server: the environment then calls ClientSession::OnDisconnected
// on the client side and must not call ChatServer::OnSessionClose for it. From a client (the user
// went offline): the environment then calls ChatServer::OnSessionClose on the server side and
// must not call ClientSession::OnDisconnected.
struct CloseSession {
  SessionId session;
};

// Call OnTimer(timer_id) once at or after at_us on this node's clock. Timers are never
// cancelled: a state machine ignores a timer that is no longer relevant. Arming the same id
// twice may fire twice.
struct ArmTimer {
  uint64_t timer_id = 0;
  TimeUs at_us = 0;
};

// Notification service -> the phone vendor's push service (APNs/FCM): best effort, may be lost.
// In the simulator the device may wake the client (ClientSession::OnPushNotification).
struct PushToDevice {
  UserId user;
  ConversationId conv;
  MessageId message_id = kNoMessage;
  UserId sender;
};

// ---- Durability seam (message store -> its storage) ----------------------------------------------
//
// The message store emits one Persist effect per state change, BEFORE the reply that reveals the
// change, in the order it made them. An environment with durable storage writes the records and
// makes them durable before it carries out any later effect of the store (so an ack means
// durable); on start it replays every record, in the order written, through
// MessageStore::Restore (or, with a bounded tail cache, the subset MessageStore::Restore
// names). The simulator keeps them on a simulated disk (sim/disk.h: durable after
// an fsync, lost on a crash if not yet synced); the in-process cluster ignores Persist: its
// services never restart. The batch writer persists its queue the same way (below).

// A message was stored in its partition (conv, message_id), overwriting any message with that id
// (IdScheme::kTimestamp collisions). With dedup on it also records the dedup entry
// (sender, client_msg_id).
struct PersistMessage {
  ChatMessage message;
};
// user joined (joined = true) or left group; both membership tables change together.
struct PersistMembership {
  UserId user;
  GroupId group;
  bool joined = false;
};
// reader's receipt watermark of kind in conv moved forward to up_to.
struct PersistWatermark {
  ConversationId conv;
  UserId reader;
  ReceiptKind kind = ReceiptKind::kDelivered;
  MessageId up_to = kNoMessage;
};
// The published group aggregate of kind in conv moved forward to up_to.
struct PersistAggregate {
  ConversationId conv;
  ReceiptKind kind = ReceiptKind::kDelivered;
  MessageId up_to = kNoMessage;
};
// ---- The batch writer's queue (batch writer -> its disk) ----
// The queue is a log: an item is durable before the writer acks it, and committed items leave
// it. BatchWriter::Restore replays these in order. (The store never emits them, and its
// Restore refuses them: each node has its own disk.)

// One message entered the writer's queue (before its WriterEnqueueResult kOk).
struct PersistQueued {
  NodeId origin;            // the chat server to tell when it is committed
  uint64_t request_id = 0;  // the origin's WriterEnqueue request id
  ChatMessage message;
  TimeUs enqueued_at_us = 0;
};
// The `count` oldest queued items were committed by the store and left the queue.
struct PersistDequeued {
  uint64_t count = 0;
};

using PersistRecord = std::variant<PersistMessage, PersistMembership, PersistWatermark,
                                   PersistAggregate, PersistQueued, PersistDequeued>;

// Make record durable before carrying out any later effect of the same node.
struct Persist {
  PersistRecord record;
};

// Message store -> its storage: read history the store no longer holds in memory (a read below
// its tail cache, config.store_tail_cache). The environment reads, from what the store
// persisted, up to `limit` messages of conv with ids above `after`, ascending by id, and calls
// MessageStore::OnHistoryLoaded(token, those messages) once. Every record the store persisted
// before this effect must be visible to the read: an environment that holds a node's effects
// until its records are durable (as Persist requires) has that at no cost. If the store
// restarts before the answer, the answer is dropped (the new store never asked).
struct LoadHistory {
  uint64_t token = 0;
  ConversationId conv;
  MessageId after = kNoMessage;
  uint32_t limit = 0;
};

// Message store -> its storage: is (sender, client_msg_id) stored? A resend that missed the
// store's dedup window (config.store_dedup_lookup). The environment finds, among the messages
// the store persisted, the first one written with this sender and client_msg_id (in any of the
// store's conversations), and calls MessageStore::OnDedupLoaded(token, it or nothing) once.
// The same visibility rule as LoadHistory: every record persisted before this effect is seen.
// If the store restarts before the answer, the answer is dropped.
struct LoadDedup {
  uint64_t token = 0;
  UserId sender;
  ClientMsgId client_msg_id = 0;
};

using Effect =
    std::variant<SendToNode, SendToClient, SendToServer, OpenSession, CloseSession, ArmTimer,
                 PushToDevice, Persist, LoadHistory, LoadDedup>;
using Effects = std::vector<Effect>;

}  // namespace chatlab

#endif  // CHATLAB_CORE_EFFECTS_H_
