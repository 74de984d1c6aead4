// Throughput of the wire codec (core/codec.h) on the two hottest messages: a client's SendMessage
// with a 100-byte body, and the Deliver the server pushes for it. Figures only; no assertions.
#include <cstddef>
#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"
#include "core/codec.h"
#include "core/messages.h"
#include "core/types.h"

namespace chatlab {
namespace {

constexpr size_t kBodyBytes = 100;

Message SampleSendMessage() {
  return SendMessage{123456789, ConversationId::Direct(UserId(1001), UserId(2002)),
                     1'700'000'000'000'000, std::string(kBodyBytes, 'b')};
}

Message SampleDeliver() {
  ChatMessage m;
  m.conv = ConversationId::Direct(UserId(1001), UserId(2002));
  m.message_id = 0x1234'5678'9abc'def0;  // snowflake-sized ids
  m.prev_msg_id = 0x1234'5678'9abc'de00;
  m.sender = UserId(1001);
  m.client_msg_id = 123456789;
  m.sent_at_us = 1'700'000'000'000'000;
  m.body = std::string(kBodyBytes, 'b');
  return Deliver{m};
}

void EncodeBench(benchmark::State& state, const Message& m) {
  std::string buf;
  for (auto _ : state) {
    buf.clear();
    EncodeTo(m, buf);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(buf.size()));
}

void EncodeFreshBench(benchmark::State& state, const Message& m) {
  size_t bytes = 0;
  for (auto _ : state) {
    std::string frame = Encode(m);
    bytes = frame.size();
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}

void DecodeBench(benchmark::State& state, const Message& m) {
  const std::string frame = Encode(m);
  for (auto _ : state) {
    absl::StatusOr<Message> decoded = Decode(frame);
    if (!decoded.ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(*decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(frame.size()));
}

void BM_EncodeSendMessage(benchmark::State& state) { EncodeBench(state, SampleSendMessage()); }
void BM_EncodeSendMessageFresh(benchmark::State& state) {
  EncodeFreshBench(state, SampleSendMessage());
}
void BM_DecodeSendMessage(benchmark::State& state) { DecodeBench(state, SampleSendMessage()); }
void BM_EncodeDeliver(benchmark::State& state) { EncodeBench(state, SampleDeliver()); }
void BM_EncodeDeliverFresh(benchmark::State& state) { EncodeFreshBench(state, SampleDeliver()); }
void BM_DecodeDeliver(benchmark::State& state) { DecodeBench(state, SampleDeliver()); }

BENCHMARK(BM_EncodeSendMessage);
BENCHMARK(BM_EncodeSendMessageFresh);
BENCHMARK(BM_DecodeSendMessage);
BENCHMARK(BM_EncodeDeliver);
BENCHMARK(BM_EncodeDeliverFresh);
BENCHMARK(BM_DecodeDeliver);

}  // namespace
}  // namespace chatlab
