// The oracle's truth: the message store's final history with each conversation's participants
// (Oracle::CheckFinal), built the same way for every environment that runs a MessageStore.
#ifndef CHATLAB_HOST_TRUTH_H_
#define CHATLAB_HOST_TRUTH_H_

#include <functional>
#include <vector>

#include "absl/functional/function_ref.h"

#include "core/oracle.h"
#include "core/store.h"

namespace chatlab::host {

// The whole history of one conversation, ascending by id, as the environment's disk holds it.
using HistoryOf = std::function<std::vector<ChatMessage>(const ConversationId&)>;

// history: where the messages come from. Null: the store's memory, which holds every message
// only with store_tail_cache = 0; an environment whose store runs a bounded tail cache passes
// its disk.
std::vector<ConversationTruth> BuildTruth(const MessageStore& store,
                                          const HistoryOf& history = nullptr);
// Every store shard's conversations (a conversation lives on one shard), ordered by
// conversation as one store lists them.
std::vector<ConversationTruth> BuildTruth(const std::vector<const MessageStore*>& stores,
                                          const HistoryOf& history = nullptr);
// The same truths, in the same order, one at a time: visit sees each conversation's truth once,
// built just before and dropped just after. BuildTruth holds a second copy of every stored
// message; at a million users that copy was a tenth of the simulator's peak memory.
void ForEachTruth(const std::vector<const MessageStore*>& stores, const HistoryOf& history,
                  absl::FunctionRef<void(const ConversationTruth&)> visit);

}  // namespace chatlab::host

#endif  // CHATLAB_HOST_TRUTH_H_
