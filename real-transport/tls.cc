#include "real-transport/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

namespace ssl = boost::asio::ssl;

std::string Why(const boost::system::error_code& ec) {
  std::string why = ec.message();
  // OpenSSL's own queue often says more (e.g. "no start line" for a file that is not PEM).
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    why = absl::StrCat(why, " (", buf, ")");
  }
  ERR_clear_error();
  return why;
}

// OK if path names a file this process can read; otherwise the reason, naming flag and path.
absl::Status Readable(const char* flag, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": cannot read it: ", std::strerror(errno)));
  }
  std::fclose(f);
  return absl::OkStatus();
}

std::shared_ptr<ssl::context> NewContext(ssl::context::method method) {
  auto ctx = std::make_shared<ssl::context>(method);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  return ctx;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> ServerTlsContext(const std::string& cert_file,
                                                               const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  if (absl::Status s = Readable("--tls_cert", cert_file); !s.ok()) return s;
  if (absl::Status s = Readable("--tls_key", key_file); !s.ok()) return s;
  auto ctx = NewContext(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert ", cert_file, ": not a usable PEM certificate chain: ", Why(ec)));
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    ERR_clear_error();
    // OpenSSL refuses a key that does not belong to the loaded certificate the same way as one
    // it cannot parse: loaded alone, a good key tells the two apart.
    auto alone = NewContext(ssl::context::tls_server);
    boost::system::error_code alone_ec;
    alone->use_private_key_file(key_file, ssl::context::pem, alone_ec);
    if (!alone_ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls_key ", key_file, " does not match the certificate in ", cert_file));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", key_file, ": not a usable PEM private key: ", Why(alone_ec)));
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("--tls_key ", key_file,
                                                   " does not match the certificate in ",
                                                   cert_file));
  }
  return ctx;
}

absl::StatusOr<std::shared_ptr<ssl::context>> ClientTlsContext(const std::string& ca_file) {
  auto ctx = NewContext(ssl::context::tls_client);
  boost::system::error_code ec;
  if (!ca_file.empty()) {
    if (absl::Status s = Readable("--tls_ca", ca_file); !s.ok()) return s;
  }
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_ca ", ca_file.empty() ? "(the system's trust store)" : ca_file,
        ": no usable PEM CA certificates: ", Why(ec)));
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

absl::Status PrepareClientTls(TlsStream& stream, const std::string& host) {
  // SNI: the name the server picks its certificate by (never an IP address literal).
  boost::system::error_code not_an_address;
  boost::asio::ip::make_address(host, not_an_address);
  if (not_an_address && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("TLS: cannot send the server name ", host));
  }
  // The certificate must name host (a DNS name, or an IP address SAN for an address).
  stream.set_verify_callback(boost::asio::ssl::host_name_verification(host));
  return absl::OkStatus();
}

}  // namespace chatlab::real
