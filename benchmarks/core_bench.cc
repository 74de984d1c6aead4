// Core hot paths: the chat server handling one send end to end through its effects, the
// store appending one message, and a de-duplication hit with the window full.
#include <string>

#include "benchmark/benchmark.h"
#include "core/chat_server.h"
#include "core/store.h"

namespace chatlab {
namespace {

const Topology kTopology{NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6), {}};
constexpr TimeUs kStart = TimeUs{1767225600} * kUsPerSecond;

// One 1:1 send through the chat server: SendMessage -> StoreAppend; StoreAppendResult ->
// SendAck + PresenceTouch + MapLookup; MapLookupResult -> ForwardBatch to the peer's server;
// ForwardResult closes the forward.
void BM_ChatServerSendEndToEnd(benchmark::State& state) {
  ChatServer server(NodeOptions{NodeId(101), ProtocolConfig{}, kTopology, 1});
  Effects out;
  server.Start(kStart, out);
  const UserId alice(1), bob(2);
  (void)server.OnSessionOpen(kStart, SessionId(1), alice, out);
  const auto conv = ConversationId::Direct(alice, bob);
  const std::string body(100, 'x');
  ClientMsgId cmid = 1;
  MessageId id = 1000;
  uint64_t effects = 0;
  for (auto _ : state) {
    out.clear();
    server.OnClientMessage(kStart, SessionId(1), SendMessage{cmid, conv, kStart, body}, out);
    const auto& append = std::get<StoreAppend>(std::get<SendToNode>(out.back()).msg);
    AppendOutcome outcome{Code::kOk, append.message, false, {alice, bob}, GroupMode::kNone};
    outcome.message.message_id = ++id;
    outcome.message.prev_msg_id = id - 1;
    const uint64_t req = append.request_id;
    effects += out.size();
    out.clear();
    server.OnMessage(kStart, kTopology.store, StoreAppendResult{req, outcome}, out);
    const auto& lookup = std::get<MapLookup>(std::get<SendToNode>(out.back()).msg);
    const uint64_t lookup_req = lookup.request_id;
    effects += out.size();
    out.clear();
    server.OnMessage(kStart, kTopology.mapping,
                     MapLookupResult{lookup_req, {UserLocation{bob, NodeId(102)}}}, out);
    effects += out.size();
    const uint64_t forward_req =
        std::get<ForwardBatch>(std::get<SendToNode>(out.back()).msg).request_id;
    out.clear();
    server.OnMessage(kStart, NodeId(102), ForwardResult{forward_req, Code::kOk}, out);
    cmid++;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["effects_per_send"] =
      benchmark::Counter(static_cast<double>(effects) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_ChatServerSendEndToEnd);

// A forwarded buffer of N messages arriving at the recipients' server, each for one local
// user with an open session: N deliveries and one ForwardResult. The slope over N is the chat
// server's per-entry cost (docs/cost-model.md).
void BM_ChatServerForwardBatch(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  ChatServer server(NodeOptions{NodeId(102), ProtocolConfig{}, kTopology, 1});
  Effects out;
  server.Start(kStart, out);
  for (uint64_t u = 1; u <= n; u++) {
    (void)server.OnSessionOpen(kStart, SessionId(u), UserId(u), out);
  }
  ForwardBatch batch;
  for (uint64_t u = 1; u <= n; u++) {
    Routed<ChatMessage> r;
    r.recipients = {UserId(u)};
    r.payload.conv = ConversationId::Direct(UserId(1'000'000), UserId(u));
    r.payload.sender = UserId(1'000'000);
    r.payload.client_msg_id = u;
    r.payload.body = std::string(100, 'x');
    batch.messages.push_back(std::move(r));
  }
  MessageId id = 1000;
  for (auto _ : state) {
    out.clear();
    for (auto& r : batch.messages) {
      r.payload.prev_msg_id = r.payload.message_id;
      r.payload.message_id = ++id;
    }
    batch.request_id = id;
    server.OnMessage(kStart, NodeId(101), batch, out);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["effects"] = static_cast<double>(out.size());
}
BENCHMARK(BM_ChatServerForwardBatch)->Arg(1)->Arg(10)->Arg(100);

// The store sequencing and persisting one message (Snowflake ids, dedup on).
void BM_StoreAppend(benchmark::State& state) {
  MessageStore store(NodeOptions{NodeId(1), ProtocolConfig{}, kTopology, 1});
  Effects out;
  store.Start(kStart, out);
  const auto conv = ConversationId::Direct(UserId(1), UserId(2));
  ChatMessage m;
  m.conv = conv;
  m.sender = UserId(1);
  m.body = std::string(100, 'x');
  uint64_t req = 1;
  TimeUs now = kStart;
  for (auto _ : state) {
    out.clear();
    m.client_msg_id = req;
    store.OnMessage(now, NodeId(101), StoreAppend{req++, m}, out);
    now += 10;
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreAppend);

// A retry hitting the de-duplication index when it holds store_dedup_window_max entries.
void BM_StoreDedupHitFullWindow(benchmark::State& state) {
  ProtocolConfig config;
  config.store_dedup_window_max = static_cast<uint32_t>(state.range(0));
  MessageStore store(NodeOptions{NodeId(1), config, kTopology, 1});
  Effects out;
  store.Start(kStart, out);
  ChatMessage m;
  m.sender = UserId(1);
  m.body = "x";
  TimeUs now = kStart;
  // Fill the window across many conversations (+10% so eviction has run).
  const uint64_t fill = config.store_dedup_window_max + config.store_dedup_window_max / 10;
  for (uint64_t i = 1; i <= fill; i++) {
    out.clear();
    m.conv = ConversationId::Direct(UserId(1), UserId(2 + i % 1000));
    m.client_msg_id = i;
    store.OnMessage(now, NodeId(101), StoreAppend{i, m}, out);
    now += 10;
  }
  uint64_t probe = fill;
  uint64_t duplicates = 0;
  for (auto _ : state) {
    out.clear();
    m.client_msg_id = probe;
    m.conv = ConversationId::Direct(UserId(1), UserId(2 + probe % 1000));
    store.OnMessage(now, NodeId(101), StoreAppend{probe, m}, out);
    const auto& r = std::get<StoreAppendResult>(std::get<SendToNode>(out.back()).msg);
    duplicates += r.outcome.duplicate ? 1 : 0;
    probe = probe > fill - config.store_dedup_window_max / 2 ? probe - 1 : fill;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_rate"] =
      benchmark::Counter(static_cast<double>(duplicates) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_StoreDedupHitFullWindow)->Arg(1 << 16)->Arg(1 << 20);

}  // namespace
}  // namespace chatlab
