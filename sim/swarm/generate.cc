#include "sim/swarm/generate.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "host/deployment.h"

namespace chatlab::sim::swarm {
namespace {

// Mixed with the swarm seed, so the generator's stream differs from the simulator's own streams
// (which are also derived from the same number).
constexpr uint64_t kGeneratorSalt = 0x5377a4d5eedULL;

// Seconds rounded to 0.1 s (a sum of two such values may not be, in binary).
double Tenth(double s) { return std::round(s * 10) / 10; }

// Draws in the generator's vocabulary. Reals are rounded (to 3 decimals, times to 0.1 s) so the
// files the swarm writes read like hand-written ones; rounding is part of the draw, so it is as
// deterministic as the rest.
class Draw {
 public:
  explicit Draw(uint64_t seed) : rng_(MixSeed(seed, kGeneratorSalt)) {}

  // Uniform integer in [lo, hi]. REQUIRES: lo <= hi.
  int Int(int lo, int hi) {
    return lo + static_cast<int>(rng_.Uniform(static_cast<uint64_t>(hi - lo) + 1));
  }
  double Real(double lo, double hi) { return Round3(lo + (hi - lo) * rng_.UniformDouble()); }
  // Log-uniform in [lo, hi]: small values as likely per decade as large ones.
  double LogReal(double lo, double hi) {
    return Round3(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * rng_.UniformDouble()));
  }
  int LogInt(int lo, int hi) {
    return std::clamp(static_cast<int>(std::lround(LogReal(lo, hi))), lo, hi);
  }
  double Seconds(double lo, double hi) { return Tenth(lo + (hi - lo) * rng_.UniformDouble()); }
  bool Chance(double p) { return rng_.Bernoulli(p); }
  template <typename T>
  T Pick(const std::vector<T>& v) {
    return v[rng_.Uniform(v.size())];
  }

 private:
  static double Round3(double x) { return std::round(x * 1000) / 1000; }
  Rng rng_;
};

void DrawDesign(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  // Every value of each switch (core/config.h AllValues): a new design is in the swarm at once.
  p.forwarding = d.Pick(AllValues<ForwardingStrategy>());
  p.group_delivery = d.Pick(AllValues<GroupDelivery>());
  p.write_path = d.Pick(AllValues<WritePath>());
  p.presence_fanout = d.Pick(AllValues<PresenceFanout>());
  p.id_scheme = d.Pick<IdScheme>({IdScheme::kSnowflake, IdScheme::kSequence});
  // Broken on purpose elsewhere; a swarm run must hold, so these stay on.
  p.dedup_enabled = true;
  p.gap_detection_enabled = true;
}

void DrawTopology(Draw& d, Scenario& s) {
  s.regions = d.Int(1, kSwarmRegionsMax);
  s.servers_per_region = d.Int(1, kSwarmServersPerRegionMax);
  s.client_hosts_per_region = d.Int(1, 3);
  s.services_region = d.Int(0, s.regions - 1);
  s.inter_region_latency_ms = d.Real(10, 150);
  s.client_latency_ms = d.Real(5, 100);
  s.fsync_ms = d.Real(0, kSwarmFsyncMaxMs);
}

void DrawWorkload(Draw& d, Scenario& s) {
  s.users = d.LogInt(kSwarmUsersMin, kSwarmUsersMax);
  s.online_fraction = d.Real(0.5, 1);
  if (d.Chance(0.75)) {
    s.session_mean_s = d.LogReal(5, 120);
    s.offline_mean_s = d.LogReal(2, 60);
  } else {
    s.session_mean_s = 0;  // no churn: online users stay online until the heal
  }
  s.reconnect_other_server = d.Real(0, 1);
  const double rate = d.LogReal(0.05, 1);
  s.send_rate_hz = std::min(rate, kSwarmSendsMax / (s.users * s.duration_s));
  s.send_rate_hz = std::max(0.001, std::round(s.send_rate_hz * 1000) / 1000);
  s.inter_send = d.Chance(0.5) ? "pareto" : "exponential";
  s.group_share = d.Real(0, 0.6);
  s.groups = d.Int(0, 12);
  s.group_size_min = d.Int(2, std::min(5, s.users));
  s.group_size_max = d.Int(s.group_size_min, std::min(30, s.users));
  s.contacts_per_user = d.Int(1, 10);
  s.typing_probability = d.Chance(0.5) ? 0 : d.Real(0.1, 0.6);
  s.body_bytes = d.LogInt(1, 1000);
  s.wake_on_push = d.Chance(0.3);
  s.background_sync_s = d.Chance(0.25) ? d.Seconds(5, 30) : 0;
}

// Every selector a partition may name in this topology.
std::vector<std::string> Selectors(const Scenario& s) {
  std::vector<std::string> out;
  for (const host::ServiceSpec& service : host::Services()) out.emplace_back(service.name);
  out.emplace_back("services");
  for (int i = 0; i < s.servers(); i++) out.push_back(absl::StrCat("server:", i));
  for (int r = 0; r < s.regions; r++) out.push_back(absl::StrCat("region:", r));
  out.emplace_back("clients");
  return out;
}

// A crash or clock node: server:N or a service, half and half.
std::string DrawNode(Draw& d, const Scenario& s) {
  if (d.Chance(0.5)) return absl::StrCat("server:", d.Int(0, s.servers() - 1));
  const auto services = host::Services();
  return std::string(services[static_cast<size_t>(d.Int(0, static_cast<int>(services.size()) - 1))].name);
}

void DrawFaults(Draw& d, Scenario& s) {
  if (d.Chance(0.5)) s.loss = d.Real(0, kSwarmLossMax);
  if (d.Chance(0.5)) s.duplicate = d.Real(0, 0.2);
  if (d.Chance(0.5)) {
    s.delay_probability = d.Real(0, 0.3);
    s.delay_ms_max = d.Real(10, 2000);
  }
  if (d.Chance(0.5)) s.push_loss = d.Real(0, 1);
  const std::vector<std::string> selectors = Selectors(s);
  const int partitions = d.Int(0, kSwarmPartitionsMax);
  for (int i = 0; i < partitions; i++) {
    PartitionSpec& p = s.partitions.emplace_back();
    p.start_s = d.Seconds(0, s.duration_s - 0.5);
    p.end_s = std::min(s.duration_s, Tenth(p.start_s + d.Seconds(0.5, 15)));
    p.a = d.Pick(selectors);
    do {
      p.b = d.Pick(selectors);
    } while (p.b == p.a);
    p.one_way = d.Chance(0.25);
  }
  const int crashes = d.Int(0, kSwarmCrashesMax);
  for (int i = 0; i < crashes; i++) {
    CrashSpec& c = s.crashes.emplace_back();
    c.node = DrawNode(d, s);
    c.at_s = d.Seconds(0, s.duration_s - 0.5);
    c.restart_s = d.Chance(0.3) ? -1 : Tenth(c.at_s + d.Seconds(0.5, 15));
    c.torn_write = d.Chance(0.3);
  }
  const int clocks = d.Int(0, kSwarmClocksMax);
  for (int i = 0; i < clocks; i++) {
    ClockSpec& c = s.clocks.emplace_back();
    c.node = DrawNode(d, s);
    c.skew_ms = d.Real(-2000, 2000);
    c.drift_ppm = d.Real(-500, 500);
    if (d.Chance(0.5)) {
      c.step_at_s = d.Seconds(0, s.duration_s - 0.5);
      c.step_ms = d.Real(-2000, 2000);
    }
  }
}

}  // namespace

// Drawn last, so that adding them left every earlier draw of a seed as it was.
void DrawThresholds(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  if (IsHybrid(p.group_delivery)) {
    // Small thresholds, so groups cross them during a run and members see the mode change.
    p.hybrid_push_members_max = static_cast<uint32_t>(d.Int(2, 20));
    p.hybrid_push_rate_max = static_cast<uint32_t>(d.Int(1, 20));
    p.hybrid_mode_check_us = d.Int(2, 15) * kUsPerSecond;
  }
  if (p.forwarding == ForwardingStrategy::kQueue) {
    // Short enough that a crashed or cut-off consumer is presumed dead, and entries go stale.
    p.queue_consumer_timeout_us = d.Int(2, 10) * kUsPerSecond;
    p.queue_stale_after_us = d.Int(1, 10) * kUsPerSecond;
  }
}

// Drawn after the thresholds, for the same reason. Chat-server ids make timestamp ids a
// must-hold design (the store keeps partitions append-only), so they are drawn only there.
void DrawIdGenerator(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  p.id_generator = d.Pick(AllValues<IdGenerator>());
  if (p.id_generator == IdGenerator::kChatServer && d.Chance(0.5)) {
    p.id_scheme = IdScheme::kTimestamp;
  }
}

// Drawn after the ids, so every draw before it is what earlier swarms drew. Half the runs bound the
// store's memory to a tail of 1 to 8 messages per conversation: catch-ups and reads then go to
// its disk (LoadHistory) often, and a restarted store replays only each conversation's newest
// message and its dedup window (SimDisk::HotRecords), as chatd's hot load does.
void DrawStoreMemory(Draw& d, Scenario& s) {
  if (d.Chance(0.5)) s.protocol.store_tail_cache = static_cast<uint32_t>(d.Int(1, 8));
}

// Drawn after the store's memory, so every draw before it is what earlier swarms drew. Two
// thirds of the runs on the direct write path (the batch writer feeds one store, so batched runs
// keep one), about a third of all runs, split the conversations over 2 or 3 store shards, and
// each store crash drawn above then lands on a shard drawn uniformly ("store" is shard 0, then
// "store1", ...), so every shard is crashed, replayed and caught up from somewhere.
void DrawStoreShards(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  if (p.write_path != WritePath::kDirect || !d.Chance(2.0 / 3)) return;
  p.store_shards = static_cast<uint32_t>(d.Int(2, kSwarmStoreShardsMax));
  for (CrashSpec& c : s.crashes) {
    if (c.node != host::StoreShardName(0)) continue;
    c.node = host::StoreShardName(d.Int(0, static_cast<int>(p.store_shards) - 1));
  }
}

// Drawn after the shards, so every draw before it is what earlier swarms drew. Half the runs on
// the direct write path look resends up on disk (protocol.store_dedup_lookup) behind a small
// window, so resends after a disconnect, a partition or a crash miss the window and are answered
// from the store's disk. The window still has to hold the copies nobody marks as resent: a
// network duplicate, at most delay_ms_max (plus a second of latency and queueing) behind its
// original. Its floor is eight times the mean store rate over that span.
void DrawDedupLookup(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  if (p.write_path != WritePath::kDirect || !d.Chance(0.5)) return;
  p.store_dedup_lookup = true;
  const double appends_per_s = s.users * s.send_rate_hz;
  const double span_s = (s.delay_probability > 0 ? s.delay_ms_max / 1000 : 0) + 1;
  const int floor = static_cast<int>(std::ceil(8 * appends_per_s * span_s));
  p.store_dedup_window_max = static_cast<uint32_t>(std::max(floor, d.LogInt(16, 256)));
}

// Drawn after the dedup look-up, so every draw before it is what earlier swarms drew. Half the
// runs refresh the mapping and presence every 1 to 5 s (protocol.map_refresh_interval_us), and
// half of those expire mappings not refreshed for 3 or 4 intervals (protocol.mapping_ttl_us): a
// crashed mapping or presence then relearns who is online from the servers, and a partitioned
// or crashed server's users expire while it is away.
void DrawMappingRefresh(Draw& d, Scenario& s) {
  ProtocolConfig& p = s.protocol;
  if (!d.Chance(0.5)) return;
  p.map_refresh_interval_us = d.Int(1, 5) * kUsPerSecond;
  // More than 2 * (interval + tick) (ValidateMappingConfig): 3 intervals, as the tick is < 0.5 s.
  if (d.Chance(0.5)) p.mapping_ttl_us = p.map_refresh_interval_us * d.Int(3, 4);
}

// Drawn after the mapping refresh, so every draw before it is what earlier swarms drew. Half the
// runs pause 1 to kSwarmPausesMax nodes (a long GC, a descheduled VM: [[faults.pause]]) for 0.5 to
// 10 s; a pause that would overlap a crash of its node is not kept (ValidatePause refuses it).
void DrawPauses(Draw& d, Scenario& s) {
  if (!d.Chance(0.5)) return;
  const int pauses = d.Int(1, kSwarmPausesMax);
  for (int i = 0; i < pauses; i++) {
    PauseSpec p;
    p.node = DrawNode(d, s);
    p.at_s = d.Seconds(0, s.duration_s - 0.5);
    p.resume_s = Tenth(p.at_s + d.Seconds(0.5, 10));
    if (p.resume_s >= s.duration_s) p.resume_s = -1;  // the heal resumes it
    s.pauses.push_back(p);
    if (!ValidatePause(s, p).ok()) s.pauses.pop_back();
  }
}

Scenario GenerateScenario(uint64_t seed) {
  Draw d(seed);
  Scenario s = DefaultScenario();
  s.name = absl::StrCat("swarm-", seed);
  s.description = absl::StrCat("generated by chatlab swarm from seed ", seed);
  s.seed = seed;
  s.duration_s = d.Int(kSwarmDurationMinS, kSwarmDurationMaxS);
  s.quiet_s = d.Int(kSwarmQuietMinS, kSwarmQuietMaxS);
  s.sample_interval_ms = 0;
  DrawDesign(d, s);
  DrawTopology(d, s);
  DrawWorkload(d, s);
  DrawFaults(d, s);
  DrawThresholds(d, s);
  DrawIdGenerator(d, s);
  DrawStoreMemory(d, s);
  DrawStoreShards(d, s);
  DrawDedupLookup(d, s);
  DrawMappingRefresh(d, s);
  DrawPauses(d, s);
  return s;
}

}  // namespace chatlab::sim::swarm
