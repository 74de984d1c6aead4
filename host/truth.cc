#include "host/truth.h"

#include <algorithm>
#include <iterator>
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

std::vector<ConversationTruth> BuildTruth(const std::vector<const MessageStore*>& stores,
                                          const HistoryOf& history) {
  std::vector<ConversationTruth> truth;
  for (const MessageStore* store : stores) {
    std::vector<ConversationTruth> part = BuildTruth(*store, history);
    truth.insert(truth.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
  }
  std::sort(truth.begin(), truth.end(),
            [](const ConversationTruth& a, const ConversationTruth& b) { return a.conv < b.conv; });
  return truth;
}

}  // namespace chatlab::host
