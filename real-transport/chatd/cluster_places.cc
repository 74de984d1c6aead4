#include "real-transport/chatd/cluster_places.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chatlab::real {

absl::StatusOr<std::vector<std::vector<HostPort>>> ClusterPlaces(const ChatdOptions& options) {
  std::vector<std::vector<HostPort>> processes;
  const std::vector<std::string> entries =
      options.cluster.empty() ? std::vector<std::string>{options.listen} : options.cluster;
  for (const std::string& entry : entries) {
    std::vector<HostPort> places;
    const std::vector<std::string> addresses = absl::StrSplit(entry, '|');
    for (const std::string& a : addresses) {
      auto hp = ParseHostPort(a);
      if (!hp.ok()) return hp.status();
      places.push_back(*hp);
    }
    processes.push_back(std::move(places));
  }
  if (options.index < 1 || options.index > static_cast<int>(processes.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--index ", options.index, " is not in 1..", processes.size()));
  }
  if (options.config.store_shards > processes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--store_shards ", options.config.store_shards, " needs at least as many processes in "
        "--cluster (process k hosts store shard k-1); it lists ", processes.size()));
  }
  for (size_t i = 0; i < processes.size(); ++i) {
    if (processes[i].size() < 2) continue;
    const bool own = static_cast<int>(i) + 1 == options.index;
    if (i >= options.config.store_shards || (own && options.store != "postgres")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--cluster lists standby places for process ", i + 1,
          ": only a process that hosts a store shard (index <= --store_shards) on --store "
          "postgres may have them (its lease keeps one of them serving)"));
    }
  }
  return processes;
}

}  // namespace chatlab::real
