// Packets between endpoints: the fault layer on node links (partitions, loss, duplication,
// delay: SimGrid itself never loses, duplicates or reorders), and the bundling of one actor's
// packets per destination and instant into SimGrid communications, or, under network.model =
// "uncontended", straight into the receiver's inbox (docs/simulator.md, Network model).
#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/codec.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {
namespace {

// The heap order of an inbox: the earliest arrival on top, sending order among equals.
bool ArrivesLater(const Arrival& a, const Arrival& b) {
  return a.at != b.at ? a.at > b.at : a.seq > b.seq;
}

// The wake-up heap's order: the earliest alarm first, the order alarms were set among equals.
bool WakesBefore(const Alarm& a, const Alarm& b) {
  return a.at != b.at ? a.at < b.at : a.seq < b.seq;
}

}  // namespace

void WorldImpl::BindOutbox(size_t index) {
  const auto pid = static_cast<size_t>(s4u::this_actor::get_pid());
  if (outbox_of_pid_.size() <= pid) outbox_of_pid_.resize(pid + 1, nullptr);
  outbox_of_pid_[pid] = &sends_[index];
}

bool WorldImpl::Partitioned(int from, int to, double now) const {
  for (const PartitionSpec& p : sc_.partitions) {
    if (now < p.start_s || now >= p.end_s) continue;
    if (Selects(p.a, from) && Selects(p.b, to)) return true;
    if (!p.one_way && Selects(p.b, from) && Selects(p.a, to)) return true;
  }
  return false;
}

void WorldImpl::SendNodeMessage(int from, int to, Message msg) {
  const double now = s4u::Engine::get_clock();
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kNode;
  p->from_ep = from;
  p->msg = std::move(msg);
  // Faults on the trace too, so a message's story (chatlab shrink) shows where it went.
  auto trace_fault = [&](const std::string& what) {
    if (!options_.trace) return;
    Trace(now, absl::StrCat(what, " ", endpoints_[static_cast<size_t>(from)].name, " -> ",
                            endpoints_[static_cast<size_t>(to)].name, " ", DebugString(p->msg)));
  };
  if (!healed_) {
    if (Partitioned(from, to, now)) {
      measures_.faults["partition_drop"]++;
      trace_fault("LOST partition");
      return;
    }
    if (sc_.loss > 0 && rng_.Bernoulli(sc_.loss)) {
      measures_.faults["loss"]++;
      trace_fault("LOST loss");
      return;
    }
    if (sc_.duplicate > 0 && rng_.Bernoulli(sc_.duplicate)) {
      measures_.faults["duplicate"]++;
      trace_fault("DUPLICATED");
      auto copy = std::make_unique<Packet>(*p);
      Transmit(from, to, std::move(copy));
    }
    if (sc_.delay_probability > 0 && rng_.Bernoulli(sc_.delay_probability)) {
      measures_.faults["delay"]++;
      const double delay = rng_.UniformDouble() * sc_.delay_ms_max / 1000;
      trace_fault(absl::StrFormat("DELAYED %.1f ms", delay * 1000));
      Endpoint& e = endpoints_[static_cast<size_t>(from)];
      const uint64_t id = deferred_next_++;
      deferred_[id] = std::move(p);
      e.timers.Arm(now + delay, TimerEntry{kDeferredSend, static_cast<uint32_t>(to), id, 0});
      return;
    }
  }
  Transmit(from, to, std::move(p));
}

void WorldImpl::Transmit(int from, int to, std::unique_ptr<Packet> p) {
  p->from_ep = from;
  uint64_t bytes = kFramingBytes;
  if (p->kind == Packet::Kind::kNode || p->kind == Packet::Kind::kToServer ||
      p->kind == Packet::Kind::kToClient) {
    bytes += EncodedSize(p->msg);
  }
  const double now = s4u::Engine::get_clock();
  if (p->kind == Packet::Kind::kToClient || p->kind == Packet::Kind::kToServer) {
    measures_.client_messages++;
    CountForWindow(*p, from, to, now);
  }
  if (p->kind == Packet::Kind::kNode) {
    measures_.node_messages++;
    measures_.node_bytes += bytes;
    Endpoint& e = endpoints_[static_cast<size_t>(from)];
    e.messages_out++;
    if (now >= measures_.window.start_s && now < measures_.window.end_s) e.window_out++;
    CountForWindow(*p, from, to, now);
    const auto second = static_cast<size_t>(now);
    std::vector<uint64_t>& per_s = measures_.node_msgs_per_s;
    if (per_s.size() <= second) per_s.resize(second + 1, 0);
    per_s[second]++;
  }
  Outbox& out = Out();
  const auto [slot, added] = out.slot.try_emplace(to, out.pending.size());
  if (added) out.pending.emplace_back(to, std::make_unique<Bundle>());
  Bundle& bundle = *out.pending[slot->second].second;
  bundle.packets.push_back(std::move(p));
  bundle.bytes += bytes;
}

void WorldImpl::FlushSends() {
  Outbox& out = Out();
  if (uncontended_) {
    const double now = s4u::Engine::get_clock();
    const int from = static_cast<int>(&out - sends_.data());
    for (auto& [to, bundle] : out.pending) {
      Endpoint& e = endpoints_[static_cast<size_t>(to)];
      // The controller (the last outbox) sends as the first store's host, where it runs.
      const int src = from < static_cast<int>(endpoints_.size()) ? from : store_eps_[0];
      const double at = now + TransitTime(src, to, bundle->bytes);
      e.inbox.push_back(Arrival{at, arrival_seq_++, std::move(bundle)});
      std::push_heap(e.inbox.begin(), e.inbox.end(), ArrivesLater);
      if (e.blocked) WakeAt(to, at);
    }
    out.pending.clear();
    out.slot.clear();
    return;
  }
  for (auto& [to, bundle] : out.pending) {
    s4u::Mailbox* mb = endpoints_[static_cast<size_t>(to)].mailbox;
    const uint64_t bytes = bundle->bytes;
    Bundle* raw = bundle.release();
    in_flight_.insert(raw);
    // Not detached: SimGrid 3.32 keeps every detached comm in one global std::list that each
    // finished comm walks (O(messages in flight) per message). A comm kept by its sending actor
    // sits only on that actor's list; the actor reaps it once it is done (ReapSends).
    out.sends.push_back(mb->put_async(raw, bytes));
  }
  out.pending.clear();
  out.slot.clear();
}

double WorldImpl::TransitTime(int from, int to, uint64_t bytes) const {
  const Endpoint& a = endpoints_[static_cast<size_t>(from)];
  const Endpoint& b = endpoints_[static_cast<size_t>(to)];
  double latency = a.access_latency_s + b.access_latency_s;
  double bandwidth = std::min(a.access_bandwidth_Bps, b.access_bandwidth_Bps);
  if (a.region != b.region) {
    latency += wan_latency_s_;
    bandwidth = std::min(bandwidth, wan_bandwidth_Bps_);
  }
  bandwidth *= bandwidth_factor_;
  // CM02 (and so textbook) caps a transfer's rate at TCP-gamma / (2 x route latency).
  if (tcp_gamma_ > 0 && latency > 0) bandwidth = std::min(bandwidth, tcp_gamma_ / (2 * latency));
  return latency * latency_factor_ + static_cast<double>(bytes) / bandwidth;
}

// The endpoint waits for its alarm in the world's wake-up heap (moved earlier when a bundle
// arrives before it); SchedulerLoop runs the endpoints whose alarms are due. Called from the
// scheduler's and the controller's code: SimGrid runs one actor at a time here (no
// contexts/nthreads), so neither the heap nor the kernel's timers are touched concurrently.
void WorldImpl::WakeAt(int ep, double at, bool last) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  // A deferred alarm (SchedulerLoop) is due now, so no alarm can be earlier.
  if (e.wake_pos != kNoAlarm && e.alarm_at <= at) return;
  assert(e.wake_pos != kDeferredAlarm);
  e.alarm_at = at;
  if (e.wake_pos == kNoAlarm) {
    e.wake_pos = static_cast<int>(wake_heap_.size());
    wake_heap_.push_back(Alarm{at, 0, ep});
  }
  Alarm& alarm = wake_heap_[static_cast<size_t>(e.wake_pos)];
  alarm.at = at;
  alarm.seq = wake_seq_++ | (last ? kLastAlarm : 0);
  WakeSiftUp(static_cast<size_t>(e.wake_pos));
  // The scheduler reads the heap before it next waits; only while it waits (for the controller,
  // whose restarts and sends may set an alarm earlier than the one it waits for) does its
  // timer move.
  if (!sched_waiting_ || wake_timer_at_ <= at) return;
  wake_timer_->remove();
  wake_timer_at_ = at;
  wake_timer_ = simgrid::kernel::timer::Timer::set(at, [this] { RingBell(); });
}

void WorldImpl::PushAlarm(const Alarm& alarm) {
  Endpoint& e = endpoints_[static_cast<size_t>(alarm.ep)];
  e.alarm_at = alarm.at;
  e.wake_pos = static_cast<int>(wake_heap_.size());
  wake_heap_.push_back(alarm);
  WakeSiftUp(static_cast<size_t>(e.wake_pos));
}

void WorldImpl::WakeSiftUp(size_t i) {
  const Alarm moving = wake_heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!WakesBefore(moving, wake_heap_[parent])) break;
    wake_heap_[i] = wake_heap_[parent];
    endpoints_[static_cast<size_t>(wake_heap_[i].ep)].wake_pos = static_cast<int>(i);
    i = parent;
  }
  wake_heap_[i] = moving;
  endpoints_[static_cast<size_t>(moving.ep)].wake_pos = static_cast<int>(i);
}

void WorldImpl::WakeSiftDown(size_t i) {
  const Alarm moving = wake_heap_[i];
  const size_t n = wake_heap_.size();
  while (true) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && WakesBefore(wake_heap_[child + 1], wake_heap_[child])) child++;
    if (!WakesBefore(wake_heap_[child], moving)) break;
    wake_heap_[i] = wake_heap_[child];
    endpoints_[static_cast<size_t>(wake_heap_[i].ep)].wake_pos = static_cast<int>(i);
    i = child;
  }
  wake_heap_[i] = moving;
  endpoints_[static_cast<size_t>(moving.ep)].wake_pos = static_cast<int>(i);
}

void WorldImpl::RingBell() {
  wake_timer_ = nullptr;
  sched_waiting_ = false;
  sched_bell_->release();
}

void WorldImpl::WakeForNewTimers(int ep) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  if (!uncontended_ || !e.blocked) return;
  double next = e.timers.NextOr(end_s_);
  if (!e.outputs.empty()) next = std::min(next, e.outputs.front().at);
  WakeAt(ep, std::max(next, s4u::Engine::get_clock()));
}

std::unique_ptr<Bundle> WorldImpl::PopArrival(Endpoint& e) {
  std::pop_heap(e.inbox.begin(), e.inbox.end(), ArrivesLater);
  std::unique_ptr<Bundle> b = std::move(e.inbox.back().bundle);
  e.inbox.pop_back();
  return b;
}

void WorldImpl::ReapSends() {
  std::deque<s4u::CommPtr>& sends = Out().sends;
  // A started comm's remaining bytes reach 0 when its transfer completes.
  while (!sends.empty() && sends.front()->get_remaining() <= 0) {
    try {
      sends.front()->wait();
    } catch (const simgrid::Exception&) {
      // The receiver's loop ended at the end of the run: its packet stays in in_flight_.
    }
    sends.pop_front();
  }
}

std::unique_ptr<Bundle> WorldImpl::Receive(Bundle* b) {
  in_flight_.erase(b);
  return std::unique_ptr<Bundle>(b);
}

}  // namespace chatlab::sim::world
