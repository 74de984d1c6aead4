// The interface every server-side ChatLab state machine implements.
//
// A Node is a sans-I/O state machine: the environment calls Start once after the node is created
// (or re-created after a crash: a crash loses all of a node's memory), then OnMessage for every
// message that reaches it and OnTimer for every timer it armed. Each call gets `now` on the
// node's own clock (which may be skewed or drift in the simulator) and appends effects to `out`.
// Calls on one node never overlap. No call may block, read a clock or do I/O.
//
// Input from the network is untrusted: a message a node does not expect is counted in
// unexpected_messages and ignored, never a crash.
#ifndef CHATLAB_CORE_NODE_H_
#define CHATLAB_CORE_NODE_H_

#include <cstdint>

#include "core/config.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/random.h"
#include "core/types.h"

namespace chatlab {

// What every node is constructed with.
struct NodeOptions {
  NodeId self;
  ProtocolConfig config;
  Topology topology;
  // Seeds the node's private PRNG (core/random.h). Same seed, same behaviour.
  uint64_t seed = 1;
};

// The first request id of a node's incarnation started at `now`: bits 40 to 62 drawn from
// (seed, now), the rest counting from 1. A service may answer an earlier incarnation's request
// after a restart (a store paused past a chat server's crash and restart answers both
// incarnations' requests at its resume); with ids from 1 in every incarnation, such an answer
// matched the new incarnation's request of the same number, and a client got another message's
// id in its ack. Now two incarnations share ids with probability 2^-23. Up to 2^40 requests per
// incarnation; below 2^63, so any signed 64-bit column holds them.
inline uint64_t FirstRequestId(uint64_t seed, TimeUs now) {
  return ((MixSeed(seed, static_cast<uint64_t>(now)) >> 41) << 40) + 1;
}

class Node {
 public:
  virtual ~Node() = default;
  // Called once, before any other call, after (re)creation.
  virtual void Start(TimeUs now, Effects& out) = 0;
  // A message from node `from` (NodeId() when the sender is unknown).
  virtual void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) = 0;
  // A timer this node armed with ArmTimer{timer_id, ...} fired.
  virtual void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) = 0;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_NODE_H_
