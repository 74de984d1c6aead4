#include "host/truth.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace chatlab::host {

namespace {

ConversationTruth TruthOf(const MessageStore& store, const ConversationId& conv,
                          const HistoryOf& history) {
  ConversationTruth t;
  t.conv = conv;
  t.messages = history ? history(conv) : store.Messages(conv);
  if (conv.is_group()) {
    t.participants = store.Members(conv.group());
  } else {
    t.participants.push_back(UserId(conv.low));
    if (conv.high != conv.low) t.participants.push_back(UserId(conv.high));
  }
  return t;
}

}  // namespace

std::vector<ConversationTruth> BuildTruth(const MessageStore& store, const HistoryOf& history) {
  std::vector<ConversationTruth> truth;
  for (const ConversationId& conv : store.Conversations()) {
    truth.push_back(TruthOf(store, conv, history));
  }
  return truth;
}

std::vector<ConversationTruth> BuildTruth(const std::vector<const MessageStore*>& stores,
                                          const HistoryOf& history) {
  std::vector<ConversationTruth> truth;
  ForEachTruth(stores, history, [&](const ConversationTruth& t) { truth.push_back(t); });
  return truth;
}

void ForEachTruth(const std::vector<const MessageStore*>& stores, const HistoryOf& history,
                  absl::FunctionRef<void(const ConversationTruth&)> visit) {
  // A merge of the shards' conversation lists (each ascending): ascending by conversation, a
  // conversation on two shards (none is, but nothing here relies on it) in shard order.
  std::vector<std::vector<ConversationId>> lists;
  lists.reserve(stores.size());
  for (const MessageStore* store : stores) lists.push_back(store->Conversations());
  std::vector<size_t> next(stores.size(), 0);
  for (;;) {
    size_t pick = stores.size();
    for (size_t s = 0; s < stores.size(); s++) {
      if (next[s] == lists[s].size()) continue;
      if (pick == stores.size() || lists[s][next[s]] < lists[pick][next[pick]]) pick = s;
    }
    if (pick == stores.size()) return;
    visit(TruthOf(*stores[pick], lists[pick][next[pick]++], history));
  }
}

}  // namespace chatlab::host
