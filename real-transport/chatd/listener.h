// chatd's listening socket: bound to --listen, its port written to --port_file.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_LISTENER_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_LISTENER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "real-transport/asio.h"
#include "real-transport/util.h"

namespace chatlab::real {

struct Listening {
  HostPort address;   // as given (port 0 stays 0)
  uint16_t port = 0;  // the bound port
};

// Opens, binds and listens `acceptor` on `listen` (host:port, the host an IP address). When
// `port_file` is set, writes the bound port there (atomically: a temporary file, renamed).
absl::StatusOr<Listening> OpenListener(boost::asio::ip::tcp::acceptor& acceptor,
                                       const std::string& listen, const std::string& port_file);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_LISTENER_H_
