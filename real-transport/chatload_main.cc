// chatload: a load generator for chatd, and a bare WebSocket echo server as the ceiling.
//
//   chatload --server H:P[,H:P...] --users PREFIX --password P --connections N
//            [--mode pairs|groups] [--group_size K] [--rate MSGS_PER_S | --window W]
//            [--duration S] [--warmup S] [--body_bytes B] [--receipts] [--users_count U]
//   chatload --idle --server H:P --users PREFIX --password P --connections N [--duration S]
//   chatload --echo --server H:P --connections N --window W [--duration S] [--body_bytes B]
//   chatload echo-server --listen H:P
//
// pairs: connection 2k talks with 2k+1 (each sends to the other); groups: every K connections
// share group (base + k) and each sends to it. --rate is the total open-loop send rate; --window
// is the closed loop (at most W unacknowledged sends per connection). Users are PREFIX1..PREFIXU
// (create them with `chatd adduser --count U PREFIX`); connection i logs in as user i % U + 1.
// The report: sends and acks per second, deliveries per second, end-to-end latency (send to
// Deliver at the recipient, same clock) p50/p99/p99.9, errors. Speaks the client JSON protocol
// directly (no ClientSession) so the generator itself stays cheap.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "real-transport/asio.h"
#include "real-transport/json_codec.h"
#include "real-transport/load_measure.h"
#include "real-transport/util.h"
#include "real-transport/ws_client.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct Args {
  std::vector<HostPort> servers;
  std::string users = "load";
  std::string password = "load";
  uint32_t users_count = 0;  // 0: one user per connection
  uint32_t connections = 2;
  std::string mode = "pairs";
  uint32_t group_size = 4;
  uint64_t group_base = 0;  // 0: derived from the clock
  double rate = 0;
  uint32_t window = 0;
  double duration_s = 10;
  double warmup_s = 1;
  uint32_t body_bytes = 64;
  bool receipts = false;
  bool idle = false;
  bool echo = false;
  // --tls / --tls_ca FILE: dial https:// and wss://, verifying against FILE (or the system's
  // trust store). Set in main from the flags.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

struct Conn {
  std::shared_ptr<WsClient> ws;
  UserId user;
  std::string token;
  ConversationId target;
  uint32_t outstanding = 0;
  ClientMsgId cmid_next = 0;
  bool ready = false;
};

class Load {
 public:
  explicit Load(Args args) : args_(std::move(args)) {}

  int Run() {
    if (!args_.echo && !LoginAll()) return 1;
    conns_.resize(args_.connections);
    const uint64_t base = static_cast<uint64_t>(NowUs());
    group_base_ = args_.group_base != 0 ? args_.group_base : (base / kUsPerSecond) * 1000;
    for (uint32_t i = 0; i < args_.connections; ++i) {
      Conn& c = conns_[i];
      c.cmid_next = base + uint64_t{i} * 1000000000ull;
      if (!args_.echo) {
        const auto& login = logins_[i % logins_.size()];
        c.user = login.user;
        c.token = login.token;
      }
      Open(i);
    }
    // Wait for every connection (and, for groups, every join).
    start_wait_ = std::chrono::steady_clock::now();
    WaitReady();
    io_.run();
    return Report();
  }

 private:
  bool LoginAll() {
    const uint32_t users = args_.users_count == 0 ? args_.connections : args_.users_count;
    logins_.resize(users);
    std::vector<std::future<bool>> workers;
    const uint32_t threads = 4;
    for (uint32_t t = 0; t < threads; ++t) {
      workers.push_back(std::async(std::launch::async, [this, t, users, threads] {
        for (uint32_t u = t; u < users; u += threads) {
          auto login = Login(args_.servers[0], absl::StrCat(args_.users, u + 1), args_.password,
                             args_.tls.get());
          if (!login.ok()) {
            std::cerr << "chatload: " << args_.users << (u + 1) << ": " << login.status().message()
                      << "\n";
            return false;
          }
          logins_[u] = *login;
        }
        return true;
      }));
    }
    bool ok = true;
    for (auto& w : workers) ok = w.get() && ok;
    return ok;
  }

  ConversationId TargetOf(uint32_t i) {
    if (args_.mode == "groups") {
      return ConversationId::Group(GroupId(group_base_ + i / args_.group_size));
    }
    const uint32_t peer = i ^ 1u;
    const UserId other = peer < conns_.size() ? conns_[peer].user : conns_[i].user;
    return ConversationId::Direct(conns_[i].user, other);
  }

  void Open(uint32_t i) {
    Conn& c = conns_[i];
    c.ws = std::make_shared<WsClient>(io_, args_.tls.get());
    c.ws->on_frame = [this, i](std::string_view frame) { OnFrame(i, frame); };
    c.ws->on_closed = [this, i](const boost::system::error_code&) {
      if (!stopping_) {
        errors_closed_++;
        conns_[i].ready = false;
      }
    };
    const HostPort& server = args_.servers[i % args_.servers.size()];
    const std::string target = args_.echo ? "/" : "/ws?token=" + c.token;
    c.ws->Connect(server, target, [this, i](const boost::system::error_code& ec) {
      if (ec) {
        errors_connect_++;
        connected_failed_++;
        return;
      }
      connected_++;
      Conn& conn = conns_[i];
      if (args_.echo) {
        conn.ready = true;
        return;
      }
      conn.target = TargetOf(i);
      if (args_.mode == "groups" && !args_.idle) {
        conn.ws->Send(ToJson(JoinGroup{1, conn.target.group()}));
      } else {
        conn.ready = true;
      }
    });
  }

  void WaitReady() {
    size_t ready = 0;
    for (const Conn& c : conns_) ready += c.ready ? 1 : 0;
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_wait_).count();
    if (ready + connected_failed_ < conns_.size() && waited < 120) {
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
      t->async_wait([this, t](const boost::system::error_code&) { WaitReady(); });
      return;
    }
    std::cerr << "chatload: " << ready << "/" << conns_.size() << " connections ready in "
              << absl::StrFormat("%.1f", waited) << " s" << std::endl;
    if (args_.idle) {
      std::cout << "connected " << ready << std::endl;
      StopAfter(args_.duration_s);
      return;
    }
    start_ = NowUs();
    window_.from_us = start_ + static_cast<TimeUs>(args_.warmup_s * 1e6);
    window_.end_us = window_.from_us + static_cast<TimeUs>(args_.duration_s * 1e6);
    if (args_.window > 0) {
      for (uint32_t i = 0; i < conns_.size(); ++i) {
        for (uint32_t w = 0; w < args_.window; ++w) SendOne(i);
      }
    } else {
      Tick();
    }
    StopAfter(args_.warmup_s + args_.duration_s);
  }

  void StopAfter(double seconds) {
    auto t = std::make_shared<asio::steady_timer>(
        io_, std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    t->async_wait([this, t](const boost::system::error_code&) {
      stopping_ = true;
      for (Conn& c : conns_) {
        if (c.ws) c.ws->Close();
      }
      auto done = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(300));
      done->async_wait([this, done](const boost::system::error_code&) { io_.stop(); });
    });
  }

  // Open loop: every millisecond, send what the target rate says is due, round robin.
  void Tick() {
    if (stopping_) return;
    const double elapsed_s = static_cast<double>(NowUs() - start_) / 1e6;
    const auto due = static_cast<uint64_t>(elapsed_s * args_.rate);
    while (scheduled_ < due) {
      scheduled_++;
      SendOne(static_cast<uint32_t>(next_sender_++ % conns_.size()));
    }
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(1));
    t->async_wait([this, t](const boost::system::error_code&) { Tick(); });
  }

  void SendOne(uint32_t i) {
    Conn& c = conns_[i];
    if (!c.ready || stopping_ || !c.ws->open()) {
      skipped_++;
      return;
    }
    const TimeUs now = NowUs();
    std::string body = load::Body(now, args_.body_bytes);
    if (window_.Sent(now)) sent_++;
    c.outstanding++;
    if (args_.echo) {
      c.ws->Send(body);
      return;
    }
    c.ws->Send(ToJson(SendMessage{c.cmid_next++, c.target, now, std::move(body)}));
  }

  void Observe(TimeUs sent_at) {
    const TimeUs now = NowUs();
    if (!window_.Sent(sent_at)) return;
    delivered_++;
    latencies_.Add(now - sent_at);
  }

  void OnFrame(uint32_t i, std::string_view frame) {
    Conn& c = conns_[i];
    if (args_.echo) {
      Observe(load::SentAt(frame));
      c.outstanding--;
      if (args_.window > 0 && !stopping_) SendOne(i);
      return;
    }
    auto m = FromJson(frame, JsonLimits{64u << 20, 64});
    if (!m.ok()) {
      errors_other_++;
      return;
    }
    if (const auto* ack = std::get_if<SendAck>(&*m)) {
      c.outstanding = c.outstanding > 0 ? c.outstanding - 1 : 0;
      if (ack->code == Code::kOk) {
        if (ack->message_id != 0 && SentAtOk(ack)) acked_++;
      } else {
        errors_ack_++;
      }
      if (args_.window > 0 && !stopping_) SendOne(i);
    } else if (const auto* d = std::get_if<Deliver>(&*m)) {
      Observe(load::SentAt(d->message.body));
      if (args_.receipts) {
        c.ws->Send(
            ToJson(Receipt{d->message.conv, ReceiptKind::kDelivered, d->message.message_id}));
      }
    } else if (const auto* g = std::get_if<GroupResult>(&*m)) {
      if (g->code == Code::kOk)
        c.ready = true;
      else
        errors_other_++;
    } else if (std::holds_alternative<ErrorReply>(*m)) {
      errors_reply_++;
      if (c.outstanding > 0) c.outstanding--;
      if (args_.window > 0 && !stopping_) SendOne(i);
    }
  }
  bool SentAtOk(const SendAck*) const { return window_.Acked(NowUs()); }

  int Report() {
    if (args_.idle) return 0;
    auto pct = [&](double p) { return latencies_.PercentileMs(p); };
    const double d = args_.duration_s;
    const uint64_t errors =
        errors_ack_ + errors_reply_ + errors_closed_ + errors_connect_ + errors_other_;
    std::cout << absl::StrFormat(
        "%s connections=%u mode=%s %s duration=%.1fs sent/s=%.0f acked/s=%.0f delivered/s=%.0f "
        "e2e_ms p50=%.2f p99=%.2f p99.9=%.2f errors=%u (ack=%u error_reply=%u closed=%u "
        "connect=%u other=%u) skipped=%u\n",
        args_.echo ? "echo" : "chatd", args_.connections, args_.echo ? "echo" : args_.mode,
        args_.window > 0 ? absl::StrCat("window=", args_.window)
                         : absl::StrCat("rate=", args_.rate),
        d, static_cast<double>(sent_) / d, static_cast<double>(acked_) / d,
        static_cast<double>(delivered_) / d, pct(0.5), pct(0.99), pct(0.999), errors, errors_ack_,
        errors_reply_, errors_closed_, errors_connect_, errors_other_, skipped_);
    return 0;
  }

  Args args_;
  asio::io_context io_;
  std::vector<LoginResult> logins_;
  std::vector<Conn> conns_;
  uint64_t group_base_ = 0;
  std::chrono::steady_clock::time_point start_wait_;
  size_t connected_ = 0;
  size_t connected_failed_ = 0;
  TimeUs start_ = 0;
  load::Window window_;  // the measured interval
  bool stopping_ = false;
  uint64_t scheduled_ = 0;
  uint64_t next_sender_ = 0;
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  uint64_t delivered_ = 0;
  uint64_t skipped_ = 0;
  uint32_t errors_ack_ = 0;
  uint32_t errors_reply_ = 0;
  uint32_t errors_closed_ = 0;
  uint32_t errors_connect_ = 0;
  uint32_t errors_other_ = 0;
  load::Latencies latencies_;
};

// ---- The ceiling: a bare Beast WebSocket echo server, one thread
// ----------------------------------

class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  explicit EchoSession(tcp::socket s) : ws_(std::move(s)) {}
  void Start() {
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Read();
    });
  }

 private:
  void Read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->ws_.text(self->ws_.got_text());
      self->ws_.async_write(self->buffer_.data(), [self](beast::error_code ec2, size_t) {
        if (ec2) return;
        self->buffer_.consume(self->buffer_.size());
        self->Read();
      });
    });
  }
  beast::websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
};

int EchoServer(const HostPort& listen) {
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address(listen.host), listen.port));
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](beast::error_code ec, tcp::socket s) {
      if (!ec) {
        beast::error_code nodelay_ec;
        s.set_option(tcp::no_delay(true), nodelay_ec);
        std::make_shared<EchoSession>(std::move(s))->Start();
      }
      accept();
    });
  };
  accept();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { io.stop(); });
  std::cerr << "echo-server listening on " << acceptor.local_endpoint().port() << std::endl;
  io.run();
  return 0;
}

}  // namespace
}  // namespace chatlab::real

int main(int argc, char** argv) {
  using namespace chatlab::real;
  if (argc >= 2 && std::string(argv[1]) == "echo-server") {
    std::string listen = "127.0.0.1:7900";
    if (argc >= 4 && std::string(argv[2]) == "--listen") listen = argv[3];
    auto hp = ParseHostPort(listen);
    if (!hp.ok()) {
      std::cerr << "chatload: " << hp.status().message() << "\n";
      return 2;
    }
    return EchoServer(*hp);
  }
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    for (char& ch : a) ch = ch == '-' && &ch > &a[1] ? '_' : ch;
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "chatload: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](auto& out) {
      const std::string v = value();
      if (!absl::SimpleAtoi(v, &out)) {
        std::cerr << "chatload: " << a << ": bad number " << v << "\n";
        std::exit(2);
      }
    };
    auto real = [&](double& out) {
      const std::string v = value();
      if (!absl::SimpleAtod(v, &out)) {
        std::cerr << "chatload: " << a << ": bad number " << v << "\n";
        std::exit(2);
      }
    };
    if (a == "--server") {
      for (absl::string_view s : absl::StrSplit(value(), ',')) {
        auto hp = ParseHostPort(std::string_view(s.data(), s.size()));
        if (!hp.ok()) {
          std::cerr << "chatload: " << hp.status().message() << "\n";
          return 2;
        }
        args.servers.push_back(*hp);
      }
    } else if (a == "--users") {
      args.users = value();
    } else if (a == "--password") {
      args.password = value();
    } else if (a == "--users_count") {
      number(args.users_count);
    } else if (a == "--connections") {
      number(args.connections);
    } else if (a == "--mode") {
      args.mode = value();
    } else if (a == "--group_size") {
      number(args.group_size);
    } else if (a == "--group_base") {
      number(args.group_base);
    } else if (a == "--rate") {
      real(args.rate);
    } else if (a == "--window") {
      number(args.window);
    } else if (a == "--duration") {
      real(args.duration_s);
    } else if (a == "--warmup") {
      real(args.warmup_s);
    } else if (a == "--body_bytes") {
      number(args.body_bytes);
    } else if (a == "--receipts") {
      args.receipts = true;
    } else if (a == "--idle") {
      args.idle = true;
    } else if (a == "--echo") {
      args.echo = true;
    } else if (a == "--tls" || a == "--tls_ca") {
      auto ctx = ClientTlsContext(a == "--tls_ca" ? value() : "");
      if (!ctx.ok()) {
        std::cerr << "chatload: " << ctx.status().message() << "\n";
        return 2;
      }
      args.tls = *std::move(ctx);
    } else {
      std::cerr << "chatload: unknown flag " << argv[i] << "\n";
      return 2;
    }
  }
  if (args.servers.empty()) args.servers.push_back(HostPort{"127.0.0.1", 7000});
  if (args.mode != "pairs" && args.mode != "groups") {
    std::cerr << "chatload: --mode is pairs or groups\n";
    return 2;
  }
  if (args.rate <= 0 && args.window == 0 && !args.idle) args.window = 1;
  if (args.group_size == 0) args.group_size = 1;
  Load load(std::move(args));
  return load.Run();
}
