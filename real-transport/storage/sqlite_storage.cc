#include "real-transport/storage/sqlite_storage.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

// SQLite integers are signed 64-bit; ids and client message ids are stored bit for bit.
int64_t S(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t U(int64_t v) { return static_cast<uint64_t>(v); }

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS private_chat (
  user_low INTEGER NOT NULL, user_high INTEGER NOT NULL, message_id INTEGER NOT NULL,
  prev_msg_id INTEGER NOT NULL, sender INTEGER NOT NULL, client_msg_id INTEGER NOT NULL,
  sent_at_us INTEGER NOT NULL, body BLOB NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (user_low, user_high, message_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_chat (
  group_id INTEGER NOT NULL, message_id INTEGER NOT NULL,
  prev_msg_id INTEGER NOT NULL, sender INTEGER NOT NULL, client_msg_id INTEGER NOT NULL,
  sent_at_us INTEGER NOT NULL, body BLOB NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (group_id, message_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS private_chat_seq ON private_chat (seq);
CREATE INDEX IF NOT EXISTS group_chat_seq ON group_chat (seq);
CREATE INDEX IF NOT EXISTS private_chat_dedup ON private_chat (sender, client_msg_id);
CREATE INDEX IF NOT EXISTS group_chat_dedup ON group_chat (sender, client_msg_id);
CREATE TABLE IF NOT EXISTS group_membership (
  group_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  PRIMARY KEY (group_id, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_membership (
  user_id INTEGER NOT NULL, group_id INTEGER NOT NULL,
  PRIMARY KEY (user_id, group_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipts (
  conv_type INTEGER NOT NULL, conv_low INTEGER NOT NULL, conv_high INTEGER NOT NULL,
  reader INTEGER NOT NULL, kind INTEGER NOT NULL, up_to INTEGER NOT NULL,
  PRIMARY KEY (conv_type, conv_low, conv_high, reader, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipt_aggregates (
  group_id INTEGER NOT NULL, kind INTEGER NOT NULL, up_to INTEGER NOT NULL,
  PRIMARY KEY (group_id, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversation_heads (
  conv_type INTEGER NOT NULL, conv_low INTEGER NOT NULL, conv_high INTEGER NOT NULL,
  head INTEGER NOT NULL,
  PRIMARY KEY (conv_type, conv_low, conv_high)) WITHOUT ROWID;
)sql";

// A database written before conversation_heads existed: fill it once from the chat tables.
constexpr const char* kFillHeads = R"sql(
INSERT INTO conversation_heads
  SELECT 1, user_low, user_high, MAX(message_id) FROM private_chat GROUP BY user_low, user_high;
INSERT INTO conversation_heads
  SELECT 2, group_id, 0, MAX(message_id) FROM group_chat GROUP BY group_id;
)sql";

// The columns every message query selects, in RowMessage's order.
constexpr const char* kPrivateColumns =
    "1, user_low, user_high, message_id, prev_msg_id, sender, client_msg_id, sent_at_us, body, "
    "seq";
constexpr const char* kGroupColumns =
    "2, group_id, 0, message_id, prev_msg_id, sender, client_msg_id, sent_at_us, body, seq";

// A statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// The row a message query is on (the columns of kPrivateColumns).
SeqMessage RowMessage(sqlite3_stmt* s) {
  SeqMessage row;
  ChatMessage& m = row.message;
  m.conv.type = sqlite3_column_int(s, 0) == 2 ? ChannelType::kGroup : ChannelType::kDirect;
  m.conv.low = U(sqlite3_column_int64(s, 1));
  m.conv.high = U(sqlite3_column_int64(s, 2));
  m.message_id = U(sqlite3_column_int64(s, 3));
  m.prev_msg_id = U(sqlite3_column_int64(s, 4));
  m.sender = UserId(U(sqlite3_column_int64(s, 5)));
  m.client_msg_id = U(sqlite3_column_int64(s, 6));
  m.sent_at_us = sqlite3_column_int64(s, 7);
  const void* body = sqlite3_column_blob(s, 8);
  m.body.assign(static_cast<const char*>(body), static_cast<size_t>(sqlite3_column_bytes(s, 8)));
  row.seq = sqlite3_column_int64(s, 9);
  return row;
}

}  // namespace

absl::Status CreatePrivateFile(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return absl::OkStatus();
  }
  if (errno == EEXIST) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
}

absl::StatusOr<std::unique_ptr<SqliteStorage>> SqliteStorage::Open(const std::string& path) {
  if (absl::Status s = CreatePrivateFile(path); !s.ok()) return s;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string reason = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat("cannot open ", path, ": ", reason));
  }
  std::unique_ptr<SqliteStorage> storage(new SqliteStorage(db));
  sqlite3_busy_timeout(db, 5000);
  // Bytes written per message (real-transport/bench.sh, B/msg): a commit writes every page it
  // touched, whole, to the WAL, and a checkpoint writes it again to the database. Messages of
  // many conversations touch a leaf per conversation and per sender (the dedup index), so the
  // page size is what each of them costs: 1 KiB pages (SQLite's default is 4 KiB; it takes
  // effect on a new database only) and a checkpoint every 4,096 pages (4 MiB of WAL, not 1,000),
  // so that a leaf rewritten by many commits reaches the database once, wrote 2.7 KB per 64-byte
  // message instead of 5.3 KB (docs/chatd.md, "Figures").
  for (const char* pragma : {"PRAGMA page_size=1024", "PRAGMA journal_mode=WAL",
                             "PRAGMA synchronous=FULL", "PRAGMA wal_autocheckpoint=4096"}) {
    if (absl::Status s = storage->Exec(pragma); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot use ", path, ": ", s.message()));
    }
  }
  if (absl::Status s = storage->Exec(kSchema); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot use ", path, ": ", s.message()));
  }
  if (absl::Status s = storage->FillHeads(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot use ", path, ": ", s.message()));
  }
  if (absl::Status s = storage->Prepare(); !s.ok()) return s;
  Stmt seq(db,
           "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM private_chat UNION ALL "
           "SELECT MAX(seq) FROM group_chat)");
  if (seq.get() != nullptr && sqlite3_step(seq.get()) == SQLITE_ROW) {
    storage->seq_next_ = sqlite3_column_int64(seq.get(), 0) + 1;
  }
  return storage;
}

SqliteStorage::~SqliteStorage() {
  for (sqlite3_stmt* s : {insert_private_, insert_group_, join_group_, join_user_, leave_group_,
                          leave_user_, receipt_, aggregate_, head_, read_private_, read_group_,
                          find_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

absl::Status SqliteStorage::Error(const char* what) const {
  return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db_)));
}

absl::Status SqliteStorage::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string reason = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return absl::InternalError(reason);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> SqliteStorage::QueryInts(const std::string& sql) {
  Stmt stmt(db_, sql.c_str());
  if (stmt.get() == nullptr) return Error("query");
  const int rc = sqlite3_step(stmt.get());
  std::vector<int64_t> row;
  if (rc == SQLITE_ROW) {
    for (int c = 0; c < sqlite3_column_count(stmt.get()); c++) {
      row.push_back(sqlite3_column_int64(stmt.get(), c));
    }
  } else if (rc != SQLITE_DONE) {
    return Error("query");
  }
  return row;
}

absl::Status SqliteStorage::FillHeads() {
  Stmt empty(db_,
             "SELECT NOT EXISTS (SELECT 1 FROM conversation_heads) AND "
             "(EXISTS (SELECT 1 FROM private_chat) OR EXISTS (SELECT 1 FROM group_chat))");
  if (empty.get() == nullptr || sqlite3_step(empty.get()) != SQLITE_ROW) return Error("heads");
  if (sqlite3_column_int(empty.get(), 0) == 0) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  if (absl::Status s = Exec(kFillHeads); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

absl::Status SqliteStorage::Prepare() {
  const std::pair<sqlite3_stmt**, const char*> statements[] = {
      {&insert_private_,
       "INSERT OR REPLACE INTO private_chat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
      {&insert_group_, "INSERT OR REPLACE INTO group_chat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&join_group_, "INSERT OR IGNORE INTO group_membership VALUES (?1, ?2)"},
      {&join_user_, "INSERT OR IGNORE INTO user_membership VALUES (?2, ?1)"},
      {&leave_group_, "DELETE FROM group_membership WHERE group_id = ?1 AND user_id = ?2"},
      {&leave_user_, "DELETE FROM user_membership WHERE user_id = ?2 AND group_id = ?1"},
      {&receipt_,
       "INSERT INTO receipts VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET "
       "up_to = MAX(up_to, excluded.up_to)"},
      {&aggregate_,
       "INSERT INTO receipt_aggregates VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET "
       "up_to = MAX(up_to, excluded.up_to)"},
      {&head_,
       "INSERT INTO conversation_heads VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET "
       "head = MAX(head, excluded.head)"},
      {&read_private_,
       "SELECT 1, user_low, user_high, message_id, prev_msg_id, sender, client_msg_id, "
       "sent_at_us, body, seq FROM private_chat WHERE user_low = ?1 AND user_high = ?2 AND "
       "message_id > ?3 ORDER BY message_id LIMIT ?4"},
      {&read_group_,
       "SELECT 2, group_id, 0, message_id, prev_msg_id, sender, client_msg_id, sent_at_us, "
       "body, seq FROM group_chat WHERE group_id = ?1 AND message_id > ?3 "
       "ORDER BY message_id LIMIT ?4"},
      {&find_,
       "SELECT 1, user_low, user_high, message_id, prev_msg_id, sender, client_msg_id, "
       "sent_at_us, body, seq FROM private_chat WHERE sender = ?1 AND client_msg_id = ?2 "
       "UNION ALL SELECT 2, group_id, 0, message_id, prev_msg_id, sender, client_msg_id, "
       "sent_at_us, body, seq FROM group_chat WHERE sender = ?1 AND client_msg_id = ?2 "
       "ORDER BY 10 LIMIT 1"},
  };
  for (const auto& [slot, sql] : statements) {
    if (sqlite3_prepare_v2(db_, sql, -1, slot, nullptr) != SQLITE_OK) return Error(sql);
  }
  return absl::OkStatus();
}

absl::Status SqliteStorage::Write(const PersistRecord& record) {
  sqlite3_stmt* stmts[2] = {nullptr, nullptr};
  if (const auto* p = std::get_if<PersistMessage>(&record)) {
    const ChatMessage& m = p->message;
    sqlite3_stmt* s = m.conv.is_group() ? insert_group_ : insert_private_;
    int i = 1;
    sqlite3_bind_int64(s, i++, S(m.conv.low));
    if (!m.conv.is_group()) sqlite3_bind_int64(s, i++, S(m.conv.high));
    sqlite3_bind_int64(s, i++, S(m.message_id));
    sqlite3_bind_int64(s, i++, S(m.prev_msg_id));
    sqlite3_bind_int64(s, i++, S(m.sender.value));
    sqlite3_bind_int64(s, i++, S(m.client_msg_id));
    sqlite3_bind_int64(s, i++, m.sent_at_us);
    sqlite3_bind_blob(s, i++, m.body.data(), static_cast<int>(m.body.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, i++, seq_next_++);
    stmts[0] = s;
  } else if (const auto* ms = std::get_if<PersistMembership>(&record)) {
    stmts[0] = ms->joined ? join_group_ : leave_group_;
    stmts[1] = ms->joined ? join_user_ : leave_user_;
    for (sqlite3_stmt* s : stmts) {
      sqlite3_bind_int64(s, 1, S(ms->group.value));
      sqlite3_bind_int64(s, 2, S(ms->user.value));
    }
  } else if (const auto* w = std::get_if<PersistWatermark>(&record)) {
    sqlite3_stmt* s = receipt_;
    sqlite3_bind_int(s, 1, static_cast<int>(w->conv.type));
    sqlite3_bind_int64(s, 2, S(w->conv.low));
    sqlite3_bind_int64(s, 3, S(w->conv.high));
    sqlite3_bind_int64(s, 4, S(w->reader.value));
    sqlite3_bind_int(s, 5, static_cast<int>(w->kind));
    sqlite3_bind_int64(s, 6, S(w->up_to));
    stmts[0] = s;
  } else if (const auto* ap = std::get_if<PersistAggregate>(&record)) {
    const auto& a = *ap;
    sqlite3_stmt* s = aggregate_;
    sqlite3_bind_int64(s, 1, S(a.conv.low));
    sqlite3_bind_int(s, 2, static_cast<int>(a.kind));
    sqlite3_bind_int64(s, 3, S(a.up_to));
    stmts[0] = s;
  } else {
    return CheckHasTable(record);  // a batch writer's record: refused
  }
  for (sqlite3_stmt* s : stmts) {
    if (s == nullptr) continue;
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return Error("write");
  }
  return absl::OkStatus();
}

absl::Status SqliteStorage::Commit(const std::vector<PersistRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  for (const PersistRecord& r : records) {
    if (absl::Status s = Write(r); !s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  for (const auto& [conv, head] : BatchHeads(records)) {
    sqlite3_bind_int(head_, 1, static_cast<int>(conv.type));
    sqlite3_bind_int64(head_, 2, S(conv.low));
    sqlite3_bind_int64(head_, 3, conv.is_group() ? 0 : S(conv.high));
    sqlite3_bind_int64(head_, 4, S(head));
    const int rc = sqlite3_step(head_);
    sqlite3_reset(head_);
    if (rc != SQLITE_DONE) {
      absl::Status s = Error("conversation head");
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

absl::Status SqliteStorage::Checkpoint() { return Exec("PRAGMA wal_checkpoint(TRUNCATE)"); }

absl::StatusOr<std::vector<ChatMessage>> SqliteStorage::ReadHistory(const ConversationId& conv,
                                                                    MessageId after,
                                                                    uint32_t limit) {
  sqlite3_stmt* s = conv.is_group() ? read_group_ : read_private_;
  sqlite3_bind_int64(s, 1, S(conv.low));
  sqlite3_bind_int64(s, 2, conv.is_group() ? 0 : S(conv.high));
  sqlite3_bind_int64(s, 3, S(after));
  sqlite3_bind_int64(s, 4, limit);
  std::vector<ChatMessage> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(RowMessage(s).message);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return Error("read history");
  return out;
}

absl::StatusOr<std::optional<ChatMessage>> SqliteStorage::FindMessage(UserId sender,
                                                                      ClientMsgId client_msg_id) {
  sqlite3_bind_int64(find_, 1, S(sender.value));
  sqlite3_bind_int64(find_, 2, S(client_msg_id));
  std::optional<ChatMessage> found;
  const int rc = sqlite3_step(find_);
  if (rc == SQLITE_ROW) found = RowMessage(find_).message;
  sqlite3_reset(find_);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("find message");
  return found;
}

absl::Status SqliteStorage::LoadHotMessages(const Restore& restore, uint64_t recent) {
  std::vector<SeqMessage> rows;
  const std::string heads = absl::StrCat(
      "SELECT ", kPrivateColumns, " FROM conversation_heads h JOIN private_chat p ON "
      "p.user_low = h.conv_low AND p.user_high = h.conv_high AND p.message_id = "
      "(SELECT MAX(message_id) FROM private_chat WHERE user_low = h.conv_low AND "
      "user_high = h.conv_high) WHERE h.conv_type = 1 UNION ALL SELECT ", kGroupColumns,
      " FROM conversation_heads h JOIN group_chat g ON g.group_id = h.conv_low AND "
      "g.message_id = (SELECT MAX(message_id) FROM group_chat WHERE group_id = h.conv_low) "
      "WHERE h.conv_type = 2");
  // Each table's newest rows by its seq index; the newest `recent` of both are among them.
  const std::string newest_private = absl::StrCat("SELECT ", kPrivateColumns,
                                                  " FROM private_chat ORDER BY seq DESC LIMIT ?1");
  const std::string newest_group = absl::StrCat("SELECT ", kGroupColumns,
                                                " FROM group_chat ORDER BY seq DESC LIMIT ?1");
  std::vector<SeqMessage> newest;
  for (const std::string* sql : {&heads, &newest_private, &newest_group}) {
    Stmt q(db_, sql->c_str());
    if (q.get() == nullptr) return Error("load messages");
    if (sql != &heads) sqlite3_bind_int64(q.get(), 1, S(recent));
    std::vector<SeqMessage>& into = sql == &heads ? rows : newest;
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) into.push_back(RowMessage(q.get()));
    if (rc != SQLITE_DONE) return Error("load messages");
  }
  std::sort(newest.begin(), newest.end(),
            [](const SeqMessage& a, const SeqMessage& b) { return a.seq > b.seq; });
  if (newest.size() > recent) newest.resize(recent);
  for (SeqMessage& m : newest) rows.push_back(std::move(m));
  return ReplayHotMessages(std::move(rows), restore, messages_loaded_);
}

absl::Status SqliteStorage::Load(const Restore& restore, const LoadScope& scope) {
  int rc;
  if (scope.hot) {
    if (absl::Status s = LoadHotMessages(restore, scope.recent); !s.ok()) return s;
  } else {
    Stmt messages(db_, absl::StrCat("SELECT ", kPrivateColumns, " FROM private_chat UNION ALL ",
                                    "SELECT ", kGroupColumns, " FROM group_chat ORDER BY 10")
                           .c_str());
    if (messages.get() == nullptr) return Error("load messages");
    while ((rc = sqlite3_step(messages.get())) == SQLITE_ROW) {
      if (absl::Status st = restore(PersistMessage{RowMessage(messages.get()).message});
          !st.ok()) {
        return st;
      }
      messages_loaded_++;
    }
    if (rc != SQLITE_DONE) return Error("load messages");
  }

  Stmt members(db_, "SELECT group_id, user_id FROM group_membership ORDER BY 1, 2");
  while ((rc = sqlite3_step(members.get())) == SQLITE_ROW) {
    PersistMembership r{UserId(U(sqlite3_column_int64(members.get(), 1))),
                        GroupId(U(sqlite3_column_int64(members.get(), 0))), true};
    if (absl::Status st = restore(r); !st.ok()) return st;
  }
  if (rc != SQLITE_DONE) return Error("load memberships");

  Stmt receipts(db_,
                "SELECT conv_type, conv_low, conv_high, reader, kind, up_to FROM receipts "
                "ORDER BY 1, 2, 3, 4, 5");
  while ((rc = sqlite3_step(receipts.get())) == SQLITE_ROW) {
    sqlite3_stmt* s = receipts.get();
    PersistWatermark w;
    w.conv.type = static_cast<ChannelType>(sqlite3_column_int(s, 0));
    w.conv.low = U(sqlite3_column_int64(s, 1));
    w.conv.high = U(sqlite3_column_int64(s, 2));
    w.reader = UserId(U(sqlite3_column_int64(s, 3)));
    w.kind = static_cast<ReceiptKind>(sqlite3_column_int(s, 4));
    w.up_to = U(sqlite3_column_int64(s, 5));
    if (absl::Status st = restore(w); !st.ok()) return st;
  }
  if (rc != SQLITE_DONE) return Error("load receipts");

  Stmt aggregates(db_, "SELECT group_id, kind, up_to FROM receipt_aggregates ORDER BY 1, 2");
  while ((rc = sqlite3_step(aggregates.get())) == SQLITE_ROW) {
    sqlite3_stmt* s = aggregates.get();
    PersistAggregate a;
    a.conv = ConversationId::Group(GroupId(U(sqlite3_column_int64(s, 0))));
    a.kind = static_cast<ReceiptKind>(sqlite3_column_int(s, 1));
    a.up_to = U(sqlite3_column_int64(s, 2));
    if (absl::Status st = restore(a); !st.ok()) return st;
  }
  if (rc != SQLITE_DONE) return Error("load aggregates");
  return absl::OkStatus();
}

}  // namespace chatlab::real
