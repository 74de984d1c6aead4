// The web client chatd serves at "/" (web/, docs/web-client.md): its files, embedded in the
// binary at build time by cmake/embed_web.cmake, so a deployed chatd needs no directory.
//
// This is bytes and names only: which file a path is, and the headers every answer of one
// carries. HttpSession answers GET and HEAD with them; the page itself speaks the protocol over
// /ws and /api like any other client.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_WEB_ASSETS_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_WEB_ASSETS_H_

#include <span>
#include <string_view>

namespace chatlab::real {

struct WebAsset {
  std::string_view path;          // the URL path, "/" or "/js/main.js"
  std::string_view content_type;  // from the file's extension
  std::string_view body;          // the file's bytes (static storage)
};

// Every embedded file (generated from web/); "/" is index.html.
std::span<const WebAsset> WebAssets();

// The asset served at the URL path `path` (without the query), or null.
const WebAsset* FindWebAsset(std::string_view path);

// The Content-Security-Policy of every web client answer: scripts, styles, images and fonts from
// chatd itself only (no inline script or style, no eval), WebSocket and fetch only to chatd, no
// framing, forms post nowhere else.
inline constexpr std::string_view kWebContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_WEB_ASSETS_H_
