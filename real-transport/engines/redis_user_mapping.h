// The user mapping service (core/user_mapping.h) on Redis: every chatd process answers its own
// chat server's mapping messages against one Redis (docs/engines.md, "The user mapping on Redis").
//
// Each message is one atomic Redis command or script; its reply becomes the effects the core's
// UserMappingService would emit for the same message on the same state. The mapping of user U is
// the string key PREFIX "map:" U holding the server's node id in decimal, with Redis's own expiry
// (PX mapping_ttl_us) when config.mapping_ttl_us > 0. Where this differs from the model, on
// purpose (users_max is Redis's maxmemory; expiry on Redis's clock), docs/engines.md says so.
// tests/real/engine_conformance_test.cc holds it to the model's cases.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_USER_MAPPING_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_USER_MAPPING_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/service_engine.h"

namespace chatlab::real {

class RedisUserMapping final : public ServiceEngine {
 public:
  struct Stats {
    uint64_t messages = 0;       // messages submitted
    uint64_t failed = 0;         // not carried out: Redis unreachable or refusing (lost)
    uint64_t displacements = 0;  // MapDisplaced answered
    uint64_t unexpected = 0;     // messages the model ignores too (bad ids, other types)
  };

  // The scripts the link must load (RedisLink::Options::scripts).
  static std::vector<std::string> Scripts();
  // `link` must outlive this and load Scripts(). Keys start with `prefix`.
  RedisUserMapping(RedisLink& link, std::string prefix, const ProtocolConfig& config);

  void Submit(TimeUs now, NodeId from, Message msg, Done done) override;
  const Stats& stats() const { return stats_; }

  // The key of user's mapping.
  std::string Key(UserId user) const;

 private:
  void Register(NodeId from, UserId user, Done done);
  void Unregister(NodeId from, UserId user, Done done);
  void Refresh(NodeId from, const std::vector<UserId>& users, Done done);
  void Lookup(NodeId from, const MapLookup& m, Done done);
  // Answers `done` with no effects after everything submitted before (a barrier).
  void Nothing(Done done);
  // The TTL argument of the scripts: milliseconds, "0" for none.
  std::string TtlMs() const;

  RedisLink& link_;
  const std::string prefix_;
  const ProtocolConfig config_;
  const std::string register_sha_, unregister_sha_, refresh_sha_;
  Stats stats_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_USER_MAPPING_H_
