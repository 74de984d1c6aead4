// Writes the generated part of the fuzzers' seed corpora (fuzz/corpus/), so that the seeds follow
// the message definitions instead of going stale by hand: `make fuzz-corpus` runs it.
//
//   codec_fuzz/<Message>.bin          one binary frame of every message type
//   json_codec_fuzz/<Message>.json    the JSON form of every message type
//   chatd_request_fuzz/*.http         HTTP requests of every chatd endpoint, as a client or a
//                                     peer process sends them (bodies from the messages above)
// Every field gets a small valid value (conversations are d1-2 or g3, each list one item), so
// each seed decodes and a fuzzer starts from deep inside each message rather than at its header.
// The scenario seeds are hand-written (fuzz/corpus/scenario_fuzz/) and scenarios/ itself.
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "core/fields.h"
#include "real-transport/json_codec.h"

namespace chatlab {
namespace {

// Gives every field a small valid value; `n` varies the numbers between fields.
template <typename T>
void Fill(T& f, uint64_t& n) {
  ++n;
  if constexpr (std::is_same_v<T, bool>) {
    f = n % 2 == 0;
  } else if constexpr (WireEnum<T>) {
    // Keeps the default: a known value.
  } else if constexpr (IdType<T>) {
    f.value = n;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    f = static_cast<int64_t>(n * 1000);
  } else if constexpr (std::is_integral_v<T>) {
    f = static_cast<T>(n);
  } else if constexpr (std::is_same_v<T, std::string>) {
    f = "hello";
  } else if constexpr (std::is_same_v<T, ConversationId>) {
    f = n % 2 == 0 ? ConversationId::Group(GroupId(3))
                   : ConversationId::Direct(UserId(1), UserId(2));
  } else if constexpr (VectorType<T>) {
    Fill(f.emplace_back(), n);
  } else {
    VisitFields(f, [&n](const char* /*name*/, auto& field) { Fill(field, n); });
  }
}

template <size_t I>
Message Sample() {
  Message m(std::in_place_index<I>);
  uint64_t n = 0;
  std::visit([&n](auto& alternative) { Fill(alternative, n); }, m);
  return m;
}

template <size_t... I>
std::array<Message, sizeof...(I)> Samples(std::index_sequence<I...>) {
  return {Sample<I>()...};
}

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string Request(const std::string& head, const std::string& body) {
  return absl::StrCat(head, "Content-Length: ", body.size(), "\r\n\r\n", body);
}

// The requests of every endpoint in docs/chatd.md.
void WriteRequests(const std::filesystem::path& dir, const Message& api_body,
                   const Message& node_body) {
  const std::string bearer = "Authorization: Bearer 1.1900000000000000.00ff\r\n";
  const std::string upgrade =
      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  Write(dir / "healthz.http", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  Write(dir / "pipelined.http",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n");
  Write(dir / "login.http",
        Request("POST /login HTTP/1.1\r\nHost: x\r\n", R"({"user":"alice","password":"pw"})"));
  Write(dir / "login_chunked.http",
        "POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n{\"user\":\"alice\",\r\n11\r\n\"password\":\"pw\"}\r\n0\r\n\r\n");
  Write(dir / "ws_bearer.http",
        absl::StrCat("GET /ws HTTP/1.1\r\nHost: x\r\n", bearer, upgrade, "\r\n"));
  Write(dir / "ws_query.http",
        absl::StrCat("GET /ws?x=1&token=1.1900000000000000.00ff HTTP/1.1\r\nHost: x\r\n", upgrade,
                     "\r\n"));
  Write(dir / "api_users.http",
        absl::StrCat("GET /api/users/alice HTTP/1.1\r\nHost: x\r\n", bearer, "\r\n"));
  // Bodies as docs/chatd.md shows them: no "type" (the URL names it); sync has none at all.
  const std::pair<const char*, const char*> calls[] = {
      {"get_messages", R"({"conv":{"type":"direct","low":"1","high":"2"},"limit":50})"},
      {"join_group", R"({"group":"3"})"},
      {"leave_group", R"({"group":"3"})"},
      {"sync", ""},
      {"presence", R"({"users":["2","3"]})"},
      {"receipts", R"({"conv":{"type":"group","low":"3","high":"0"},"after_user":"2"})"}};
  for (const auto& [call, body] : calls) {
    Write(dir / absl::StrCat("api_", call, ".http"),
          Request(absl::StrCat("POST /api/", call, " HTTP/1.1\r\nHost: x\r\n", bearer), body));
  }
  Write(dir / "api_typed.http",
        Request(absl::StrCat("POST /api/get_messages HTTP/1.1\r\nHost: x\r\n", bearer),
                real::ToJson(api_body)));
  Write(dir / "node.http",
        Request("POST /node HTTP/1.1\r\nHost: x\r\nX-Chatlab-From: 100\r\nX-Chatlab-To: 1\r\n"
                "X-Chatlab-Mac: 00ff\r\n",
                Encode(node_body)));
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root(argv[1]);
  for (const char* dir : {"codec_fuzz", "json_codec_fuzz", "chatd_request_fuzz"}) {
    std::filesystem::create_directories(root / dir);
  }
  const auto samples = Samples(std::make_index_sequence<kMessageAlternatives>{});
  for (const Message& m : samples) {
    const std::string name = kWireNameByIndex[m.index()];
    Write(root / "codec_fuzz" / (name + ".bin"), Encode(m));
    Write(root / "json_codec_fuzz" / (name + ".json"), real::ToJson(m));
  }
  Message get_messages;
  Message store_append;
  for (const Message& m : samples) {
    if (std::holds_alternative<GetMessages>(m)) get_messages = m;
    if (std::holds_alternative<StoreAppend>(m)) store_append = m;
  }
  WriteRequests(root / "chatd_request_fuzz", get_messages, store_append);
  std::printf("seed_corpus: %zu messages, written under %s\n", samples.size(), argv[1]);
  return 0;
}

}  // namespace
}  // namespace chatlab

int main(int argc, char** argv) { return chatlab::Main(argc, argv); }
