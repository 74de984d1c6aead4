// TLS for chatd, its peer links and its clients: Beast's OpenSSL streams, one context per side.
//
// A server context (chatd --tls_cert, --tls_key) holds the certificate chain and its private
// key; when chatd has one, every connection it accepts speaks TLS (HTTPS and wss://): plain
// requests fail the handshake and are closed, never served. A client context (chatcli, chatload,
// chatplay, and chatd's peer links with --tls_ca) verifies the server's chain against a CA file
// (a self-signed certificate is its own CA) or, with no file, the system's trust store, and
// checks that the certificate names the host it dialled (RFC 6125 via OpenSSL). Both sides
// speak TLS 1.2 or newer.
//
// Errors name the file and what OpenSSL said about it; nothing here is silently optional.
#ifndef CHATLAB_REAL_TRANSPORT_TLS_H_
#define CHATLAB_REAL_TRANSPORT_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
// clang-format off
#include "real-transport/asio.h"
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on

namespace chatlab::real {

// A connection's byte stream: plain TCP, or TLS over it.
using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// For chatd: the PEM certificate chain (leaf first) and its PEM private key.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> ServerTlsContext(
    const std::string& cert_file, const std::string& key_file);

// For a client: verifies peers against the PEM CA file ca_file, or the system's trust store
// when it is empty.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> ClientTlsContext(
    const std::string& ca_file);

// Prepares a client stream for a handshake with host: SNI, and the host name the certificate
// must carry. Fails only if OpenSSL cannot take the name.
absl::Status PrepareClientTls(TlsStream& stream, const std::string& host);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_TLS_H_
