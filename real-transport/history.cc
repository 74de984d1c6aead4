#include "real-transport/history.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "real-transport/json_codec.h"

namespace chatlab::real {
namespace {

using Json = nlohmann::json;

constexpr char kFormat[] = "chatlab-history/1";

// Kinds the oracle does not judge; recorded for people reading a history.
constexpr std::string_view kInformationalKinds[] = {
    "send_failed",     "typing_shown", "presence_shown", "connected",      "disconnected",
    "history_fetched", "loaded",       "note",           "member_receipts"};

// One event, decoded, with where it sits for errors and tie-breaks.
struct Event {
  TimeUs t_us = 0;
  TimeUs order_us = 0;  // t_us, raised to the user's previous event's (a clock that stepped back)
  size_t user_index = 0;
  size_t event_index = 0;
  UserId user;
  std::string kind;
  ConversationId conv;  // sent
  ClientMsgId client_msg_id = 0;
  SendAck ack;          // answered, acked
  ChatMessage message;  // displayed
  bool out_of_order = false;
  bool duplicate = false;
  ReceiptUpdate receipt;  // receipt_shown
};

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<uint64_t> U64(const Json& j, const std::string& path) {
  uint64_t v = 0;
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_string() && absl::SimpleAtoi(j.get_ref<const std::string&>(), &v)) return v;
  return Bad(path, "expected an unsigned integer (a decimal string or a number)");
}

absl::StatusOr<int64_t> I64(const Json& j, const std::string& path) {
  int64_t v = 0;
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_string() && absl::SimpleAtoi(j.get_ref<const std::string&>(), &v)) return v;
  return Bad(path, "expected an integer (a decimal string or a number)");
}

// Decodes `j` as a field of message `type` with the client JSON codec (docs/protocol-client.md,
// 15), so the history has no field list of its own: `wrap` names the field, or "" for the whole.
template <typename M>
absl::StatusOr<M> Decode(std::string_view type, std::string_view wrap, const Json& j,
                         const std::string& path) {
  const Json object = wrap.empty() ? j : Json{{std::string(wrap), j}};
  JsonLimits limits;
  limits.frame_bytes_max = static_cast<uint32_t>(kHistoryBytesMax);
  absl::StatusOr<Message> m = FromJsonAs(type, object.dump(), limits);
  if (!m.ok()) return Bad(path, m.status().message());
  return std::get<M>(*m);
}

const Json* Field(const Json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

absl::Status ParseEvent(const Json& j, const std::string& path, Event& e) {
  if (!j.is_object()) return Bad(path, "an event is an object");
  const Json* t = Field(j, "t_us");
  const Json* kind = Field(j, "kind");
  if (t == nullptr || kind == nullptr || !kind->is_string()) {
    return Bad(path, "an event has \"t_us\" and a string \"kind\"");
  }
  absl::StatusOr<int64_t> time = I64(*t, path + ".t_us");
  if (!time.ok()) return time.status();
  e.t_us = *time;
  e.kind = kind->get<std::string>();
  auto need = [&](const char* name) -> absl::StatusOr<const Json*> {
    const Json* f = Field(j, name);
    if (f == nullptr) return Bad(path, absl::StrCat("a ", e.kind, " event has \"", name, "\""));
    return f;
  };
  if (e.kind == "sent") {
    absl::StatusOr<const Json*> id = need("client_msg_id");
    absl::StatusOr<const Json*> conv = need("conv");
    if (!id.ok()) return id.status();
    if (!conv.ok()) return conv.status();
    absl::StatusOr<uint64_t> cmid = U64(**id, path + ".client_msg_id");
    if (!cmid.ok()) return cmid.status();
    e.client_msg_id = *cmid;
    absl::StatusOr<Receipt> r = Decode<Receipt>("Receipt", "conv", **conv, path + ".conv");
    if (!r.ok()) return r.status();
    e.conv = r->conv;
  } else if (e.kind == "answered" || e.kind == "acked") {
    absl::StatusOr<const Json*> ack = need("ack");
    if (!ack.ok()) return ack.status();
    absl::StatusOr<SendAck> a = Decode<SendAck>("SendAck", "", **ack, path + ".ack");
    if (!a.ok()) return a.status();
    e.ack = *a;
  } else if (e.kind == "displayed") {
    absl::StatusOr<const Json*> m = need("message");
    if (!m.ok()) return m.status();
    absl::StatusOr<Deliver> d = Decode<Deliver>("Deliver", "message", **m, path + ".message");
    if (!d.ok()) return d.status();
    e.message = d->message;
    const Json* ooo = Field(j, "out_of_order");
    const Json* dup = Field(j, "duplicate");
    if ((ooo != nullptr && !ooo->is_boolean()) || (dup != nullptr && !dup->is_boolean())) {
      return Bad(path, "out_of_order and duplicate are booleans");
    }
    e.out_of_order = ooo != nullptr && ooo->get<bool>();
    e.duplicate = dup != nullptr && dup->get<bool>();
  } else if (e.kind == "receipt_shown") {
    absl::StatusOr<const Json*> r = need("receipt");
    if (!r.ok()) return r.status();
    absl::StatusOr<ReceiptUpdate> u =
        Decode<ReceiptUpdate>("ReceiptUpdate", "", **r, path + ".receipt");
    if (!u.ok()) return u.status();
    e.receipt = *u;
  } else if (std::find(std::begin(kInformationalKinds), std::end(kInformationalKinds), e.kind) ==
             std::end(kInformationalKinds)) {
    return Bad(path, absl::StrCat("unknown event kind \"", e.kind, "\""));
  }
  return absl::OkStatus();
}

absl::Status ParseUsers(const Json& users, std::vector<Event>& events) {
  if (!users.is_array()) return Bad("users", "expected an array");
  for (size_t u = 0; u < users.size(); ++u) {
    const std::string upath = absl::StrCat("users[", u, "]");
    const Json& user = users[u];
    const Json* id = user.is_object() ? Field(user, "user_id") : nullptr;
    const Json* list = user.is_object() ? Field(user, "events") : nullptr;
    if (id == nullptr || list == nullptr || !list->is_array()) {
      return Bad(upath, "a user has \"user_id\" and an \"events\" array");
    }
    absl::StatusOr<uint64_t> uid = U64(*id, upath + ".user_id");
    if (!uid.ok()) return uid.status();
    if (*uid == 0) return Bad(upath + ".user_id", "user ids are not 0");
    TimeUs last_us = std::numeric_limits<TimeUs>::min();
    for (size_t i = 0; i < list->size(); ++i) {
      Event e;
      e.user = UserId(*uid);
      e.user_index = u;
      e.event_index = i;
      absl::Status s = ParseEvent((*list)[i], absl::StrCat(upath, ".events[", i, "]"), e);
      if (!s.ok()) return s;
      e.order_us = last_us = std::max(last_us, e.t_us);
      events.push_back(std::move(e));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ConversationTruth>> ParseTruth(const Json& truth) {
  if (!truth.is_array()) return Bad("truth", "expected an array");
  std::vector<ConversationTruth> result;
  for (size_t i = 0; i < truth.size(); ++i) {
    const std::string path = absl::StrCat("truth[", i, "]");
    const Json& t = truth[i];
    const Json* conv = t.is_object() ? Field(t, "conv") : nullptr;
    const Json* members = t.is_object() ? Field(t, "participants") : nullptr;
    const Json* messages = t.is_object() ? Field(t, "messages") : nullptr;
    if (conv == nullptr || members == nullptr || messages == nullptr || !members->is_array()) {
      return Bad(path, "a conversation has \"conv\", a \"participants\" array and \"messages\"");
    }
    ConversationTruth ct;
    absl::StatusOr<Receipt> r = Decode<Receipt>("Receipt", "conv", *conv, path + ".conv");
    if (!r.ok()) return r.status();
    ct.conv = r->conv;
    for (size_t p = 0; p < members->size(); ++p) {
      absl::StatusOr<uint64_t> id =
          U64((*members)[p], absl::StrCat(path, ".participants[", p, "]"));
      if (!id.ok()) return id.status();
      ct.participants.push_back(UserId(*id));
    }
    // The messages decode as a MessagesResult's list: the same codec, the same validity checks.
    absl::StatusOr<MessagesResult> m = Decode<MessagesResult>(
        "MessagesResult", "", Json{{"conv", *conv}, {"messages", *messages}}, path);
    if (!m.ok()) return m.status();
    ct.messages = std::move(m->messages);
    result.push_back(std::move(ct));
  }
  return result;
}

void Feed(Oracle& oracle, const Event& e, HistoryVerdict& v) {
  if (e.kind == "sent") {
    oracle.OnSent(e.t_us, e.user, e.client_msg_id, e.conv);
    v.sent++;
  } else if (e.kind == "answered") {
    oracle.OnSendAnswered(e.t_us, e.user, e.ack);
  } else if (e.kind == "acked") {
    oracle.OnAcked(e.t_us, e.user, e.ack);
  } else if (e.kind == "displayed") {
    oracle.OnDisplayed(e.t_us, e.user, e.message, e.out_of_order, e.duplicate);
    v.displayed++;
  } else if (e.kind == "receipt_shown") {
    oracle.OnReceiptShown(e.t_us, e.user, e.receipt);
  }
}

}  // namespace

absl::StatusOr<HistoryVerdict> CheckHistory(std::string_view text) {
  if (text.size() > kHistoryBytesMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("history of ", text.size(), " bytes is over ", kHistoryBytesMax));
  }
  const Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("history", "not a JSON object");
  const Json* format = Field(j, "format");
  if (format == nullptr || !format->is_string() || *format != kFormat) {
    return Bad("format", absl::StrCat("expected \"", kFormat, "\""));
  }
  const Json* users = Field(j, "users");
  if (users == nullptr) return Bad("history", "no \"users\"");
  std::vector<Event> events;
  if (absl::Status s = ParseUsers(*users, events); !s.ok()) return s;
  std::vector<ConversationTruth> truth;
  const Json* truth_json = Field(j, "truth");
  if (truth_json != nullptr && !truth_json->is_null()) {
    absl::StatusOr<std::vector<ConversationTruth>> t = ParseTruth(*truth_json);
    if (!t.ok()) return t.status();
    truth = std::move(*t);
  }
  // One timeline: by time, then by user and position. Each user's events keep their recorded
  // order even if that user's clock stepped back (order_us never decreases within a user). The
  // oracle's per-viewer checks do not depend on how two users interleave; its latencies do,
  // which is why events carry times.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.order_us, a.user_index, a.event_index) <
           std::tie(b.order_us, b.user_index, b.event_index);
  });
  HistoryVerdict v;
  v.users = users->size();
  Oracle oracle;
  if (const Json* window = Field(j, "window"); window != nullptr && !window->is_null()) {
    const Json* from = window->is_object() ? Field(*window, "from_us") : nullptr;
    const Json* to = window->is_object() ? Field(*window, "to_us") : nullptr;
    if (from == nullptr || to == nullptr) {
      return Bad("window", "expected an object with \"from_us\" and \"to_us\"");
    }
    absl::StatusOr<int64_t> f = I64(*from, "window.from_us");
    if (!f.ok()) return f.status();
    absl::StatusOr<int64_t> t = I64(*to, "window.to_us");
    if (!t.ok()) return t.status();
    if (*t < *f) return Bad("window", "to_us is before from_us");
    oracle.SetLatencyWindow(*f, *t);
  }
  for (const Event& e : events) Feed(oracle, e, v);
  v.events = events.size();
  if (truth_json != nullptr && !truth_json->is_null()) {
    oracle.CheckFinal(truth);
    v.final_checked = true;
  }
  v.counts = oracle.counts();
  v.violations = oracle.first_violations();
  v.acked = oracle.acked();
  v.delivered = oracle.delivered();
  v.latencies = oracle.latencies();
  return v;
}

std::string VerdictJson(const HistoryVerdict& v) {
  Json counts = Json::object();
  ForEachInvariant(v.counts, [&](const char* name, uint64_t n) { counts[name] = n; });
  return Json{{"ok", v.ok()},
              {"violations_total", v.counts.total()},
              {"counts", counts},
              {"first_violations", v.violations},
              {"users", v.users},
              {"events", v.events},
              {"sent", v.sent},
              {"acked", v.acked},
              {"delivered", v.delivered},
              {"displayed", v.displayed},
              {"final_checked", v.final_checked}}
      .dump(2);
}

}  // namespace chatlab::real
