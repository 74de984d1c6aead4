// The deployment of `scripts/chatd-up.sh --cluster 3 --shards 3 --engines --standby`, with real
// processes: three chatd processes, the user mapping, presence and notification on Redis, the
// queue broker on RabbitMQ (forwarding=queue), three store shards each in its own PostgreSQL
// database, and a standby chatd per process. No chatd process is special, so each can die:
// kill -9 of each process in turn during a burst (its standby takes its place, its users resend
// through another process), then a Redis restart and a RabbitMQ restart, each during a burst
// across processes. Throughout: no acknowledged message lost, none stored twice, and users on
// the processes still up keep chatting live.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "gtest/gtest.h"
#include "tests/real/engine_cluster.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

TEST(ChatdOnEngines, EveryProcessAndEngineCanFailInTurnWithStandbysTakingOver) {
  EngineCluster env({.more = {}, .redis = true, .rabbit = true, .postgres = true});
  ASSERT_FALSE(HasFailure());
  for (const auto& s : env.cluster->standby) {
    EXPECT_FALSE(s->WaitHealthy(milliseconds(200))) << "a standby serves before its takeover";
    EXPECT_EQ(s->WaitExit(milliseconds(0)), std::nullopt) << "a standby exited:\n" << s->Log();
  }
  {
    SCOPED_TRACE("kill -9 of each process in turn");
    KillEachProcessInTurn(env);  // u1..u12
  }
  ASSERT_FALSE(HasFatalFailure());
  {
    SCOPED_TRACE("Redis restart");
    const Resumed r = RestartDuringABurst(
        env,
        [&] {
          env.redis.Restart();
          ASSERT_EQ(env.redis.error(), "");
        },
        milliseconds(kRefreshMs + 5000), {}, "u13", "u14");
    std::printf("Redis restart: live pushes resumed %.2f s after it (acks took %.2f s of it)\n",
                r.seconds, r.acks_seconds);
    ASSERT_GE(r.seconds, 0);
    EXPECT_LT(r.seconds, r.acks_seconds + kRefreshMs / 1000.0 + kResumeSlackS);
  }
  {
    SCOPED_TRACE("RabbitMQ restart");
    const Resumed r = RestartDuringABurst(
        env,
        [&] {
          env.rabbit->Restart();
          ASSERT_EQ(env.rabbit->error(), "");
        },
        milliseconds(10000), {}, "u15", "u16");
    std::printf("RabbitMQ restart: live pushes resumed %.2f s after it (acks took %.2f s of it)\n",
                r.seconds, r.acks_seconds);
    ASSERT_GE(r.seconds, 0);
    EXPECT_LT(r.seconds, r.acks_seconds + kResumeSlackS + 2);
  }
}

}  // namespace
}  // namespace chatlab::real::testing
