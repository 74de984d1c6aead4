#include "sim/swarm/reduce.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "host/deployment.h"
#include "sim/swarm/shrink.h"

namespace chatlab::sim::swarm {
namespace {

// Seconds rounded to 0.1 s, so halved times stay readable.
double Tenth(double s) { return std::round(s * 10) / 10; }

std::string Num(double v) { return absl::StrFormat("%g", v); }

// The index N of a "server:N" / "region:N" selector with that prefix, or -1.
int SelectorIndex(const std::string& sel, const std::string& prefix) {
  if (sel.rfind(prefix, 0) != 0) return -1;
  int n = 0;
  for (size_t i = prefix.size(); i < sel.size(); i++) {
    if (sel[i] < '0' || sel[i] > '9') return -1;
    n = n * 10 + (sel[i] - '0');
  }
  return sel.size() > prefix.size() ? n : -1;
}

// True if the selector names something that exists in s (services and clients always do).
bool Exists(const Scenario& s, const std::string& sel) {
  const int server = SelectorIndex(sel, "server:");
  if (server >= 0) return server < s.servers();
  const int region = SelectorIndex(sel, "region:");
  if (region >= 0) return region < s.regions;
  return true;
}

// After the topology shrank: fault entries naming servers or regions that no longer exist are
// dropped, and the services move to a region that does.
void DropDangling(Scenario& s) {
  s.services_region = std::min(s.services_region, s.regions - 1);
  std::erase_if(s.partitions,
                [&](const PartitionSpec& p) { return !Exists(s, p.a) || !Exists(s, p.b); });
  std::erase_if(s.crashes, [&](const CrashSpec& c) { return !Exists(s, CrashNode(c)); });
  std::erase_if(s.pauses, [&](const PauseSpec& p) { return !Exists(s, p.node); });
  std::erase_if(s.clocks, [&](const ClockSpec& c) { return !Exists(s, c.node); });
}

// After users shrank: groups no larger than the users.
void FitGroups(Scenario& s) {
  s.group_size_max = std::min(s.group_size_max, s.users);
  s.group_size_min = std::min(s.group_size_min, s.group_size_max);
}

// After the run got shorter: faults that would start after it are dropped, the rest end with it.
void FitDuration(Scenario& s) {
  if (s.send_start_s >= s.duration_s) s.send_start_s = 0;
  if (s.send_end_s > s.duration_s) s.send_end_s = 0;
  std::erase_if(s.partitions, [&](const PartitionSpec& p) { return p.start_s >= s.duration_s; });
  for (PartitionSpec& p : s.partitions) p.end_s = std::min(p.end_s, s.duration_s);
  std::erase_if(s.crashes, [&](const CrashSpec& c) { return c.at_s >= s.duration_s; });
  for (CrashSpec& c : s.crashes) {
    if (c.restart_s >= s.duration_s) c.restart_s = -1;  // the heal restarts it anyway
  }
  std::erase_if(s.pauses, [&](const PauseSpec& p) { return p.at_s >= s.duration_s; });
  for (PauseSpec& p : s.pauses) {
    if (p.resume_s >= s.duration_s) p.resume_s = -1;  // the heal resumes it anyway
  }
}

std::string PartitionName(const PartitionSpec& p) {
  return absl::StrCat(p.a, p.one_way ? " -> " : " | ", p.b, " ", Num(p.start_s), "-", Num(p.end_s),
                      " s");
}

std::string CrashName(const CrashSpec& c) {
  return absl::StrCat(CrashNode(c), " at ", Num(c.at_s), " s",
                      c.restart_s < 0 ? " (down until the heal)"
                                      : absl::StrCat(" restart ", Num(c.restart_s), " s"),
                      c.torn_write ? " torn" : "");
}

// Builds the candidate list rule by rule; a rule may add zero, one or many candidates.
class Builder {
 public:
  explicit Builder(const Scenario& s) : base_(s), base_toml_(ScenarioToToml(s)) {}

  // Starts the next rule (every rule calls this once, so rule numbers are positions).
  void NextRule() { rule_++; }
  // Adds the result of change(copy of base) when it is valid and differs from the base.
  void Add(std::string what, const std::function<void(Scenario&)>& change) {
    Scenario s = base_;
    change(s);
    if (!Validate(s).ok() || ScenarioToToml(s) == base_toml_) return;
    out_.push_back(Candidate{rule_, std::move(what), std::move(s)});
  }
  // An integer key halved (rounding down) or decremented, not below `floor`.
  void Int(const char* name, int Scenario::*key, int floor, bool halve,
           const std::function<void(Scenario&)>& fit = {}) {
    NextRule();
    const int now = base_.*key;
    const int next = std::max(floor, halve ? now / 2 : now - 1);
    if (next >= now) return;
    Add(absl::StrCat(name, " ", now, " -> ", next), [&](Scenario& s) {
      s.*key = next;
      if (fit) fit(s);
    });
  }
  const Scenario& base() const { return base_; }
  std::vector<Candidate> Take() { return std::move(out_); }

 private:
  const Scenario& base_;
  const std::string base_toml_;
  int rule_ = -1;
  std::vector<Candidate> out_;
};

void RemoveEntries(Builder& b) {
  const Scenario& s = b.base();
  b.NextRule();
  for (size_t i = 0; i < s.partitions.size(); i++) {
    b.Add(absl::StrCat("removed [[faults.partition]] ", PartitionName(s.partitions[i])),
          [i](Scenario& c) { c.partitions.erase(c.partitions.begin() + static_cast<long>(i)); });
  }
  b.NextRule();
  for (size_t i = 0; i < s.crashes.size(); i++) {
    b.Add(absl::StrCat("removed [[faults.crash]] ", CrashName(s.crashes[i])),
          [i](Scenario& c) { c.crashes.erase(c.crashes.begin() + static_cast<long>(i)); });
  }
  b.NextRule();
  for (size_t i = 0; i < s.pauses.size(); i++) {
    const PauseSpec& pause = s.pauses[i];
    b.Add(absl::StrCat("removed [[faults.pause]] ", pause.node, " at ", Num(pause.at_s)),
          [i](Scenario& c) { c.pauses.erase(c.pauses.begin() + static_cast<long>(i)); });
  }
  b.NextRule();
  for (size_t i = 0; i < s.clocks.size(); i++) {
    b.Add(absl::StrCat("removed [[faults.clock]] ", s.clocks[i].node),
          [i](Scenario& c) { c.clocks.erase(c.clocks.begin() + static_cast<long>(i)); });
  }
}

void ZeroProbabilities(Builder& b) {
  const Scenario& s = b.base();
  b.NextRule();
  b.Add(absl::StrCat("faults.loss ", Num(s.loss), " -> 0"), [](Scenario& c) { c.loss = 0; });
  b.NextRule();
  b.Add(absl::StrCat("faults.duplicate ", Num(s.duplicate), " -> 0"),
        [](Scenario& c) { c.duplicate = 0; });
  b.NextRule();
  b.Add(absl::StrCat("faults.delay_probability ", Num(s.delay_probability), " -> 0"),
        [](Scenario& c) {
          c.delay_probability = 0;
          c.delay_ms_max = 0;
        });
  b.NextRule();
  b.Add(absl::StrCat("faults.push_loss ", Num(s.push_loss), " -> 0"),
        [](Scenario& c) { c.push_loss = 0; });
}

// The size rules: halve (halve = true) or decrement each size.
void Sizes(Builder& b, bool halve) {
  b.Int("users", &Scenario::users, 2, halve, FitGroups);
  b.Int("groups", &Scenario::groups, 0, halve);
  b.Int("group_size_max", &Scenario::group_size_max, 1, halve,
        [](Scenario& s) { s.group_size_min = std::min(s.group_size_min, s.group_size_max); });
  b.Int("servers_per_region", &Scenario::servers_per_region, 1, halve, DropDangling);
  b.Int("regions", &Scenario::regions, 1, halve, DropDangling);
  b.Int("client_hosts_per_region", &Scenario::client_hosts_per_region, 1, halve);
}

void Times(Builder& b) {
  const Scenario& s = b.base();
  b.NextRule();
  const double duration = std::max(kShrinkDurationMinS, Tenth(s.duration_s / 2));
  if (duration < s.duration_s) {
    b.Add(absl::StrCat("duration_s ", Num(s.duration_s), " -> ", Num(duration)),
          [duration](Scenario& c) {
            c.duration_s = duration;
            FitDuration(c);
          });
  }
  b.NextRule();
  // Never below two periodic syncs and a request timeout: a message whose last live delivery
  // was lost just before the heal is repaired by the next sync, and its answer must land before
  // the end, or the reduced scenario fails liveness whatever the bug.
  const double sync_floor_s = 2.0 * static_cast<double>(s.protocol.client_sync_interval_us) / 1e6 +
                              static_cast<double>(s.protocol.request_timeout_us) / 1e6;
  const double quiet = std::max({kShrinkQuietMinS, Tenth(sync_floor_s), Tenth(s.quiet_s / 2)});
  if (quiet < s.quiet_s) {
    b.Add(absl::StrCat("quiet_s ", Num(s.quiet_s), " -> ", Num(quiet)),
          [quiet](Scenario& c) { c.quiet_s = quiet; });
  }
}

// Back to one store: fault entries that named a shard now gone name the store (shard 0), a
// partition left between the store and itself is dropped, and so is a pause of the store that a
// crash moved onto it now overlaps.
void UnshardStore(Scenario& s) {
  const auto to_store = [&s](std::string& node) {
    for (int k = 1; k < static_cast<int>(s.protocol.store_shards); k++) {
      if (node == host::StoreShardName(k)) node = host::StoreShardName(0);
    }
  };
  for (CrashSpec& c : s.crashes) to_store(c.node);
  for (ClockSpec& c : s.clocks) to_store(c.node);
  for (PartitionSpec& p : s.partitions) {
    to_store(p.a);
    to_store(p.b);
  }
  std::erase_if(s.partitions, [](const PartitionSpec& p) { return p.a == p.b; });
  for (PauseSpec& p : s.pauses) to_store(p.node);
  s.protocol.store_shards = 1;
  std::erase_if(s.pauses, [&s](const PauseSpec& p) { return !ValidatePause(s, p).ok(); });
}

void Switches(Builder& b) {
  const ProtocolConfig& p = b.base().protocol;
  b.NextRule();
  b.Add(
      absl::StrCat("forwarding ", std::string(ForwardingStrategyName(p.forwarding)), " -> direct"),
      [](Scenario& c) { c.protocol.forwarding = ForwardingStrategy::kDirect; });
  b.NextRule();
  b.Add(
      absl::StrCat("group_delivery ", std::string(GroupDeliveryName(p.group_delivery)), " -> push"),
      [](Scenario& c) { c.protocol.group_delivery = GroupDelivery::kPush; });
  b.NextRule();
  b.Add(absl::StrCat("write_path ", std::string(WritePathName(p.write_path)), " -> direct"),
        [](Scenario& c) { c.protocol.write_path = WritePath::kDirect; });
  b.NextRule();
  b.Add(absl::StrCat("presence_fanout ", std::string(PresenceFanoutName(p.presence_fanout)),
                     " -> all"),
        [](Scenario& c) { c.protocol.presence_fanout = PresenceFanout::kAll; });
  b.NextRule();
  b.Add(absl::StrCat("id_scheme ", std::string(IdSchemeName(p.id_scheme)), " -> snowflake"),
        [](Scenario& c) { c.protocol.id_scheme = IdScheme::kSnowflake; });
  b.NextRule();
  // Never to store-minted timestamp ids: those are broken on purpose.
  b.Add(absl::StrCat("id_generator ", std::string(IdGeneratorName(p.id_generator)),
                     " -> store"),
        [](Scenario& c) {
          c.protocol.id_generator = IdGenerator::kStore;
          if (c.protocol.id_scheme == IdScheme::kTimestamp) {
            c.protocol.id_scheme = IdScheme::kSnowflake;
          }
        });
  b.NextRule();
  b.Add(absl::StrCat("store_shards ", p.store_shards, " -> 1"), &UnshardStore);
}

void Features(Builder& b) {
  b.NextRule();
  b.Add("typing off", [](Scenario& c) { c.typing_probability = 0; });
  b.NextRule();
  b.Add("wake_on_push off", [](Scenario& c) { c.wake_on_push = false; });
  b.NextRule();
  b.Add("background sync off", [](Scenario& c) { c.background_sync_s = 0; });
  b.NextRule();
  b.Add("churn off", [](Scenario& c) {
    c.session_mean_s = 0;
    c.reconnect_other_server = 0;
  });
  b.NextRule();
  b.Add("everyone online at the start", [](Scenario& c) { c.online_fraction = 1; });
}

void Shorten(Builder& b) {
  const Scenario& s = b.base();
  b.NextRule();
  for (size_t i = 0; i < s.partitions.size(); i++) {
    const PartitionSpec& p = s.partitions[i];
    const double length = Tenth((p.end_s - p.start_s) / 2);
    if (p.end_s - p.start_s < kShrinkIntervalMinS || length <= 0) continue;
    b.Add(absl::StrCat("partition ", PartitionName(p), " shortened to ", Num(length), " s"),
          [i, length](Scenario& c) {
            c.partitions[i].end_s = Tenth(c.partitions[i].start_s + length);
          });
  }
  b.NextRule();
  for (size_t i = 0; i < s.crashes.size(); i++) {
    const CrashSpec& k = s.crashes[i];
    const double down = (k.restart_s < 0 ? s.duration_s : k.restart_s) - k.at_s;
    const double half = Tenth(down / 2);
    if (down < kShrinkIntervalMinS || half <= 0) continue;
    b.Add(absl::StrCat("crash ", CrashName(k), " down ", Num(half), " s"),
          [i, half](Scenario& c) { c.crashes[i].restart_s = Tenth(c.crashes[i].at_s + half); });
  }
  b.NextRule();
  if (s.send_rate_total_hz > 0) {
    b.Add(absl::StrCat("send_rate_total_hz ", Num(s.send_rate_total_hz), " -> ",
                       Num(s.send_rate_total_hz / 2)),
          [](Scenario& c) { c.send_rate_total_hz /= 2; });
  } else if (s.send_rate_hz >= 0.002) {
    b.Add(absl::StrCat("send_rate_hz ", Num(s.send_rate_hz), " -> ", Num(s.send_rate_hz / 2)),
          [](Scenario& c) { c.send_rate_hz /= 2; });
  }
}

}  // namespace

std::vector<Candidate> Reductions(const Scenario& s) {
  Builder b(s);
  RemoveEntries(b);
  ZeroProbabilities(b);
  Sizes(b, /*halve=*/true);
  Times(b);
  Switches(b);
  Features(b);
  Shorten(b);
  Sizes(b, /*halve=*/false);
  return b.Take();
}

int FaultCount(const Scenario& s) {
  return static_cast<int>(s.partitions.size() + s.crashes.size() + s.pauses.size() +
                          s.clocks.size()) +
         (s.loss > 0) +
         (s.duplicate > 0) + (s.delay_probability > 0) + (s.push_loss > 0);
}

}  // namespace chatlab::sim::swarm
