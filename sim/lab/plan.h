// Plan: the seed's back-of-the-envelope capacity chain, computed from stated assumptions.
//
// `chatlab plan [--set name=value ...]` prints every figure of the chain (active users,
// concurrent chats and polling reads, messages per second, storage per day, servers, queues,
// database requests per second) next to the figure the seed states, and flags the figures that
// do not follow from each other. The capacity experiment's analysis uses the same functions.
#ifndef CHATLAB_SIM_LAB_PLAN_H_
#define CHATLAB_SIM_LAB_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace chatlab::sim::lab {

struct PlanAssumptions {
  double active_users = 100e6;          // "100M active users"
  double concurrent_chats = 1e6;        // "1M chats ..."
  double refresh_interval_s = 5;        // "... refreshing every 5 seconds"
  double messages_per_day = 1e9;        // "1 Billion"
  double message_bytes = 100;           // implied by "~100GB" a day
  double connections_per_server = 10e3; // "each server can hold 10K open connections"
  double servers_per_queue = 10;        // "a single queue can handle 10 connections"
  double receipts_per_message = 2;      // delivery + read receipt, each a write
  double seed_db_rps = 100e3;           // "bombarded with ~100K RPS"
};

struct PlanRow {
  std::string figure;
  double computed = 0;
  std::string unit;
  std::string seed_says;  // "" if the seed states no figure
  bool consistent = true;
  std::string note;
};

// The names settable with --set, with their current values.
std::vector<std::string> PlanKeys(const PlanAssumptions& a);
absl::Status SetPlan(PlanAssumptions& a, const std::string& assignment);
std::vector<PlanRow> ComputePlan(const PlanAssumptions& a);
std::string FormatPlan(const PlanAssumptions& a, const std::vector<PlanRow>& rows);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_PLAN_H_
