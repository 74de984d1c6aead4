#include "sim/swarm/story.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chatlab::sim::swarm {
namespace {

// One {...} group of a DebugString: its own scalar fields (name -> value text). Fields whose
// value is a group or a list of groups are parsed as groups of their own.
using Fields = std::map<std::string, std::string>;

// A small scanner over DebugString's grammar: group = "{" (name "=" value)* "}", value = group |
// "[" value* "]" | quoted string (optionally followed by "...") | a bare token.
class Scanner {
 public:
  explicit Scanner(const std::string& text) : t_(text) {}

  // Every group in the text from the first "{", innermost fields only.
  std::vector<Fields> Groups() {
    const size_t brace = t_.find('{');
    if (brace == std::string::npos) return {};
    i_ = brace + 1;
    Group(0);
    return std::move(groups_);
  }

 private:
  static constexpr int kDepthMax = 32;  // DebugString nests a few levels; a deeper line is cut

  void Group(int depth) {
    Fields fields;
    while (i_ < t_.size()) {
      SkipSpaces();
      if (i_ >= t_.size()) break;
      if (t_[i_] == '}') {
        i_++;
        break;
      }
      const size_t eq = t_.find('=', i_);
      if (eq == std::string::npos) break;
      const std::string name = t_.substr(i_, eq - i_);
      i_ = eq + 1;
      std::string scalar;
      if (Value(depth, &scalar)) fields[name] = scalar;
    }
    groups_.push_back(std::move(fields));
  }

  // Reads one value; returns true with *scalar set when it was a scalar.
  bool Value(int depth, std::string* scalar) {
    if (i_ >= t_.size()) return false;
    const char c = t_[i_];
    if (c == '{') {
      i_++;
      if (depth < kDepthMax) Group(depth + 1);
      return false;
    }
    if (c == '[') {
      i_++;
      while (i_ < t_.size() && t_[i_] != ']') {
        SkipSpaces();
        if (i_ < t_.size() && t_[i_] == ']') break;
        std::string ignored;
        const size_t before = i_;
        Value(depth, &ignored);
        if (i_ == before) i_++;  // never stall on a character the grammar does not know
      }
      if (i_ < t_.size()) i_++;
      return false;
    }
    if (c == '"') {
      size_t j = i_ + 1;
      while (j < t_.size() && t_[j] != '"') j += t_[j] == '\\' ? 2 : 1;
      *scalar = t_.substr(i_, std::min(j + 1, t_.size()) - i_);
      i_ = j + 1;
      if (t_.compare(i_, 3, "...") == 0) i_ += 3;
      return true;
    }
    const size_t end = t_.find_first_of(" }]", i_);
    *scalar = t_.substr(i_, end == std::string::npos ? std::string::npos : end - i_);
    i_ = end == std::string::npos ? t_.size() : end;
    return true;
  }

  void SkipSpaces() {
    while (i_ < t_.size() && t_[i_] == ' ') i_++;
  }

  const std::string& t_;
  size_t i_ = 0;
  std::vector<Fields> groups_;
};

// The parties a line names before its message: the names on either side of "<-" or "->".
std::vector<std::string> Parties(const std::string& line) {
  const std::string head = line.substr(0, line.find('{'));
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < head.size()) {
    const size_t end = head.find(' ', i);
    tokens.push_back(head.substr(i, end == std::string::npos ? std::string::npos : end - i));
    if (end == std::string::npos) break;
    i = end + 1;
  }
  std::vector<std::string> out;
  for (size_t k = 1; k + 1 < tokens.size(); k++) {
    if (tokens[k] == "<-" || tokens[k] == "->") {
      out.push_back(tokens[k - 1]);
      out.push_back(tokens[k + 1]);
    }
  }
  return out;
}

std::optional<uint64_t> Number(const std::string& s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Get(const Fields& f, const char* name) {
  auto it = f.find(name);
  return it == f.end() ? "" : it->second;
}

// True if the group names the message by its sender and client message id.
bool BySender(const MessageRef& m, const Fields& f, const std::vector<std::string>& parties) {
  if (m.sender.empty() || !m.client_msg_id) return false;
  if (Number(Get(f, "client_msg_id")) != m.client_msg_id) return false;
  if (!m.conv.empty() && f.contains("conv") && Get(f, "conv") != m.conv) return false;
  if (f.contains("sender")) return Get(f, "sender") == m.sender;
  // A client's own SendMessage / SendAck: no sender field, the client is a party of the line.
  return f.contains("conv") && std::find(parties.begin(), parties.end(), m.sender) != parties.end();
}

// How a group names the message by id: not at all, as its message or receipt watermark, or only
// as a conversation's head in a sync answer (repeated every sync interval).
enum class IdMatch { kNone, kMessage, kHead };

IdMatch ById(const MessageRef& m, const Fields& f) {
  if (m.message_ids.empty()) return IdMatch::kNone;
  if (!m.conv.empty() && Get(f, "conv") != m.conv) return IdMatch::kNone;
  for (const char* name : {"message_id", "up_to"}) {
    const std::optional<uint64_t> id = Number(Get(f, name));
    if (id && m.message_ids.contains(*id)) return IdMatch::kMessage;
  }
  const std::optional<uint64_t> head = Number(Get(f, "head_id"));
  return head && m.message_ids.contains(*head) ? IdMatch::kHead : IdMatch::kNone;
}

bool ByReader(const MessageRef& m, const Fields& f) {
  return !m.reader.empty() && Get(f, "reader") == m.reader && Get(f, "conv") == m.conv;
}

// Fills in what the sentence left out: the sender and client id of a message named by id, and
// every id the message got.
void Learn(MessageRef& m, const std::vector<std::string>& trace) {
  for (int pass = 0; pass < 2; pass++) {
    for (const std::string& line : trace) {
      const std::vector<std::string> parties = Parties(line);
      for (const Fields& f : Scanner(line).Groups()) {
        if (pass == 0 && m.sender.empty() && ById(m, f) == IdMatch::kMessage &&
            f.contains("sender")) {
          m.sender = Get(f, "sender");
          m.client_msg_id = Number(Get(f, "client_msg_id"));
        }
        if (pass == 1 && BySender(m, f, parties)) {
          const std::optional<uint64_t> id = Number(Get(f, "message_id"));
          if (id && *id != 0) m.message_ids.insert(*id);
          if (m.conv.empty() && f.contains("conv")) m.conv = Get(f, "conv");
        }
      }
    }
  }
}

// How a line names the message (the strongest of its groups).
IdMatch Touches(const MessageRef& m, const std::string& line) {
  const std::vector<std::string> parties = Parties(line);
  IdMatch out = IdMatch::kNone;
  for (const Fields& f : Scanner(line).Groups()) {
    if (BySender(m, f, parties) || ByReader(m, f)) return IdMatch::kMessage;
    const IdMatch by_id = ById(m, f);
    if (by_id == IdMatch::kMessage) return by_id;
    if (by_id == IdMatch::kHead) out = by_id;
  }
  return out;
}

}  // namespace

std::string MessageRef::Describe() const {
  std::string out;
  if (!sender.empty() && client_msg_id) absl::StrAppend(&out, sender, "/", *client_msg_id);
  if (!reader.empty()) absl::StrAppend(&out, "the receipts of ", reader);
  if (!conv.empty()) absl::StrAppend(&out, out.empty() ? "" : " ", "in ", conv);
  if (!message_ids.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "(message id",
                    message_ids.size() > 1 ? "s " : " ", absl::StrJoin(message_ids, ", "), ")");
  }
  return out.empty() ? "(the sentence names no message)" : out;
}

MessageRef ParseViolation(const std::string& sentence) {
  MessageRef m;
  m.invariant = sentence.substr(0, sentence.find(':'));
  std::smatch match;
  static const std::regex kSenderCmid(R"(\b(u\d+)/(\d+)\b)");
  static const std::regex kMessageId(R"(message (\d+))");
  static const std::regex kConv(R"( in ([gd]\d+(-\d+)?)\b)");
  static const std::regex kReader(R"(receipt of (u\d+))");
  if (std::regex_search(sentence, match, kSenderCmid)) {
    m.sender = match[1];
    m.client_msg_id = Number(match[2]);
  }
  if (std::regex_search(sentence, match, kMessageId)) {
    if (const std::optional<uint64_t> id = Number(match[1]); id && *id != 0) {
      m.message_ids.insert(*id);
    }
  }
  if (std::regex_search(sentence, match, kConv)) m.conv = match[1];
  if (std::regex_search(sentence, match, kReader)) m.reader = match[1];
  return m;
}

std::string Story(const std::string& violation, const std::vector<std::string>& trace) {
  MessageRef m = ParseViolation(violation);
  Learn(m, trace);
  std::vector<const std::string*> lines;
  if (m.names_message() || !m.reader.empty()) {
    // A sync answer naming the message as a head is kept once per receiver: the first time that
    // node learns of it. The periodic repeats would drown the story.
    std::set<std::string> told_head;
    for (const std::string& line : trace) {
      const IdMatch match = Touches(m, line);
      if (match == IdMatch::kNone) continue;
      const std::vector<std::string> parties = Parties(line);
      if (match == IdMatch::kHead && !told_head.insert(parties.empty() ? "" : parties[0]).second) {
        continue;
      }
      lines.push_back(&line);
    }
  }
  std::string out = absl::StrCat("violation: ", violation, "\nmessage:   ", m.Describe(),
                                 "\ntrace lines that touch it: ", lines.size(), " of ",
                                 trace.size(), ", in order (time in simulated seconds)\n\n");
  for (const std::string* line : lines) absl::StrAppend(&out, *line, "\n");
  return out;
}

}  // namespace chatlab::sim::swarm
