#include "sim/lab/plan.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace chatlab::sim::lab {
namespace {

std::map<std::string, double*> Fields(PlanAssumptions& a) {
  return {{"active_users", &a.active_users},
          {"concurrent_chats", &a.concurrent_chats},
          {"refresh_interval_s", &a.refresh_interval_s},
          {"messages_per_day", &a.messages_per_day},
          {"message_bytes", &a.message_bytes},
          {"connections_per_server", &a.connections_per_server},
          {"servers_per_queue", &a.servers_per_queue},
          {"receipts_per_message", &a.receipts_per_message},
          {"seed_db_rps", &a.seed_db_rps}};
}

bool Near(double a, double b, double tol = 0.10) {
  return b == 0 ? a == 0 : std::fabs(a - b) / std::fabs(b) <= tol;
}

}  // namespace

std::vector<std::string> PlanKeys(const PlanAssumptions& a) {
  PlanAssumptions copy = a;
  std::vector<std::string> out;
  for (const auto& [k, v] : Fields(copy)) out.push_back(absl::StrCat(k, " = ", *v));
  return out;
}

absl::Status SetPlan(PlanAssumptions& a, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--set '", assignment, "': expected name=value"));
  }
  const std::string key = assignment.substr(0, eq);
  auto fields = Fields(a);
  auto it = fields.find(key);
  if (it == fields.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--set: unknown assumption '", key, "' (chatlab plan --list shows them)"));
  }
  try {
    size_t used = 0;
    const double v = std::stod(assignment.substr(eq + 1), &used);
    if (used != assignment.size() - eq - 1 || !(v > 0) || !std::isfinite(v)) throw 0;
    *it->second = v;
  } catch (...) {
    return absl::InvalidArgumentError(
        absl::StrCat("--set ", key, ": expected a positive number, got '",
                     assignment.substr(eq + 1), "'"));
  }
  return absl::OkStatus();
}

std::vector<PlanRow> ComputePlan(const PlanAssumptions& a) {
  std::vector<PlanRow> rows;
  const double selects = a.concurrent_chats / a.refresh_interval_s;
  rows.push_back({"polling reads (concurrent chats / refresh interval)", selects, "selects/s",
                  "200k selects per second", Near(selects, 200e3), ""});
  const double per_hour = a.messages_per_day / 24;
  rows.push_back({"messages per hour", per_hour, "msgs/h", "\"40M per day\"", false,
                  "the seed writes 40M per *day*; 1B/day is 41.7M per *hour* (a unit slip)"});
  const double per_minute = per_hour / 60;
  rows.push_back({"messages per minute", per_minute, "msgs/min", "700k a minute",
                  Near(per_minute, 700e3), ""});
  const double per_second = per_minute / 60;
  rows.push_back({"messages per second = inserts per second", per_second, "msgs/s",
                  "12k messages a second", Near(per_second, 12e3), ""});
  const double storage = a.messages_per_day * a.message_bytes;
  rows.push_back({"storage per day (messages x bytes)", storage / 1e9, "GB/day", "~100GB",
                  Near(storage / 1e9, 100), absl::StrFormat("at %.0f bytes a message", a.message_bytes)});
  // Every online user holds a WebSocket to a chat server (the seed's Chat Service), so the
  // servers follow from the users online, not from the chats refreshing at once.
  const double servers_users = std::ceil(a.active_users / a.connections_per_server);
  rows.push_back({"servers for every active user's WebSocket (active users / connections per "
                  "server)",
                  servers_users, "servers", "100 servers", Near(servers_users, 100),
                  absl::StrFormat("each online user holds a WebSocket; 100 servers hold %.0f "
                                  "connections, the 1M concurrent chats, not %.0fM active users "
                                  "(that takes %.0f servers, even before headroom)",
                                  100 * a.connections_per_server, a.active_users / 1e6,
                                  servers_users)});
  const double queues = std::ceil(servers_users / a.servers_per_queue);
  rows.push_back({"queues (servers / servers per queue)", queues, "queues", "10 queues",
                  false,
                  "the seed says a queue handles 10 *connections*; its 10 queues follow only from "
                  "100 servers at 10 servers a queue"});
  const double writes = per_second * (1 + a.receipts_per_message);
  const double db = writes + selects;
  rows.push_back({"database requests per second, direct writes (inserts + receipts + polling "
                  "reads)",
                  db, "req/s", "~100K RPS", Near(db, a.seed_db_rps),
                  absl::StrFormat("%.0f writes/s (message + %.0f receipts) + %.0f selects/s; the "
                                  "seed's 100K matches neither the writes alone nor the total",
                                  writes, a.receipts_per_message, selects)});
  return rows;
}

std::string FormatPlan(const PlanAssumptions& a, const std::vector<PlanRow>& rows) {
  std::string out = "assumptions\n";
  for (const std::string& k : PlanKeys(a)) absl::StrAppend(&out, "  ", k, "\n");
  absl::StrAppend(&out, "\n", absl::StrFormat("%-62s %14s %-10s  %-24s %s\n", "figure", "computed",
                                              "unit", "seed says", "check"));
  int flagged = 0;
  for (const PlanRow& r : rows) {
    const bool slip = !r.consistent;
    flagged += slip;
    absl::StrAppend(&out, absl::StrFormat("%-62s %14.4g %-10s  %-24s %s\n", r.figure, r.computed,
                                          r.unit, r.seed_says, slip ? "FLAG" : "ok"));
    if (!r.note.empty()) absl::StrAppend(&out, "    ", r.note, "\n");
  }
  absl::StrAppend(&out, "\n", flagged, " figure(s) flagged as not following from the others.\n");
  return out;
}

}  // namespace chatlab::sim::lab
