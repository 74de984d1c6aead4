// Which chatd process hosts which node of a deployment (docs/chatd.md): process k + 1 (its
// --index) hosts chat server k and, for k below protocol.store_shards, store shard k; process 1
// also hosts every other service the deployment runs, unless an engine stands in for it
// (EngineRoutes: then no process does). chatd creates its nodes by this rule, and chatplay's
// nemesis kills the process that hosts the node a scenario's crash names.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_PLACEMENT_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_PLACEMENT_H_

#include <cstddef>

#include "host/deployment.h"

namespace chatlab::real {

// The 1-based index of the process that hosts `slot` of `deployment` (services in memory).
int ProcessOf(const host::Deployment& deployment, size_t slot);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_PLACEMENT_H_
