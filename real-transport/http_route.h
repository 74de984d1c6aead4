// How chatd reads an HTTP request before it acts on it: which endpoint the request is for, the
// token it carries, the node headers of POST /node and the credentials of POST /login.
//
// These are pure functions of a parsed Beast request: no socket, clock, key, database or node is
// involved, so unit tests and fuzz/chatd_request_fuzz.cc drive them in-process with the same
// bytes a client would send. HttpSession (chatd/http_session.h) calls them and then does what
// the route says (authenticate, answer, hand a message to the core). docs/chatd.md lists the
// endpoints.
#ifndef CHATLAB_REAL_TRANSPORT_HTTP_ROUTE_H_
#define CHATLAB_REAL_TRANSPORT_HTTP_ROUTE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/codec.h"
#include "real-transport/asio.h"

namespace chatlab::real {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Longest request header chatd reads; Beast refuses a longer one (header_limit).
inline constexpr uint32_t kHttpHeaderBytesMax = 16 * 1024;
// Longest /node body (a buffered ForwardBatch can be large); other requests use
// ChatdOptions::http_body_bytes_max.
inline constexpr uint64_t kNodeBodyBytesMax = 256ull << 20;

// The body limit for a request whose header names `target` (before the body is read).
uint64_t RequestBodyBytesMax(std::string_view target, uint64_t http_body_bytes_max);

// The codec limits a /node body is decoded with: the whole body may be one string.
CodecLimits NodeFrameLimits();

// What a request asks for. Every /api endpoint needs a token; chatd checks it before it looks
// at which /api endpoint it is, so kApiUnknown is answered 401 without a valid token, 404 with.
enum class Endpoint : uint8_t {
  kWebSocket,   // /ws with a WebSocket upgrade: the Chat Service
  kHealth,      // GET /healthz
  kMetrics,     // GET /metrics
  kNode,        // POST /node: a codec frame from another process
  kLogin,       // POST /login
  kApiUser,     // GET /api/users/NAME
  kApiUserName, // GET /api/user_names/ID: the name of a user id (the web client shows names)
  kApiCall,     // POST /api/<call>: one of the Web Service calls
  kApiUnknown,  // any other /api/ request
  kWebAsset,    // any other GET or HEAD: a file of the web client (404 if there is none)
  kNotFound,    // anything else
};

// A routed request. The views point into the request's target: valid while the request lives.
struct Route {
  Endpoint endpoint = Endpoint::kNotFound;
  std::string_view query;         // the target after '?' ("" when there is none)
  std::string_view user_name;     // kApiUser: NAME (may be empty); kApiUserName: ID
  std::string_view path;          // the target before '?'
  std::string_view message_type;  // kApiCall: the message its body carries ("GetMessages")
};

// Routes req by its method and target (path, then query).
Route RouteRequest(const HttpRequest& req);

// The value of `name` in a query string "a=1&b=2" ("" when absent). No percent-decoding.
std::string_view QueryParam(std::string_view query, std::string_view name);

// The token a request carries: "Authorization: Bearer T", else "?token=T" in query (browsers
// cannot set headers on a WebSocket). "" when there is none. A view into req or query.
std::string_view RequestToken(const HttpRequest& req, std::string_view query);

// The headers of POST /node. The MAC covers "from|to|body" with from and to exactly as sent.
struct NodeHeaders {
  std::string from;  // X-Chatlab-From, as sent
  std::string to;    // X-Chatlab-To, as sent
  std::string mac;   // X-Chatlab-Mac: hex HMAC-SHA256 under the cluster key
  uint64_t from_id = 0;
  uint64_t to_id = 0;
};
// Unauthenticated when From or To is missing or not a decimal node id. The MAC is not checked
// here: that needs the key.
absl::StatusOr<NodeHeaders> ParseNodeHeaders(const HttpRequest& req);

// The body of POST /login: {"user": "name", "password": "..."}.
struct LoginRequest {
  std::string user;
  std::string password;
};
// InvalidArgument when body is not a JSON object with string "user" and "password".
absl::StatusOr<LoginRequest> ParseLogin(std::string_view body);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_HTTP_ROUTE_H_
