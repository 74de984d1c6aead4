# Sourced by benchmarks/sim_scale.sh and benchmarks/sim_memory.sh: the scale benchmark's scenario.
#
# write_scale_scenario USERS MODEL FILE writes the seed's load at USERS online users (0.012
# messages per user per second, 100 chat servers, one client host per 1,000 users, one store
# shard per 125,000 users, a connect ramp of USERS/20,000 s (at least 2), 60 s of load, 5 quiet
# seconds) under network.model MODEL into FILE, and sets scale_shards to the shard count.
write_scale_scenario() {
  local n=$1 model=$2 file=$3 ramp hubs
  ramp=$(( n / 20000 )); [ "$ramp" -lt 2 ] && ramp=2
  hubs=$(( n / 1000 )); [ "$hubs" -lt 4 ] && hubs=4
  scale_shards=$(( (n + 124999) / 125000 ))
  cat > "$file" <<TOML
[scenario]
name = "scale-$n"
duration_s = $(( ramp + 60 ))
quiet_s = 5
[network]
model = "$model"
[topology]
servers_per_region = 100
client_hosts_per_region = $hubs
[workload]
users = $n
online_fraction = 1.0
connect_ramp_s = $ramp
send_start_s = $ramp
session_mean_s = 0
send_rate_hz = 0.012
inter_send = "exponential"
group_share = 0.0
groups = 0
group_size_min = 1
group_size_max = 1
typing_probability = 0
read_delay_mean_s = 0
[protocol]
store_shards = $scale_shards
client_sync_interval_us = 0
presence_poll_interval_us = 0
TOML
}
