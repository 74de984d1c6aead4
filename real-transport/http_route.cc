// chatd's request routing and header/body extraction (http_route.h), moved out of HttpSession
// (chatd/http_session.cc) unchanged so that it can be tested and fuzzed without a socket.
#include "real-transport/http_route.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"

namespace chatlab::real {
namespace {

namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;

// The Web Service calls of the seed, by the message their body carries.
constexpr std::pair<std::string_view, std::string_view> kApiCalls[] = {
    {"get_messages", "GetMessages"}, {"join_group", "JoinGroup"},   {"leave_group", "LeaveGroup"},
    {"sync", "SyncRequest"},         {"presence", "PresenceQuery"}, {"receipts", "GetReceipts"}};

// Routes "/api/<call>" (call is the path after "/api/").
Route RouteApi(std::string_view call, http::verb method, Route route) {
  if (call.substr(0, 6) == "users/" && method == http::verb::get) {
    route.endpoint = Endpoint::kApiUser;
    route.user_name = call.substr(6);
    return route;
  }
  if (call.substr(0, 11) == "user_names/" && method == http::verb::get) {
    route.endpoint = Endpoint::kApiUserName;
    route.user_name = call.substr(11);
    return route;
  }
  route.endpoint = Endpoint::kApiUnknown;
  if (method != http::verb::post) return route;
  for (const auto& [name, message] : kApiCalls) {
    if (call == name) {
      route.endpoint = Endpoint::kApiCall;
      route.message_type = message;
    }
  }
  return route;
}

}  // namespace

uint64_t RequestBodyBytesMax(std::string_view target, uint64_t http_body_bytes_max) {
  return target == "/node" ? kNodeBodyBytesMax : http_body_bytes_max;
}

CodecLimits NodeFrameLimits() {
  static_assert(kNodeBodyBytesMax <= UINT32_MAX, "CodecLimits holds 32-bit limits");
  CodecLimits limits;
  limits.frame_bytes_max = static_cast<uint32_t>(kNodeBodyBytesMax);
  limits.string_bytes_max = limits.frame_bytes_max;
  return limits;
}

Route RouteRequest(const HttpRequest& req) {
  const std::string_view full(req.target().data(), req.target().size());
  const size_t q = full.find('?');
  const std::string_view path = full.substr(0, q);
  Route route;
  route.query = q == std::string_view::npos ? "" : full.substr(q + 1);
  route.path = path;
  const http::verb method = req.method();
  if (path == "/ws" && websocket::is_upgrade(req)) {
    route.endpoint = Endpoint::kWebSocket;
  } else if (path == "/healthz" && method == http::verb::get) {
    route.endpoint = Endpoint::kHealth;
  } else if (path == "/metrics" && method == http::verb::get) {
    route.endpoint = Endpoint::kMetrics;
  } else if (path == "/node" && method == http::verb::post) {
    route.endpoint = Endpoint::kNode;
  } else if (path == "/login" && method == http::verb::post) {
    route.endpoint = Endpoint::kLogin;
  } else if (path.substr(0, 5) == "/api/") {
    route = RouteApi(path.substr(5), method, route);
  } else if (method == http::verb::get || method == http::verb::head) {
    route.endpoint = Endpoint::kWebAsset;
  }
  return route;
}

std::string_view QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string_view RequestToken(const HttpRequest& req, std::string_view query) {
  std::string_view token;
  const auto auth = req.find(http::field::authorization);
  if (auth != req.end()) {
    const std::string_view value(auth->value().data(), auth->value().size());
    if (value.substr(0, 7) == "Bearer ") token = value.substr(7);
  }
  if (token.empty()) token = QueryParam(query, "token");
  return token;
}

absl::StatusOr<NodeHeaders> ParseNodeHeaders(const HttpRequest& req) {
  NodeHeaders h;
  h.from = std::string(req["X-Chatlab-From"]);
  h.to = std::string(req["X-Chatlab-To"]);
  h.mac = std::string(req["X-Chatlab-Mac"]);
  if (!absl::SimpleAtoi(h.from, &h.from_id) || !absl::SimpleAtoi(h.to, &h.to_id)) {
    return absl::UnauthenticatedError("X-Chatlab-From and X-Chatlab-To must be node ids");
  }
  return h;
}

absl::StatusOr<LoginRequest> ParseLogin(std::string_view body) {
  nlohmann::json j =
      nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("user") || !j.contains("password") ||
      !j["user"].is_string() || !j["password"].is_string()) {
    return absl::InvalidArgumentError(R"(expected {"user": "name", "password": "..."})");
  }
  return LoginRequest{j["user"].get<std::string>(), j["password"].get<std::string>()};
}

}  // namespace chatlab::real
