#include "real-transport/play/measure.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "real-transport/ws_client.h"

namespace chatlab::real {
namespace {

// The two latency histograms whose tails explain a comparison: one SQLite commit, and a send
// inside chatd (chatd_*_latency_seconds, Histogram::kBounds).
constexpr std::pair<const char*, const char*> kHistograms[] = {
    {"commit", "chatd_storage_commit_latency_seconds"},
    {"server_ack", "chatd_send_ack_latency_seconds"}};

std::string BucketLine(const char* metric, double bound) {
  return absl::StrCat(metric, "_bucket{le=\"", bound, "\"}");
}

// Each derived count and the sample lines summed into it.
const std::vector<std::pair<std::string, std::vector<std::string>>>& Sources() {
  static const auto* sources = [] {
    auto* s = new std::vector<std::pair<std::string, std::vector<std::string>>>{
        {"store_requests", {"chatlab_store_requests_total"}},
        {"store_writes", {"chatlab_store_messages_stored_total"}},
        {"forward_requests", {"chatlab_chat_server_forwards_sent_total"}},
        {"notifications", {"chatd_pushes_total"}},
        {"server_acks", {"chatlab_chat_server_acks_total"}},
        {"node_messages_sent", {"chatd_node_messages_sent_total"}},
        {"storage_commits", {"chatd_storage_commits_total"}},
        {"cpu_seconds", {"process_cpu_seconds_total"}},
        {"commit_seconds_sum", {"chatd_storage_commit_latency_seconds_sum"}},
        {"commit_count", {"chatd_storage_commit_latency_seconds_count"}},
        {"server_ack_seconds_sum", {"chatd_send_ack_latency_seconds_sum"}},
        {"server_ack_count", {"chatd_send_ack_latency_seconds_count"}},
    };
    for (const auto& [name, metric] : kHistograms) {
      for (double bound : Histogram::kBounds) {
        s->push_back({absl::StrCat(name, "_le_", bound), {BucketLine(metric, bound)}});
      }
    }
    return s;
  }();
  return *sources;
}

double Get(const std::map<std::string, double>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

absl::StatusOr<std::map<std::string, double>> ParseMetrics(std::string_view text) {
  std::map<std::string, double> out;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || space == 0 ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("/metrics line ", number, " is not \"name value\": ", line));
    }
    out[std::string(line.substr(0, space))] = value;
  }
  return out;
}

absl::StatusOr<ServerScrape> ScrapeCluster(const std::vector<HostPort>& cluster) {
  ServerScrape s;
  for (size_t i = 0; i < cluster.size(); ++i) {
    const std::string who =
        absl::StrCat("process ", i + 1, " (", cluster[i].host, ":", cluster[i].port, ")");
    absl::StatusOr<HttpResult> res = HttpCall(cluster[i], "GET", "/metrics", "");
    if (!res.ok()) {
      return absl::UnavailableError(
          absl::StrCat("GET /metrics of ", who, ": ", res.status().message()));
    }
    if (res->status != 200) {
      return absl::UnavailableError(
          absl::StrCat("GET /metrics of ", who, " answered ", res->status, ": ", res->body));
    }
    absl::StatusOr<std::map<std::string, double>> m = ParseMetrics(res->body);
    if (!m.ok()) return absl::UnavailableError(absl::StrCat(who, ": ", m.status().message()));
    s.processes.push_back(*std::move(m));
  }
  return s;
}

void CountsOverPlay::BeforeKill(size_t process, const std::map<std::string, double>& metrics) {
  if (carried_.size() <= process) carried_.resize(process + 1);
  if (baseline_.size() <= process) baseline_.resize(process + 1);
  for (const auto& [name, lines] : Sources()) {
    for (const std::string& line : lines) {
      const double was = Get(baseline_[process], line);
      const double now = Get(metrics, line);
      if (now < was) complete_ = false;
      carried_[process][line] += now < was ? now : now - was;
    }
  }
  baseline_[process].clear();  // the restarted process counts from zero
}

ServerCounts CountsOverPlay::End(const ServerScrape& after) const {
  ServerCounts c;
  c.complete = complete_;
  for (const auto& [name, lines] : Sources()) {
    double sum = 0;
    for (size_t p = 0; p < after.processes.size(); ++p) {
      for (const std::string& line : lines) {
        const double was = p < baseline_.size() ? Get(baseline_[p], line) : 0;
        const double now = Get(after.processes[p], line);
        if (now < was) c.complete = false;  // restarted unseen: its count began again at zero
        sum += now < was ? now : now - was;
        if (p < carried_.size()) sum += Get(carried_[p], line);
      }
    }
    c.counts[name] = sum;
  }
  const auto mean_ms = [&](const std::string& name) {
    const double n = c.counts[name + "_count"];
    return n > 0 ? c.counts[name + "_seconds_sum"] / n * 1000 : 0.0;
  };
  // The smallest bucket bound that holds 99% of the observations: the p99 is at most that.
  const auto p99_at_most_ms = [&](const std::string& name) {
    const double n = c.counts[name + "_count"];
    for (double bound : Histogram::kBounds) {
      if (n > 0 && c.counts[absl::StrCat(name, "_le_", bound)] >= 0.99 * n) return bound * 1000;
    }
    return n > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  };
  c.commit_ms = mean_ms("commit");
  c.server_ack_ms = mean_ms("server_ack");
  c.commit_p99_ms_at_most = p99_at_most_ms("commit");
  c.server_ack_p99_ms_at_most = p99_at_most_ms("server_ack");
  for (auto it = c.counts.begin(); it != c.counts.end();) {  // the histograms' parts
    const bool part = absl::StrContains(it->first, "_le_") ||
                      absl::EndsWith(it->first, "_seconds_sum") ||
                      absl::EndsWith(it->first, "_count");
    it = part ? c.counts.erase(it) : std::next(it);
  }
  return c;
}

absl::StatusOr<RttProbe> ProbeRtt(const std::vector<HostPort>& cluster, int samples) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context io;
  std::vector<double> ms;
  for (size_t i = 0; i < cluster.size(); ++i) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(cluster[i].host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat(cluster[i].host, ": ", ec.message()));
    for (int k = 0; k < samples; ++k) {
      tcp::socket socket(io);
      const auto start = std::chrono::steady_clock::now();
      socket.connect(tcp::endpoint(ip, cluster[i].port), ec);
      const auto end = std::chrono::steady_clock::now();
      if (ec) {
        return absl::UnavailableError(absl::StrCat("connect to process ", i + 1, " (",
                                                   cluster[i].host, ":", cluster[i].port,
                                                   "): ", ec.message()));
      }
      socket.close(ec);
      ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
  }
  RttProbe p;
  p.samples = static_cast<int>(ms.size());
  if (ms.empty()) return p;
  std::sort(ms.begin(), ms.end());
  p.p50_ms = ms[ms.size() / 2];
  p.p90_ms = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  return p;
}

}  // namespace chatlab::real
