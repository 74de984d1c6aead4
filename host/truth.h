// The oracle's truth: the message store's final history with each conversation's participants
// (Oracle::CheckFinal), built the same way for every environment that runs a MessageStore.
#ifndef CHATLAB_HOST_TRUTH_H_
#define CHATLAB_HOST_TRUTH_H_

#include <vector>

#include "core/oracle.h"
#include "core/store.h"

namespace chatlab::host {

std::vector<ConversationTruth> BuildTruth(const MessageStore& store);

}  // namespace chatlab::host

#endif  // CHATLAB_HOST_TRUTH_H_
