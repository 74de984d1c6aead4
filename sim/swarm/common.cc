#include "sim/swarm/common.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_split.h"

namespace chatlab::sim::swarm {

nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(in, nullptr, false);
}

std::map<std::string, uint64_t> InvariantCounts(const nlohmann::json& results) {
  std::map<std::string, uint64_t> out;
  if (!results.is_object() || !results.contains("invariants")) return out;
  const nlohmann::json& inv = results["invariants"];
  if (!inv.is_object()) return out;
  for (const auto& [name, value] : inv.items()) {
    if (value.is_number_unsigned() || value.is_number_integer()) {
      out[name] = value.get<uint64_t>();
    }
  }
  return out;
}

std::vector<std::string> ViolatedInvariants(const nlohmann::json& results) {
  std::vector<std::string> out;
  for (const auto& [name, n] : InvariantCounts(results)) {
    if (n > 0) out.push_back(name);
  }
  return out;
}

std::vector<std::string> FirstViolations(const nlohmann::json& results) {
  std::vector<std::string> out;
  if (!results.is_object() || !results.contains("invariants")) return out;
  const nlohmann::json& inv = results["invariants"];
  if (!inv.is_object() || !inv.contains("first_violations")) return out;
  for (const nlohmann::json& v : inv["first_violations"]) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::map<std::string, uint64_t> CountMap(const nlohmann::json& results, const char* key) {
  std::map<std::string, uint64_t> out;
  if (!results.is_object() || !results.contains(key) || !results[key].is_object()) return out;
  for (const auto& [name, value] : results[key].items()) {
    if (value.is_number_unsigned() || value.is_number_integer()) {
      out[name] = value.get<uint64_t>();
    }
  }
  return out;
}

bool WriteFileWhole(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) return false;
    out << text;
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

std::string CommentLines(const std::string& text) {
  std::string out;
  absl::string_view body(text);
  while (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    out.append(line.empty() ? "#" : "# ");
    out.append(line.data(), line.size());
    out.push_back('\n');
  }
  return out;
}

}  // namespace chatlab::sim::swarm
