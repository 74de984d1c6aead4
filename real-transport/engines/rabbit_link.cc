#include "real-transport/engines/rabbit_link.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace asio = boost::asio;
namespace {

using Clock = std::chrono::steady_clock;

// How many frames one read pass takes before the thread looks at its commands again.
constexpr int kFramesPerRead = 64;
// The longest the thread sleeps in poll when nothing happens (heartbeats are due on this scale).
constexpr int kPollMs = 500;

timeval Timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

std::string Bytes(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

// Why a reply is not NORMAL ("" when it is).
std::string ReplyError(const amqp_rpc_reply_t& r, const char* what) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "";
    case AMQP_RESPONSE_NONE:
      return absl::StrCat(what, ": no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return absl::StrCat(what, ": ", amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
        return absl::StrCat(what, ": connection closed by the server: ", m->reply_code, " ",
                            Bytes(m->reply_text));
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
        return absl::StrCat(what, ": channel closed by the server: ", m->reply_code, " ",
                            Bytes(m->reply_text));
      }
      return absl::StrCat(what, ": server exception (method ", r.reply.id, ")");
  }
  return absl::StrCat(what, ": unknown reply");
}

}  // namespace

absl::StatusOr<RabbitAddress> ParseRabbitUrl(const std::string& url) {
  const auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", url, "\" is not an amqp://user:password@host:port/vhost URL (", why, ")"));
  };
  if (url.rfind("amqp://", 0) != 0)
    return bad("it must start with amqp://; amqps is not supported");
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) return bad("malformed");
  if (info.host == nullptr || info.host[0] == '\0') return bad("no host");
  if (info.port <= 0 || info.port > 65535) return bad("port out of range");
  RabbitAddress a;
  a.host = info.host;
  a.port = info.port;
  a.user = info.user != nullptr ? info.user : "guest";
  a.password = info.password != nullptr ? info.password : "guest";
  // RabbitMQ has no vhost named "", which is what "amqp://host/" spells: take it as "/".
  a.vhost = info.vhost != nullptr && info.vhost[0] != '\0' ? info.vhost : "/";
  return a;
}

struct RabbitLink::Connection {
  amqp_connection_state_t state = amqp_new_connection();
  int fd = -1;
  Clock::time_point last_write = Clock::now();
  ~Connection() { amqp_destroy_connection(state); }
};

RabbitLink::RabbitLink(asio::io_context& io, Options options,
                       std::function<void(Delivery)> on_delivery)
    : io_(io),
      options_(std::move(options)),
      sink_(std::make_shared<Sink>(Sink{std::move(on_delivery), options_.on_error})) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { Run(); });
}

RabbitLink::~RabbitLink() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  Wake();
  {
    // A write blocked on a server that stopped reading (a memory alarm, a partition) would hold
    // the thread, and this join, for ever: give it timeout_ms, then cut the connection under it.
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(options_.timeout_ms),
                      [&] { return stopped_; })) {
      std::lock_guard fd_lock(fd_mu_);
      if (live_fd_ >= 0) shutdown(live_fd_, SHUT_RDWR);
    }
  }
  thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  sink_.reset();  // deliveries and errors posted but not run yet now do nothing
}

void RabbitLink::ForgetFd() {
  std::lock_guard lock(fd_mu_);
  live_fd_ = -1;
}

void RabbitLink::Wake() {
  cv_.notify_all();
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void RabbitLink::Publish(std::string queue, std::string body) {
  Push(Command{Command::Kind::kPublish, std::move(queue), std::move(body), 0, 0});
}

void RabbitLink::Consume() {
  {
    std::lock_guard lock(mu_);
    consume_ = true;
  }
  Wake();
}

void RabbitLink::Ack(uint64_t generation, uint64_t tag) {
  Push(Command{Command::Kind::kAck, "", "", generation, tag});
}

void RabbitLink::Push(Command c) {
  {
    std::lock_guard lock(mu_);
    // Acks are never refused: at most one delivery is unacked (prefetch 1), and a refused ack
    // would hold the queue until the connection drops.
    if (stopping_ ||
        (c.kind == Command::Kind::kPublish && commands_.size() >= options_.commands_max)) {
      if (c.kind == Command::Kind::kPublish) stats_.publishes_lost++;
      return;
    }
    commands_.push_back(std::move(c));
    pending_++;
  }
  Wake();
}

void RabbitLink::ReportError(std::string why) {
  stats_.errors++;
  if (why == last_error_) return;
  last_error_ = why;
  asio::post(io_, [sink = std::weak_ptr<Sink>(sink_), why = std::move(why)] {
    if (auto s = sink.lock(); s && s->on_error) s->on_error(why);
  });
}

void RabbitLink::Drop(const std::string& why) {
  consuming_ = false;
  consuming_now_ = false;  // before the report, so that whoever reads it sees the link down
  ForgetFd();
  conn_.reset();
  ReportError(why);
}

bool RabbitLink::Connect() {
  const RabbitAddress& a = options_.address;
  const std::string where = absl::StrCat("rabbitmq ", a.host, ":", a.port, ": ");
  auto c = std::make_unique<Connection>();
  amqp_socket_t* socket = amqp_tcp_socket_new(c->state);
  timeval timeout = Timeval(options_.timeout_ms);
  if (socket == nullptr) {
    ReportError(where + "cannot create a socket");
    return false;
  }
  if (int s = amqp_socket_open_noblock(socket, a.host.c_str(), a.port, &timeout); s < 0) {
    ReportError(absl::StrCat(where, "connect: ", amqp_error_string2(s)));
    return false;
  }
  c->fd = amqp_socket_get_sockfd(socket);
  amqp_set_handshake_timeout(c->state, &timeout);
  amqp_set_rpc_timeout(c->state, &timeout);
  std::string why =
      ReplyError(amqp_login(c->state, a.vhost.c_str(), 0, 131072, options_.heartbeat_s,
                            AMQP_SASL_METHOD_PLAIN, a.user.c_str(), a.password.c_str()),
                 "login");
  if (why.empty()) {
    amqp_channel_open(c->state, 1);
    why = ReplyError(amqp_get_rpc_reply(c->state), "channel.open");
  }
  if (!why.empty()) {
    ReportError(where + why);
    return false;
  }
  {
    std::lock_guard lock(fd_mu_);
    live_fd_ = c->fd;
  }
  conn_ = std::move(c);
  generation_++;
  consuming_ = false;
  stats_.connects++;
  last_error_.clear();
  return true;
}

bool RabbitLink::StartConsuming(std::string* why) {
  amqp_connection_state_t s = conn_->state;
  std::vector<amqp_table_entry_t> entries;
  const auto arg = [&](const char* key, int64_t value) {
    if (value <= 0) return;
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = value;
    entries.push_back(e);
  };
  arg("x-expires", options_.args.expires_ms);
  arg("x-message-ttl", options_.args.message_ttl_ms);
  arg("x-max-length", options_.args.max_length);
  const amqp_table_t table{static_cast<int>(entries.size()), entries.data()};
  const amqp_bytes_t queue = amqp_cstring_bytes(options_.queue.c_str());
  amqp_queue_declare(s, 1, queue, /*passive=*/0, /*durable=*/0, /*exclusive=*/0,
                     /*auto_delete=*/0, table);
  *why = ReplyError(amqp_get_rpc_reply(s), "queue.declare");
  if (why->empty()) {
    amqp_basic_qos(s, 1, 0, /*prefetch_count=*/1, /*global=*/0);
    *why = ReplyError(amqp_get_rpc_reply(s), "basic.qos");
  }
  if (why->empty()) {
    amqp_basic_consume(s, 1, queue, amqp_empty_bytes, /*no_local=*/0, /*no_ack=*/0,
                       /*exclusive=*/1, amqp_empty_table);
    *why = ReplyError(amqp_get_rpc_reply(s), "basic.consume");
  }
  if (!why->empty()) {
    *why = absl::StrCat("queue ", options_.queue, ": ", *why);
    return false;
  }
  consuming_ = true;
  consuming_now_ = true;
  return true;
}

bool RabbitLink::Write(const Command& c, std::string* why) {
  amqp_connection_state_t s = conn_->state;
  int status = AMQP_STATUS_OK;
  switch (c.kind) {
    case Command::Kind::kPublish: {
      const amqp_bytes_t body{c.body.size(), const_cast<char*>(c.body.data())};
      status = amqp_basic_publish(s, 1, amqp_empty_bytes, amqp_cstring_bytes(c.queue.c_str()),
                                  /*mandatory=*/0, /*immediate=*/0, nullptr, body);
      if (status == AMQP_STATUS_OK) stats_.published++;
      break;
    }
    case Command::Kind::kAck:
      if (c.generation != generation_) {
        stats_.acks_dropped++;  // its delivery was requeued when that connection died
        return true;
      }
      status = amqp_basic_ack(s, 1, c.tag, /*multiple=*/0);
      if (status == AMQP_STATUS_OK) stats_.acked++;
      break;
  }
  if (status != AMQP_STATUS_OK) {
    if (c.kind == Command::Kind::kPublish) stats_.publishes_lost++;
    *why = absl::StrCat("write: ", amqp_error_string2(status));
    return false;
  }
  conn_->last_write = Clock::now();
  return true;
}

bool RabbitLink::ReadSome(std::string* why) {
  amqp_connection_state_t s = conn_->state;
  const std::weak_ptr<Sink> sink(sink_);
  for (int i = 0; i < kFramesPerRead; ++i) {
    amqp_maybe_release_buffers(s);
    amqp_envelope_t envelope;
    // A zero timeout still lets librabbitmq check the heartbeat deadlines: a silent server is
    // detected after two missed beats (RabbitLink.ASilentServerIsDetectedByItsMissingHeartbeats).
    timeval now{0, 0};
    const amqp_rpc_reply_t r = amqp_consume_message(s, &envelope, &now, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      Delivery d{generation_, envelope.delivery_tag, envelope.redelivered != 0,
                 Bytes(envelope.message.body)};
      amqp_destroy_envelope(&envelope);
      stats_.delivered++;
      asio::post(io_, [sink, d = std::move(d)]() mutable {
        if (auto k = sink.lock()) k->on_delivery(std::move(d));
      });
      continue;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      return true;  // nothing more has arrived
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // A frame other than a delivery: a close ends the connection; anything else is ignored.
      amqp_frame_t frame;
      if (int st = amqp_simple_wait_frame(s, &frame); st != AMQP_STATUS_OK) {
        *why = absl::StrCat("read: ", amqp_error_string2(st));
        return false;
      }
      if (frame.frame_type == AMQP_FRAME_METHOD &&
          (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
           frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        amqp_rpc_reply_t closed;
        closed.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
        closed.reply = frame.payload.method;
        *why = ReplyError(closed, "read");
        return false;
      }
      continue;
    }
    *why = ReplyError(r, "read");
    return false;
  }
  return true;
}

void RabbitLink::Run() {
  const std::string where =
      absl::StrCat("rabbitmq ", options_.address.host, ":", options_.address.port, ": ");
  while (true) {
    bool stop = false, want_consume = false;
    std::deque<Command> batch;
    {
      std::lock_guard lock(mu_);
      stop = stopping_;
      want_consume = consume_;
    }
    if (conn_ == nullptr) {
      if (stop) break;
      if (!Connect()) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_ms), [&] { return stopping_; });
        continue;
      }
    }
    std::string why;
    if (want_consume && !consuming_ && !StartConsuming(&why)) {
      Drop(where + why);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_ms), [&] { return stopping_; });
      continue;
    }
    {
      std::lock_guard lock(mu_);
      batch.swap(commands_);
    }
    size_t done = 0;
    for (const Command& c : batch) {
      ++done;
      if (!Write(c, &why)) break;
    }
    pending_ -= done;
    if (done < batch.size() || !why.empty()) {
      // The rest go back, in order, for the next connection (acks of this one will be dropped).
      std::lock_guard lock(mu_);
      for (size_t i = batch.size(); i > done; --i) commands_.push_front(std::move(batch[i - 1]));
    }
    if (!why.empty()) {
      Drop(where + why);
      continue;
    }
    if (stop) break;
    if (options_.heartbeat_s > 0 &&
        Clock::now() - conn_->last_write > std::chrono::milliseconds(options_.heartbeat_s * 500)) {
      amqp_frame_t beat{};
      beat.frame_type = AMQP_FRAME_HEARTBEAT;
      beat.channel = 0;
      if (int st = amqp_send_frame(conn_->state, &beat); st != AMQP_STATUS_OK) {
        Drop(absl::StrCat(where, "heartbeat: ", amqp_error_string2(st)));
        continue;
      }
      conn_->last_write = Clock::now();
    }
    if (!amqp_data_in_buffer(conn_->state) && !amqp_frames_enqueued(conn_->state)) {
      pollfd fds[2] = {{conn_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      poll(fds, 2, kPollMs);
      if (fds[1].revents & POLLIN) {
        uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof count);
      }
    }
    if (!ReadSome(&why)) Drop(where + why);
  }
  // Stopping: what could not be written is lost.
  std::lock_guard lock(mu_);
  for (const Command& c : commands_) {
    if (c.kind == Command::Kind::kPublish) stats_.publishes_lost++;
  }
  pending_ -= commands_.size();
  commands_.clear();
  if (conn_ != nullptr) {
    amqp_channel_close(conn_->state, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_->state, AMQP_REPLY_SUCCESS);
    ForgetFd();
    conn_.reset();
    consuming_now_ = false;
  }
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace chatlab::real
