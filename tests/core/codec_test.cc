// Tests for the wire codec (core/codec.h), the field lists (core/fields.h), the message and code
// names (core/messages.h) and the design-switch names (core/config.h).
//
// Every Message alternative gets a generated sample with a non-default value in every field, so
// a new message (or a new field listed in fields.h) is covered without touching this file, and a
// field added to a struct but forgotten in fields.h fails FieldListsMatchStructs.
#include "core/codec.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "core/fields.h"
#include "core/messages.h"
#include "core/random.h"
#include "core/types.h"
#include "gtest/gtest.h"

namespace chatlab {
namespace {

// The fixed seed of every randomized test here. A failure prints it with the input.
constexpr uint64_t kSeed = 20240601;

// ---- Sample generation -------------------------------------------------------------------------

// Fills every field with a distinct non-default value: ids and integers from a counter (spread
// so that varints of every length appear), negative times, strings with bytes that need escaping,
// two items per list, enums other than their default, valid conversations of both kinds.
class Filler {
 public:
  template <typename T>
  void Fill(T& f) {
    const uint64_t n = next_++;
    if constexpr (std::is_same_v<T, bool>) {
      f = true;
    } else if constexpr (std::is_same_v<T, Code>) {
      f = static_cast<Code>(1 + n % 7);  // never kOk
    } else if constexpr (std::is_same_v<T, ReceiptKind>) {
      f = ReceiptKind::kRead;
    } else if constexpr (std::is_same_v<T, GroupMode>) {
      f = n % 2 == 0 ? GroupMode::kPush : GroupMode::kPull;
    } else if constexpr (IdType<T>) {
      f = T(Spread(n));
    } else if constexpr (std::is_same_v<T, int64_t>) {
      f = n % 2 == 0 ? -static_cast<int64_t>(Spread(n) >> 1) : static_cast<int64_t>(n * 1000);
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      f = Spread(n);
    } else if constexpr (std::is_same_v<T, uint32_t>) {
      f = static_cast<uint32_t>(Spread(n) | 1);
    } else if constexpr (std::is_same_v<T, std::string>) {
      f = absl::StrCat("s", n, std::string("\0\xff\"q", 4));
    } else if constexpr (VectorType<T>) {
      f.resize(2);
      for (auto& item : f) Fill(item);
    } else if constexpr (std::is_same_v<T, ConversationId>) {
      f = n % 2 == 0 ? ConversationId::Direct(UserId(n + 9), UserId(n + 2))
                     : ConversationId::Group(GroupId(Spread(n)));
    } else if constexpr (HasFields<T>) {
      VisitFields(f, [this](const char* /*name*/, auto& field) { Fill(field); });
    } else {
      static_assert(std::is_void_v<T>, "Filler does not know this field type");
    }
  }

 private:
  // Non-zero values whose varints are 1 to 10 bytes long.
  static uint64_t Spread(uint64_t n) {
    const uint64_t shift = (n * 7) % 64;
    return (uint64_t{1} << shift) | n;
  }
  uint64_t next_ = 1;
};

template <size_t I>
Message SampleAt() {
  Message m(std::in_place_index<I>);
  Filler().Fill(std::get<I>(m));
  return m;
}

template <size_t... I>
std::vector<Message> MakeSamples(std::index_sequence<I...>) {
  return {SampleAt<I>()...};
}

// One sample per Message alternative, in variant order.
std::vector<Message> AllSamples() {
  return MakeSamples(std::make_index_sequence<kMessageAlternatives>{});
}

// ---- Field-count check (a field forgotten in fields.h) -----------------------------------------

struct AnyField {
  template <typename U>
  constexpr operator U() const noexcept;  // never defined: only used in unevaluated contexts
};

template <typename T, size_t... I>
constexpr bool AggregateInitializableWith(std::index_sequence<I...>) {
  return requires { T{((void)I, AnyField{})...}; };
}

// The number of members of aggregate T.
template <typename T, size_t N = 0>
constexpr size_t AggregateArity() {
  if constexpr (AggregateInitializableWith<T>(std::make_index_sequence<N + 1>{})) {
    return AggregateArity<T, N + 1>();
  } else {
    return N;
  }
}

template <typename T>
size_t ListedFieldCount() {
  T value{};
  size_t n = 0;
  VisitFields(value, [&n](const char* /*name*/, auto& /*field*/) { ++n; });
  return n;
}

template <typename T>
void ExpectFieldListComplete() {
  EXPECT_EQ(ListedFieldCount<T>(), AggregateArity<T>()) << "fields.h misses a field of a struct";
}

template <size_t... I>
void ExpectEveryAlternativeComplete(std::index_sequence<I...>) {
  (ExpectFieldListComplete<std::variant_alternative_t<I, Message>>(), ...);
}

TEST(FieldsTest, FieldListsMatchStructs) {
  ExpectEveryAlternativeComplete(std::make_index_sequence<kMessageAlternatives>{});
  ExpectFieldListComplete<ConversationId>();
  ExpectFieldListComplete<ChatMessage>();
  ExpectFieldListComplete<PresenceStatus>();
  ExpectFieldListComplete<AppendOutcome>();
  ExpectFieldListComplete<ConversationHead>();
  ExpectFieldListComplete<UserLocation>();
  ExpectFieldListComplete<MemberReceipts>();
  ExpectFieldListComplete<CommittedItem>();
  ExpectFieldListComplete<Routed<ChatMessage>>();
  ExpectFieldListComplete<Routed<ReceiptUpdate>>();
  ExpectFieldListComplete<Routed<TypingUpdate>>();
}

TEST(FieldsTest, FieldNamesInDeclarationOrder) {
  std::vector<std::string> names;
  SendMessage m;
  VisitFields(m, [&names](const char* name, auto& /*field*/) { names.push_back(name); });
  EXPECT_EQ(names, (std::vector<std::string>{"client_msg_id", "conv", "sent_at_us", "body",
                                              "attempt"}));
  const SendMessage& const_ref = m;
  size_t n = 0;
  VisitFields(const_ref, [&n](const char* /*name*/, const auto& /*field*/) { ++n; });
  EXPECT_EQ(n, 5u);
}

TEST(FieldsTest, TypeNumbersAreStable) {
  EXPECT_EQ(kWireType<SendMessage>, 1);
  EXPECT_EQ(kWireType<PresenceQuery>, 8);
  EXPECT_EQ(kWireType<SendAck>, 20);
  EXPECT_EQ(kWireType<SessionClosed>, 30);
  EXPECT_EQ(kWireType<StoreAppend>, 40);
  EXPECT_EQ(kWireType<WriterEnqueue>, 60);
  EXPECT_EQ(kWireType<MapRegister>, 70);
  EXPECT_EQ(kWireType<ForwardBatch>, 80);
  EXPECT_EQ(kWireType<QueuePublish>, 90);
  EXPECT_EQ(kWireType<PresenceSet>, 100);
  EXPECT_EQ(kWireType<Notify>, 110);
  EXPECT_EQ(kWireType<GetReceipts>, 9);
  EXPECT_EQ(kWireType<ReceiptsResult>, 31);
  EXPECT_EQ(kWireType<StoreGetReceipts>, 56);
  EXPECT_EQ(kWireType<StoreGetReceiptsResult>, 57);
  for (size_t i = 0; i < kMessageAlternatives; ++i) {
    EXPECT_EQ(kIndexByWireType[kWireTypeByIndex[i]], i) << kWireNameByIndex[i];
  }
}

// ---- Round trips -------------------------------------------------------------------------------

TEST(CodecTest, RoundTripsEveryMessageType) {
  const std::vector<Message> samples = AllSamples();
  ASSERT_EQ(samples.size(), kMessageAlternatives);
  for (const Message& m : samples) {
    SCOPED_TRACE(DebugString(m));
    const std::string bytes = Encode(m);
    EXPECT_EQ(bytes.size(), EncodedSize(m));
    ASSERT_GE(bytes.size(), 2u);
    EXPECT_EQ(static_cast<uint8_t>(bytes[0]), kWireVersion);
    absl::StatusOr<Message> decoded = Decode(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->index(), m.index());
    EXPECT_TRUE(*decoded == m);
    EXPECT_EQ(Encode(*decoded), bytes);
    EXPECT_EQ(DebugString(*decoded), DebugString(m));
  }
}

// Calls check(name, sample_field, default_field) for each top-level field of T.
template <typename T, typename F>
void ForEachFieldPair(const T& sample, F&& check) {
  const T defaults{};
  size_t wanted = 0;
  VisitFields(sample, [&](const char* name, const auto& field) {
    size_t i = 0;
    VisitFields(defaults, [&](const char* /*name*/, const auto& default_field) {
      if constexpr (std::is_same_v<decltype(field), decltype(default_field)>) {
        if (i == wanted) check(name, field == default_field);
      }
      ++i;
    });
    ++wanted;
  });
}

TEST(CodecTest, SamplesHaveNoDefaultFields) {
  // A sample equal to the default in some field would let a codec that drops that field pass the
  // round trip.
  for (const Message& m : AllSamples()) {
    std::visit(
        [&m](const auto& sample) {
          ForEachFieldPair(sample, [&m](const char* name, bool is_default) {
            EXPECT_FALSE(is_default) << MessageName(m) << "." << name;
          });
        },
        m);
  }
}

TEST(CodecTest, ExtremeValuesRoundTrip) {
  ChatMessage msg{ConversationId::Direct(UserId(std::numeric_limits<uint64_t>::max()),
                                         UserId(std::numeric_limits<uint64_t>::max())),
                  std::numeric_limits<uint64_t>::max(),
                  0,
                  UserId(1),
                  std::numeric_limits<uint64_t>::max(),
                  std::numeric_limits<int64_t>::min(),
                  ""};
  for (TimeUs t : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                   std::numeric_limits<int64_t>::max()}) {
    msg.sent_at_us = t;
    const Message m = Deliver{msg};
    absl::StatusOr<Message> decoded = Decode(Encode(m));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(*decoded == m) << DebugString(*decoded);
  }
  const Message limit_max =
      GetMessages{1, ConversationId::Group(GroupId(3)), 0, std::numeric_limits<uint32_t>::max()};
  absl::StatusOr<Message> decoded = Decode(Encode(limit_max));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(*decoded == limit_max);
}

// A frame of the current wire version: the version byte, then `rest` (type and fields).
std::string Frame(const std::string& rest) {
  return std::string(1, static_cast<char>(kWireVersion)) + rest;
}

TEST(CodecTest, GoldenSendMessageBytes) {
  const Message m = SendMessage{7, ConversationId::Direct(UserId(2), UserId(1)), -3, "hello"};
  // version (kWireVersion), type 1, client_msg_id 7, conv {type 1, low 1, high 2}, zigzag(-3) = 5,
  // "hello", attempt 0.
  const std::string expected =
      Frame(std::string("\x01\x07\x01\x01\x02\x05\x05hello\x00", 13));
  EXPECT_EQ(Encode(m), expected);
  const Message big = QueueAck{300};  // 300 = 0xac 0x02 as LEB128
  EXPECT_EQ(Encode(big), Frame(std::string("\x5c\xac\x02", 3)));
}

// The per-member receipts read: its request's bytes, and its answer's list of members (nested
// structs, the protocol's newest) through a round trip and a truncation that names the member.
TEST(CodecTest, GetReceiptsBytesAndReceiptsResultMembers) {
  const Message ask = GetReceipts{5, ConversationId::Group(GroupId(42)), UserId(300), 256};
  // type 9, request_id 5, conv {type 2 (group), low 42, high 0}, after_user 300 = ac 02,
  // limit 256 = 80 02.
  EXPECT_EQ(Encode(ask), Frame(std::string("\x09\x05\x02\x2a\x00\xac\x02\x80\x02", 9)));
  ReceiptsResult result{7, Code::kOk, ConversationId::Group(GroupId(42)), {}, true};
  result.members = {MemberReceipts{UserId(2), 10, 9}, MemberReceipts{UserId(3), 10, 0}};
  absl::StatusOr<Message> decoded = Decode(Encode(result));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(*decoded == Message(result));
  EXPECT_EQ(DebugString(result),
            "ReceiptsResult{request_id=7 code=OK conv=g42 members=[{user=u2 delivered_up_to=10 "
            "read_up_to=9} {user=u3 delivered_up_to=10 read_up_to=0}] has_more=true}");
  const std::string bytes = Encode(result);
  decoded = Decode(std::string_view(bytes).substr(0, bytes.size() - 2));  // into members[1]
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(absl::StartsWith(decoded.status().message(),
                               "truncated: ReceiptsResult.members[1].read_up_to: "))
      << decoded.status();
}

TEST(CodecTest, EncodeToAppends) {
  std::string buf = "prefix";
  const Message m = QueueAck{5};
  EncodeTo(m, buf);
  EXPECT_EQ(buf, "prefix" + Encode(m));
}

// ---- Truncation and fuzzing --------------------------------------------------------------------

TEST(CodecTest, EveryProperPrefixIsTruncated) {
  for (const Message& m : AllSamples()) {
    const std::string bytes = Encode(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      absl::StatusOr<Message> decoded = Decode(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(decoded.ok()) << MessageName(m) << " prefix " << n;
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kOutOfRange)
          << MessageName(m) << " prefix " << n << ": " << decoded.status();
    }
  }
}

TEST(CodecTest, TruncationNamesMessageAndField) {
  const std::string bytes = Encode(SendMessage{7, ConversationId::Group(GroupId(4)), 9, "hello"});
  absl::StatusOr<Message> decoded = Decode(std::string_view(bytes).substr(0, bytes.size() - 2));
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(absl::StartsWith(decoded.status().message(), "truncated: SendMessage.body: "))
      << decoded.status();

  MessagesResult result;
  result.conv = ConversationId::Group(GroupId(4));
  result.messages.resize(2);
  result.messages[0].conv = result.conv;
  result.messages[1].conv = result.conv;
  result.messages[1].body = "abc";
  const std::string nested = Encode(result);
  decoded = Decode(std::string_view(nested).substr(0, nested.size() - 3));
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(
      absl::StartsWith(decoded.status().message(), "truncated: MessagesResult.messages[1].body: "))
      << decoded.status();
}

// Decodes `bytes`; on success the result must re-encode to something that decodes to itself.
void ExpectDecodeIsSafe(std::string_view bytes, const std::string& what) {
  absl::StatusOr<Message> decoded = Decode(bytes);
  if (!decoded.ok()) {
    EXPECT_NE(decoded.status().code(), absl::StatusCode::kInternal) << what;
    EXPECT_FALSE(decoded.status().message().empty()) << what;
    return;
  }
  absl::StatusOr<Message> again = Decode(Encode(*decoded));
  ASSERT_TRUE(again.ok()) << what << ": " << again.status();
  EXPECT_TRUE(*again == *decoded) << what;
}

TEST(CodecTest, RandomBytesNeverCrash) {
  Rng rng(kSeed);
  constexpr int kInputs = 20000;
  constexpr uint64_t kInputBytesMax = 96;
  int decoded_ok = 0;
  for (int i = 0; i < kInputs; ++i) {
    std::string bytes(rng.Uniform(kInputBytesMax + 1), '\0');
    for (char& c : bytes) c = static_cast<char>(rng.Next());
    // Mostly a valid header, so the fuzzing reaches the field decoders.
    if (bytes.size() >= 2 && rng.Uniform(4) != 0) {
      bytes[0] = static_cast<char>(kWireVersion);
      bytes[1] = static_cast<char>(kWireTypeByIndex[rng.Uniform(kMessageAlternatives)]);
    }
    ExpectDecodeIsSafe(bytes, absl::StrCat("seed ", kSeed, " input ", i));
    if (Decode(bytes).ok()) ++decoded_ok;
  }
  RecordProperty("decoded_ok", decoded_ok);
}

TEST(CodecTest, MutatedFramesNeverCrash) {
  Rng rng(kSeed + 1);
  constexpr int kMutationsPerSample = 400;
  const std::vector<Message> samples = AllSamples();
  for (const Message& m : samples) {
    const std::string original = Encode(m);
    for (int i = 0; i < kMutationsPerSample; ++i) {
      std::string bytes = original;
      const size_t at = rng.Uniform(bytes.size());
      switch (rng.Uniform(4)) {
        case 0:  // overwrite one byte
          bytes[at] = static_cast<char>(rng.Next());
          break;
        case 1:  // flip one bit
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << rng.Uniform(8)));
          break;
        case 2:  // insert one byte
          bytes.insert(bytes.begin() + at, static_cast<char>(rng.Next()));
          break;
        default:  // delete one byte
          bytes.erase(at, 1);
          break;
      }
      ExpectDecodeIsSafe(bytes, absl::StrCat("seed ", kSeed + 1, " ", MessageName(m), " ", i));
    }
  }
}

// ---- Limits ------------------------------------------------------------------------------------

TEST(CodecTest, FrameOverLimitIsResourceExhausted) {
  const std::string bytes =
      Encode(SendMessage{1, ConversationId::Group(GroupId(1)), 0, std::string(100, 'x')});
  CodecLimits limits;
  limits.frame_bytes_max = static_cast<uint32_t>(bytes.size() - 1);
  EXPECT_EQ(Decode(bytes, limits).status().code(), absl::StatusCode::kResourceExhausted);
  limits.frame_bytes_max = static_cast<uint32_t>(bytes.size());
  EXPECT_TRUE(Decode(bytes, limits).ok());
  // The default limit: a 1 MiB body does not fit in a 1 MiB frame.
  const std::string huge =
      Encode(SendMessage{1, ConversationId::Group(GroupId(1)), 0, std::string(1 << 20, 'x')});
  EXPECT_EQ(Decode(huge).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(CodecTest, StringOverLimitIsResourceExhausted) {
  const std::string bytes = Encode(SendMessage{1, ConversationId::Group(GroupId(1)), 0, "hello"});
  CodecLimits limits;
  limits.string_bytes_max = 4;
  absl::StatusOr<Message> decoded = Decode(bytes, limits);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "SendMessage.body"))
      << decoded.status();
  limits.string_bytes_max = 5;
  EXPECT_TRUE(Decode(bytes, limits).ok());
}

TEST(CodecTest, ListOverLimitIsResourceExhausted) {
  const std::string bytes = Encode(PresenceQuery{1, {UserId(1), UserId(2), UserId(3)}});
  CodecLimits limits;
  limits.list_items_max = 2;
  absl::StatusOr<Message> decoded = Decode(bytes, limits);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "PresenceQuery.users"))
      << decoded.status();
  limits.list_items_max = 3;
  EXPECT_TRUE(Decode(bytes, limits).ok());
}

TEST(CodecTest, HostileCountsAllocateNothing) {
  // PresenceQuery{request_id 1, users: 2^30 items} and nothing after the count.
  const std::string list = Frame(std::string("\x08\x01\x80\x80\x80\x80\x04", 7));
  EXPECT_EQ(Decode(list).status().code(), absl::StatusCode::kResourceExhausted);
  CodecLimits no_list_limit;
  no_list_limit.list_items_max = std::numeric_limits<uint32_t>::max();
  EXPECT_EQ(Decode(list, no_list_limit).status().code(), absl::StatusCode::kOutOfRange);
  // ErrorReply{code 1, detail of 2^19 bytes} with 1 byte present.
  const std::string str = Frame(std::string("\x1d\x01\x80\x80\x20z", 6));
  EXPECT_EQ(Decode(str).status().code(), absl::StatusCode::kOutOfRange);
}

// ---- Malformed frames --------------------------------------------------------------------------

TEST(CodecTest, EmptyInputIsOutOfRange) {
  EXPECT_EQ(Decode("").status().code(), absl::StatusCode::kOutOfRange);
}

TEST(CodecTest, UnknownVersionIsUnimplemented) {
  std::string bytes = Encode(QueueAck{1});
  for (uint8_t version : {0, kWireVersion - 1, kWireVersion + 1, 255}) {
    bytes[0] = static_cast<char>(version);
    absl::StatusOr<Message> decoded = Decode(bytes);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_TRUE(absl::StrContains(decoded.status().message(), absl::StrCat("version ", version)))
        << decoded.status();
  }
}

TEST(CodecTest, UnknownTypeIsInvalidArgument) {
  for (const std::string& bytes :
       {Frame(std::string("\x00\x01", 2)), Frame(std::string("\x0a\x01", 2)),
        Frame(std::string("\x78\x01", 2)), Frame(std::string("\xf0\xa2\x04\x01", 4)),
        Frame(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 10))}) {
    absl::StatusOr<Message> decoded = Decode(bytes);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status();
    EXPECT_TRUE(absl::StrContains(decoded.status().message(), "unknown message type"))
        << decoded.status();
  }
  EXPECT_EQ(Decode(Frame(std::string("\x80", 1))).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(CodecTest, BadBoolIsInvalidArgument) {
  std::string bytes = Encode(Typing{ConversationId::Direct(UserId(1), UserId(2)), true});
  ASSERT_EQ(bytes.back(), '\x01');
  bytes.back() = '\x02';
  absl::StatusOr<Message> decoded = Decode(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(decoded.status().message(), "bad bool: Typing.active"))
      << decoded.status();
}

TEST(CodecTest, BadEnumIsInvalidArgument) {
  // SendAck: version, type 20, client_msg_id, conv (3 bytes), code, ...
  std::string ack = Encode(SendAck{1, ConversationId::Direct(UserId(1), UserId(2))});
  ack[6] = '\x08';
  absl::StatusOr<Message> decoded = Decode(ack);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(decoded.status().message(), "bad enum: SendAck.code"))
      << decoded.status();

  std::string send = Encode(SendMessage{1, ConversationId::Direct(UserId(1), UserId(2)), 0, ""});
  send[3] = '\x03';  // ChannelType
  decoded = Decode(send);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "SendMessage.conv.type"))
      << decoded.status();

  std::string receipt = Encode(Receipt{ConversationId::Group(GroupId(1)), ReceiptKind::kRead, 5});
  receipt[5] = '\x00';  // ReceiptKind has no 0
  EXPECT_EQ(Decode(receipt).status().code(), absl::StatusCode::kInvalidArgument);

  std::string group = Encode(GroupResult{1, Code::kOk, GroupId(2), true, GroupMode::kPull});
  group.back() = '\x03';
  EXPECT_EQ(Decode(group).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, BadVarintIsInvalidArgument) {
  // QueueAck.seq as 11 bytes, and as 10 bytes whose last byte overflows 64 bits.
  const std::string too_long = Frame(std::string("\x5c", 1)) + std::string(10, '\x80') + "\x01";
  EXPECT_EQ(Decode(too_long).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string overflow = Frame(std::string("\x5c", 1)) + std::string(9, '\xff') + "\x02";
  absl::StatusOr<Message> decoded = Decode(overflow);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "QueueAck.seq")) << decoded.status();
  const std::string max = Frame(std::string("\x5c", 1)) + std::string(9, '\xff') + "\x01";
  ASSERT_TRUE(Decode(max).ok());
  EXPECT_EQ(std::get<QueueAck>(*Decode(max)).seq, std::numeric_limits<uint64_t>::max());
  // GetMessages.limit is a uint32: 2^32 does not fit.
  GetMessages get{1, ConversationId::Group(GroupId(1)), 0, 0};
  std::string bytes = Encode(get);
  bytes.pop_back();
  bytes += std::string("\x80\x80\x80\x80\x10", 5);
  decoded = Decode(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "GetMessages.limit"))
      << decoded.status();
  // Non-minimal varints are accepted (0 as 0x80 0x00).
  EXPECT_TRUE(Decode(Frame(std::string("\x5c\x80\x00", 3))).ok());
}

TEST(CodecTest, TrailingBytesAreInvalidArgument) {
  const std::string bytes = Encode(QueueAck{1}) + "x";
  absl::StatusOr<Message> decoded = Decode(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "trailing")) << decoded.status();
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "QueueAck")) << decoded.status();
}

TEST(CodecTest, InvalidConversationIdIsInvalidArgument) {
  const ConversationId bad[] = {
      {ChannelType::kDirect, 5, 3},  // low > high
      {ChannelType::kDirect, 0, 3},  // no low party
      {ChannelType::kDirect, 0, 0},  // the default value
      {ChannelType::kGroup, 0, 0},   // no group id
      {ChannelType::kGroup, 4, 1},   // group with a high part
  };
  for (const ConversationId& conv : bad) {
    absl::StatusOr<Message> decoded = Decode(Encode(SendMessage{1, conv, 0, "x"}));
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(decoded.status().message(), "SendMessage.conv"))
        << decoded.status();
  }
  MessagesResult result;
  result.conv = ConversationId::Group(GroupId(4));
  result.messages.resize(2);
  result.messages[0].conv = result.conv;
  absl::StatusOr<Message> decoded = Decode(Encode(result));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "MessagesResult.messages[1].conv"))
      << decoded.status();
}

// ---- Names and DebugString ---------------------------------------------------------------------

TEST(DebugStringTest, SendMessage) {
  const Message m = SendMessage{7, ConversationId::Direct(UserId(2), UserId(1)), 1000, "hello"};
  EXPECT_EQ(DebugString(m),
            "SendMessage{client_msg_id=7 conv=d1-2 sent_at_us=1000 body=\"hello\" attempt=0}");
}

TEST(DebugStringTest, NestedListsIdsAndEnums) {
  ChatMessage msg{ConversationId::Group(GroupId(5)), 9, 8, UserId(3), 4, -2, "hi\n"};
  EXPECT_EQ(DebugString(Deliver{msg}),
            "Deliver{message={conv=g5 message_id=9 prev_msg_id=8 sender=u3 client_msg_id=4 "
            "sent_at_us=-2 body=\"hi\\n\"}}");
  EXPECT_EQ(DebugString(MapLookupResult{2, {{UserId(1), NodeId(7)}, {UserId(2), NodeId()}}}),
            "MapLookupResult{request_id=2 locations=[{user=u1 server=n7} {user=u2 server=n0}]}");
  EXPECT_EQ(
      DebugString(GroupResult{1, Code::kPermissionDenied, GroupId(2), false, GroupMode::kPull}),
      "GroupResult{request_id=1 code=PERMISSION_DENIED group=g2 joined=false "
      "group_mode=pull}");
}

TEST(DebugStringTest, LongBodiesAreCut) {
  const std::string body(100, 'a');
  const std::string s =
      DebugString(SendMessage{1, ConversationId::Direct(UserId(1), UserId(1)), 0, body});
  EXPECT_TRUE(
      absl::StrContains(s, absl::StrCat("body=\"", std::string(40, 'a'), "\"... attempt=0}")))
      << s;
}

TEST(DebugStringTest, EveryMessageStartsWithItsName) {
  for (const Message& m : AllSamples()) {
    const std::string s = DebugString(m);
    EXPECT_TRUE(absl::StartsWith(s, absl::StrCat(MessageName(m), "{"))) << s;
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
    EXPECT_EQ(s, DebugString(m));
  }
}

TEST(NamesTest, CodeNames) {
  EXPECT_STREQ(CodeName(Code::kOk), "OK");
  EXPECT_STREQ(CodeName(Code::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_STREQ(CodeName(Code::kNotFound), "NOT_FOUND");
  EXPECT_STREQ(CodeName(Code::kPermissionDenied), "PERMISSION_DENIED");
  EXPECT_STREQ(CodeName(Code::kResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_STREQ(CodeName(Code::kUnavailable), "UNAVAILABLE");
  EXPECT_STREQ(CodeName(Code::kFailedPrecondition), "FAILED_PRECONDITION");
  EXPECT_STREQ(CodeName(Code::kUnauthenticated), "UNAUTHENTICATED");
  EXPECT_STREQ(CodeName(static_cast<Code>(99)), "UNKNOWN_CODE");
}

TEST(NamesTest, MessageNames) {
  EXPECT_STREQ(MessageName(SendMessage{}), "SendMessage");
  EXPECT_STREQ(MessageName(Notify{}), "Notify");
  EXPECT_STREQ(MessageName(StoreAppendBatchResult{}), "StoreAppendBatchResult");
}

// ---- Config names ------------------------------------------------------------------------------

template <typename E, typename NameFn, typename ParseFn>
void ExpectNamesRoundTrip(const std::vector<std::pair<E, std::string>>& expected, NameFn name,
                          ParseFn parse) {
  for (const auto& [value, text] : expected) {
    EXPECT_EQ(name(value), text);
    ASSERT_TRUE(parse(text).has_value()) << text;
    EXPECT_EQ(*parse(text), value) << text;
  }
  EXPECT_FALSE(parse("").has_value());
  EXPECT_FALSE(parse("nonsense").has_value());
  EXPECT_FALSE(parse(absl::StrCat(expected.front().second, " ")).has_value());
  EXPECT_EQ(name(static_cast<E>(200)), "unknown");
  // AllValues and Choices list exactly the table, in order.
  std::vector<E> values;
  std::string choices;
  for (const auto& [value, text] : expected) {
    values.push_back(value);
    absl::StrAppend(&choices, choices.empty() ? "" : "|", text);
  }
  EXPECT_EQ(AllValues<E>(), values);
  EXPECT_EQ(Choices<E>(), choices);
}

TEST(ConfigNamesTest, RoundTrip) {
  ExpectNamesRoundTrip<IdScheme>({{IdScheme::kSnowflake, "snowflake"},
                                  {IdScheme::kTimestamp, "timestamp"},
                                  {IdScheme::kSequence, "sequence"}},
                                 IdSchemeName, ParseIdScheme);
  ExpectNamesRoundTrip<IdGenerator>(
      {{IdGenerator::kStore, "store"}, {IdGenerator::kChatServer, "chat_server"}},
      IdGeneratorName, ParseIdGenerator);
  ExpectNamesRoundTrip<ForwardingStrategy>({{ForwardingStrategy::kDirect, "direct"},
                                            {ForwardingStrategy::kBuffered, "buffered"},
                                            {ForwardingStrategy::kQueue, "queue"}},
                                           ForwardingStrategyName, ParseForwardingStrategy);
  ExpectNamesRoundTrip<GroupDelivery>({{GroupDelivery::kPush, "push"},
                                       {GroupDelivery::kPull, "pull"},
                                       {GroupDelivery::kHybrid, "hybrid"},
                                       {GroupDelivery::kHybridEither, "hybrid_either"}},
                                      GroupDeliveryName, ParseGroupDelivery);
  ExpectNamesRoundTrip<WritePath>(
      {{WritePath::kDirect, "direct"}, {WritePath::kBatched, "batched"}}, WritePathName,
      ParseWritePath);
  ExpectNamesRoundTrip<PresenceFanout>(
      {{PresenceFanout::kAll, "all"}, {PresenceFanout::kShortList, "short_list"}},
      PresenceFanoutName, ParsePresenceFanout);
  EXPECT_FALSE(ParseIdScheme("Snowflake").has_value());  // names are case-sensitive
}

}  // namespace
}  // namespace chatlab
