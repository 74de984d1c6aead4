// The places of a cluster's processes, from --cluster, checked against --index, --store_shards
// and --store (docs/chatd.md, "Process roles and node ids").
//
// An entry is "host:port", or "host:port|host:port|...": where the process runs, then where its
// standbys run. A standby waits for its store shard's PostgreSQL lease before it listens, so only
// a process that hosts a shard (index <= store_shards) may have standby places, and a process
// that lists its own must run --store postgres: without a lease two processes would serve one
// place at once.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_CLUSTER_PLACES_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_CLUSTER_PLACES_H_

#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/chatd.h"
#include "real-transport/util.h"

namespace chatlab::real {

// Index i-1 -> the places of process i. options.cluster empty: one process at options.listen.
// kInvalidArgument naming the flag for a bad address, an --index outside the list, more store
// shards than processes, or standby places without a lease.
absl::StatusOr<std::vector<std::vector<HostPort>>> ClusterPlaces(const ChatdOptions& options);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_CLUSTER_PLACES_H_
