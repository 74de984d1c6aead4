#include "real-transport/chatd/listener.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace chatlab::real {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

absl::StatusOr<Listening> OpenListener(tcp::acceptor& acceptor, const std::string& listen,
                                       const std::string& port_file) {
  auto parsed = ParseHostPort(listen);
  if (!parsed.ok()) return parsed.status();
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(parsed->host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--listen ", listen, ": ", ec.message()));
  const tcp::endpoint endpoint(address, parsed->port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
  }
  Listening out{*parsed, acceptor.local_endpoint().port()};
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << out.port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  return out;
}

}  // namespace chatlab::real
