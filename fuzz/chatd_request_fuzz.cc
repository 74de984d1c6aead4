// Fuzzes chatd's HTTP request handling without a socket: the input is the byte stream of one
// client connection. Beast's request parser reads it with chatd's header and body limits, as
// HttpSession does, and every complete request goes through chatd's own routing and extraction
// (real-transport/http_route.h), then through the decoder its endpoint uses: the JSON codec for
// an /api call, the binary codec for a /node body, the login parser for /login. Keep-alive
// requests follow one another on the connection until one fails to parse, asks to close, or
// upgrades to a WebSocket (whose frames json_codec_fuzz covers).
//
// Asserts, for any input:
//   - parsing, routing and decoding never crash and no exception escapes;
//   - the route agrees with the request: an /api call is a POST naming one of the Web Service
//     messages, healthz/metrics/user lookups are GETs, node and login are POSTs, and the query
//     is a piece of the target;
//   - a decoded /api body is a message of the type the endpoint names, and it survives the JSON
//     round trip; a decoded /node body survives the binary round trip.
// A broken property aborts, which libFuzzer reports as a crash with the input that caused it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/fields.h"
#include "real-transport/asio.h"
#include "real-transport/chatd.h"
#include "real-transport/chatd/web_assets.h"
#include "real-transport/http_route.h"
#include "real-transport/json_codec.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using chatlab::real::Endpoint;
using chatlab::real::HttpRequest;

// chatd's defaults for the limits a request meets.
const chatlab::real::ChatdOptions kOptions;

// Prints what broke and aborts: the fuzzer saves the input as a crash.
void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "chatd_request_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Reads one request from the front of `stream` as HttpSession does: the header under
// kHttpHeaderBytesMax, then the body under the limit its target gets. Returns false when the
// stream holds no complete valid request (chatd would then wait, answer 413 or hang up);
// otherwise fills req and drops the request's bytes from `stream`.
bool ReadRequest(std::string_view& stream, HttpRequest& req) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(chatlab::real::kHttpHeaderBytesMax);
  bool body_limit_set = false;
  beast::error_code ec;
  while (!parser.is_done()) {
    if (parser.is_header_done() && !body_limit_set) {
      const auto target = parser.get().target();
      parser.body_limit(chatlab::real::RequestBodyBytesMax(
          std::string_view(target.data(), target.size()), kOptions.http_body_bytes_max));
      body_limit_set = true;
    }
    // The connection has no more bytes: chatd would wait for them (Beast's read reads before
    // it parses an empty buffer, on which put makes no progress in the body).
    if (stream.empty()) return false;
    const size_t used = parser.put(boost::asio::buffer(stream.data(), stream.size()), ec);
    if (used > stream.size()) Fail("parser consumed more than it was given", "");
    stream.remove_prefix(used);
    if (ec) return false;  // need_more at the end of the input, or a malformed request
    // Beast's read loop would call put again on the same bytes: no progress is a spinning
    // session.
    if (used == 0 && !parser.is_done()) Fail("parser made no progress", "");
  }
  req = parser.release();
  return true;
}

// The route's promises about the request it was computed from.
void CheckRoute(const HttpRequest& req, const chatlab::real::Route& route) {
  const std::string_view target(req.target().data(), req.target().size());
  if (!route.query.empty() &&
      (route.query.data() < target.data() ||
       route.query.data() + route.query.size() > target.data() + target.size())) {
    Fail("query is not a piece of the target", std::string(target));
  }
  const http::verb method = req.method();
  switch (route.endpoint) {
    case Endpoint::kHealth:
    case Endpoint::kMetrics:
    case Endpoint::kApiUser:
    case Endpoint::kApiUserName:
      if (method != http::verb::get) Fail("GET endpoint routed from another method", "");
      break;
    case Endpoint::kWebAsset:
      if (method != http::verb::get && method != http::verb::head) {
        Fail("web asset routed from a method other than GET or HEAD", "");
      }
      if (route.path.substr(0, 5) == "/api/") Fail("web asset under /api/", std::string(target));
      break;
    case Endpoint::kNode:
    case Endpoint::kLogin:
    case Endpoint::kApiCall:
      if (method != http::verb::post) Fail("POST endpoint routed from another method", "");
      break;
    case Endpoint::kWebSocket:
    case Endpoint::kApiUnknown:
    case Endpoint::kNotFound:
      break;
  }
  const bool api = route.endpoint == Endpoint::kApiCall || route.endpoint == Endpoint::kApiUser ||
                   route.endpoint == Endpoint::kApiUserName ||
                   route.endpoint == Endpoint::kApiUnknown;
  if (api && target.substr(0, 5) != "/api/") Fail("api route outside /api/", std::string(target));
  if ((route.endpoint == Endpoint::kApiCall) == route.message_type.empty()) {
    Fail("message type set outside an api call, or missing in one", std::string(target));
  }
}

// What the endpoint's decoder makes of the body, and its round trip.
void DecodeBody(const HttpRequest& req, const chatlab::real::Route& route) {
  switch (route.endpoint) {
    case Endpoint::kWebSocket:
      (void)chatlab::real::RequestToken(req, route.query);
      return;
    case Endpoint::kApiUser:
    case Endpoint::kApiUserName:
    case Endpoint::kApiUnknown:
      (void)chatlab::real::RequestToken(req, "");
      return;
    case Endpoint::kWebAsset:
      (void)chatlab::real::FindWebAsset(route.path);
      return;
    case Endpoint::kLogin:
      (void)chatlab::real::ParseLogin(req.body());
      return;
    case Endpoint::kNode: {
      if (!chatlab::real::ParseNodeHeaders(req).ok()) return;
      const auto m = chatlab::Decode(req.body(), chatlab::real::NodeFrameLimits());
      if (!m.ok()) return;
      const auto again = chatlab::Decode(chatlab::Encode(*m), chatlab::real::NodeFrameLimits());
      if (!again.ok() || !(*again == *m)) Fail("node frame round trip", chatlab::DebugString(*m));
      return;
    }
    case Endpoint::kApiCall: {
      (void)chatlab::real::RequestToken(req, "");
      const chatlab::real::JsonLimits limits{kOptions.frame_bytes_max, kOptions.json_depth_max};
      const auto m = chatlab::real::FromJsonAs(route.message_type, req.body(), limits);
      if (!m.ok()) return;
      if (route.message_type != chatlab::kWireNameByIndex[m->index()]) {
        Fail("api call decoded to another type", chatlab::DebugString(*m));
      }
      const auto again = chatlab::real::FromJson(chatlab::real::ToJson(*m), limits);
      if (!again.ok() || !(*again == *m)) Fail("api body round trip", chatlab::DebugString(*m));
      return;
    }
    case Endpoint::kHealth:
    case Endpoint::kMetrics:
    case Endpoint::kNotFound:
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  HttpRequest req;
  while (!stream.empty() && ReadRequest(stream, req)) {
    const chatlab::real::Route route = chatlab::real::RouteRequest(req);
    CheckRoute(req, route);
    DecodeBody(req, route);
    // HttpSession reads the next request only on a kept-alive, non-upgraded connection.
    if (!req.keep_alive() || route.endpoint == Endpoint::kWebSocket) break;
  }
  return 0;
}
