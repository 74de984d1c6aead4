// Records what each user of a run saw as a `chatlab-history/1` file (docs/history-format.md),
// for runs the oracle cannot watch from inside: a real cluster played by chatplay
// (docs/sim-vs-real.md). It is a ClientObserver: attached to core ClientSessions, every call the
// oracle would get becomes one event of that user, with its `now` as t_us, in call order.
// history_check (real-transport/history.h) replays the file into the same Oracle afterwards.
//
// Nested values are written by the client JSON codec (real-transport/json_codec.h), the one the
// checker decodes them with: there is no field list here. A pure class: no socket, file or clock.
#ifndef CHATLAB_REAL_TRANSPORT_HISTORY_RECORDER_H_
#define CHATLAB_REAL_TRANSPORT_HISTORY_RECORDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "core/client.h"
#include "core/oracle.h"
#include "nlohmann/json.hpp"

namespace chatlab::real {

class HistoryRecorder : public ClientObserver {
 public:
  // Adds a user's entry ("users" lists them in the order added). REQUIRES: user valid, not added.
  void AddUser(UserId user, std::string name);

  // ClientObserver: the oracle's calls, recorded as sent, answered, acked, displayed and
  // receipt_shown events; OnSendFailed as an informational send_failed event.
  // REQUIRES (all): the user was added.
  void OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) override;
  void OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnAcked(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnSendFailed(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                   bool duplicate) override;
  void OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) override;

  // An informational event for people reading the history (connected, disconnected, note):
  // `fields` (an object) is written beside t_us and kind. REQUIRES: kind is one of the format's
  // informational kinds (history_check refuses any other).
  void Note(TimeUs now, UserId user, std::string_view kind, nlohmann::json fields = {});

  // The measurement window the history's latencies are taken over (its "window": messages first
  // sent in [from_us, to_us), on the recorder's clock); none by default (every message).
  void SetWindow(TimeUs from_us, TimeUs to_us) { window_ = {from_us, to_us}; }

  // The history: format, source, the users' events and, when truth is given, the store's final
  // contents (each conversation's messages ascending by id and its participants).
  std::string Render(std::string_view source, const std::vector<ConversationTruth>* truth) const;

  uint64_t events() const { return events_; }

 private:
  nlohmann::json& Event(TimeUs now, UserId user, std::string_view kind);

  struct Entry {
    std::string name;
    nlohmann::json events = nlohmann::json::array();
  };
  std::vector<UserId> order_;               // users in the order added
  absl::btree_map<UserId, Entry> entries_;  // one per added user
  uint64_t events_ = 0;                     // events recorded, every kind
  std::optional<std::pair<TimeUs, TimeUs>> window_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_HISTORY_RECORDER_H_
