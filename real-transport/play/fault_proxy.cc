#include "real-transport/play/fault_proxy.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/random.h"
#include "real-transport/asio.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;

// Connections the proxy keeps to each receiver: as many requests in flight on a link as chatd's
// own peer_connections_max default (4), so the proxy adds no queueing of its own.
constexpr int kConnectionsPerLink = 4;
// The proxy answers at once, so a sender never sees its own queue fill: the proxy drops past
// this many messages waiting on one link (chatd's node_queue_max default), as chatd would.
constexpr size_t kQueueMax = 10000;
// A node message is at most chatd's largest request body; the proxy reads whatever chatd sends.
constexpr uint64_t kBodyBytesMax = std::numeric_limits<uint32_t>::max();

}  // namespace

class FaultProxy::Impl {
 public:
  explicit Impl(const FaultProxyOptions& o) : o_(o), rng_(o.seed) {}

  absl::Status Listen() {
    const int n = o_.processes;
    links_.resize(static_cast<size_t>(n * n));
    for (int from = 1; from <= n; ++from) {
      for (int to = 1; to <= n; ++to) {
        if (from == to) continue;
        Link& l = link(from, to);
        l.from = from;
        l.to = to;
        l.acceptor.emplace(io_);
        boost::system::error_code ec;
        const tcp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
        l.acceptor->open(any.protocol(), ec);
        if (!ec) l.acceptor->bind(any, ec);
        if (!ec) l.acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
          return absl::UnavailableError(absl::StrCat("fault proxy: cannot listen for ", from,
                                                     " -> ", to, ": ", ec.message()));
        }
        l.port = l.acceptor->local_endpoint().port();
        Accept(l);
      }
    }
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  ~Impl() {
    asio::post(io_, [this] {
      for (Link& l : links_) {
        boost::system::error_code ec;
        if (l.acceptor) l.acceptor->close(ec);
      }
    });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string ClusterView(int index, const std::vector<HostPort>& places) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (places_.empty()) places_ = places;
    }
    std::vector<std::string> view;
    for (int j = 1; j <= static_cast<int>(places.size()); ++j) {
      const HostPort& p = places[static_cast<size_t>(j - 1)];
      view.push_back(j == index ? absl::StrCat(p.host, ":", p.port)
                                : absl::StrCat("127.0.0.1:", link(index, j).port));
    }
    return absl::StrJoin(view, ",");
  }

  void Start() {
    asio::post(io_, [this] {
      start_ = std::chrono::steady_clock::now();
      started_ = true;
    });
  }
  void Heal() {
    asio::post(io_, [this] { healed_ = true; });
  }

  Stats stats;

 private:
  // One directed link: the port its sender dials, and the queue and connections to its receiver.
  struct Link {
    int from = 0, to = 0;
    uint16_t port = 0;
    std::optional<tcp::acceptor> acceptor;
    std::deque<std::shared_ptr<Request>> queue;             // to forward
    int idle = kConnectionsPerLink;                         // forwarding connections not busy
    std::vector<std::shared_ptr<beast::tcp_stream>> spare;  // connected, idle
  };
  Link& link(int from, int to) {
    return links_[static_cast<size_t>((from - 1) * o_.processes + (to - 1))];
  }

  // ---- From the sender ----------------------------------------------------------------------

  void Accept(Link& l) {
    l.acceptor->async_accept([this, &l](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed
      socket.set_option(tcp::no_delay(true), ec);
      Read(l, std::make_shared<beast::tcp_stream>(std::move(socket)),
           std::make_shared<beast::flat_buffer>());
      Accept(l);
    });
  }

  void Read(Link& l, std::shared_ptr<beast::tcp_stream> stream,
            std::shared_ptr<beast::flat_buffer> buffer) {
    auto parser = std::make_shared<http::request_parser<http::string_body>>();
    parser->body_limit(kBodyBytesMax);
    http::async_read(*stream, *buffer, *parser,
                     [this, &l, stream, buffer, parser](beast::error_code ec, size_t) {
                       if (ec) return;  // the sender closed or broke the connection
                       auto request = std::make_shared<Request>(parser->release());
                       // Answered at once, as chatd's /node answers: the sender keeps nothing.
                       auto response = std::make_shared<http::response<http::empty_body>>(
                           http::status::no_content, request->version());
                       response->keep_alive(request->keep_alive());
                       const bool keep = request->keep_alive();
                       Route(l, std::move(request));
                       http::async_write(*stream, *response,
                                         [this, &l, stream, buffer, response, keep](
                                             beast::error_code wec, size_t) {
                                           if (wec || !keep) return;
                                           Read(l, stream, buffer);
                                         });
                     });
  }

  // ---- The faults (the simulator's order: partition, loss, duplicate, delay) ----------------

  bool Cut(int from, int to, double t) const {
    const auto in = [](const std::vector<int>& v, int p) {
      return std::find(v.begin(), v.end(), p) != v.end();
    };
    for (const ProcessCut& c : o_.cuts) {
      if (t < c.start_s || t >= c.end_s) continue;
      if (in(c.a, from) && in(c.b, to)) return true;
      if (!c.one_way && in(c.b, from) && in(c.a, to)) return true;
    }
    return false;
  }

  void Route(Link& l, std::shared_ptr<Request> request) {
    stats.messages++;
    if (started_ && !healed_) {
      const double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      if (Cut(l.from, l.to, t)) {
        stats.cut++;
        return;
      }
      if (o_.loss > 0 && rng_.Bernoulli(o_.loss)) {
        stats.lost++;
        return;
      }
      if (o_.duplicate > 0 && rng_.Bernoulli(o_.duplicate)) {
        stats.duplicated++;
        Forward(l, std::make_shared<Request>(*request));
      }
      if (o_.delay_probability > 0 && rng_.Bernoulli(o_.delay_probability)) {
        stats.delayed++;
        const auto delay = std::chrono::microseconds(
            static_cast<int64_t>(rng_.UniformDouble() * o_.delay_ms_max * 1000));
        auto timer = std::make_shared<asio::steady_timer>(io_, delay);
        timer->async_wait([this, &l, timer, request](boost::system::error_code ec) {
          if (!ec) Forward(l, request);
        });
        return;
      }
    }
    Forward(l, std::move(request));
  }

  // ---- To the receiver ------------------------------------------------------------------------

  void Forward(Link& l, std::shared_ptr<Request> request) {
    if (l.queue.size() >= kQueueMax) {
      stats.overflowed++;
      return;
    }
    l.queue.push_back(std::move(request));
    if (l.idle > 0) {
      l.idle--;
      Next(l, nullptr);
    }
  }

  // A forwarding connection takes the next request of its link, or goes idle.
  void Next(Link& l, std::shared_ptr<beast::tcp_stream> stream) {
    if (l.queue.empty()) {
      if (stream) l.spare.push_back(std::move(stream));
      l.idle++;
      return;
    }
    if (!stream && !l.spare.empty()) {
      stream = std::move(l.spare.back());
      l.spare.pop_back();
    }
    std::shared_ptr<Request> request = std::move(l.queue.front());
    l.queue.pop_front();
    request->keep_alive(true);
    request->prepare_payload();
    if (stream) return Send(l, std::move(stream), std::move(request), /*fresh=*/false);
    HostPort place;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<size_t>(l.to) > places_.size()) {
        stats.forward_failed++;
        return Next(l, nullptr);
      }
      place = places_[static_cast<size_t>(l.to - 1)];
    }
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(place.host, ec);
    stream = std::make_shared<beast::tcp_stream>(io_);
    stream->expires_after(std::chrono::seconds(10));
    stream->async_connect(
        tcp::endpoint(ip, place.port), [this, &l, stream, request](boost::system::error_code cec) {
          if (cec) {  // the receiver is down: the message is lost, as chatd's own would be
            stats.forward_failed++;
            return Next(l, nullptr);
          }
          boost::system::error_code ignored;
          stream->socket().set_option(tcp::no_delay(true), ignored);
          Send(l, stream, request, /*fresh=*/true);
        });
  }

  void Send(Link& l, std::shared_ptr<beast::tcp_stream> stream, std::shared_ptr<Request> request,
            bool fresh) {
    stream->expires_after(std::chrono::seconds(10));
    http::async_write(
        *stream, *request, [this, &l, stream, request, fresh](beast::error_code ec, size_t) {
          if (ec) return Failed(l, stream, request, fresh);
          auto buffer = std::make_shared<beast::flat_buffer>();
          auto response = std::make_shared<http::response<http::string_body>>();
          http::async_read(
              *stream, *buffer, *response,
              [this, &l, stream, request, buffer, response, fresh](beast::error_code rec, size_t) {
                if (rec) return Failed(l, stream, request, fresh);
                stats.forwarded++;
                if (response->result() != http::status::no_content) {
                  stats.forward_failed++;
                }
                stream->expires_never();
                Next(l, response->keep_alive() ? stream : nullptr);
              });
        });
  }

  // A kept-alive connection the receiver closed (a restart) gets one more try on a fresh one,
  // marked as chatd's own peer link marks a resend (the receiver may have handled the first:
  // its store then looks the message up beyond its dedup window).
  void Failed(Link& l, std::shared_ptr<beast::tcp_stream> stream, std::shared_ptr<Request> request,
              bool fresh) {
    boost::system::error_code ignored;
    stream->socket().close(ignored);
    if (!fresh) {
      request->set("X-Chatlab-Redelivered", "1");
      stats.resent++;
      l.queue.push_front(std::move(request));
    } else {
      stats.forward_failed++;
    }
    Next(l, nullptr);
  }

  const FaultProxyOptions o_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::vector<Link> links_;
  Rng rng_;  // the io thread's only
  std::chrono::steady_clock::time_point start_;
  bool started_ = false;  // the io thread's only
  bool healed_ = false;
  std::mutex mu_;
  std::vector<HostPort> places_;  // set once, by the first ClusterView
};

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Listen(const FaultProxyOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

FaultProxy::FaultProxy(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), stats_(&impl_->stats) {}
FaultProxy::~FaultProxy() = default;

std::string FaultProxy::ClusterView(int index, const std::vector<HostPort>& places) {
  return impl_->ClusterView(index, places);
}
void FaultProxy::Start() { impl_->Start(); }
void FaultProxy::Heal() { impl_->Heal(); }

}  // namespace chatlab::real
