#include "real-transport/play/admission.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "host/deployment.h"
#include "real-transport/chatd/placement.h"

namespace chatlab::real {
namespace {

using sim::KeyValue;
using sim::Scenario;

// Keys the player itself honours: the run's length, the population, the workload's laws, and
// the protocol keys only a client reads (core/client.cc), which its ClientSessions use.
const std::set<std::string_view>& PlayerKeys() {
  static const auto* keys = new std::set<std::string_view>{
      "scenario.name", "scenario.description", "scenario.seed", "scenario.duration_s",
      "scenario.quiet_s",
      // Read by no environment (the simulator neither): kept for the scenario's reader.
      "scenario.delivery_bound_s",
      // Ends the warm-up, which times introduce_contacts; window metrics are not computed here.
      "scenario.warmup_s",
      // With one region: the chat server count, which must be the cluster's process count.
      "topology.servers_per_region", "topology.users_per_server", "workload.users",
      "workload.online_fraction", "workload.connect_ramp_s", "workload.send_start_s",
      "workload.send_end_s", "workload.session_mean_s", "workload.offline_mean_s",
      "workload.reconnect_other_server", "workload.send_rate_hz", "workload.send_rate_total_hz",
      "workload.inter_send", "workload.pareto_alpha", "workload.group_share", "workload.groups",
      "workload.group_size_min", "workload.group_size_max", "workload.contacts_per_user",
      "workload.introduce_contacts", "workload.typing_probability", "workload.typing_lead_ms",
      "workload.read_delay_mean_s", "workload.body_bytes", "protocol.client_retry_initial_us",
      "protocol.client_retry_max_us", "protocol.client_sync_interval_us",
      "protocol.client_request_timeout_us", "protocol.group_poll_interval_us",
      "protocol.presence_poll_interval_us", "protocol.presence_refresh_interval_us",
      "protocol.hybrid_mode_check_us", "protocol.client_outbox_max", "protocol.client_held_max",
      "protocol.gap_detection_enabled"};
  return *keys;
}

// Keys the cluster honours, by chatd's flag (real-transport/chatd_main.cc). ms: chatd takes
// milliseconds where the scenario has microseconds.
struct ClusterFlag {
  std::string_view flag;
  bool ms = false;
};
const std::map<std::string_view, ClusterFlag>& ClusterKeys() {
  static const auto* keys = new std::map<std::string_view, ClusterFlag>{
      {"protocol.forwarding", {"forwarding"}},
      {"protocol.group_delivery", {"group_delivery"}},
      {"protocol.id_scheme", {"id_scheme"}},
      {"protocol.id_generator", {"id_generator"}},
      {"protocol.presence_fanout", {"presence_fanout"}},
      {"protocol.write_path", {"write_path"}},
      {"protocol.dedup_enabled", {"dedup_enabled"}},
      {"protocol.request_timeout_us", {"request_timeout_ms", true}},
      {"protocol.buffered_flush_interval_us", {"buffered_flush_interval_ms", true}},
      {"protocol.buffered_flush_jitter_us", {"buffered_flush_jitter_ms", true}},
      {"protocol.typing_ttl_us", {"typing_ttl_ms", true}},
      {"protocol.hybrid_push_members_max", {"hybrid_push_members_max"}},
      {"protocol.hybrid_push_rate_max", {"hybrid_push_rate_max"}},
      {"protocol.hybrid_rate_window_us", {"hybrid_rate_window_ms", true}},
      {"protocol.presence_short_list_size", {"presence_short_list_size"}},
      {"protocol.map_refresh_interval_us", {"map_refresh_ms", true}},
      {"protocol.mapping_ttl_us", {"mapping_ttl_ms", true}},
      {"protocol.body_bytes_max", {"body_bytes_max"}},
      {"protocol.server_sessions_max", {"server_sessions_max"}},
      {"protocol.server_pending_max", {"server_pending_max"}},
      {"protocol.get_messages_limit_max", {"get_messages_limit_max"}},
      {"protocol.store_dedup_window_max", {"store_dedup_window_max"}},
      {"protocol.store_tail_cache", {"store_tail_cache"}},
      {"protocol.store_group_members_max", {"store_group_members_max"}},
      {"protocol.store_shards", {"store_shards"}}};
  return *keys;
}

// Keys of the simulated platform: a real run has a real machine instead.
bool IsPlatformKey(std::string_view key) {
  return key.starts_with("network.") || key.starts_with("cost.") ||
         key == "topology.client_hosts_per_region" || key == "topology.users_per_client_host" ||
         key == "topology.services_region" || key == "scenario.sample_interval_ms";
}

std::string ValueText(const KeyValue& kv) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else {
          return absl::StrCat(v);
        }
      },
      kv.value);
}

// Why a set key that is neither the player's, the cluster's nor the platform's is refused.
std::string RefusalReason(std::string_view key) {
  if (key == "faults.crash" || key == "faults.pause") {
    return "kill -9, restarts and SIGSTOP need a cluster chatplay starts itself: chatplay "
           "--launch DIR";
  }
  if (key == "faults.loss" || key == "faults.duplicate" || key == "faults.delay_probability" ||
      key == "faults.delay_ms_max" || key == "faults.partition") {
    return "network faults need a cluster chatplay starts itself, with a proxy on each link "
           "between its processes: chatplay --launch DIR";
  }
  if (key == "faults.push_loss") {
    return "chatd's push notifications reach no device: there is nothing to lose";
  }
  if (key.starts_with("faults.")) {
    return "not played yet: the nemesis kills, restarts, stops and continues processes, and "
           "drops, duplicates, delays and cuts the messages between them (chatplay --launch); "
           "clock faults and the rest are not injected";
  }
  if (key == "workload.wake_on_push") {
    return "chatd's push notifications reach no device, so nothing can wake an offline app";
  }
  if (key == "workload.background_sync_s" || key == "workload.background_session_s") {
    return "background wakes of offline devices are not played yet";
  }
  if (key == "topology.regions") {
    return "a real cluster is one region on one machine (no inter-region network is played)";
  }
  if (key.starts_with("protocol.")) {
    return "the cluster's nodes read it and chatd has no flag for it, so the cluster cannot be "
           "told";
  }
  return "not honoured by a real play yet";
}

absl::Status Refuse(const KeyValue& kv, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat(kv.key, " = ", ValueText(kv), ": ", why, " (docs/sim-vs-real.md)"));
}

// Appends the chatd flag for a set cluster key, or refuses a value chatd cannot take.
absl::Status AddClusterFlag(const KeyValue& kv, const ClusterFlag& f, Admission& a) {
  if (kv.key == "protocol.write_path" && ValueText(kv) != "direct") {
    return Refuse(kv, "chatd refuses the batched write path (its storage keeps no writer log)");
  }
  std::string value = ValueText(kv);
  if (f.ms) {
    const int64_t us = std::get<int64_t>(kv.value);
    if (us % 1000 != 0) {
      return Refuse(kv,
                    absl::StrCat("chatd's --", std::string(f.flag), " takes whole milliseconds"));
    }
    value = absl::StrCat(us / 1000);
  }
  a.cluster_flags.push_back(absl::StrCat("--", std::string(f.flag)));
  a.cluster_flags.push_back(value);
  return absl::OkStatus();
}

// The process of a launched cluster that hosts a crash's node, by chatd's own placement
// (chatd/placement.h, services in memory), and what else that process hosts.
absl::StatusOr<ProcessCrash> CrashOnProcess(const Scenario& s, const sim::CrashSpec& spec,
                                            size_t processes) {
  ProcessCrash c;
  c.node = sim::CrashNode(spec);
  c.at_s = spec.at_s;
  // As in the simulator, whatever is still down at the heal restarts then.
  c.restart_s = spec.restart_s < 0 ? s.duration_s : std::min(spec.restart_s, s.duration_s);
  if (c.at_s >= s.duration_s) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at_s = ", c.at_s,
        ": the kill must come before the heal (scenario.duration_s = ", s.duration_s, ")"));
  }
  if (spec.torn_write) {
    return absl::InvalidArgumentError(
        "torn_write = true: chatd's SQLite keeps its own journal; a torn write is not injected");
  }
  const host::Deployment deployment(
      host::Deployment::Options{static_cast<int>(processes), s.protocol, /*only_needed=*/true});
  // A crash names a chat server "server:N"; the deployment's slot is "serverN".
  std::string slot_name = c.node;
  if (slot_name.starts_with("server:")) slot_name.erase(6, 1);
  std::vector<std::string> names(processes + 1);  // what each process hosts, by slot name
  int slot = -1;
  for (size_t i = 0; i < deployment.size(); ++i) {
    const int process = ProcessOf(deployment, i);
    if (deployment.slot(i).name == slot_name) {
      slot = static_cast<int>(i);
      c.process = process;
    }
    if (process >= 1 && static_cast<size_t>(process) <= processes) {
      absl::StrAppend(&names[static_cast<size_t>(process)],
                      names[static_cast<size_t>(process)].empty() ? "" : ", ",
                      deployment.slot(i).name);
    }
  }
  if (slot < 0 || c.process < 1 || static_cast<size_t>(c.process) > processes) {
    return absl::InvalidArgumentError(
        absl::StrCat("node = \"", c.node,
                     "\": no process of this cluster hosts it (chat servers are "
                     "server:0..server:",
                     processes - 1,
                     "; store shard K is on process K + 1, the services "
                     "on process 1; chatd runs no writer)"));
  }
  const std::string& hosted = names[static_cast<size_t>(c.process)];
  if (hosted != deployment.slot(static_cast<size_t>(slot)).name) {
    c.also = absl::StrCat("process ", c.process, " hosts ", hosted, ": all go down together");
  }
  return c;
}

// A pause as a stop of the process hosting its node (placed as a crash is), refused when it
// overlaps or touches a kill of that process: the restarted process would not be stopped.
absl::StatusOr<ProcessPause> PauseOnProcess(const Scenario& s, const sim::PauseSpec& spec,
                                            const std::vector<ProcessCrash>& crashes,
                                            size_t processes) {
  sim::CrashSpec as_crash;
  as_crash.node = spec.node;
  as_crash.at_s = spec.at_s;
  absl::StatusOr<ProcessCrash> placed = CrashOnProcess(s, as_crash, processes);
  if (!placed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrReplaceAll(placed.status().message(), {{"the kill", "the stop"}}));
  }
  ProcessPause p{spec.node, placed->process, spec.at_s, sim::PauseEnd(s, spec),
                 absl::StrReplaceAll(placed->also, {{"go down", "stop"}})};
  for (const ProcessCrash& c : crashes) {
    // Touching counts: at one instant, the kill's counter read would find the process stopped.
    if (c.process == p.process && p.at_s <= c.restart_s && c.at_s <= p.resume_s) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node = \"", p.node, "\": process ", p.process, " is stopped from ", p.at_s, " s to ",
          p.resume_s, " s and killed (", c.node, ") from ", c.at_s, " s to ", c.restart_s,
          " s: the restart would end the stop early; move one"));
    }
  }
  return p;
}

// The pauses of each process as the union of their windows, by process and then time: a process
// is stopped while any node it hosts is paused, as the simulator's node is while any of its
// windows holds (a second SIGSTOP would do nothing, and the first SIGCONT would end both).
std::vector<ProcessPause> MergePauses(std::vector<ProcessPause> pauses) {
  std::sort(pauses.begin(), pauses.end(), [](const ProcessPause& a, const ProcessPause& b) {
    return std::tie(a.process, a.at_s, a.resume_s) < std::tie(b.process, b.at_s, b.resume_s);
  });
  std::vector<ProcessPause> merged;
  for (ProcessPause& p : pauses) {
    if (!merged.empty() && merged.back().process == p.process &&
        p.at_s <= merged.back().resume_s) {
      ProcessPause& into = merged.back();
      into.resume_s = std::max(into.resume_s, p.resume_s);
      const std::vector<std::string> names = absl::StrSplit(into.node, ", ");
      if (std::find(names.begin(), names.end(), p.node) == names.end()) {
        absl::StrAppend(&into.node, ", ", p.node);
      }
      continue;
    }
    merged.push_back(std::move(p));
  }
  return merged;
}

// The processes hosting a partition's selector (sim/scenario.h PartitionSpec), or why the
// proxy cannot cut it.
absl::StatusOr<std::vector<int>> SelectorProcesses(const std::string& sel,
                                                   const host::Deployment& d, size_t processes) {
  if (sel == "clients" || sel.starts_with("region:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", sel, "\": the clients' links are not cut (only node messages between chatd "
        "processes pass the nemesis's proxy)"));
  }
  std::string slot_name = sel;  // "server:N" is the deployment's "serverN"
  if (slot_name.starts_with("server:")) slot_name.erase(6, 1);
  std::vector<int> out;
  for (size_t i = 0; i < d.size(); ++i) {
    const host::NodeSlot& slot = d.slot(i);
    if (sel == "services" ? slot.server_index >= 0 : slot.name != slot_name) continue;
    const int p = ProcessOf(d, i);
    if (p >= 1 && static_cast<size_t>(p) <= processes &&
        std::find(out.begin(), out.end(), p) == out.end()) {
      out.push_back(p);
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", sel, "\": no process of this cluster hosts it (chatd runs no writer)"));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The scenario's network faults on the links between processes, or why they cannot be played.
absl::StatusOr<NetworkFaults> NetworkOnProcesses(const Scenario& s, size_t processes) {
  NetworkFaults n;
  n.loss = s.loss;
  n.duplicate = s.duplicate;
  n.delay_probability = s.delay_probability;
  n.delay_ms_max = s.delay_ms_max;
  const host::Deployment d(
      host::Deployment::Options{static_cast<int>(processes), s.protocol, /*only_needed=*/true});
  std::vector<std::vector<std::string>> hosted(processes + 1);
  for (size_t i = 0; i < d.size(); ++i) {
    const int p = ProcessOf(d, i);
    if (p >= 1 && static_cast<size_t>(p) <= processes) {
      hosted[static_cast<size_t>(p)].push_back(d.slot(i).name);
    }
  }
  const auto names = [&](const std::vector<int>& ps) {
    std::string out;
    for (int p : ps) {
      absl::StrAppend(&out, out.empty() ? "" : "; ", "process ", p, " (",
                      absl::StrJoin(hosted[static_cast<size_t>(p)], ", "), ")");
    }
    return out;
  };
  for (size_t i = 0; i < s.partitions.size(); ++i) {
    const sim::PartitionSpec& spec = s.partitions[i];
    const std::string where = absl::StrCat("faults.partition.", i, ": ");
    absl::StatusOr<std::vector<int>> a = SelectorProcesses(spec.a, d, processes);
    if (!a.ok()) return absl::InvalidArgumentError(where + std::string(a.status().message()));
    absl::StatusOr<std::vector<int>> b = SelectorProcesses(spec.b, d, processes);
    if (!b.ok()) return absl::InvalidArgumentError(where + std::string(b.status().message()));
    for (int p : *a) {
      if (std::find(b->begin(), b->end(), p) != b->end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "\"", spec.a, "\" and \"", spec.b, "\" are both on process ", p,
            ", which passes their messages in memory: no proxy is between them"));
      }
    }
    n.cuts.push_back(ProcessCut{spec.start_s, std::min(spec.end_s, s.duration_s), *a, *b,
                                spec.one_way});
    n.notes.push_back(absl::StrCat(where, spec.a, " | ", spec.b, " cuts ", names(*a), " from ",
                                   names(*b)));
  }
  if (n.loss > 0 || n.duplicate > 0 || (n.delay_probability > 0 && n.delay_ms_max > 0)) {
    for (size_t p = 1; p <= processes; ++p) {
      if (hosted[p].size() > 1) {
        n.notes.push_back(absl::StrCat(
            "loss, duplication and delay reach node messages between processes only: those "
            "among ",
            absl::StrJoin(hosted[p], ", "), " (process ", p,
            ") pass in memory, where the simulator's links would fault them"));
      }
    }
  }
  return n;
}

}  // namespace

absl::StatusOr<Admission> AdmitScenario(const Scenario& s, size_t processes, bool can_kill) {
  // The [[faults.*]] lists are not keys: an entry the play cannot inject is refused.
  const std::pair<const char*, size_t> lists[] = {{"faults.partition", can_kill ? 0 : s.partitions.size()},
                                                  {"faults.crash", can_kill ? 0 : s.crashes.size()},
                                                  {"faults.pause", can_kill ? 0 : s.pauses.size()},
                                                  {"faults.clock", s.clocks.size()}};
  for (const auto& [name, n] : lists) {
    if (n > 0) {
      return Refuse(KeyValue{name, absl::StrCat(n, n == 1 ? " entry" : " entries")},
                    RefusalReason(name));
    }
  }
  Admission a;
  for (size_t i = 0; i < s.crashes.size() && can_kill; ++i) {
    absl::StatusOr<ProcessCrash> crash = CrashOnProcess(s, s.crashes[i], processes);
    if (!crash.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "faults.crash.", i, ": ", crash.status().message(), " (docs/sim-vs-real.md)"));
    }
    a.crashes.push_back(*std::move(crash));
  }
  for (size_t i = 0; i < s.pauses.size() && can_kill; ++i) {
    absl::StatusOr<ProcessPause> pause = PauseOnProcess(s, s.pauses[i], a.crashes, processes);
    if (!pause.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "faults.pause.", i, ": ", pause.status().message(), " (docs/sim-vs-real.md)"));
    }
    a.pauses.push_back(*std::move(pause));
  }
  a.pauses = MergePauses(std::move(a.pauses));
  if (can_kill) {
    absl::StatusOr<NetworkFaults> network = NetworkOnProcesses(s, processes);
    if (!network.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(network.status().message(), " (docs/sim-vs-real.md)"));
    }
    a.network = *std::move(network);
  }
  const std::vector<KeyValue> set = sim::KeyValues(s);
  const std::vector<KeyValue> defaults = sim::KeyValues(sim::DefaultScenario());
  for (size_t i = 0; i < set.size(); i++) {
    const KeyValue& kv = set[i];
    if (i < defaults.size() && defaults[i].key == kv.key && defaults[i].value == kv.value) {
      continue;
    }
    if (PlayerKeys().contains(kv.key)) continue;
    // The network nemesis plays these on a launched cluster (a.network).
    if (can_kill && (kv.key == "faults.loss" || kv.key == "faults.duplicate" ||
                     ((kv.key == "faults.delay_probability" || kv.key == "faults.delay_ms_max") &&
                      s.delay_ms_max > 0))) {
      continue;
    }
    // A delay drawn uniformly up to 0 ms is no delay (the forwarding scenario's baseline point).
    if (kv.key == "faults.delay_probability" && s.delay_ms_max == 0) {
      a.platform_keys.push_back(
          absl::StrCat(kv.key, " = ", ValueText(kv), " (with faults.delay_ms_max = 0: no delay)"));
      continue;
    }
    if (const auto it = ClusterKeys().find(kv.key); it != ClusterKeys().end()) {
      if (absl::Status st = AddClusterFlag(kv, it->second, a); !st.ok()) return st;
    } else if (IsPlatformKey(kv.key)) {
      a.platform_keys.push_back(absl::StrCat(kv.key, " = ", ValueText(kv)));
    } else {
      return Refuse(kv, RefusalReason(kv.key));
    }
  }
  if (static_cast<size_t>(s.servers()) != processes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topology.servers_per_region = ", s.servers_per_region, ": the scenario has ", s.servers(),
        " chat servers and the cluster has ", processes,
        " processes (one chat server each); set topology.servers_per_region = ", processes,
        " (docs/sim-vs-real.md)"));
  }
  return a;
}

}  // namespace chatlab::real
