#include "real-transport/history_recorder.h"

#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "real-transport/json_codec.h"

namespace chatlab::real {
namespace {

using Json = nlohmann::json;

// The client JSON form of a whole message, without its "type" (the event's field names it).
Json Object(const Message& m) {
  Json j = Json::parse(ToJson(m));
  j.erase("type");
  return j;
}

std::string Decimal(uint64_t v) { return absl::StrCat(v); }

}  // namespace

void HistoryRecorder::AddUser(UserId user, std::string name) {
  assert(user.valid());
  const bool inserted = entries_.try_emplace(user, Entry{std::move(name)}).second;
  assert(inserted);
  (void)inserted;
  order_.push_back(user);
}

Json& HistoryRecorder::Event(TimeUs now, UserId user, std::string_view kind) {
  auto it = entries_.find(user);
  assert(it != entries_.end());
  events_++;
  it->second.events.push_back(Json{{"t_us", absl::StrCat(now)}, {"kind", std::string(kind)}});
  return it->second.events.back();
}

void HistoryRecorder::OnSent(TimeUs now, UserId sender, ClientMsgId id,
                             const ConversationId& conv) {
  Json& e = Event(now, sender, "sent");
  e["client_msg_id"] = Decimal(id);
  e["conv"] = Object(Receipt{conv, ReceiptKind::kDelivered, kNoMessage})["conv"];
}

void HistoryRecorder::OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) {
  Event(now, sender, "answered")["ack"] = Object(ack);
}

void HistoryRecorder::OnAcked(TimeUs now, UserId sender, const SendAck& ack) {
  Event(now, sender, "acked")["ack"] = Object(ack);
}

void HistoryRecorder::OnSendFailed(TimeUs now, UserId sender, const SendAck& ack) {
  Event(now, sender, "send_failed")["ack"] = Object(ack);
}

void HistoryRecorder::OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m,
                                  bool out_of_order, bool duplicate) {
  Json& e = Event(now, viewer, "displayed");
  e["message"] = Object(Deliver{m})["message"];
  e["out_of_order"] = out_of_order;
  e["duplicate"] = duplicate;
}

void HistoryRecorder::OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) {
  Event(now, viewer, "receipt_shown")["receipt"] = Object(shown);
}

void HistoryRecorder::Note(TimeUs now, UserId user, std::string_view kind, Json fields) {
  Json& e = Event(now, user, kind);
  if (!fields.is_object()) return;
  for (auto it = fields.begin(); it != fields.end(); ++it) e[it.key()] = *it;
}

std::string HistoryRecorder::Render(std::string_view source,
                                    const std::vector<ConversationTruth>* truth) const {
  Json users = Json::array();
  for (UserId u : order_) {
    const Entry& entry = entries_.at(u);
    users.push_back(
        Json{{"user_id", Decimal(u.value)}, {"name", entry.name}, {"events", entry.events}});
  }
  Json history{{"format", "chatlab-history/1"},
               {"source", std::string(source)},
               {"users", std::move(users)}};
  if (window_) {
    history["window"] = {{"from_us", absl::StrCat(window_->first)},
                         {"to_us", absl::StrCat(window_->second)}};
  }
  if (truth != nullptr) {
    Json list = Json::array();
    for (const ConversationTruth& t : *truth) {
      Json participants = Json::array();
      for (UserId p : t.participants) participants.push_back(Decimal(p.value));
      MessagesResult messages;
      messages.conv = t.conv;
      messages.messages = t.messages;
      Json conv_messages = Object(messages);
      list.push_back(Json{{"conv", conv_messages["conv"]},
                          {"participants", std::move(participants)},
                          {"messages", conv_messages["messages"]}});
    }
    history["truth"] = std::move(list);
  }
  return history.dump() + "\n";
}

}  // namespace chatlab::real
