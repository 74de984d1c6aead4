#include "real-transport/chatd/placement.h"

namespace chatlab::real {

int ProcessOf(const host::Deployment& deployment, size_t slot) {
  const host::NodeSlot& s = deployment.slot(slot);
  if (s.role == host::Role::kChatServer) return s.server_index + 1;
  if (s.role == host::Role::kStore) return s.shard + 1;
  return 1;
}

}  // namespace chatlab::real
