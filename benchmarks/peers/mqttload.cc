// mqttload: chatload's 1:1 load, spoken to an MQTT broker (mosquitto) through libmosquitto, so
// that real-transport/bench.sh can put chatd beside the peer a user would pick instead.
//
//   mqttload --server H:P --connections N [--window W | --rate MSGS_PER_S]
//            [--duration S] [--warmup S] [--body_bytes B] [--qos 0|1]
//
// It mirrors chatload's pairs mode (real-transport/chatload_main.cc) point by point, and shares
// its definitions of the body, the measured interval and the percentiles
// (real-transport/load_measure.h):
// - connection 2k talks with 2k+1: each subscribes to its own topic (QoS 1) and publishes to its
//   partner's (QoS 1 by default), so every message crosses the broker once, like a 1:1 message
//   crosses chatd once;
// - --window W is the closed loop: at most W publishes per connection not yet acknowledged
//   (PUBACK, the broker's promise, as SendAck is chatd's); --rate R is the open loop: R publishes
//   per second in all, round robin, due every millisecond;
// - the body is "t=<send time in us>;" padded to B bytes, and the latency is send to receipt at
//   the partner, on the same clock; only messages sent in the measured interval (after the
//   warm-up) count, and acks count when they arrive in it (or up to 2 s after, as chatload);
// - one thread drives every connection (poll over the sockets), as chatload's one io_context.
// The report is one line in chatload's format, plus total_acked (warm-up included), which
// bench.sh divides the broker's CPU by.
//
// What a PUBACK promises is the broker's business: mosquitto acknowledges a QoS 1 publish once it
// has queued it for the subscribers, in memory (its persistence file is written on an interval,
// never per message); chatd acknowledges once the message is on disk. bench.sh says so.
#include <mosquitto.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "real-transport/load_measure.h"

namespace {

using TimeUs = int64_t;

TimeUs NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Args {
  std::string host = "127.0.0.1";
  int port = 1883;
  uint32_t connections = 2;
  uint32_t window = 0;
  double rate = 0;
  double duration_s = 10;
  double warmup_s = 1;
  uint32_t body_bytes = 64;
  int qos = 1;
};

class Load;

struct Conn {
  Load* load = nullptr;
  uint32_t index = 0;
  mosquitto* mosq = nullptr;
  std::string topic;          // subscribed to
  std::string partner_topic;  // published to
  bool connected = false;
  bool ready = false;  // subscribed
  uint32_t outstanding = 0;
};

class Load {
 public:
  explicit Load(Args args) : args_(std::move(args)), conns_(args_.connections) {}

  ~Load() {
    for (Conn& c : conns_) {
      if (c.mosq != nullptr) mosquitto_destroy(c.mosq);
    }
  }

  // Connects every connection (blocking TCP connect, CONNECT sent), then runs the load.
  int Run() {
    const std::string run = std::to_string(getpid());
    for (uint32_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      c.load = this;
      c.index = i;
      c.topic = "chatlab/" + run + "/" + std::to_string(i);
      c.partner_topic = "chatlab/" + run + "/" + std::to_string(i ^ 1u);
      const std::string id = "mqttload-" + run + "-" + std::to_string(i);
      c.mosq = mosquitto_new(id.c_str(), /*clean_session=*/true, &c);
      if (c.mosq == nullptr) return Fail("mosquitto_new failed");
      // The window is ours; the library must not hold publishes back below it.
      mosquitto_int_option(c.mosq, MOSQ_OPT_SEND_MAXIMUM,
                           static_cast<int>(args_.window > 0 ? args_.window : 65535));
      // No Nagle, as chatload's sockets (and chatd's, and the broker's set_tcp_nodelay).
      mosquitto_int_option(c.mosq, MOSQ_OPT_TCP_NODELAY, 1);
      mosquitto_connect_callback_set(c.mosq, &Load::OnConnect);
      mosquitto_subscribe_callback_set(c.mosq, &Load::OnSubscribe);
      mosquitto_publish_callback_set(c.mosq, &Load::OnPublish);
      mosquitto_message_callback_set(c.mosq, &Load::OnMessage);
      mosquitto_disconnect_callback_set(c.mosq, &Load::OnDisconnect);
      const int rc = mosquitto_connect(c.mosq, args_.host.c_str(), args_.port, 60);
      if (rc != MOSQ_ERR_SUCCESS) {
        return Fail("connect to " + args_.host + ":" + std::to_string(args_.port) + ": " +
                    mosquitto_strerror(rc));
      }
    }
    // Until every connection is subscribed (or 120 s).
    const TimeUs wait_from = NowUs();
    while (Ready() < conns_.size()) {
      if (NowUs() - wait_from > 120 * 1'000'000) {
        return Fail(std::to_string(Ready()) + "/" + std::to_string(conns_.size()) +
                    " connections subscribed after 120 s");
      }
      Poll(10);
    }
    std::fprintf(stderr, "mqttload: %zu/%zu connections ready in %.1f s\n", Ready(), conns_.size(),
                 static_cast<double>(NowUs() - wait_from) / 1e6);
    start_ = NowUs();
    window_.from_us = start_ + static_cast<TimeUs>(args_.warmup_s * 1e6);
    window_.end_us = window_.from_us + static_cast<TimeUs>(args_.duration_s * 1e6);
    if (args_.window > 0) {
      for (uint32_t i = 0; i < conns_.size(); ++i) {
        for (uint32_t w = 0; w < args_.window; ++w) SendOne(i);
      }
    }
    // The load, then 300 ms for what is in flight (chatload's close delay).
    while (NowUs() < window_.end_us + 300'000) {
      if (NowUs() >= window_.end_us) stopping_ = true;
      if (args_.rate > 0 && !stopping_) Tick();
      Poll(1);
    }
    for (Conn& c : conns_) mosquitto_disconnect(c.mosq);
    return Report();
  }

 private:
  static Load& Of(void* obj) { return *static_cast<Conn*>(obj)->load; }

  static void OnConnect(mosquitto* m, void* obj, int rc) {
    Conn& c = *static_cast<Conn*>(obj);
    if (rc != 0) {
      Of(obj).errors_connect_++;
      return;
    }
    c.connected = true;
    if (mosquitto_subscribe(m, nullptr, c.topic.c_str(), 1) != MOSQ_ERR_SUCCESS) {
      Of(obj).errors_connect_++;
    }
  }
  static void OnSubscribe(mosquitto*, void* obj, int, int count, const int* granted) {
    Conn& c = *static_cast<Conn*>(obj);
    if (count == 1 && granted[0] == 1) {
      c.ready = true;
    } else {
      Of(obj).errors_connect_++;
    }
  }
  // QoS 1: the broker's PUBACK. QoS 0: the publish was written.
  static void OnPublish(mosquitto*, void* obj, int) {
    Conn& c = *static_cast<Conn*>(obj);
    Load& load = Of(obj);
    c.outstanding = c.outstanding > 0 ? c.outstanding - 1 : 0;
    load.total_acked_++;
    if (load.window_.Acked(NowUs())) load.acked_++;
    if (load.args_.window > 0 && !load.stopping_) load.SendOne(c.index);
  }
  static void OnMessage(mosquitto*, void* obj, const mosquitto_message* msg) {
    Load& load = Of(obj);
    const std::string_view body(static_cast<const char*>(msg->payload),
                                static_cast<size_t>(msg->payloadlen));
    load.Observe(chatlab::real::load::SentAt(body));
  }
  static void OnDisconnect(mosquitto*, void* obj, int rc) {
    if (rc != 0) Of(obj).errors_closed_++;
  }

  size_t Ready() const {
    size_t n = 0;
    for (const Conn& c : conns_) n += c.ready ? 1 : 0;
    return n;
  }

  // One round of poll over every socket: reads what came, writes what is queued, keepalives.
  void Poll(int timeout_ms) {
    pfds_.resize(conns_.size());
    for (size_t i = 0; i < conns_.size(); ++i) {
      pfds_[i].fd = mosquitto_socket(conns_[i].mosq);
      pfds_[i].events =
          static_cast<short>(POLLIN | (mosquitto_want_write(conns_[i].mosq) ? POLLOUT : 0));
      pfds_[i].revents = 0;
    }
    const int n = poll(pfds_.data(), pfds_.size(), timeout_ms);
    if (n < 0) return;
    for (size_t i = 0; i < conns_.size(); ++i) {
      mosquitto* m = conns_[i].mosq;
      if (pfds_[i].revents & (POLLIN | POLLHUP | POLLERR)) mosquitto_loop_read(m, 1);
      // Publishes made in the read's callbacks are queued, not written: write them now.
      if (mosquitto_want_write(m)) mosquitto_loop_write(m, 1);
    }
    if (NowUs() - last_misc_ > 1'000'000) {
      last_misc_ = NowUs();
      for (Conn& c : conns_) mosquitto_loop_misc(c.mosq);
    }
  }

  void Tick() {
    const double elapsed_s = static_cast<double>(NowUs() - start_) / 1e6;
    const auto due = static_cast<uint64_t>(elapsed_s * args_.rate);
    while (scheduled_ < due) {
      scheduled_++;
      SendOne(static_cast<uint32_t>(next_sender_++ % conns_.size()));
    }
  }

  void SendOne(uint32_t i) {
    Conn& c = conns_[i];
    if (!c.ready || stopping_) {
      skipped_++;
      return;
    }
    const TimeUs now = NowUs();
    const std::string body = chatlab::real::load::Body(now, args_.body_bytes);
    if (window_.Sent(now)) sent_++;
    c.outstanding++;
    const int rc = mosquitto_publish(c.mosq, nullptr, c.partner_topic.c_str(),
                                     static_cast<int>(body.size()), body.data(), args_.qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
      errors_publish_++;
      c.outstanding--;
    }
  }

  void Observe(TimeUs sent_at) {
    const TimeUs now = NowUs();
    if (!window_.Sent(sent_at)) return;
    delivered_++;
    latencies_.Add(now - sent_at);
  }

  int Report() {
    auto pct = [&](double p) { return latencies_.PercentileMs(p); };
    const double d = args_.duration_s;
    const uint64_t errors = errors_connect_ + errors_closed_ + errors_publish_;
    std::string load = args_.window > 0
                           ? "window=" + std::to_string(args_.window)
                           : "rate=" + std::to_string(static_cast<int64_t>(args_.rate));
    std::printf(
        "mosquitto connections=%u mode=pairs %s qos=%d duration=%.1fs sent/s=%.0f acked/s=%.0f "
        "delivered/s=%.0f e2e_ms p50=%.2f p99=%.2f p99.9=%.2f errors=%llu (connect=%llu "
        "closed=%llu publish=%llu) skipped=%llu total_acked=%llu\n",
        args_.connections, load.c_str(), args_.qos, d, static_cast<double>(sent_) / d,
        static_cast<double>(acked_) / d, static_cast<double>(delivered_) / d, pct(0.5), pct(0.99),
        pct(0.999), static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(errors_connect_),
        static_cast<unsigned long long>(errors_closed_),
        static_cast<unsigned long long>(errors_publish_), static_cast<unsigned long long>(skipped_),
        static_cast<unsigned long long>(total_acked_));
    return errors == 0 ? 0 : 1;
  }

  int Fail(const std::string& what) {
    std::fprintf(stderr, "mqttload: %s\n", what.c_str());
    return 2;
  }

  Args args_;
  std::vector<Conn> conns_;
  std::vector<pollfd> pfds_;
  TimeUs start_ = 0;
  chatlab::real::load::Window window_;  // the measured interval
  TimeUs last_misc_ = 0;
  bool stopping_ = false;
  uint64_t scheduled_ = 0;
  uint64_t next_sender_ = 0;
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  uint64_t total_acked_ = 0;
  uint64_t delivered_ = 0;
  uint64_t skipped_ = 0;
  uint64_t errors_connect_ = 0;
  uint64_t errors_closed_ = 0;
  uint64_t errors_publish_ = 0;
  chatlab::real::load::Latencies latencies_;
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "mqttload: %s\nusage: mqttload --server H:P --connections N [--window W | --rate R] "
               "[--duration S] [--warmup S] [--body_bytes B] [--qos 0|1]\n",
               why);
  return 2;
}

template <class T>
bool ParseNumber(std::string_view s, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    const std::string copy(s);
    out = std::strtod(copy.c_str(), &end);
    return end != copy.c_str() && *end == '\0' && out >= 0;
  } else {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return Usage(("missing the value of " + std::string(a)).c_str());
    const std::string_view v = argv[++i];
    bool ok = true;
    if (a == "--server") {
      const size_t colon = v.rfind(':');
      ok = colon != std::string_view::npos && ParseNumber(v.substr(colon + 1), args.port) &&
           args.port > 0 && args.port < 65536;
      if (ok) args.host = std::string(v.substr(0, colon));
    } else if (a == "--connections") {
      ok = ParseNumber(v, args.connections) && args.connections >= 2 && args.connections % 2 == 0;
    } else if (a == "--window") {
      ok = ParseNumber(v, args.window) && args.window > 0;
    } else if (a == "--rate") {
      ok = ParseNumber(v, args.rate) && args.rate > 0;
    } else if (a == "--duration") {
      ok = ParseNumber(v, args.duration_s) && args.duration_s > 0;
    } else if (a == "--warmup") {
      ok = ParseNumber(v, args.warmup_s);
    } else if (a == "--body_bytes") {
      ok = ParseNumber(v, args.body_bytes) && args.body_bytes >= 32;
    } else if (a == "--qos") {
      ok = ParseNumber(v, args.qos) && (args.qos == 0 || args.qos == 1);
    } else {
      return Usage(("unknown flag " + std::string(a)).c_str());
    }
    if (!ok) return Usage(("bad value for " + std::string(a) + ": " + std::string(v)).c_str());
  }
  if ((args.window > 0) == (args.rate > 0)) return Usage("give exactly one of --window and --rate");
  if (args.rate > 0) args.window = 0;
  mosquitto_lib_init();
  int rc = 0;
  {
    Load load(args);
    rc = load.Run();
  }
  mosquitto_lib_cleanup();
  return rc;
}
