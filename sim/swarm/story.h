// The story of one offending message: every line of a `chatlab run --trace` that touches the
// message a violation sentence names, in order.
//
// The oracle's sentences (core/oracle.cc) name a message by some of: its sender and client
// message id ("u3/7"), its conversation ("in g1", "in d3-9") and its message id ("message 123").
// A trace line is "<time> <receiver> <- <sender> <Message DebugString>" (sim/world/nodes.cc), or a
// fault line "<time> LOST loss server0 -> store <Message>" (also DUPLICATED, DELAYED; partitions
// say "LOST partition"). A line touches the message if one of
// its {...} groups (innermost, fields of nested groups not counted) holds
//   sender=S and client_msg_id=C, or
//   client_msg_id=C and conv=V with no sender field, on a line to or from S (SendMessage,
//   SendAck), or
//   message_id=M, up_to=M or head_id=M together with conv=V, for any id M the message got (a
//   message sent twice without de-duplication gets two).
// A sync answer naming it only as a conversation's head (head_id=M) is kept once per receiver:
// the first time that node learns of it, not every sync interval after.
// A receipt regression names no message: its story is every group with reader=R and conv=V.
#ifndef CHATLAB_SIM_SWARM_STORY_H_
#define CHATLAB_SIM_SWARM_STORY_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace chatlab::sim::swarm {

// What a violation sentence says about its message; a field is empty when the sentence does not
// say it.
struct MessageRef {
  std::string invariant;  // "lost_acked"
  std::string sender;     // "u3"
  std::optional<uint64_t> client_msg_id;
  std::string conv;                // "g1", "d3-9"
  std::set<uint64_t> message_ids;  // from the sentence, then learned from the trace
  std::string reader;              // receipt regressions: whose receipt went back
  // A name for people: "u3/7 in g1 (message 123)".
  std::string Describe() const;
  bool names_message() const { return (!sender.empty() && client_msg_id) || !message_ids.empty(); }
};

// Parses one first_violations sentence ("kind: detail").
MessageRef ParseViolation(const std::string& sentence);

// The story: a header (the violation, the message) and every trace line that touches it.
// Learns the message's ids and sender from the trace first, so a sentence that names only one
// of them still finds the whole story.
std::string Story(const std::string& violation, const std::vector<std::string>& trace);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_STORY_H_
