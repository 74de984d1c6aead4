// chatcli: a command-line ChatLab client for people.
//
//   chatcli --server 127.0.0.1:7000 --user alice [--password P] COMMAND ...
//     send TO TEXT...     send one message and wait for the server's ack
//     follow TO           live view: history, new messages, delivery/read receipts, typing and
//                         presence; each stdin line is sent; /typing, /stop, /read, /quit
//     history TO          the conversation's history from the Web Service (get_messages)
//     join GROUP | leave GROUP
//   TO is a user name or #GROUP (a group id). The password may also come from CHATLAB_PASSWORD.
//
// It runs the core's ClientSession (outbox, retries, de-duplication, gap detection, catch-up,
// receipts) over one WebSocket: this file only moves frames, fires timers and prints what the
// ClientObserver reports.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/client.h"
#include "nlohmann/json.hpp"
#include "real-transport/json_codec.h"
#include "real-transport/util.h"
#include "real-transport/ws_client.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;

struct Args {
  std::string server = "127.0.0.1:7000";
  std::string user;
  std::string password;
  bool tls = false;    // dial https:// and wss:// (with tls_ca, or the system's trust store)
  std::string tls_ca;  // PEM CA file the server's certificate is verified against
  double for_s = 0;  // follow: stop after this long (0: until /quit or SIGINT)
  std::vector<std::string> command;
};

std::string Time(TimeUs us) {
  const time_t s = static_cast<time_t>(us / kUsPerSecond);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", std::localtime(&s));
  return buf;
}

class Cli : public ClientObserver {
 public:
  Cli(Args args, HostPort address, std::shared_ptr<asio::ssl::context> tls)
      : args_(std::move(args)), address_(std::move(address)), tls_(std::move(tls)) {}

  int Main() {
    if (args_.command.empty()) return Usage();
    auto login = Login(address_, args_.user, args_.password, tls_.get());
    if (!login.ok()) {
      std::cerr << "chatcli: " << login.status().message() << "\n";
      return 1;
    }
    token_ = login->token;
    self_ = login->user;
    names_[self_] = args_.user;
    const std::string& verb = args_.command[0];
    if (verb == "join" || verb == "leave") return Group(verb == "join");
    if (args_.command.size() < 2) return Usage();
    auto conv = Resolve(args_.command[1]);
    if (!conv.ok()) {
      std::cerr << "chatcli: " << conv.status().message() << "\n";
      return 1;
    }
    conv_ = *conv;
    if (verb == "history") return History();
    if (verb == "send" && args_.command.size() >= 3) return SendOne();
    if (verb == "follow") return Follow();
    return Usage();
  }

  // ---- ClientObserver: what the user sees ----
  void OnDisplayed(TimeUs, UserId, const ChatMessage& m, bool, bool) override {
    if (quiet_ || m.conv != conv_) return;
    std::cout << Time(m.sent_at_us) << " " << Name(m.sender) << ": " << m.body << "   [#"
              << m.message_id << "]" << std::endl;
    if (following_ && m.sender != self_) read_dirty_ = true;
  }
  void OnAcked(TimeUs, UserId, const SendAck& ack) override {
    acked_ = true;
    if (!quiet_ || !following_) {
      std::cout << "  (stored #" << ack.message_id << (ack.duplicate ? ", duplicate" : "") << ")"
                << std::endl;
    }
  }
  void OnSendFailed(TimeUs, UserId, const SendAck& ack) override {
    failed_ = true;
    std::cout << "  (send failed: " << CodeName(ack.code) << ")" << std::endl;
  }
  void OnReceiptShown(TimeUs, UserId, const ReceiptUpdate& r) override {
    if (quiet_ || r.conv != conv_) return;
    const char* kind = r.kind == ReceiptKind::kRead ? "read" : "delivered";
    std::cout << "  ✓ " << kind << " up to #" << r.up_to << " by "
              << (r.reader.valid() ? Name(r.reader) : std::string("everyone")) << std::endl;
  }
  void OnTypingShown(TimeUs, UserId, const TypingUpdate& t) override {
    if (quiet_ || t.conv != conv_) return;
    std::cout << "  " << Name(t.user) << (t.active ? " is typing..." : " stopped typing")
              << std::endl;
  }
  void OnPresenceShown(TimeUs, UserId, const PresenceStatus& s, bool,
                       std::optional<bool>) override {
    if (quiet_) return;
    std::cout << "  " << Name(s.user) << " is " << (s.online ? "online" : "offline");
    if (!s.online && s.last_seen_us > 0) std::cout << " (last seen " << Time(s.last_seen_us) << ")";
    std::cout << std::endl;
  }

 private:
  int Usage() {
    std::cerr << "usage: chatcli --server HOST:PORT --user NAME [--password P] [--tls] "
                 "[--tls_ca CA.pem] "
                 "send TO TEXT... | follow TO | history TO | join GROUP | leave GROUP\n";
    return 2;
  }

  std::string Name(UserId u) {
    auto it = names_.find(u);
    return it == names_.end() ? ToString(u) : it->second;
  }

  absl::StatusOr<ConversationId> Resolve(const std::string& to) {
    if (!to.empty() && to[0] == '#') {
      uint64_t g = 0;
      if (!absl::SimpleAtoi(to.substr(1), &g) || g == 0) {
        return absl::InvalidArgumentError("a group is #NUMBER");
      }
      return ConversationId::Group(GroupId(g));
    }
    auto peer = LookupUser(address_, token_, to, tls_.get());
    if (!peer.ok()) return peer.status();
    names_[*peer] = to;
    return ConversationId::Direct(self_, *peer);
  }

  // ---- Web Service calls (HTTP) ----
  int Group(bool join) {
    uint64_t g = 0;
    if (args_.command.size() < 2 ||
        !absl::SimpleAtoi(args_.command[1].substr(args_.command[1][0] == '#' ? 1 : 0), &g)) {
      return Usage();
    }
    const Message m = join ? Message(JoinGroup{1, GroupId(g)}) : Message(LeaveGroup{1, GroupId(g)});
    auto res = HttpCall(address_, "POST", join ? "/api/join_group" : "/api/leave_group", ToJson(m),
                        token_, tls_.get());
    if (!res.ok()) return Fail(res.status());
    auto reply = FromJson(res->body);
    const auto* r = reply.ok() ? std::get_if<GroupResult>(&*reply) : nullptr;
    if (r == nullptr || r->code != Code::kOk) {
      std::cerr << "chatcli: " << res->body << "\n";
      return 1;
    }
    std::cout << (r->joined ? "joined #" : "left #") << g << std::endl;
    return 0;
  }

  int History() {
    MessageId after = 0;
    for (;;) {
      auto res = HttpCall(address_, "POST", "/api/get_messages",
                          ToJson(GetMessages{1, conv_, after, 0}), token_, tls_.get());
      if (!res.ok()) return Fail(res.status());
      auto reply = FromJson(res->body);
      const auto* r = reply.ok() ? std::get_if<MessagesResult>(&*reply) : nullptr;
      if (r == nullptr || r->code != Code::kOk) {
        std::cerr << "chatcli: " << res->body << "\n";
        return 1;
      }
      for (const ChatMessage& m : r->messages) {
        std::cout << Time(m.sent_at_us) << " " << Name(m.sender) << ": " << m.body << "   [#"
                  << m.message_id << "]\n";
        after = m.message_id;
      }
      if (!r->has_more) break;
    }
    return 0;
  }

  int Fail(const absl::Status& s) {
    std::cerr << "chatcli: " << s.message() << "\n";
    return 1;
  }

  // ---- The live session (WebSocket + ClientSession) ----
  void StartSession() {
    ClientSession::Options o;
    o.user = self_;
    o.seed = static_cast<uint64_t>(NowUs());
    o.observer = this;
    o.client_msg_id_first = static_cast<ClientMsgId>(NowUs());  // past every earlier run
    client_.emplace(o);
    Effects out;
    client_->Connect(NowUs(), NodeId(), out);
    Apply(out);
  }

  void Apply(Effects& effects) {
    for (Effect& e : effects) {
      if (auto* send = std::get_if<SendToServer>(&e)) {
        if (ws_) ws_->Send(ToJson(send->msg));
      } else if (std::holds_alternative<OpenSession>(e)) {
        Open();
      } else if (std::holds_alternative<CloseSession>(e)) {
        if (ws_) ws_->Close();
        ws_.reset();
      } else if (auto* timer = std::get_if<ArmTimer>(&e)) {
        auto t = std::make_shared<asio::steady_timer>(
            io_, std::chrono::microseconds(std::max<TimeUs>(0, timer->at_us - NowUs())));
        t->async_wait([this, t, id = timer->timer_id](const boost::system::error_code& ec) {
          if (ec || !client_) return;
          Effects out;
          client_->OnTimer(NowUs(), id, out);
          Apply(out);
        });
      }
    }
  }

  void Open() {
    auto ws = std::make_shared<WsClient>(io_, tls_.get());
    ws_ = ws;
    // The connection's own callbacks name it by address: a shared_ptr in its own members would
    // be a cycle that never frees it (LeakSanitizer found it, with TLS's larger stream).
    WsClient* const self = ws.get();
    ws->on_frame = [this, self](std::string_view frame) {
      if (ws_.get() != self) return;
      auto m = FromJson(frame, JsonLimits{64u << 20, 64});
      if (!m.ok()) return;
      if (const auto* e = std::get_if<ErrorReply>(&*m)) {
        std::cerr << "  (server: " << CodeName(e->code) << " " << e->detail << ")" << std::endl;
      }
      Effects out;
      client_->OnServerMessage(NowUs(), *m, out);
      Apply(out);
      MaybeRead();
    };
    ws->on_closed = [this, self](const boost::system::error_code&) {
      if (ws_.get() != self) return;
      ws_.reset();
      Effects out;
      client_->OnDisconnected(NowUs(), out);
      Apply(out);
    };
    ws->Connect(address_, "/ws?token=" + token_, [this, ws](const boost::system::error_code& ec) {
      Effects out;
      if (ec) {
        if (ws_ == ws) ws_.reset();
        if (!quiet_)
          std::cerr << "  (connect failed: " << ec.message() << "; retrying)" << std::endl;
        client_->OnConnectFailed(NowUs(), out);
      } else {
        client_->OnConnected(NowUs(), SessionId(++session_next_), NodeId(), out);
      }
      Apply(out);
    });
  }

  void MaybeRead() {
    if (!read_dirty_ || !client_->connected()) return;
    read_dirty_ = false;
    Effects out;
    client_->MarkRead(NowUs(), conv_, out);
    Apply(out);
  }

  void Stop() {
    if (client_) {
      Effects out;
      client_->Disconnect(NowUs(), out);
      Apply(out);
    }
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
    t->async_wait([this, t](const boost::system::error_code&) { io_.stop(); });
  }

  int SendOne() {
    quiet_ = true;
    StartSession();
    const std::string text = absl::StrJoin(args_.command.begin() + 2, args_.command.end(), " ");
    Effects out;
    auto id = client_->Send(NowUs(), conv_, text, out);
    if (!id.ok()) return Fail(id.status());
    Apply(out);
    asio::steady_timer deadline(io_, std::chrono::seconds(15));
    deadline.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Stop();
    });
    std::function<void()> poll = [&] {
      if (acked_ || failed_) return Stop();
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(5));
      t->async_wait([&, t](const boost::system::error_code&) { poll(); });
    };
    poll();
    io_.run();
    if (acked_) std::cout << "sent" << std::endl;
    return acked_ ? 0 : 1;
  }

  int Follow() {
    following_ = true;
    std::cout << "-- " << args_.user << " in " << args_.command[1]
              << " (type a line to send; /typing /stop /read /quit)" << std::endl;
    StartSession();
    asio::signal_set signals(io_, SIGINT, SIGTERM);
    signals.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) Stop();
    });
    asio::posix::stream_descriptor in(io_, ::dup(STDIN_FILENO));
    asio::streambuf line_buffer;
    std::function<void()> read_line = [&] {
      asio::async_read_until(in, line_buffer, '\n',
                             [&](const boost::system::error_code& ec, size_t) {
                               if (ec) return;  // stdin closed: keep following
                               std::istream is(&line_buffer);
                               std::string line;
                               std::getline(is, line);
                               if (OnLine(line)) read_line();
                             });
    };
    read_line();
    std::optional<asio::steady_timer> stop_after;
    if (args_.for_s > 0) {
      stop_after.emplace(io_, std::chrono::milliseconds(static_cast<int64_t>(args_.for_s * 1000)));
      stop_after->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) Stop();
      });
    }
    io_.run();
    return 0;
  }

  // One line typed by the user; false to stop reading.
  bool OnLine(const std::string& line) {
    Effects out;
    const TimeUs now = NowUs();
    if (line == "/quit") {
      Stop();
      return false;
    } else if (line == "/typing" || line == "/stop") {
      client_->SetTyping(now, conv_, line == "/typing", out);
    } else if (line == "/read") {
      client_->MarkRead(now, conv_, out);
    } else if (!line.empty()) {
      auto id = client_->Send(now, conv_, line, out);
      if (!id.ok()) std::cerr << "  (" << id.status().message() << ")" << std::endl;
    }
    Apply(out);
    return true;
  }

  Args args_;
  HostPort address_;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain TCP
  asio::io_context io_;
  std::string token_;
  UserId self_;
  ConversationId conv_;
  absl::btree_map<UserId, std::string> names_;
  std::optional<ClientSession> client_;
  std::shared_ptr<WsClient> ws_;
  uint64_t session_next_ = 0;
  bool quiet_ = false;
  bool following_ = false;
  bool read_dirty_ = false;
  bool acked_ = false;
  bool failed_ = false;
};

}  // namespace
}  // namespace chatlab::real

int main(int argc, char** argv) {
  using chatlab::real::Args;
  Args args;
  if (const char* p = std::getenv("CHATLAB_PASSWORD")) args.password = p;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "chatcli: " << a << " needs a value\n";
        std::exit(2);
      }
      out = argv[++i];
    };
    if (a == "--server") {
      value(args.server);
    } else if (a == "--user") {
      value(args.user);
    } else if (a == "--password") {
      value(args.password);
    } else if (a == "--tls") {
      args.tls = true;
    } else if (a == "--tls_ca") {
      value(args.tls_ca);
      args.tls = true;
    } else if (a == "--for") {
      std::string v;
      value(v);
      args.for_s = std::atof(v.c_str());
    } else if (a.rfind("--", 0) == 0) {
      std::cerr << "chatcli: unknown flag " << a << "\n";
      return 2;
    } else {
      args.command.push_back(a);
    }
  }
  if (args.user.empty()) {
    std::cerr << "chatcli: --user is required\n";
    return 2;
  }
  if (args.password.empty()) {
    std::cerr << "password: " << std::flush;
    std::getline(std::cin, args.password);
  }
  auto address = chatlab::real::ParseHostPort(args.server);
  if (!address.ok()) {
    std::cerr << "chatcli: " << address.status().message() << "\n";
    return 2;
  }
  std::shared_ptr<boost::asio::ssl::context> tls;
  if (args.tls) {
    auto ctx = chatlab::real::ClientTlsContext(args.tls_ca);
    if (!ctx.ok()) {
      std::cerr << "chatcli: " << ctx.status().message() << "\n";
      return 2;
    }
    tls = *std::move(ctx);
  }
  chatlab::real::Cli cli(std::move(args), *address, std::move(tls));
  return cli.Main();
}
