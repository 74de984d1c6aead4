#include "real-transport/play/truth_reader.h"

#include <algorithm>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "real-transport/json_codec.h"
#include "real-transport/ws_client.h"

namespace chatlab::real {
namespace {

// The answers are pages of at most get_messages_limit_max messages or receipts_page_max members.
constexpr JsonLimits kAnswerLimits{64u << 20, 64};

// One Web Service call as reader: POST path with request's JSON, answered by a T with code kOk.
template <typename T>
absl::StatusOr<T> Call(const TruthReader& reader, const std::string& path, const Message& request) {
  const std::string what = absl::StrCat("POST ", path, " as user ", reader.user.value);
  absl::StatusOr<HttpResult> res = HttpCall(reader.at, "POST", path, ToJson(request), reader.token);
  if (!res.ok()) {
    return absl::UnavailableError(absl::StrCat(what, ": ", res.status().message()));
  }
  absl::StatusOr<Message> m = FromJson(res->body, kAnswerLimits);
  const T* answer = m.ok() ? std::get_if<T>(&*m) : nullptr;
  if (res->status != 200 || answer == nullptr || answer->code != Code::kOk) {
    return absl::UnavailableError(
        absl::StrCat(what, ": answered ", res->status, " ", res->body.substr(0, 200)));
  }
  return *answer;
}

absl::StatusOr<std::vector<ChatMessage>> ReadMessages(const TruthReader& reader,
                                                      const ConversationId& conv) {
  std::vector<ChatMessage> messages;
  MessageId after = kNoMessage;
  for (uint64_t request = 1;; request++) {
    absl::StatusOr<MessagesResult> page =
        Call<MessagesResult>(reader, "/api/get_messages", GetMessages{request, conv, after, 0});
    if (!page.ok()) return page.status();
    for (ChatMessage& m : page->messages) {
      after = m.message_id;
      messages.push_back(std::move(m));
    }
    if (!page->has_more || page->messages.empty()) return messages;
  }
}

absl::StatusOr<std::vector<UserId>> ReadMembers(const TruthReader& reader,
                                                const ConversationId& conv) {
  std::vector<UserId> members{reader.user};
  UserId after;
  for (uint64_t request = 1;; request++) {
    absl::StatusOr<ReceiptsResult> page =
        Call<ReceiptsResult>(reader, "/api/receipts", GetReceipts{request, conv, after, 0});
    if (!page.ok()) return page.status();
    for (const MemberReceipts& m : page->members) {
      members.push_back(m.user);
      after = m.user;
    }
    if (!page->has_more || page->members.empty()) break;
  }
  std::sort(members.begin(), members.end());
  return members;
}

}  // namespace

absl::StatusOr<std::vector<ConversationTruth>> ReadTruth(const std::vector<TruthReader>& readers) {
  // Each conversation with the first reader whose sync lists it.
  absl::btree_map<ConversationId, const TruthReader*> convs;
  for (const TruthReader& reader : readers) {
    absl::StatusOr<SyncResult> sync = Call<SyncResult>(reader, "/api/sync", SyncRequest{1});
    if (!sync.ok()) return sync.status();
    for (const ConversationHead& head : sync->heads) convs.try_emplace(head.conv, &reader);
  }
  std::vector<ConversationTruth> truth;
  for (const auto& [conv, reader] : convs) {
    ConversationTruth t;
    t.conv = conv;
    absl::StatusOr<std::vector<ChatMessage>> messages = ReadMessages(*reader, conv);
    if (!messages.ok()) return messages.status();
    t.messages = std::move(*messages);
    if (conv.is_group()) {
      absl::StatusOr<std::vector<UserId>> members = ReadMembers(*reader, conv);
      if (!members.ok()) return members.status();
      t.participants = std::move(*members);
    } else {
      t.participants.push_back(UserId(conv.low));
      if (conv.high != conv.low) t.participants.push_back(UserId(conv.high));
    }
    truth.push_back(std::move(t));
  }
  return truth;
}

}  // namespace chatlab::real
