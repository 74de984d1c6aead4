#include "host/truth.h"

#include <utility>

namespace chatlab::host {

std::vector<ConversationTruth> BuildTruth(const MessageStore& store, const HistoryOf& history) {
  std::vector<ConversationTruth> truth;
  for (const ConversationId& conv : store.Conversations()) {
    ConversationTruth t;
    t.conv = conv;
    t.messages = history ? history(conv) : store.Messages(conv);
    if (conv.is_group()) {
      t.participants = store.Members(conv.group());
    } else {
      t.participants.push_back(UserId(conv.low));
      if (conv.high != conv.low) t.participants.push_back(UserId(conv.high));
    }
    truth.push_back(std::move(t));
  }
  return truth;
}

}  // namespace chatlab::host
