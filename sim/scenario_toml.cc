// ScenarioToToml: a Scenario back into the TOML that LoadScenario reads.
//
// The swarm writes every generated scenario, and the shrinker every reduced one, as a standalone
// file a person can run and read, so only the keys that differ from DefaultScenario() are
// written: the file says what is special about this run. The text is a function of the scenario
// alone (keys in a fixed order, numbers in their shortest round-trip form), so writing, reading
// and writing again gives the same bytes.
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/scenario.h"

namespace chatlab::sim {
namespace {

// The sections in the order a person reads a scenario (sections a key table does not name are
// never produced, as every key belongs to one of these).
constexpr const char* kSections[] = {"scenario", "network",  "topology", "cost",
                                     "workload", "protocol", "faults"};

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (ch == '\n') {
      out.append("\\n");
    } else if (ch == '\t') {
      out.append("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      out.append(absl::StrFormat("\\u%04X", c));
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

// The shortest text that reads back to exactly d. Always a TOML float (never "2", which TOML
// reads as an integer; the parser accepts either for a number key, but a float stays a float).
std::string TomlDouble(double d) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  std::string out(buf, ec == std::errc() ? end : buf);
  if (out.find_first_of(".eEn") == std::string::npos) out.append(".0");
  return out;
}

std::string TomlValue(const std::variant<int64_t, double, bool, std::string>& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&v)) return TomlDouble(*d);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return TomlString(std::get<std::string>(v));
}

void AppendPartition(const PartitionSpec& p, std::string& out) {
  absl::StrAppend(&out, "\n[[faults.partition]]\nstart_s = ", TomlDouble(p.start_s),
                  "\nend_s = ", TomlDouble(p.end_s), "\na = ", TomlString(p.a),
                  "\nb = ", TomlString(p.b), "\none_way = ", p.one_way ? "true" : "false", "\n");
}

void AppendCrash(const CrashSpec& c, std::string& out) {
  absl::StrAppend(&out, "\n[[faults.crash]]\nnode = ", TomlString(CrashNode(c)),
                  "\nat_s = ", TomlDouble(c.at_s), "\nrestart_s = ", TomlDouble(c.restart_s),
                  "\ntorn_write = ", c.torn_write ? "true" : "false", "\n");
}

void AppendPause(const PauseSpec& p, std::string& out) {
  absl::StrAppend(&out, "\n[[faults.pause]]\nnode = ", TomlString(p.node),
                  "\nat_s = ", TomlDouble(p.at_s), "\nresume_s = ", TomlDouble(p.resume_s), "\n");
}

void AppendClock(const ClockSpec& c, std::string& out) {
  absl::StrAppend(&out, "\n[[faults.clock]]\nnode = ", TomlString(c.node),
                  "\nskew_ms = ", TomlDouble(c.skew_ms), "\ndrift_ppm = ", TomlDouble(c.drift_ppm),
                  "\nstep_at_s = ", TomlDouble(c.step_at_s), "\nstep_ms = ", TomlDouble(c.step_ms),
                  "\n");
}

}  // namespace

std::string ScenarioToToml(const Scenario& s) {
  const std::vector<KeyValue> defaults = KeyValues(DefaultScenario());
  const std::vector<KeyValue> values = KeyValues(s);
  std::string out;
  for (const char* section : kSections) {
    const std::string prefix = absl::StrCat(section, ".");
    bool header = false;
    // Both lists come from the same key table, so they hold the same keys in the same order.
    for (size_t i = 0; i < values.size(); i++) {
      const KeyValue& kv = values[i];
      if (kv.key.rfind(prefix, 0) != 0 || kv.value == defaults[i].value) continue;
      if (!header) {
        absl::StrAppend(&out, out.empty() ? "" : "\n", "[", section, "]\n");
        header = true;
      }
      absl::StrAppend(&out, kv.key.substr(prefix.size()), " = ", TomlValue(kv.value), "\n");
    }
  }
  for (const PartitionSpec& p : s.partitions) AppendPartition(p, out);
  for (const CrashSpec& c : s.crashes) AppendCrash(c, out);
  for (const PauseSpec& p : s.pauses) AppendPause(p, out);
  for (const ClockSpec& c : s.clocks) AppendClock(c, out);
  return out;
}

}  // namespace chatlab::sim
