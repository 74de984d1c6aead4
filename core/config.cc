// Names of the design switches in core/config.h, as written in scenario files and chatd flags.
//
// Each Name/Parse pair is one table, so a name can never parse to a different value than the one
// it was printed from (tests/core/codec_test.cc checks the round trip for every value).
#include "core/config.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

namespace chatlab {
namespace {

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

constexpr NameTable<IdScheme, 3> kIdSchemeNames = {{
    {IdScheme::kSnowflake, "snowflake"},
    {IdScheme::kTimestamp, "timestamp"},
    {IdScheme::kSequence, "sequence"},
}};
constexpr NameTable<IdGenerator, 2> kIdGeneratorNames = {{
    {IdGenerator::kStore, "store"},
    {IdGenerator::kChatServer, "chat_server"},
}};
constexpr NameTable<ForwardingStrategy, 3> kForwardingStrategyNames = {{
    {ForwardingStrategy::kDirect, "direct"},
    {ForwardingStrategy::kBuffered, "buffered"},
    {ForwardingStrategy::kQueue, "queue"},
}};
constexpr NameTable<GroupDelivery, 4> kGroupDeliveryNames = {{
    {GroupDelivery::kPush, "push"},
    {GroupDelivery::kPull, "pull"},
    {GroupDelivery::kHybrid, "hybrid"},
    {GroupDelivery::kHybridEither, "hybrid_either"},
}};
constexpr NameTable<WritePath, 2> kWritePathNames = {{
    {WritePath::kDirect, "direct"},
    {WritePath::kBatched, "batched"},
}};
constexpr NameTable<PresenceFanout, 2> kPresenceFanoutNames = {{
    {PresenceFanout::kAll, "all"},
    {PresenceFanout::kShortList, "short_list"},
}};

// The name of v, or "unknown" for a value outside the enum (cast from an unchecked integer).
template <typename E, size_t N>
constexpr std::string_view NameOf(const NameTable<E, N>& table, E v) {
  for (const auto& [value, name] : table) {
    if (value == v) return name;
  }
  return "unknown";
}

// Exact, case-sensitive match.
template <typename E, size_t N>
constexpr std::optional<E> ParseName(const NameTable<E, N>& table, std::string_view s) {
  for (const auto& [value, name] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::vector<E> ValuesOf(const NameTable<E, N>& table) {
  std::vector<E> out;
  for (const auto& [value, name] : table) out.push_back(value);
  return out;
}

template <typename E, size_t N>
std::string ChoicesOf(const NameTable<E, N>& table) {
  std::string out;
  for (const auto& [value, name] : table) {
    if (!out.empty()) out += '|';
    out += name;
  }
  return out;
}

}  // namespace

#define CHATLAB_DEFINE_SWITCH(E, table)                      \
  template <>                                               \
  std::vector<E> AllValues<E>() {                           \
    return ValuesOf(table);                                 \
  }                                                         \
  template <>                                               \
  std::string Choices<E>() {                                \
    return ChoicesOf(table);                                \
  }
CHATLAB_DEFINE_SWITCH(IdScheme, kIdSchemeNames)
CHATLAB_DEFINE_SWITCH(IdGenerator, kIdGeneratorNames)
CHATLAB_DEFINE_SWITCH(ForwardingStrategy, kForwardingStrategyNames)
CHATLAB_DEFINE_SWITCH(GroupDelivery, kGroupDeliveryNames)
CHATLAB_DEFINE_SWITCH(WritePath, kWritePathNames)
CHATLAB_DEFINE_SWITCH(PresenceFanout, kPresenceFanoutNames)
#undef CHATLAB_DEFINE_SWITCH

uint32_t StoreShardOf(const ConversationId& conv, uint32_t shards) {
  if (shards <= 1) return 0;
  // SplitMix64's finalizer over the id's fields: fixed here, never a library's hash (whose
  // values may change between versions or runs).
  uint64_t x = (static_cast<uint64_t>(conv.type) << 62) ^ conv.low ^
               (conv.high * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<uint32_t>(x % shards);
}

std::string_view IdSchemeName(IdScheme v) { return NameOf(kIdSchemeNames, v); }
std::string_view IdGeneratorName(IdGenerator v) { return NameOf(kIdGeneratorNames, v); }
std::string_view ForwardingStrategyName(ForwardingStrategy v) {
  return NameOf(kForwardingStrategyNames, v);
}
std::string_view GroupDeliveryName(GroupDelivery v) { return NameOf(kGroupDeliveryNames, v); }
std::string_view WritePathName(WritePath v) { return NameOf(kWritePathNames, v); }
std::string_view PresenceFanoutName(PresenceFanout v) { return NameOf(kPresenceFanoutNames, v); }

std::optional<IdScheme> ParseIdScheme(std::string_view s) { return ParseName(kIdSchemeNames, s); }
std::optional<IdGenerator> ParseIdGenerator(std::string_view s) {
  return ParseName(kIdGeneratorNames, s);
}
std::optional<ForwardingStrategy> ParseForwardingStrategy(std::string_view s) {
  return ParseName(kForwardingStrategyNames, s);
}
std::optional<GroupDelivery> ParseGroupDelivery(std::string_view s) {
  return ParseName(kGroupDeliveryNames, s);
}
std::optional<WritePath> ParseWritePath(std::string_view s) {
  return ParseName(kWritePathNames, s);
}
std::optional<PresenceFanout> ParsePresenceFanout(std::string_view s) {
  return ParseName(kPresenceFanoutNames, s);
}

}  // namespace chatlab
