#include "real-transport/storage/postgres_storage.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

// BIGINT is signed 64-bit; ids and client message ids are stored bit for bit.
std::string S(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }
std::string S(int64_t v) { return std::to_string(v); }

// A result that clears itself.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  PGresult* get() const { return r_; }
  bool ok() const {
    const ExecStatusType s = PQresultStatus(r_);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }
  int rows() const { return PQntuples(r_); }
  // Column c of row r as the uint64 its BIGINT holds.
  uint64_t U(int r, int c) const {
    int64_t v = 0;
    (void)absl::SimpleAtoi(PQgetvalue(r_, r, c), &v);
    return static_cast<uint64_t>(v);
  }
  int64_t I(int r, int c) const {
    int64_t v = 0;
    (void)absl::SimpleAtoi(PQgetvalue(r_, r, c), &v);
    return v;
  }

 private:
  PGresult* r_;
};

constexpr const char* kSchema = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(7206001);
CREATE SEQUENCE IF NOT EXISTS chat_seq;
CREATE TABLE IF NOT EXISTS private_chat (
  user_low BIGINT NOT NULL, user_high BIGINT NOT NULL, message_id BIGINT NOT NULL,
  prev_msg_id BIGINT NOT NULL, sender BIGINT NOT NULL, client_msg_id BIGINT NOT NULL,
  sent_at_us BIGINT NOT NULL, body BYTEA NOT NULL, seq BIGINT NOT NULL,
  PRIMARY KEY (user_low, user_high, message_id));
CREATE TABLE IF NOT EXISTS group_chat (
  group_id BIGINT NOT NULL, message_id BIGINT NOT NULL,
  prev_msg_id BIGINT NOT NULL, sender BIGINT NOT NULL, client_msg_id BIGINT NOT NULL,
  sent_at_us BIGINT NOT NULL, body BYTEA NOT NULL, seq BIGINT NOT NULL,
  PRIMARY KEY (group_id, message_id));
CREATE INDEX IF NOT EXISTS private_chat_seq ON private_chat (seq);
CREATE INDEX IF NOT EXISTS group_chat_seq ON group_chat (seq);
CREATE INDEX IF NOT EXISTS private_chat_dedup ON private_chat (sender, client_msg_id);
CREATE INDEX IF NOT EXISTS group_chat_dedup ON group_chat (sender, client_msg_id);
CREATE TABLE IF NOT EXISTS group_membership (
  group_id BIGINT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS user_membership (
  user_id BIGINT NOT NULL, group_id BIGINT NOT NULL, PRIMARY KEY (user_id, group_id));
CREATE TABLE IF NOT EXISTS receipts (
  conv_type INTEGER NOT NULL, conv_low BIGINT NOT NULL, conv_high BIGINT NOT NULL,
  reader BIGINT NOT NULL, kind INTEGER NOT NULL, up_to BIGINT NOT NULL,
  PRIMARY KEY (conv_type, conv_low, conv_high, reader, kind));
CREATE TABLE IF NOT EXISTS receipt_aggregates (
  group_id BIGINT NOT NULL, kind INTEGER NOT NULL, up_to BIGINT NOT NULL,
  PRIMARY KEY (group_id, kind));
CREATE TABLE IF NOT EXISTS conversation_heads (
  conv_type INTEGER NOT NULL, conv_low BIGINT NOT NULL, conv_high BIGINT NOT NULL,
  head BIGINT NOT NULL, PRIMARY KEY (conv_type, conv_low, conv_high));
INSERT INTO conversation_heads
  SELECT 1, user_low, user_high, MAX(message_id) FROM private_chat
  WHERE NOT EXISTS (SELECT 1 FROM conversation_heads WHERE conv_type = 1)
  GROUP BY user_low, user_high;
INSERT INTO conversation_heads
  SELECT 2, group_id, 0, MAX(message_id) FROM group_chat
  WHERE NOT EXISTS (SELECT 1 FROM conversation_heads WHERE conv_type = 2)
  GROUP BY group_id;
CREATE TABLE IF NOT EXISTS store_lease (
  shard INTEGER PRIMARY KEY, owner TEXT NOT NULL, epoch BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL);
COMMIT;
)sql";

// The columns every message query selects, in RowMessage's order.
#define CHATLAB_PRIVATE_COLUMNS \
  "1, user_low, user_high, message_id, prev_msg_id, sender, client_msg_id, sent_at_us, body, seq"
#define CHATLAB_GROUP_COLUMNS \
  "2, group_id, 0, message_id, prev_msg_id, sender, client_msg_id, sent_at_us, body, seq"


// Prepared statements: name, SQL, parameter count.
struct Statement {
  const char* name;
  const char* sql;
  int params;
};
constexpr std::array<Statement, 16> kStatements = {{
    {"insert_private",
     "INSERT INTO private_chat VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nextval('chat_seq')) "
     "ON CONFLICT (user_low, user_high, message_id) DO UPDATE SET "
     "prev_msg_id = EXCLUDED.prev_msg_id, sender = EXCLUDED.sender, "
     "client_msg_id = EXCLUDED.client_msg_id, sent_at_us = EXCLUDED.sent_at_us, "
     "body = EXCLUDED.body, seq = EXCLUDED.seq",
     8},
    {"insert_group",
     "INSERT INTO group_chat VALUES ($1, $2, $3, $4, $5, $6, $7, nextval('chat_seq')) "
     "ON CONFLICT (group_id, message_id) DO UPDATE SET "
     "prev_msg_id = EXCLUDED.prev_msg_id, sender = EXCLUDED.sender, "
     "client_msg_id = EXCLUDED.client_msg_id, sent_at_us = EXCLUDED.sent_at_us, "
     "body = EXCLUDED.body, seq = EXCLUDED.seq",
     7},
    {"join_group", "INSERT INTO group_membership VALUES ($1, $2) ON CONFLICT DO NOTHING", 2},
    {"join_user",
     "INSERT INTO user_membership (user_id, group_id) VALUES ($2, $1) ON CONFLICT DO NOTHING", 2},
    {"leave_group", "DELETE FROM group_membership WHERE group_id = $1 AND user_id = $2", 2},
    {"leave_user", "DELETE FROM user_membership WHERE user_id = $2 AND group_id = $1", 2},
    {"receipt",
     "INSERT INTO receipts VALUES ($1, $2, $3, $4, $5, $6) "
     "ON CONFLICT (conv_type, conv_low, conv_high, reader, kind) DO UPDATE SET "
     "up_to = GREATEST(receipts.up_to, EXCLUDED.up_to)",
     6},
    {"aggregate",
     "INSERT INTO receipt_aggregates VALUES ($1, $2, $3) "
     "ON CONFLICT (group_id, kind) DO UPDATE SET "
     "up_to = GREATEST(receipt_aggregates.up_to, EXCLUDED.up_to)",
     3},
    {"head",
     "INSERT INTO conversation_heads VALUES ($1, $2, $3, $4) "
     "ON CONFLICT (conv_type, conv_low, conv_high) DO UPDATE SET "
     "head = GREATEST(conversation_heads.head, EXCLUDED.head)",
     4},
    {"read_private",
     "SELECT " CHATLAB_PRIVATE_COLUMNS " FROM private_chat WHERE user_low = $1 AND "
     "user_high = $2 AND message_id > $3 ORDER BY message_id LIMIT $4",
     4},
    {"read_group",
     "SELECT " CHATLAB_GROUP_COLUMNS " FROM group_chat WHERE group_id = $1 AND $2::BIGINT = 0 "
     "AND message_id > $3 ORDER BY message_id LIMIT $4",
     4},
    {"find",
     "SELECT " CHATLAB_PRIVATE_COLUMNS " FROM private_chat WHERE sender = $1 AND "
     "client_msg_id = $2 UNION ALL SELECT " CHATLAB_GROUP_COLUMNS " FROM group_chat WHERE "
     "sender = $1 AND client_msg_id = $2 ORDER BY 10 LIMIT 1",
     2},
    // The lease (postgres_storage.h): take it if expired or our owner's; renew it if ours.
    {"lease_take",
     "INSERT INTO store_lease AS l VALUES (0, $1, 1, now() + $2::BIGINT * interval '1 ms') "
     "ON CONFLICT (shard) DO UPDATE SET owner = EXCLUDED.owner, "
     "epoch = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at >= now() THEN l.epoch "
     "ELSE l.epoch + 1 END, expires_at = EXCLUDED.expires_at "
     "WHERE l.expires_at < now() OR l.owner = EXCLUDED.owner RETURNING epoch",
     2},
    {"lease_renew",
     "UPDATE store_lease SET expires_at = now() + $2::BIGINT * interval '1 ms' "
     "WHERE shard = 0 AND epoch = $1",
     2},
    {"lease_release", "UPDATE store_lease SET expires_at = now() WHERE shard = 0 AND epoch = $1",
     1},
    {"lease_holder", "SELECT owner, epoch, expires_at::TEXT FROM store_lease WHERE shard = 0", 0},
}};

// Runs a prepared statement with text parameters.
std::unique_ptr<Result> ExecParams(pg_conn* conn, const char* name,
                                   const std::vector<std::string>& values) {
  std::vector<const char*> pointers;
  for (const std::string& v : values) pointers.push_back(v.c_str());
  return std::make_unique<Result>(PQexecPrepared(conn, name, static_cast<int>(values.size()),
                                                 pointers.data(), nullptr, nullptr, 0));
}

// Row r of a message query (the columns of CHATLAB_PRIVATE_COLUMNS). The body comes back as
// text in BYTEA's hex form.
absl::StatusOr<SeqMessage> RowMessage(const Result& result, int r) {
  SeqMessage row;
  ChatMessage& m = row.message;
  m.conv.type = result.I(r, 0) == 2 ? ChannelType::kGroup : ChannelType::kDirect;
  m.conv.low = result.U(r, 1);
  m.conv.high = result.U(r, 2);
  m.message_id = result.U(r, 3);
  m.prev_msg_id = result.U(r, 4);
  m.sender = UserId(result.U(r, 5));
  m.client_msg_id = result.U(r, 6);
  m.sent_at_us = result.I(r, 7);
  size_t length = 0;
  unsigned char* body = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result.get(), r, 8)), &length);
  if (body == nullptr) return absl::InternalError("cannot decode a message body");
  m.body.assign(reinterpret_cast<const char*>(body), length);
  PQfreemem(body);
  row.seq = result.I(r, 9);
  return row;
}

std::string Reason(pg_conn* conn) {
  std::string why = PQerrorMessage(conn);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

// Runs the prepared statement name with four text parameters.
absl::StatusOr<std::unique_ptr<Result>> ExecPrepared(pg_conn* conn_, const char* name,
                                                     std::initializer_list<std::string> values) {
  std::array<const char*, 4> pointers;
  if (values.size() > pointers.size()) {
    return absl::InternalError(absl::StrCat(name, ": more than 4 parameters"));
  }
  size_t n = 0;
  for (const std::string& v : values) pointers[n++] = v.c_str();
  auto r = std::make_unique<Result>(
      PQexecPrepared(conn_, name, static_cast<int>(n), pointers.data(), nullptr, nullptr, 0));
  if (!r->ok()) return absl::InternalError(absl::StrCat(name, ": ", Reason(conn_)));
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStorage>> PostgresStorage::Open(
    const std::string& conninfo, uint32_t retry_ms, LeaseOptions lease) {
  pg_conn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  std::unique_ptr<PostgresStorage> storage(new PostgresStorage(conn, retry_ms, std::move(lease)));
  const std::string server =
      absl::StrCat(PQhost(conn) != nullptr ? PQhost(conn) : "?", ":",
                   PQport(conn) != nullptr ? PQport(conn) : "?", "/",
                   PQdb(conn) != nullptr ? PQdb(conn) : "?");
  if (PQstatus(conn) != CONNECTION_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot connect to PostgreSQL at ", server, ": ", Reason(conn)));
  }
  if (absl::Status s = storage->SetUpSession(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("PostgreSQL at ", server, ": ", s.message()));
  }
  // An ack must mean durable: refuse a server that acknowledges commits before they are flushed.
  for (const char* setting : {"fsync", "synchronous_commit"}) {
    Result r(PQexec(conn, absl::StrCat("SHOW ", setting).c_str()));
    if (!r.ok() || r.rows() != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("PostgreSQL at ", server, ": cannot read ", setting, ": ", Reason(conn)));
    }
    if (std::string(PQgetvalue(r.get(), 0, 0)) == "off") {
      return absl::FailedPreconditionError(
          absl::StrCat("PostgreSQL at ", server, " runs with ", setting,
                       " = off: a commit would not be durable when chatd acknowledges it"));
    }
  }
  if (absl::Status s = storage->Exec(kSchema); !s.ok()) {
    (void)storage->Exec("ROLLBACK");
    return absl::FailedPreconditionError(
        absl::StrCat("PostgreSQL at ", server, ": cannot create the tables: ", s.message()));
  }
  for (const Statement& st : kStatements) {
    Result r(PQprepare(conn, st.name, st.sql, st.params, nullptr));
    if (!r.ok()) {
      return absl::InternalError(absl::StrCat("prepare ", st.name, ": ", Reason(conn)));
    }
  }
  if (absl::Status s = storage->AcquireLease(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("PostgreSQL at ", server, ": ", s.message()));
  }
  return storage;
}

absl::Status PostgresStorage::AcquireLease() {
  if (lease_.owner.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    lease_.owner = absl::StrCat(host, " pid ", getpid());
  }
  if (lease_.ttl_ms == 0) return absl::InvalidArgumentError("the store lease's ttl must be > 0");
  for (;;) {
    auto r = ExecParams(conn_, "lease_take", {lease_.owner, std::to_string(lease_.ttl_ms)});
    if (!r->ok()) return absl::InternalError(absl::StrCat("take the store lease: ", Reason(conn_)));
    if (r->rows() == 1) {
      epoch_ = r->I(0, 0);
      return absl::OkStatus();
    }
    auto holder = ExecParams(conn_, "lease_holder", {});
    if (lease_.waiting && holder->ok() && holder->rows() == 1) {
      lease_.waiting(absl::StrCat("the store's lease is held by ", PQgetvalue(holder->get(), 0, 0),
                                  " (epoch ", PQgetvalue(holder->get(), 0, 1), ") until ",
                                  PQgetvalue(holder->get(), 0, 2), "; waiting for it to expire"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp<uint32_t>(
        lease_.ttl_ms / 4, 10, 500)));
  }
}

absl::Status PostgresStorage::RenewLease() {
  auto r = ExecParams(conn_, "lease_renew", {std::to_string(epoch_), std::to_string(lease_.ttl_ms)});
  if (!r->ok()) return absl::InternalError(absl::StrCat("renew the store lease: ", Reason(conn_)));
  if (std::string(PQcmdTuples(r->get())) != "1") {
    return absl::FailedPreconditionError(absl::StrCat(
        "fenced: another process took the store's lease (this one held epoch ", epoch_,
        "); this process must not write or acknowledge anything more"));
  }
  return absl::OkStatus();
}

absl::Status PostgresStorage::KeepAlive() {
  return WithReconnect([this] { return RenewLease(); });
}

absl::Status PostgresStorage::Checkpoint() {
  auto r = ExecParams(conn_, "lease_release", {std::to_string(epoch_)});
  if (!r->ok()) return absl::InternalError(absl::StrCat("release the store lease: ", Reason(conn_)));
  return absl::OkStatus();
}

absl::Status PostgresStorage::SetUpSession() {
  // CREATE ... IF NOT EXISTS answers an existing table with a NOTICE: not worth a log line.
  return Exec("SET client_min_messages = warning");
}

PostgresStorage::~PostgresStorage() { PQfinish(conn_); }

absl::Status PostgresStorage::Exec(const char* sql) {
  Result r(PQexec(conn_, sql));
  if (!r.ok()) return absl::InternalError(Reason(conn_));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> PostgresStorage::QueryInts(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  if (!r.ok()) return absl::InternalError(Reason(conn_));
  std::vector<int64_t> row;
  if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && r.rows() > 0) {
    for (int c = 0; c < PQnfields(r.get()); c++) row.push_back(r.I(0, c));
  }
  return row;
}

absl::Status PostgresStorage::Write(const PersistRecord& record) {
  // Up to two statements per record, each with text parameters except a body (binary BYTEA).
  struct Call {
    const char* name = nullptr;
    std::vector<std::string> values;
    int binary_last = 0;  // 1: the last parameter is the body, sent as binary
  };
  std::array<Call, 2> calls;
  if (const auto* p = std::get_if<PersistMessage>(&record)) {
    const ChatMessage& m = p->message;
    Call& c = calls[0];
    c.name = m.conv.is_group() ? "insert_group" : "insert_private";
    c.values.push_back(S(m.conv.low));
    if (!m.conv.is_group()) c.values.push_back(S(m.conv.high));
    c.values.push_back(S(m.message_id));
    c.values.push_back(S(m.prev_msg_id));
    c.values.push_back(S(m.sender.value));
    c.values.push_back(S(m.client_msg_id));
    c.values.push_back(S(m.sent_at_us));
    c.values.push_back(m.body);
    c.binary_last = 1;
  } else if (const auto* ms = std::get_if<PersistMembership>(&record)) {
    calls[0] = {ms->joined ? "join_group" : "leave_group",
                {S(ms->group.value), S(ms->user.value)}};
    calls[1] = {ms->joined ? "join_user" : "leave_user", {S(ms->group.value), S(ms->user.value)}};
  } else if (const auto* w = std::get_if<PersistWatermark>(&record)) {
    calls[0] = {"receipt",
                {std::to_string(static_cast<int>(w->conv.type)), S(w->conv.low), S(w->conv.high),
                 S(w->reader.value), std::to_string(static_cast<int>(w->kind)), S(w->up_to)}};
  } else if (const auto* a = std::get_if<PersistAggregate>(&record)) {
    calls[0] = {"aggregate",
                {S(a->conv.low), std::to_string(static_cast<int>(a->kind)), S(a->up_to)}};
  } else {
    return CheckHasTable(record);  // a batch writer's record: refused
  }
  for (const Call& c : calls) {
    if (c.name == nullptr) continue;
    const int n = static_cast<int>(c.values.size());
    std::vector<const char*> values(static_cast<size_t>(n));
    std::vector<int> lengths(static_cast<size_t>(n));
    std::vector<int> formats(static_cast<size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
      values[static_cast<size_t>(i)] = c.values[static_cast<size_t>(i)].data();
      lengths[static_cast<size_t>(i)] = static_cast<int>(c.values[static_cast<size_t>(i)].size());
    }
    if (c.binary_last) formats.back() = 1;
    Result r(PQexecPrepared(conn_, c.name, n, values.data(), lengths.data(), formats.data(), 0));
    if (!r.ok()) return absl::InternalError(absl::StrCat(c.name, ": ", Reason(conn_)));
  }
  return absl::OkStatus();
}

absl::Status PostgresStorage::Commit(const std::vector<PersistRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  return WithReconnect([&] { return CommitOnce(records); });
}

absl::Status PostgresStorage::WithReconnect(const std::function<absl::Status()>& attempt) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_ms_);
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    absl::Status s = PQstatus(conn_) == CONNECTION_OK ? attempt()
                                                      : absl::UnavailableError(Reason(conn_));
    // A statement that failed on a live connection is the batch's fault: no retry.
    if (s.ok() || PQstatus(conn_) == CONNECTION_OK) return s;
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "PostgreSQL unreachable for ", retry_ms_, " ms (store_retry_ms): ", s.message()));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) continue;
    reconnects_++;
    if (absl::Status setup = SetUpSession(); !setup.ok()) continue;
    bool prepared = true;
    for (const Statement& st : kStatements) {
      Result r(PQprepare(conn_, st.name, st.sql, st.params, nullptr));
      prepared = prepared && r.ok();
    }
    if (!prepared && PQstatus(conn_) == CONNECTION_OK) {
      return absl::InternalError(absl::StrCat("prepare after reconnecting: ", Reason(conn_)));
    }
  }
}

absl::Status PostgresStorage::CommitOnce(const std::vector<PersistRecord>& records) {
  if (absl::Status s = Exec("BEGIN"); !s.ok()) return s;
  // The fence: the transaction writes only while the lease is ours, and renews it.
  if (absl::Status s = RenewLease(); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  for (const PersistRecord& r : records) {
    if (absl::Status s = Write(r); !s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  for (const auto& [conv, head] : BatchHeads(records)) {
    if (absl::Status s = ExecPrepared(conn_, "head",
                                      {std::to_string(static_cast<int>(conv.type)), S(conv.low),
                                       S(conv.is_group() ? 0 : conv.high), S(head)})
                             .status();
        !s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  if (absl::Status s = Exec("COMMIT"); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ChatMessage>> PostgresStorage::ReadHistory(const ConversationId& conv,
                                                                      MessageId after,
                                                                      uint32_t limit) {
  std::vector<ChatMessage> out;
  absl::Status s = WithReconnect([&]() -> absl::Status {
    out.clear();
    auto r = ExecPrepared(conn_, conv.is_group() ? "read_group" : "read_private",
                          {S(conv.low), S(conv.is_group() ? 0 : conv.high), S(after),
                           std::to_string(limit)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < (*r)->rows(); ++i) {
      absl::StatusOr<SeqMessage> row = RowMessage(**r, i);
      if (!row.ok()) return row.status();
      out.push_back(std::move(row->message));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return absl::InternalError(absl::StrCat("read history: ", s.message()));
  return out;
}

absl::StatusOr<std::optional<ChatMessage>> PostgresStorage::FindMessage(
    UserId sender, ClientMsgId client_msg_id) {
  std::optional<ChatMessage> found;
  absl::Status s = WithReconnect([&]() -> absl::Status {
    found.reset();
    auto r = ExecPrepared(conn_, "find", {S(sender.value), S(client_msg_id)});
    if (!r.ok()) return r.status();
    if ((*r)->rows() == 0) return absl::OkStatus();
    absl::StatusOr<SeqMessage> row = RowMessage(**r, 0);
    if (!row.ok()) return row.status();
    found = std::move(row->message);
    return absl::OkStatus();
  });
  if (!s.ok()) return absl::InternalError(absl::StrCat("find message: ", s.message()));
  return found;
}

absl::Status PostgresStorage::LoadHotMessages(const Restore& restore, uint64_t recent) {
  const std::string limit = std::to_string(recent);
  const std::string heads =
      "SELECT " CHATLAB_PRIVATE_COLUMNS " FROM conversation_heads h JOIN private_chat p ON "
      "p.user_low = h.conv_low AND p.user_high = h.conv_high AND p.message_id = "
      "(SELECT MAX(message_id) FROM private_chat WHERE user_low = h.conv_low AND "
      "user_high = h.conv_high) WHERE h.conv_type = 1 UNION ALL SELECT " CHATLAB_GROUP_COLUMNS
      " FROM conversation_heads h JOIN group_chat g ON g.group_id = h.conv_low AND "
      "g.message_id = (SELECT MAX(message_id) FROM group_chat WHERE group_id = h.conv_low) "
      "WHERE h.conv_type = 2";
  // The newest `recent` rows of both tables by the shared sequence (each table's seq index).
  const std::string newest = absl::StrCat(
      "SELECT * FROM (SELECT " CHATLAB_PRIVATE_COLUMNS " FROM private_chat ORDER BY seq DESC "
      "LIMIT ", limit, ") p UNION ALL SELECT * FROM (SELECT " CHATLAB_GROUP_COLUMNS
      " FROM group_chat ORDER BY seq DESC LIMIT ", limit, ") g ORDER BY 10 DESC LIMIT ", limit);
  std::vector<SeqMessage> rows;
  for (const std::string* sql : {&heads, &newest}) {
    absl::Status s = ForEachMessage(*sql, [&rows](SeqMessage m) {
      rows.push_back(std::move(m));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return ReplayHotMessages(std::move(rows), restore, messages_loaded_);
}

absl::Status PostgresStorage::Load(const Restore& restore, const LoadScope& scope) {
  if (scope.hot) {
    if (absl::Status s = LoadHotMessages(restore, scope.recent); !s.ok()) return s;
    return LoadState(restore);
  }
  // Messages in commit order, row by row: the history is never held twice, once in a result
  // and once in the store.
  absl::Status s = ForEachMessage(
      "SELECT " CHATLAB_PRIVATE_COLUMNS " FROM private_chat UNION ALL "
      "SELECT " CHATLAB_GROUP_COLUMNS " FROM group_chat ORDER BY 10",
      [&](SeqMessage m) {
        absl::Status st = restore(PersistMessage{std::move(m.message)});
        if (st.ok()) messages_loaded_++;
        return st;
      });
  if (!s.ok()) return s;
  return LoadState(restore);
}

absl::Status PostgresStorage::ForEachMessage(const std::string& sql,
                                             const std::function<absl::Status(SeqMessage)>& f) {
  // libpq's single-row mode. Every result is read to the end, even after an error, so that the
  // connection is idle again.
  if (PQsendQuery(conn_, sql.c_str()) != 1 || PQsetSingleRowMode(conn_) != 1) {
    return absl::InternalError(absl::StrCat("load messages: ", Reason(conn_)));
  }
  absl::Status failed;
  while (PGresult* raw = PQgetResult(conn_)) {
    Result row(raw);
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_TUPLES_OK) continue;  // the end of the rows
    if (status != PGRES_SINGLE_TUPLE) {
      if (failed.ok()) failed = absl::InternalError(absl::StrCat("load messages: ", Reason(conn_)));
      continue;
    }
    if (!failed.ok()) continue;
    absl::StatusOr<SeqMessage> m = RowMessage(row, 0);
    if (!m.ok()) {
      failed = absl::InternalError(absl::StrCat("load messages: ", m.status().message()));
      continue;
    }
    failed = f(*std::move(m));
  }
  return failed;
}

absl::Status PostgresStorage::LoadState(const Restore& restore) {
  Result members(PQexec(conn_, "SELECT group_id, user_id FROM group_membership ORDER BY 1, 2"));
  if (!members.ok()) return absl::InternalError(absl::StrCat("load memberships: ", Reason(conn_)));
  for (int r = 0; r < members.rows(); ++r) {
    PersistMembership m{UserId(members.U(r, 1)), GroupId(members.U(r, 0)), true};
    if (absl::Status st = restore(m); !st.ok()) return st;
  }

  Result receipts(PQexec(conn_,
                         "SELECT conv_type, conv_low, conv_high, reader, kind, up_to FROM receipts "
                         "ORDER BY 1, 2, 3, 4, 5"));
  if (!receipts.ok()) return absl::InternalError(absl::StrCat("load receipts: ", Reason(conn_)));
  for (int r = 0; r < receipts.rows(); ++r) {
    PersistWatermark w;
    w.conv.type = static_cast<ChannelType>(receipts.I(r, 0));
    w.conv.low = receipts.U(r, 1);
    w.conv.high = receipts.U(r, 2);
    w.reader = UserId(receipts.U(r, 3));
    w.kind = static_cast<ReceiptKind>(receipts.I(r, 4));
    w.up_to = receipts.U(r, 5);
    if (absl::Status st = restore(w); !st.ok()) return st;
  }

  Result aggregates(
      PQexec(conn_, "SELECT group_id, kind, up_to FROM receipt_aggregates ORDER BY 1, 2"));
  if (!aggregates.ok()) {
    return absl::InternalError(absl::StrCat("load aggregates: ", Reason(conn_)));
  }
  for (int r = 0; r < aggregates.rows(); ++r) {
    PersistAggregate a;
    a.conv = ConversationId::Group(GroupId(aggregates.U(r, 0)));
    a.kind = static_cast<ReceiptKind>(aggregates.I(r, 1));
    a.up_to = aggregates.U(r, 2);
    if (absl::Status st = restore(a); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace chatlab::real
