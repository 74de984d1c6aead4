#include "core/snowflake.h"

#include <cassert>
#include <cstdint>

namespace chatlab {

SnowflakeGenerator::SnowflakeGenerator(uint32_t node) : node_(node) { assert(node <= kNodeMax); }

uint64_t SnowflakeGenerator::ClampedTimestampMs(TimeUs now_us) {
  // Floor division, so that -1 us is in the millisecond before 0 (only matters before the
  // epoch, where it is clamped anyway).
  int64_t now_ms = now_us / kUsPerMs;
  if (now_us % kUsPerMs < 0) now_ms -= 1;
  if (now_ms < kChatLabEpochMs) {
    stats_.before_epoch++;
    return 0;
  }
  const uint64_t since_epoch_ms = static_cast<uint64_t>(now_ms - kChatLabEpochMs);
  if (since_epoch_ms > kTimestampMax) {
    stats_.after_range++;
    return kTimestampMax;
  }
  return since_epoch_ms;
}

uint64_t SnowflakeGenerator::Next(TimeUs now_us) {
  const uint64_t clock_ms = ClampedTimestampMs(now_us);
  if (clock_ms < clock_ms_max_) stats_.clock_backwards++;
  if (clock_ms > clock_ms_max_) clock_ms_max_ = clock_ms;

  uint64_t ms = clock_ms;
  uint32_t sequence = 0;
  if (issued_ && ms <= last_ms_) {
    // Same millisecond, or the clock is behind the last issued timestamp: continue from it.
    ms = last_ms_;
    if (last_sequence_ < kSequenceMax) {
      sequence = last_sequence_ + 1;
    } else {
      // 4096 ids in this millisecond already: borrow the next one.
      assert(last_ms_ < kTimestampMax);  // only reachable with a clock past 2089
      stats_.sequence_exhausted++;
      ms = last_ms_ + 1;
      sequence = 0;
    }
  }
  if (ms == 0 && node_ == 0 && sequence == 0) sequence = 1;  // 0 is kNoMessage

  const uint64_t id = Encode(SnowflakeParts{ms, node_, sequence});
  if (issued_) {
    assert(ms >= last_ms_);
    assert(id > Encode(SnowflakeParts{last_ms_, node_, last_sequence_}));
  }
  assert(id != 0);
  issued_ = true;
  last_ms_ = ms;
  last_sequence_ = sequence;
  stats_.ids_generated++;
  return id;
}

void SnowflakeGenerator::Observe(uint64_t id) {
  const SnowflakeParts parts = Decode(id);
  if (parts.node != node_) return;
  if (issued_ && Encode(SnowflakeParts{last_ms_, node_, last_sequence_}) >= id) return;
  issued_ = true;
  last_ms_ = parts.timestamp_ms;
  last_sequence_ = parts.sequence;
}

uint64_t SnowflakeGenerator::Encode(const SnowflakeParts& parts) {
  assert(parts.timestamp_ms <= kTimestampMax);
  assert(parts.node <= kNodeMax);
  assert(parts.sequence <= kSequenceMax);
  return (parts.timestamp_ms << kTimestampShift) | (uint64_t{parts.node} << kNodeShift) |
         uint64_t{parts.sequence};
}

SnowflakeParts SnowflakeGenerator::Decode(uint64_t id) {
  SnowflakeParts parts;
  parts.timestamp_ms = (id >> kTimestampShift) & kTimestampMax;
  parts.node = static_cast<uint32_t>((id >> kNodeShift) & kNodeMax);
  parts.sequence = static_cast<uint32_t>(id & kSequenceMax);
  return parts;
}

}  // namespace chatlab
