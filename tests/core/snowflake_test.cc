// Unit tests for core/snowflake.h: layout, monotonicity under a misbehaving clock, exhaustion.
#include "core/snowflake.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

// Microseconds since the Unix epoch for `ms` milliseconds after the ChatLab epoch.
constexpr TimeUs AfterEpochUs(int64_t ms) { return (kChatLabEpochMs + ms) * kUsPerMs; }

TEST(SnowflakeTest, LayoutConstants) {
  EXPECT_EQ(SnowflakeGenerator::kTimestampBits + SnowflakeGenerator::kNodeBits +
                SnowflakeGenerator::kSequenceBits,
            63);
  EXPECT_EQ(SnowflakeGenerator::kNodeMax, 1023u);
  EXPECT_EQ(SnowflakeGenerator::kSequenceMax, 4095u);
  EXPECT_EQ(kChatLabEpochMs, 1577836800000);
}

TEST(SnowflakeTest, EncodeDecodeRoundTrip) {
  const SnowflakeParts parts{123456789, 517, 4000};
  const uint64_t id = SnowflakeGenerator::Encode(parts);
  EXPECT_EQ(id, (uint64_t{123456789} << 22) | (uint64_t{517} << 12) | 4000);
  EXPECT_EQ(SnowflakeGenerator::Decode(id), parts);
  const SnowflakeParts max{SnowflakeGenerator::kTimestampMax, 1023, 4095};
  const uint64_t max_id = SnowflakeGenerator::Encode(max);
  EXPECT_EQ(max_id, (uint64_t{1} << 63) - 1);  // the sign bit is never used
  EXPECT_EQ(SnowflakeGenerator::Decode(max_id), max);
}

TEST(SnowflakeTest, FirstIdCarriesTimeAndNode) {
  SnowflakeGenerator gen(7);
  const uint64_t id = gen.Next(AfterEpochUs(1000) + 999);  // sub-ms part is dropped
  EXPECT_EQ(SnowflakeGenerator::Decode(id), (SnowflakeParts{1000, 7, 0}));
  EXPECT_EQ(gen.node(), 7u);
  EXPECT_EQ(gen.stats().ids_generated, 1u);
  EXPECT_EQ(gen.stats().clock_backwards, 0u);
}

TEST(SnowflakeTest, NodeBitsSeparateGenerators) {
  SnowflakeGenerator a(1);
  SnowflakeGenerator b(1023);
  const uint64_t id_a = a.Next(AfterEpochUs(5));
  const uint64_t id_b = b.Next(AfterEpochUs(5));
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(SnowflakeGenerator::Decode(id_a).node, 1u);
  EXPECT_EQ(SnowflakeGenerator::Decode(id_b).node, 1023u);
  EXPECT_EQ(SnowflakeGenerator::Decode(id_a).timestamp_ms,
            SnowflakeGenerator::Decode(id_b).timestamp_ms);
}

TEST(SnowflakeTest, SameMillisecondCountsUpSequence) {
  SnowflakeGenerator gen(3);
  const uint64_t first = gen.Next(AfterEpochUs(10));
  const uint64_t second = gen.Next(AfterEpochUs(10) + 500);
  EXPECT_EQ(SnowflakeGenerator::Decode(second), (SnowflakeParts{10, 3, 1}));
  EXPECT_GT(second, first);
  const uint64_t next_ms = gen.Next(AfterEpochUs(11));
  EXPECT_EQ(SnowflakeGenerator::Decode(next_ms), (SnowflakeParts{11, 3, 0}));  // sequence resets
}

TEST(SnowflakeTest, MonotonicWhenClockGoesBackwards) {
  SnowflakeGenerator gen(2);
  const uint64_t a = gen.Next(AfterEpochUs(1000));
  const uint64_t b = gen.Next(AfterEpochUs(400));  // clock stepped back 600 ms
  const uint64_t c = gen.Next(AfterEpochUs(500));  // still behind
  EXPECT_GT(b, a);
  EXPECT_GT(c, b);
  // The logical clock keeps the last timestamp and counts up the sequence.
  EXPECT_EQ(SnowflakeGenerator::Decode(b), (SnowflakeParts{1000, 2, 1}));
  EXPECT_EQ(SnowflakeGenerator::Decode(c), (SnowflakeParts{1000, 2, 2}));
  EXPECT_EQ(gen.stats().clock_backwards, 2u);
  // Once the clock passes the last timestamp again, ids carry the clock again.
  const uint64_t d = gen.Next(AfterEpochUs(1001));
  EXPECT_EQ(SnowflakeGenerator::Decode(d), (SnowflakeParts{1001, 2, 0}));
  EXPECT_EQ(gen.stats().clock_backwards, 2u);
}

TEST(SnowflakeTest, SequenceExhaustionBorrowsNextMillisecond) {
  SnowflakeGenerator gen(9);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4096; ++i) ids.push_back(gen.Next(AfterEpochUs(50)));
  EXPECT_EQ(SnowflakeGenerator::Decode(ids.back()), (SnowflakeParts{50, 9, 4095}));
  EXPECT_EQ(gen.stats().sequence_exhausted, 0u);
  const uint64_t borrowed = gen.Next(AfterEpochUs(50));  // the 4097th id in ms 50
  EXPECT_EQ(SnowflakeGenerator::Decode(borrowed), (SnowflakeParts{51, 9, 0}));
  EXPECT_EQ(gen.stats().sequence_exhausted, 1u);
  EXPECT_GT(borrowed, ids.back());
  // The clock is still in ms 50, behind the borrowed ms: continue from it, not a clock step.
  const uint64_t after = gen.Next(AfterEpochUs(50) + 900);
  EXPECT_EQ(SnowflakeGenerator::Decode(after), (SnowflakeParts{51, 9, 1}));
  EXPECT_EQ(gen.stats().clock_backwards, 0u);
  // When the clock reaches ms 51 itself, it continues the sequence there.
  const uint64_t at_51 = gen.Next(AfterEpochUs(51));
  EXPECT_EQ(SnowflakeGenerator::Decode(at_51), (SnowflakeParts{51, 9, 2}));
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_GT(ids[i], ids[i - 1]);
}

TEST(SnowflakeTest, StrictlyIncreasingUnderJitteryClock) {
  SnowflakeGenerator gen(511);
  uint64_t last = 0;
  TimeUs now = AfterEpochUs(100000);
  for (int i = 0; i < 20000; ++i) {
    // Forward most of the time, backwards by up to 3 ms every 7th call, frozen every 5th.
    if (i % 7 == 0) {
      now -= 3 * kUsPerMs;
    } else if (i % 5 != 0) {
      now += 137;
    }
    const uint64_t id = gen.Next(now);
    ASSERT_GT(id, last) << "at call " << i;
    last = id;
  }
  EXPECT_GT(gen.stats().clock_backwards, 0u);
}

TEST(SnowflakeTest, ClockBeforeEpochIsClampedAndNeverZero) {
  SnowflakeGenerator gen(0);       // node 0: the only generator that could produce id 0
  const uint64_t a = gen.Next(0);  // a simulator clock at 0 is 50 years before the epoch
  const uint64_t b = gen.Next(-5);
  const uint64_t c = gen.Next(AfterEpochUs(-1));
  EXPECT_NE(a, 0u);
  EXPECT_GT(b, a);
  EXPECT_GT(c, b);
  EXPECT_EQ(SnowflakeGenerator::Decode(a), (SnowflakeParts{0, 0, 1}));
  EXPECT_EQ(gen.stats().before_epoch, 3u);
  const uint64_t d = gen.Next(AfterEpochUs(0));  // exactly the epoch: timestamp 0
  EXPECT_GT(d, c);
  EXPECT_EQ(gen.stats().before_epoch, 3u);
}

TEST(SnowflakeTest, ClockPastRangeIsClamped) {
  SnowflakeGenerator gen(4);
  const TimeUs far_future_us =
      AfterEpochUs(static_cast<int64_t>(SnowflakeGenerator::kTimestampMax) + 10);
  const uint64_t id = gen.Next(far_future_us);
  EXPECT_EQ(SnowflakeGenerator::Decode(id).timestamp_ms, SnowflakeGenerator::kTimestampMax);
  EXPECT_EQ(gen.stats().after_range, 1u);
}

}  // namespace
}  // namespace chatlab
