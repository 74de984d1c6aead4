// What swarm and shrink both need from a finished `chatlab run`: its results.json read back,
// its invariant counts by name, and files written whole.
//
// Names (invariants, fault kinds, recovery paths) are always taken from results.json, never
// from a list here, so a new invariant or fault kind shows up in the swarm's summary without a
// change to this code.
#ifndef CHATLAB_SIM_SWARM_COMMON_H_
#define CHATLAB_SIM_SWARM_COMMON_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace chatlab::sim::swarm {

// The file parsed as JSON, or a discarded value (is_discarded()) if it is missing or broken.
nlohmann::json ReadJsonFile(const std::string& path);

// results.json "invariants": every numeric entry (lost_acked, duplicates_shown, ...) by name.
// Empty for a discarded or malformed document.
std::map<std::string, uint64_t> InvariantCounts(const nlohmann::json& results);

// The invariants violated (count > 0), in name order.
std::vector<std::string> ViolatedInvariants(const nlohmann::json& results);

// results.json "invariants.first_violations": one sentence per violated invariant, in the order
// the oracle found them ("lost_acked: acknowledged message u3/7 in g1 is not in the store").
std::vector<std::string> FirstViolations(const nlohmann::json& results);

// A string-to-count object of results.json (e.g. "faults_fired", "recovery_paths"); empty when
// absent, so an older simulator that does not report a map reads as reporting nothing.
std::map<std::string, uint64_t> CountMap(const nlohmann::json& results, const char* key);

// Writes text to path through a temporary file and a rename, so a reader never sees half.
// Returns false if it could not.
bool WriteFileWhole(const std::string& path, const std::string& text);

// Every line of text prefixed with "# " (blank lines become "#"), for file headers.
std::string CommentLines(const std::string& text);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_COMMON_H_
