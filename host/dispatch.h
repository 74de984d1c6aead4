// Effect dispatch: core/effects.h's effects, carried out against a narrow environment interface.
//
// Every environment used to walk Effects with its own std::get_if chain. The walk is written
// here once; an environment implements NodeEnv (what a server-side node may ask for) and
// ClientEnv (what a client may ask for), and keeps only what is truly its own: how a message
// travels, how a timer fires, where a record becomes durable. The contract of each call is the
// effect's contract in core/effects.h; the dispatcher adds none and decides nothing.
//
// An effect that makes no sense from its side (SendToServer from a node, Persist from a client)
// goes to Unexpected: a core bug, which an environment counts or logs.
#ifndef CHATLAB_HOST_DISPATCH_H_
#define CHATLAB_HOST_DISPATCH_H_

#include <vector>

#include "core/effects.h"
#include "core/types.h"

namespace chatlab::host {

// What a server-side node (chat server or service) asks of its environment.
class NodeEnv {
 public:
  virtual ~NodeEnv() = default;
  virtual void SendToNode(NodeId from, NodeId to, Message msg) = 0;
  // Chat servers only.
  virtual void SendToClient(NodeId from, SessionId session, Message msg) = 0;
  virtual void CloseSession(NodeId from, SessionId session) = 0;
  virtual void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) = 0;
  virtual void PushToDevice(NodeId from, const chatlab::PushToDevice& push) = 0;
  // Durable before any later effect of the same node is carried out (core/effects.h).
  virtual void Persist(NodeId node, PersistRecord record) = 0;
  // The store only: read history from what it persisted, and answer it with
  // MessageStore::OnHistoryLoaded (core/effects.h).
  virtual void LoadHistory(NodeId node, const chatlab::LoadHistory& load) = 0;
  // The store only: look a resend's dedup key up in what it persisted, and answer with
  // MessageStore::OnDedupLoaded (core/effects.h).
  virtual void LoadDedup(NodeId node, const chatlab::LoadDedup& load) = 0;
  virtual void Unexpected(NodeId /*from*/, const Effect& /*effect*/) {}
};

// What a client asks of its environment.
class ClientEnv {
 public:
  virtual ~ClientEnv() = default;
  virtual void SendToServer(UserId user, Message msg) = 0;
  virtual void OpenSession(UserId user, NodeId server) = 0;
  virtual void CloseSession(UserId user, SessionId session) = 0;
  virtual void ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) = 0;
  virtual void Unexpected(UserId /*user*/, const Effect& /*effect*/) {}
};

// Carries out one effect, or all of them in order. Moves messages and records out of effects.
void Dispatch(NodeId from, Effect& effect, NodeEnv& env);
void Dispatch(NodeId from, Effects& effects, NodeEnv& env);
void Dispatch(UserId user, Effects& effects, ClientEnv& env);

// Takes the Persist records out of effects, in order, leaving the other effects in order. For
// an environment that writes a node's records before it lets any of its effects out.
std::vector<PersistRecord> TakePersists(Effects& effects);

}  // namespace chatlab::host

#endif  // CHATLAB_HOST_DISPATCH_H_
