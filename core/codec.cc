// The binary codec and DebugString, both driven by the field lists in core/fields.h.
//
// Encoding and sizing are total functions. Decoding keeps the first error it meets ("sticky"):
// once an error is recorded every later read is a no-op, and the field path of the error is
// collected while the visitors unwind, so the success path never builds strings.
#include "core/codec.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/fields.h"
#include "core/messages.h"
#include "core/types.h"

namespace chatlab {
namespace {

// Named only in the last, static_assert branch of each `if constexpr` chain below, which a
// correct build never instantiates; clang therefore calls it unused.
template <typename T>
[[maybe_unused]] inline constexpr bool kAlwaysFalse = false;

// The integer field types the wire knows. Anything else in a message is a compile error.
template <typename T>
concept WireUnsigned = std::same_as<T, uint64_t> || std::same_as<T, uint32_t>;
template <typename T>
concept WireSigned = std::same_as<T, int64_t>;

static_assert(std::is_same_v<TimeUs, int64_t>, "TimeUs is encoded as a zigzag varint");

// DebugString cuts strings to this many bytes.
inline constexpr size_t kDebugStringBytesMax = 40;
// Decode never reserves room for more list items than this up front: a hostile count is bounded
// by the bytes left, but each decoded item may be much larger in memory than on the wire.
inline constexpr size_t kReserveItemsMax = 256;

constexpr uint64_t ZigZagEncode(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t ZigZagDecode(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
static_assert(ZigZagEncode(0) == 0 && ZigZagEncode(-1) == 1 && ZigZagEncode(1) == 2);
static_assert(ZigZagDecode(ZigZagEncode(std::numeric_limits<int64_t>::min())) ==
              std::numeric_limits<int64_t>::min());
static_assert(ZigZagDecode(ZigZagEncode(std::numeric_limits<int64_t>::max())) ==
              std::numeric_limits<int64_t>::max());

constexpr size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
static_assert(VarintSize(std::numeric_limits<uint64_t>::max()) == kVarintBytesMax);

void PutVarint(uint64_t v, std::string& out) {
  char buf[kVarintBytesMax];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

// ---- Encoding ----------------------------------------------------------------------------------

template <typename T>
void Put(const T& f, std::string& out) {
  if constexpr (std::is_same_v<T, bool>) {
    out.push_back(f ? 1 : 0);
  } else if constexpr (WireEnum<T>) {
    out.push_back(static_cast<char>(f));
  } else if constexpr (IdType<T>) {
    PutVarint(f.value, out);
  } else if constexpr (WireSigned<T>) {
    PutVarint(ZigZagEncode(f), out);
  } else if constexpr (WireUnsigned<T>) {
    PutVarint(f, out);
  } else if constexpr (std::is_same_v<T, std::string>) {
    PutVarint(f.size(), out);
    out.append(f);
  } else if constexpr (VectorType<T>) {
    PutVarint(f.size(), out);
    for (const auto& item : f) Put(item, out);
  } else if constexpr (HasFields<T>) {
    VisitFields(f, [&out](const char* /*name*/, const auto& field) { Put(field, out); });
  } else {
    static_assert(kAlwaysFalse<T>, "a field type the wire does not know");
  }
}

template <typename T>
size_t SizeOf(const T& f) {
  if constexpr (std::is_same_v<T, bool> || WireEnum<T>) {
    return 1;
  } else if constexpr (IdType<T>) {
    return VarintSize(f.value);
  } else if constexpr (WireSigned<T>) {
    return VarintSize(ZigZagEncode(f));
  } else if constexpr (WireUnsigned<T>) {
    return VarintSize(f);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return VarintSize(f.size()) + f.size();
  } else if constexpr (VectorType<T>) {
    size_t n = VarintSize(f.size());
    for (const auto& item : f) n += SizeOf(item);
    return n;
  } else if constexpr (HasFields<T>) {
    size_t n = 0;
    VisitFields(f, [&n](const char* /*name*/, const auto& field) { n += SizeOf(field); });
    return n;
  } else {
    static_assert(kAlwaysFalse<T>, "a field type the wire does not know");
  }
}

// ---- Decoding ----------------------------------------------------------------------------------

// One step of the path to a failing field: a field name, or an index into a list.
struct PathStep {
  const char* name = nullptr;  // nullptr for a list index
  uint64_t index = 0;
};

// Reads fields from one frame. Invariant: begin_ <= p_ <= end_; nothing outside [begin_, end_)
// is ever read. After the first Fail every Read is a no-op and the error is kept.
class Reader {
 public:
  Reader(std::string_view bytes, const CodecLimits& limits)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()), limits_(limits) {}

  bool failed() const { return failed_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  // Records the first error. `what` is a short category ("truncated"), `detail` the specifics.
  void Fail(absl::StatusCode code, const char* what, std::string detail) {
    if (failed_) return;
    failed_ = true;
    code_ = code;
    what_ = what;
    detail_ = std::move(detail);
  }

  // The recorded error, as "<what>: <Message><path>: <detail>".
  absl::Status ErrorStatus(const char* message_name) const {
    std::string path;
    for (auto step = path_.rbegin(); step != path_.rend(); ++step) {
      if (step->name != nullptr) {
        absl::StrAppend(&path, ".", step->name);
      } else {
        absl::StrAppend(&path, "[", step->index, "]");
      }
    }
    return absl::Status(code_, absl::StrCat(what_, ": ", message_name, path, ": ", detail_));
  }

  bool ReadByte(uint8_t& b) {
    if (p_ == end_) {
      Fail(absl::StatusCode::kOutOfRange, "truncated", "input ends before this field");
      return false;
    }
    b = static_cast<uint8_t>(*p_++);
    return true;
  }

  bool ReadVarint(uint64_t& v) {
    if (p_ != end_ && static_cast<uint8_t>(*p_) < 0x80) {  // Fast path: one byte.
      v = static_cast<uint8_t>(*p_++);
      return true;
    }
    uint64_t result = 0;
    for (size_t i = 0; i < kVarintBytesMax; ++i) {
      if (p_ == end_) {
        Fail(absl::StatusCode::kOutOfRange, "truncated",
             absl::StrCat("input ends inside a varint after ", i, " bytes"));
        return false;
      }
      const uint8_t b = static_cast<uint8_t>(*p_++);
      if (i == kVarintBytesMax - 1 && (b & 0x80) != 0) {
        Fail(absl::StatusCode::kInvalidArgument, "bad varint", "longer than 10 bytes");
        return false;
      }
      if (i == kVarintBytesMax - 1 && b > 1) {
        Fail(absl::StatusCode::kInvalidArgument, "bad varint", "overflows 64 bits");
        return false;
      }
      result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        v = result;
        return true;
      }
    }
    // Unreachable: the 10th byte either ends the varint or fails above.
    Fail(absl::StatusCode::kInternal, "bad varint", "decoder bug");
    return false;
  }

  template <typename T>
  void Read(T& f);

  template <typename T>
  void ReadStruct(T& s) {
    VisitFields(s, [this](const char* name, auto& field) {
      if (failed_) return;
      Read(field);
      if (failed_) path_.push_back(PathStep{name, 0});
    });
  }

 private:
  void ReadString(std::string& s);
  template <typename T>
  void ReadVector(std::vector<T>& v);
  void ReadConversationId(ConversationId& c);

  const char* p_;
  const char* const end_;
  const CodecLimits& limits_;
  bool failed_ = false;
  absl::StatusCode code_ = absl::StatusCode::kOk;
  const char* what_ = "";
  std::string detail_;
  std::vector<PathStep> path_;  // innermost step first; filled only on failure
};

template <typename T>
void Reader::Read(T& f) {
  if constexpr (std::is_same_v<T, bool>) {
    uint8_t b = 0;
    if (!ReadByte(b)) return;
    if (b > 1) {
      Fail(absl::StatusCode::kInvalidArgument, "bad bool",
           absl::StrCat("value ", b, " (must be 0 or 1)"));
      return;
    }
    f = (b == 1);
  } else if constexpr (WireEnum<T>) {
    uint8_t b = 0;
    if (!ReadByte(b)) return;
    const T value = static_cast<T>(b);
    if (!IsKnownEnumValue(value)) {
      Fail(absl::StatusCode::kInvalidArgument, "bad enum", absl::StrCat("unknown value ", b));
      return;
    }
    f = value;
  } else if constexpr (IdType<T>) {
    ReadVarint(f.value);
  } else if constexpr (WireSigned<T>) {
    uint64_t v = 0;
    if (ReadVarint(v)) f = ZigZagDecode(v);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    ReadVarint(f);
  } else if constexpr (WireUnsigned<T>) {
    uint64_t v = 0;
    if (!ReadVarint(v)) return;
    if (v > std::numeric_limits<T>::max()) {
      Fail(absl::StatusCode::kInvalidArgument, "bad varint",
           absl::StrCat("value ", v, " does not fit in ", sizeof(T) * 8, " bits"));
      return;
    }
    f = static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    ReadString(f);
  } else if constexpr (VectorType<T>) {
    ReadVector(f);
  } else if constexpr (std::is_same_v<T, ConversationId>) {
    ReadConversationId(f);
  } else if constexpr (HasFields<T>) {
    ReadStruct(f);
  } else {
    static_assert(kAlwaysFalse<T>, "a field type the wire does not know");
  }
}

void Reader::ReadString(std::string& s) {
  uint64_t size = 0;
  if (!ReadVarint(size)) return;
  if (size > limits_.string_bytes_max) {
    Fail(absl::StatusCode::kResourceExhausted, "too large",
         absl::StrCat("string of ", size, " bytes over string_bytes_max ",
                      limits_.string_bytes_max));
    return;
  }
  if (size > remaining()) {
    Fail(absl::StatusCode::kOutOfRange, "truncated",
         absl::StrCat("string of ", size, " bytes but ", remaining(), " bytes left"));
    return;
  }
  s.assign(p_, static_cast<size_t>(size));
  p_ += size;
}

template <typename T>
void Reader::ReadVector(std::vector<T>& v) {
  uint64_t count = 0;
  if (!ReadVarint(count)) return;
  if (count > limits_.list_items_max) {
    Fail(absl::StatusCode::kResourceExhausted, "too large",
         absl::StrCat("list of ", count, " items over list_items_max ", limits_.list_items_max));
    return;
  }
  // Every item takes at least one byte on the wire (every field does, and every struct has a
  // field), so a count above the bytes left is a truncated frame. Checking it here keeps a
  // hostile count from driving a large allocation.
  if (count > remaining()) {
    Fail(absl::StatusCode::kOutOfRange, "truncated",
         absl::StrCat("list of ", count, " items but ", remaining(), " bytes left"));
    return;
  }
  v.clear();
  v.reserve(std::min<size_t>(static_cast<size_t>(count), kReserveItemsMax));
  for (uint64_t i = 0; i < count; ++i) {
    Read(v.emplace_back());
    if (failed_) {
      path_.push_back(PathStep{nullptr, i});
      return;
    }
  }
}

void Reader::ReadConversationId(ConversationId& c) {
  ReadStruct(c);
  if (failed_) return;
  if (!c.Valid()) {
    Fail(absl::StatusCode::kInvalidArgument, "invalid conversation id",
         absl::StrCat("type=", static_cast<int>(c.type), " low=", c.low, " high=", c.high,
                      c.is_group() ? " (a group needs low != 0 and high == 0)"
                                   : " (a direct chat needs 0 < low <= high)"));
  }
}

using DecodeFn = void (*)(Reader&, Message&);

template <size_t I>
void DecodeAlternative(Reader& reader, Message& m) {
  reader.ReadStruct(m.emplace<I>());
}

template <size_t... I>
constexpr std::array<DecodeFn, sizeof...(I)> MakeDecoders(std::index_sequence<I...>) {
  return {&DecodeAlternative<I>...};
}
constexpr std::array<DecodeFn, kMessageAlternatives> kDecoders =
    MakeDecoders(std::make_index_sequence<kMessageAlternatives>{});

// Reads the version byte and the type number; returns the variant index to decode.
absl::StatusOr<size_t> DecodeHeader(Reader& reader, size_t frame_bytes, const CodecLimits& limits) {
  if (frame_bytes == 0) return absl::OutOfRangeError("truncated: empty frame");
  if (frame_bytes > limits.frame_bytes_max) {
    return absl::ResourceExhaustedError(absl::StrCat("too large: frame of ", frame_bytes,
                                                     " bytes over frame_bytes_max ",
                                                     limits.frame_bytes_max));
  }
  uint8_t version = 0;
  const bool have_version = reader.ReadByte(version);
  assert(have_version);  // frame_bytes > 0
  (void)have_version;
  if (version != kWireVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "unsupported wire version ", version, " (this build speaks version ", kWireVersion, ")"));
  }
  uint64_t type = 0;
  if (!reader.ReadVarint(type)) return reader.ErrorStatus("message type number");
  if (type > kWireTypeMax || kIndexByWireType[type] == kNoAlternative) {
    return absl::InvalidArgumentError(absl::StrCat("unknown message type number ", type));
  }
  return static_cast<size_t>(kIndexByWireType[type]);
}

// ---- DebugString -------------------------------------------------------------------------------

// Unused while ChannelType only appears inside ConversationId (printed as d1-2 / g5).
[[maybe_unused]] const char* EnumName(ChannelType v) {
  switch (v) {
    case ChannelType::kDirect:
      return "direct";
    case ChannelType::kGroup:
      return "group";
  }
  return nullptr;
}
const char* EnumName(ReceiptKind v) {
  switch (v) {
    case ReceiptKind::kDelivered:
      return "delivered";
    case ReceiptKind::kRead:
      return "read";
  }
  return nullptr;
}
const char* EnumName(GroupMode v) {
  switch (v) {
    case GroupMode::kNone:
      return "none";
    case GroupMode::kPush:
      return "push";
    case GroupMode::kPull:
      return "pull";
  }
  return nullptr;
}
const char* EnumName(Code v) { return IsKnownEnumValue(v) ? CodeName(v) : nullptr; }

template <typename T>
void Print(const T& f, std::string& out) {
  if constexpr (std::is_same_v<T, bool>) {
    out.append(f ? "true" : "false");
  } else if constexpr (WireEnum<T>) {
    const char* name = EnumName(f);
    if (name != nullptr) {
      out.append(name);
    } else {
      absl::StrAppend(&out, "?", static_cast<int>(f));
    }
  } else if constexpr (IdType<T>) {
    out.append(ToString(f));
  } else if constexpr (WireSigned<T> || WireUnsigned<T>) {
    absl::StrAppend(&out, f);
  } else if constexpr (std::is_same_v<T, std::string>) {
    const bool cut = f.size() > kDebugStringBytesMax;
    // absl::string_view is not std::string_view in every Abseil build; spell it out.
    const absl::string_view shown(f.data(), std::min(f.size(), kDebugStringBytesMax));
    absl::StrAppend(&out, "\"", absl::CHexEscape(shown), "\"", cut ? "..." : "");
  } else if constexpr (VectorType<T>) {
    out.push_back('[');
    for (size_t i = 0; i < f.size(); ++i) {
      if (i > 0) out.push_back(' ');
      Print(f[i], out);
    }
    out.push_back(']');
  } else if constexpr (std::is_same_v<T, ConversationId>) {
    if (!f.Valid()) {
      absl::StrAppend(&out, "{type=", static_cast<int>(f.type), " low=", f.low, " high=", f.high,
                      "}");
    } else {
      out.append(ToString(f));
    }
  } else if constexpr (HasFields<T>) {
    out.push_back('{');
    bool first = true;
    VisitFields(f, [&](const char* name, const auto& field) {
      if (!first) out.push_back(' ');
      first = false;
      absl::StrAppend(&out, name, "=");
      Print(field, out);
    });
    out.push_back('}');
  } else {
    static_assert(kAlwaysFalse<T>, "a field type the wire does not know");
  }
}

}  // namespace

void EncodeTo(const Message& m, std::string& out) {
  out.push_back(static_cast<char>(kWireVersion));
  PutVarint(WireTypeOf(m), out);
  std::visit([&out](const auto& alternative) { Put(alternative, out); }, m);
}

std::string Encode(const Message& m) {
  std::string out;
  out.reserve(EncodedSize(m));
  EncodeTo(m, out);
  assert(out.size() == EncodedSize(m));
  return out;
}

size_t EncodedSize(const Message& m) {
  return 1 + VarintSize(WireTypeOf(m)) +
         std::visit([](const auto& alternative) { return SizeOf(alternative); }, m);
}

absl::StatusOr<Message> Decode(std::string_view bytes, const CodecLimits& limits) {
  Reader reader(bytes, limits);
  absl::StatusOr<size_t> index = DecodeHeader(reader, bytes.size(), limits);
  if (!index.ok()) return index.status();
  assert(*index < kMessageAlternatives);
  const char* name = kWireNameByIndex[*index];
  Message m;
  kDecoders[*index](reader, m);
  if (reader.failed()) return reader.ErrorStatus(name);
  assert(m.index() == *index);
  if (reader.remaining() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trailing bytes: ", name, ": ", reader.remaining(), " bytes after the last field"));
  }
  return m;
}

std::string DebugString(const Message& m) {
  std::string out = MessageName(m);
  std::visit([&out](const auto& alternative) { Print(alternative, out); }, m);
  return out;
}

}  // namespace chatlab
