// The presence service (core/presence.h) on Redis: every chatd process answers its own chat
// server's presence messages against one Redis (docs/engines.md, "Presence on Redis").
//
// Each message is one run of one Lua script (kPresenceScript), atomic in Redis, which keeps the
// model's state in two hashes per user, PREFIX "p:" U (on, srv, seen, and rep: the last report,
// for expiry) and PREFIX "c:" U (contact -> "score|touched_at_us"), and returns what the model would send: the pushes of a status
// change or an audience change, grouped per server in ascending server order, or a lookup's
// statuses. Scores decay on the caller's clock (`now` is an argument), so the same messages at
// the same times give the same answers as the model (tests/real/presence_conformance_test.cc).
// Differences on purpose (docs/engines.md): users_max is Redis's maxmemory; user ids must be
// below 2^53 (Lua's numbers): a message naming a larger one is counted unexpected and dropped,
// except a lookup, which answers such a user offline, as the model answers an unknown user.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_PRESENCE_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_PRESENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/service_engine.h"

namespace chatlab::real {

class RedisPresence final : public ServiceEngine {
 public:
  struct Stats {
    uint64_t messages = 0;    // messages submitted
    uint64_t failed = 0;      // not carried out: Redis unreachable or refusing (lost)
    uint64_t pushes = 0;      // PresencePush answered
    uint64_t unexpected = 0;  // messages the model ignores too, and ids Lua cannot hold
  };

  // The scripts the link must load (RedisLink::Options::scripts).
  static std::vector<std::string> Scripts();
  // `link` must outlive this and load Scripts(). Keys start with `prefix`.
  RedisPresence(RedisLink& link, std::string prefix, const ProtocolConfig& config);

  void Submit(TimeUs now, NodeId from, Message msg, Done done) override;
  const Stats& stats() const { return stats_; }

 private:
  // Runs the script's `op` with its arguments; the reply becomes effects by `parse`.
  // One script run; a lookup's statuses are answered under the ids in `asked` (the ids asked,
  // in order: the script is given 0 for an id Lua cannot hold).
  void Run(TimeUs now, const char* op, std::vector<std::string> args, NodeId from,
           uint64_t request_id, Done done, std::vector<UserId> asked = {});
  void Nothing(Done done);

  RedisLink& link_;
  const std::string prefix_;
  const ProtocolConfig config_;
  const std::string sha_;
  Stats stats_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_PRESENCE_H_
