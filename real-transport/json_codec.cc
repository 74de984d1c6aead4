#include "real-transport/json_codec.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/fields.h"
#include "nlohmann/json.hpp"

namespace chatlab::real {
namespace {

using Json = nlohmann::ordered_json;

// ---- Enum names ----------------------------------------------------------------------------

const char* EnumName(ChannelType v) { return v == ChannelType::kGroup ? "group" : "direct"; }
const char* EnumName(ReceiptKind v) { return v == ReceiptKind::kRead ? "read" : "delivered"; }
const char* EnumName(GroupMode v) {
  switch (v) {
    case GroupMode::kPush:
      return "push";
    case GroupMode::kPull:
      return "pull";
    case GroupMode::kNone:
      break;
  }
  return "none";
}
const char* EnumName(Code v) { return CodeName(v); }

template <WireEnum E>
bool EnumFromName(std::string_view name, E& out) {
  for (int i = 0; i < 256; ++i) {
    const E candidate = static_cast<E>(i);
    if (IsKnownEnumValue(candidate) && name == EnumName(candidate)) {
      out = candidate;
      return true;
    }
  }
  return false;
}

// ---- Encoding --------------------------------------------------------------------------------
// Straight into the output, no document: the text is what nlohmann's dump(-1) of the document
// would be, byte for byte (tests/real/json_codec_test.cc checks it against that dump), at a
// fraction of the cost (chatd encodes every ack and every delivery).

// Appends s as a JSON string, escaped as nlohmann's dump(ensure_ascii = false, replace) does:
// '"', '\\' and control characters escaped (\b \t \n \f \r, else \u00xx); bytes that are not
// well-formed UTF-8 replaced by U+FFFD, one replacement per ill-formed sequence; a byte that
// ended a sequence early is read again as the start of the next.
void AppendString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // A run of plain ASCII in one append.
      size_t j = i + 1;
      while (j < n) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\r':
          out.append("\\r");
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(esc, sizeof esc);
        }
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length and the range of its second byte (Unicode Table 3-7).
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    }
    if (len == 0) {  // not a lead byte: replaced, and consumed
      out.append("\xEF\xBF\xBD");
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xbf)) break;
    }
    if (k == len) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      // Ill-formed (or cut short by the end): one replacement; the byte that broke it, if any,
      // starts over.
      out.append("\xEF\xBF\xBD");
      i += k;
    }
  }
  out.push_back('"');
}

template <typename T>
void AppendValue(std::string& out, const T& v);

template <typename S>
void AppendFields(std::string& out, const S& s, bool first) {
  VisitFields(s, [&](const char* name, const auto& field) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out.append(name);
    out.append("\":");
    AppendValue(out, field);
  });
}

template <typename T>
void AppendValue(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    out.append(v ? "true" : "false");
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    absl::StrAppend(&out, v);
  } else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
    out.push_back('"');
    absl::StrAppend(&out, v);
    out.push_back('"');
  } else if constexpr (IdType<T>) {
    out.push_back('"');
    absl::StrAppend(&out, v.value);
    out.push_back('"');
  } else if constexpr (WireEnum<T>) {
    AppendString(out, EnumName(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    AppendString(out, v);
  } else if constexpr (VectorType<T>) {
    out.push_back('[');
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendValue(out, v[i]);
    }
    out.push_back(']');
  } else {
    static_assert(HasFields<const T>, "a field type the JSON codec does not know");
    out.push_back('{');
    AppendFields(out, v, /*first=*/true);
    out.push_back('}');
  }
}

// ---- Decoding --------------------------------------------------------------------------------

absl::Status Bad(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", absl::string_view(what.data(), what.size())));
}

absl::Status ParseU64(const Json& j, const std::string& path, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return absl::OkStatus();
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (!s.empty() && s[0] != '-' && s[0] != '+' && absl::SimpleAtoi(s, &out)) {
      return absl::OkStatus();
    }
  }
  return Bad(path, "expected an unsigned 64-bit integer (a decimal string or a number)");
}

absl::Status ParseI64(const Json& j, const std::string& path, int64_t& out) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t{INT64_MAX}) {
      return Bad(path, "integer out of the signed 64-bit range");
    }
    out = j.get<int64_t>();
    return absl::OkStatus();
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (!s.empty() && s[0] != '+' && absl::SimpleAtoi(s, &out)) return absl::OkStatus();
  }
  return Bad(path, "expected a signed 64-bit integer (a decimal string or a number)");
}

template <typename T>
absl::Status ValueFromJson(const Json& j, const std::string& path, T& out);

// True when v holds a ConversationId that is not Valid(), itself or in a nested struct or list.
template <typename T>
bool HoldsInvalidConversation(const T& v) {
  if constexpr (std::is_same_v<T, ConversationId>) {
    return !v.Valid();
  } else if constexpr (VectorType<T>) {
    for (const auto& item : v) {
      if (HoldsInvalidConversation(item)) return true;
    }
    return false;
  } else if constexpr (HasFields<const T>) {
    bool invalid = false;
    VisitFields(v, [&invalid](const char* /*name*/, const auto& field) {
      invalid = invalid || HoldsInvalidConversation(field);
    });
    return invalid;
  } else {
    return false;
  }
}

template <typename S>
absl::Status StructFromJson(const Json& j, const std::string& path, S& out) {
  if (!j.is_object()) return Bad(path, "expected an object");
  absl::Status status;
  size_t known = 0;
  size_t fields = 0;
  VisitFields(out, [&](const char* name, auto& field) {
    fields++;
    if (!status.ok()) return;
    const auto it = j.find(name);
    if (it == j.end()) return;
    known++;
    status = ValueFromJson(*it, path.empty() ? name : absl::StrCat(path, ".", name), field);
  });
  if (!status.ok()) return status;
  const size_t type_key = (path.empty() && j.contains("type")) ? 1 : 0;
  if (j.size() != known + type_key) {
    for (const auto& item : j.items()) {
      // A named reference, not a structured binding: clang before 16 cannot capture a binding
      // in the lambda below.
      const std::string& key = item.key();
      if (type_key == 1 && key == "type") continue;
      bool found = false;
      VisitFields(out, [&](const char* name, auto&) { found = found || key == name; });
      if (!found) return Bad(path.empty() ? key : absl::StrCat(path, ".", key), "unknown field");
    }
  }
  // A missing field keeps its default, but no default conversation id is valid (0 names no user
  // and no group): a message that leaves one out is refused, as the binary codec refuses an
  // invalid one, so that every decoded ConversationId is valid.
  if (known < fields) {
    VisitFields(out, [&](const char* name, const auto& field) {
      if (status.ok() && !j.contains(name) && HoldsInvalidConversation(field)) {
        status = Bad(path.empty() ? name : absl::StrCat(path, ".", name),
                     "missing (a conversation id is required)");
      }
    });
    if (!status.ok()) return status;
  }
  if constexpr (std::is_same_v<S, ConversationId>) {
    if (!out.Valid()) return Bad(path, absl::StrCat("invalid conversation id ", ToString(out)));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status ValueFromJson(const Json& j, const std::string& path, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) return Bad(path, "expected true or false");
    out = j.get<bool>();
    return absl::OkStatus();
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    uint64_t v = 0;
    if (absl::Status s = ParseU64(j, path, v); !s.ok()) return s;
    if (v > std::numeric_limits<uint32_t>::max()) return Bad(path, "over 2^32 - 1");
    out = static_cast<uint32_t>(v);
    return absl::OkStatus();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return ParseU64(j, path, out);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return ParseI64(j, path, out);
  } else if constexpr (IdType<T>) {
    return ParseU64(j, path, out.value);
  } else if constexpr (WireEnum<T>) {
    if (!j.is_string() || !EnumFromName(j.get_ref<const std::string&>(), out)) {
      return Bad(path, "unknown enum value");
    }
    return absl::OkStatus();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return Bad(path, "expected a string");
    out = j.get<std::string>();
    return absl::OkStatus();
  } else if constexpr (VectorType<T>) {
    if (!j.is_array()) return Bad(path, "expected an array");
    out.clear();
    out.resize(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      absl::Status s = ValueFromJson(j[i], absl::StrCat(path, "[", i, "]"), out[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  } else {
    static_assert(HasFields<T>, "a field type the JSON codec does not know");
    return StructFromJson(j, path, out);
  }
}

// A default-constructed message of each variant alternative, by index.
template <size_t... I>
constexpr std::array<Message (*)(), sizeof...(I)> Factories(std::index_sequence<I...>) {
  return {+[]() { return Message(std::in_place_index<I>); }...};
}
constexpr auto kFactories = Factories(std::make_index_sequence<kMessageAlternatives>{});

// Nesting depth of objects and arrays, outside strings. Checked before parsing, so that a hostile
// frame of a million '[' never reaches a parser or a destructor.
uint32_t NestingDepth(std::string_view text) {
  uint32_t depth = 0;
  uint32_t depth_max = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      depth_max = std::max(depth_max, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return depth_max;
}

absl::StatusOr<Json> Parse(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.frame_bytes_max) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "frame of ", text.size(), " bytes is over frame_bytes_max=", limits.frame_bytes_max));
  }
  if (NestingDepth(text) > limits.depth_max) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nesting is deeper than json_depth_max=", limits.depth_max));
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON (UTF-8 text)");
  if (!j.is_object()) return absl::InvalidArgumentError("a message must be a JSON object");
  return j;
}

absl::StatusOr<Message> Build(size_t index, const Json& j) {
  Message m = kFactories[index]();
  absl::Status status;
  std::visit([&](auto& alternative) { status = StructFromJson(j, "", alternative); }, m);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWireNameByIndex[index], ".", status.message()));
  }
  return m;
}

size_t IndexOfName(std::string_view name) {
  for (size_t i = 0; i < kMessageAlternatives; ++i) {
    if (name == kWireNameByIndex[i]) return i;
  }
  return kMessageAlternatives;
}

}  // namespace

void AppendJson(std::string& out, const Message& m) {
  out.append("{\"type\":\"");
  out.append(kWireNameByIndex[m.index()]);
  out.push_back('"');
  std::visit([&](const auto& alternative) { AppendFields(out, alternative, /*first=*/false); }, m);
  out.push_back('}');
}

std::string ToJson(const Message& m) {
  std::string out;
  AppendJson(out, m);
  return out;
}

absl::StatusOr<Message> FromJson(std::string_view text, const JsonLimits& limits) {
  absl::StatusOr<Json> j = Parse(text, limits);
  if (!j.ok()) return j.status();
  const auto type = j->find("type");
  if (type == j->end()) return absl::InvalidArgumentError("missing \"type\"");
  if (!type->is_string()) return absl::InvalidArgumentError("\"type\" must be a string");
  const std::string& name = type->get_ref<const std::string&>();
  const size_t index = IndexOfName(name);
  if (index == kMessageAlternatives) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown message type \"", name.substr(0, 64), "\""));
  }
  return Build(index, *j);
}

absl::StatusOr<Message> FromJsonAs(std::string_view type_name, std::string_view text,
                                   const JsonLimits& limits) {
  const size_t index = IndexOfName(type_name);
  if (index == kMessageAlternatives) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown message type \"", absl::string_view(type_name.data(), type_name.size()), "\""));
  }
  absl::StatusOr<Json> j = Parse(text.empty() ? std::string_view("{}") : text, limits);
  if (!j.ok()) return j.status();
  const auto type = j->find("type");
  if (type != j->end() && (!type->is_string() || *type != kWireNameByIndex[index])) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"type\" does not match the endpoint's ", kWireNameByIndex[index]));
  }
  return Build(index, *j);
}

}  // namespace chatlab::real
