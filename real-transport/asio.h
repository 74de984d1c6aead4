// The Boost.Asio and Beast headers real-transport uses, in one place.
//
// Boost 1.74's boost/asio/awaitable.hpp uses std::exchange without including <utility>, which
// GCC 12's libstdc++ no longer pulls in transitively; <utility> must come first.
#ifndef CHATLAB_REAL_TRANSPORT_ASIO_H_
#define CHATLAB_REAL_TRANSPORT_ASIO_H_

// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
// clang-format on

#endif  // CHATLAB_REAL_TRANSPORT_ASIO_H_
