// Snowflake ids: the message store's default per-conversation sort key (IdScheme::kSnowflake).
//
// An id packs three fields into the low 63 bits of a uint64 (the top bit is always 0, so an id
// also fits a signed 64-bit column):
//
//   bit 62 ............ 22 | 21 ...... 12 | 11 ....... 0
//   timestamp_ms (41 bits)  | node (10)    | sequence (12)
//
// timestamp_ms counts milliseconds since kChatLabEpochMs (2020-01-01T00:00:00Z), which lasts
// about 69.7 years (until 2089-09); node names the generator (so two generators never collide);
// sequence numbers the ids of one millisecond (4096 per ms).
//
// A generator is a logical clock: the ids of one generator are strictly increasing whatever its
// node's clock does.
//   * Clock goes backwards: the generator keeps using the last timestamp it issued (and keeps
//     counting up the sequence) until the clock passes it again. Counted in clock_backwards.
//   * Sequence exhausted (4096 ids in one millisecond): the generator borrows the next
//     millisecond, running ahead of the clock; a later call whose clock is still behind the
//     borrowed millisecond continues from it (that is not counted as the clock going back).
//     Counted in sequence_exhausted.
//   * Clock before the epoch (e.g. a simulator clock that starts at 0): the timestamp is clamped
//     to 0. Counted in before_epoch. Ids stay strictly increasing, they just carry no time.
//   * Clock beyond the 41-bit range (after 2089-09): clamped to the largest timestamp. Counted
//     in after_range. Issuing 4096 more ids in that last millisecond is a bug (asserted).
// An id is never 0 (kNoMessage): the one id that would be 0 (timestamp 0, node 0, sequence 0)
// is skipped.
#ifndef CHATLAB_CORE_SNOWFLAKE_H_
#define CHATLAB_CORE_SNOWFLAKE_H_

#include <cstdint>

#include "core/types.h"

namespace chatlab {

// 2020-01-01T00:00:00Z in milliseconds since the Unix epoch.
inline constexpr int64_t kChatLabEpochMs = 1577836800000;

// The three fields of a snowflake id.
struct SnowflakeParts {
  uint64_t timestamp_ms = 0;  // milliseconds since kChatLabEpochMs; < 2^41
  uint32_t node = 0;          // < 2^10
  uint32_t sequence = 0;      // < 2^12

  friend bool operator==(const SnowflakeParts&, const SnowflakeParts&) = default;
};

class SnowflakeGenerator {
 public:
  static constexpr int kTimestampBits = 41;
  static constexpr int kNodeBits = 10;
  static constexpr int kSequenceBits = 12;
  static_assert(kTimestampBits + kNodeBits + kSequenceBits == 63,
                "a snowflake id uses the low 63 bits; the sign bit stays 0");

  static constexpr uint64_t kTimestampMax = (uint64_t{1} << kTimestampBits) - 1;
  static constexpr uint32_t kNodeMax = (uint32_t{1} << kNodeBits) - 1;
  static constexpr uint32_t kSequenceMax = (uint32_t{1} << kSequenceBits) - 1;
  static constexpr int kNodeShift = kSequenceBits;
  static constexpr int kTimestampShift = kSequenceBits + kNodeBits;
  static_assert(kTimestampShift + kTimestampBits == 63);

  struct Stats {
    uint64_t ids_generated = 0;
    uint64_t clock_backwards = 0;     // calls whose clock was behind the last issued timestamp
    uint64_t sequence_exhausted = 0;  // times a millisecond was borrowed from the future
    uint64_t before_epoch = 0;        // calls whose clock was before kChatLabEpochMs
    uint64_t after_range = 0;         // calls whose clock was past the 41-bit range
  };

  // REQUIRES: node <= kNodeMax.
  explicit SnowflakeGenerator(uint32_t node);

  // The next id. now_us is microseconds since the Unix epoch on the generator's clock.
  // Postcondition: the result is > every id this generator returned before, and != 0.
  uint64_t Next(TimeUs now_us);

  // An id this generator issued before a restart (restored from durable storage): every later
  // id is greater. Ids of other nodes are ignored.
  void Observe(uint64_t id);

  static uint64_t Encode(const SnowflakeParts& parts);
  static SnowflakeParts Decode(uint64_t id);

  uint32_t node() const { return node_; }
  const Stats& stats() const { return stats_; }

 private:
  // Milliseconds since kChatLabEpochMs for now_us, clamped into [0, kTimestampMax] (counted).
  uint64_t ClampedTimestampMs(TimeUs now_us);

  // This generator's node bits. Invariant: <= kNodeMax.
  uint32_t node_;
  // False until the first id is issued; then last_ms_/last_sequence_ name the last id.
  bool issued_ = false;
  // The greatest clamped clock reading seen so far (to tell a clock that went back from a clock
  // that is merely behind a borrowed millisecond).
  uint64_t clock_ms_max_ = 0;
  // Timestamp of the last issued id. Never decreases. May run ahead of the clock after a
  // borrowed millisecond.
  uint64_t last_ms_ = 0;
  // Sequence of the last issued id. Invariant: <= kSequenceMax.
  uint32_t last_sequence_ = 0;
  Stats stats_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_SNOWFLAKE_H_
