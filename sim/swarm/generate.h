// The swarm's scenario generator: one swarm seed expands into one whole Scenario.
//
// Swarm testing (TigerBeetle's VOPR, "swarm testing" after Groce et al.): rather than one
// scenario with every feature on, each seed draws its own mix of design switches, topology,
// workload and faults, so that a bug that needs one feature on and another off is reached by
// some seed. The expansion uses nothing but a SplitMix64 (core/random.h) seeded from the swarm
// seed, so seed K is the same scenario on every machine and in every build that keeps these
// ranges. The ranges below ARE the spec; every draw is uniform unless it says otherwise, "p"
// is the probability that a feature is on, and the simulator's seed is the swarm seed.
//
//   scenario   duration_s 15-60 (integer), quiet_s 60-90 (integer: healing time after the
//              faults stop), sample_interval_ms 0 (queue sampling off: only invariants matter).
//   protocol   forwarding direct|buffered|queue, group_delivery push|pull|hybrid|hybrid_either,
//              write_path direct|batched, presence_fanout all|short_list,
//              id_scheme snowflake|sequence. Never timestamp ids minted by the store,
//              dedup_enabled = false or gap_detection_enabled = false: those are broken on
//              purpose (the oracle must catch them), so a must-hold run may not use them.
//   ids        (drawn after the thresholds) id_generator store|chat_server; with chat_server,
//              id_scheme becomes timestamp with p 0.5 (the store lifts ids behind the head, so
//              timestamp ids minted by skewed servers are a must-hold design).
//   topology   regions 1-3, servers_per_region 1-4, client_hosts_per_region 1-3,
//              services_region 0-(regions-1).
//   network    inter_region_latency_ms 10-150, client_latency_ms 5-100.
//   cost       fsync_ms 0-5.
//   workload   users 10-300 (log-uniform), online_fraction 0.5-1, churn with p 0.75:
//              session_mean_s 5-120 and offline_mean_s 2-60 (log-uniform), else no churn
//              (session_mean_s 0); reconnect_other_server 0-1; send_rate_hz 0.05-1
//              (log-uniform), capped so users x send_rate_hz x duration_s stays within
//              kSwarmSendsMax; inter_send pareto|exponential; group_share 0-0.6;
//              groups 0-12; group_size_min 2-min(5, users); group_size_max
//              group_size_min-min(30, users); contacts_per_user 1-10; typing_probability 0
//              (p 0.5) or 0.1-0.6; body_bytes 1-1000 (log-uniform); wake_on_push with p 0.3;
//              background_sync_s 5-30 with p 0.25 (else 0).
//   faults     loss 0-0.35 (p 0.5), duplicate 0-0.2 (p 0.5), delay_probability 0-0.3 with
//              delay_ms_max 10-2000 (p 0.5), push_loss 0-1 (p 0.5);
//              0-3 [[faults.partition]]: a and b two different selectors out of store, writer,
//              mapping, presence, notification, broker, services, server:N, region:N, clients;
//              start_s 0-(duration - 0.5), lasting 0.5-15 s (cut at the heal), one_way with p 0.25;
//              0-2 [[faults.crash]]: node server:N (p 0.5) or one of the six services, at_s
//              0-(duration - 0.5), restart_s at_s + 0.5-15 s or -1 (down until the heal, p 0.3),
//              torn_write with p 0.3;
//              0-2 [[faults.clock]]: node a service or server:N, skew_ms -2000-2000, drift_ppm
//              -500-500, a step (p 0.5) at step_at_s 0-(duration - 0.5) of step_ms -2000-2000.
//   thresholds (drawn after the faults) with hybrid groups: hybrid_push_members_max 2-20,
//              hybrid_push_rate_max 1-20, hybrid_mode_check_us 2-15 s; with the queue:
//              queue_consumer_timeout_us 2-10 s, queue_stale_after_us 1-10 s (so the mode
//              change, the dead-consumer purge and the stale drop are reached).
//   store      (drawn after the ids) store_tail_cache 1-8 with p 0.5 (else 0: all in memory);
//              then with write_path direct, store_shards 2-3 with p 2/3 (else 1;
//              about a third of all runs are sharded), and each crash of "store" moved to a
//              shard drawn uniformly (store, store1, ...); then with write_path
//              direct, store_dedup_lookup with p 0.5 and store_dedup_window_max 16-256
//              (log-uniform), raised to 8 x users x send_rate_hz x (delay_ms_max / 1000 + 1)
//              when that is more (the window must hold unmarked network duplicates).
//   mapping    (drawn after the dedup look-up) map_refresh_interval_us 1-5 s with p 0.5, and
//              then mapping_ttl_us 3-4 intervals with p 0.5.
//   pauses     (drawn last) with p 0.5, 1-kSwarmPausesMax [[faults.pause]]: node server:N or a
//              service (store is shard 0),
//              at_s 0-(duration - 0.5), resume_s at_s + 0.5-10 s (-1 past the heal); one that
//              would overlap a crash of its node is dropped.
//   Times are rounded to 0.1 s and other reals to 3 decimals, so the files read like hand-written
//   ones.
//   Everything else keeps its default (docs/simulator.md).
#ifndef CHATLAB_SIM_SWARM_GENERATE_H_
#define CHATLAB_SIM_SWARM_GENERATE_H_

#include <cstdint>

#include "sim/scenario.h"

namespace chatlab::sim::swarm {

inline constexpr int kSwarmDurationMinS = 15;
inline constexpr int kSwarmDurationMaxS = 60;
inline constexpr int kSwarmQuietMinS = 60;
inline constexpr int kSwarmQuietMaxS = 90;
inline constexpr int kSwarmUsersMin = 10;
inline constexpr int kSwarmUsersMax = 300;
inline constexpr int kSwarmRegionsMax = 3;
inline constexpr int kSwarmServersPerRegionMax = 4;
inline constexpr int kSwarmPartitionsMax = 3;
inline constexpr int kSwarmCrashesMax = 2;
inline constexpr int kSwarmClocksMax = 2;
inline constexpr int kSwarmPausesMax = 2;
inline constexpr int kSwarmStoreShardsMax = 3;
inline constexpr double kSwarmLossMax = 0.35;
inline constexpr double kSwarmFsyncMaxMs = 5;
// Expected workload sends of one run at most (users x rate x duration): keeps the slowest runs
// within a few seconds of wall time, so a 10,000-run swarm fits in well under an hour.
inline constexpr double kSwarmSendsMax = 2500;

// The scenario of swarm seed `seed`: name "swarm-<seed>", scenario.seed = seed. Always passes
// Validate(). Deterministic: a function of `seed` alone.
Scenario GenerateScenario(uint64_t seed);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_GENERATE_H_
