// What chatload (real-transport/chatload_main.cc) and its MQTT twin mqttload
// (benchmarks/peers/mqttload.cc) measure, defined once so that the two cannot drift apart:
// the body that carries its send time, the measured interval, and the latency percentiles.
// Header-only and standard C++ only: mqttload links nothing of ours.
#ifndef CHATLAB_REAL_TRANSPORT_LOAD_MEASURE_H_
#define CHATLAB_REAL_TRANSPORT_LOAD_MEASURE_H_

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chatlab::real::load {

// A body of at least `bytes` bytes that carries its send time: "t=<us>;" then 'x' padding.
inline std::string Body(int64_t sent_at_us, uint32_t bytes) {
  std::string body = "t=" + std::to_string(sent_at_us) + ";";
  if (body.size() < bytes) body.resize(bytes, 'x');
  return body;
}

// The send time a Body carries, or 0 when the body is not one.
inline int64_t SentAt(std::string_view body) {
  if (body.substr(0, 2) != "t=") return 0;
  const size_t semi = body.find(';');
  if (semi == std::string_view::npos) return 0;
  int64_t t = 0;
  const auto [end, ec] = std::from_chars(body.data() + 2, body.data() + semi, t);
  return ec == std::errc() && end == body.data() + semi ? t : 0;
}

// The measured interval [from_us, end_us): messages sent in it count for latency and
// delivery; acknowledgements count when they arrive in it or up to 2 s after it (the ones in
// flight when sending stops).
struct Window {
  int64_t from_us = 0;
  int64_t end_us = 0;
  bool Sent(int64_t t) const { return t >= from_us && t < end_us; }
  bool Acked(int64_t now) const { return now >= from_us && now < end_us + 2'000'000; }
};

// End-to-end latencies (send to receipt at the peer, one clock), in microseconds.
class Latencies {
 public:
  void Add(int64_t us) { us_.push_back(us); }
  // The p-quantile (0 <= p < 1) in milliseconds, 0 without samples; sorts on first use.
  double PercentileMs(double p) {
    if (us_.empty()) return 0;
    if (!sorted_) std::sort(us_.begin(), us_.end());
    sorted_ = true;
    const size_t k =
        std::min(us_.size() - 1, static_cast<size_t>(p * static_cast<double>(us_.size())));
    return static_cast<double>(us_[k]) / 1000.0;
  }

 private:
  std::vector<int64_t> us_;
  bool sorted_ = false;
};

}  // namespace chatlab::real::load

#endif  // CHATLAB_REAL_TRANSPORT_LOAD_MEASURE_H_
