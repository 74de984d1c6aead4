#include "real-transport/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "real-transport/storage/sqlite_storage.h"

namespace chatlab::real {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string Pbkdf2(std::string_view password, std::string_view salt, uint32_t iterations) {
  unsigned char out[kHashBytes];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    sizeof(out), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// ---- TokenKey --------------------------------------------------------------------------------

absl::StatusOr<TokenKey> TokenKey::LoadOrCreate(const std::string& path) {
  TokenKey key;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    unsigned char bytes[kTokenKeyBytes];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("RAND_bytes failed");
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const bool written = write(fd, bytes, sizeof(bytes)) == static_cast<ssize_t>(sizeof(bytes));
      const bool synced = fsync(fd) == 0;
      close(fd);
      if (!written || !synced) {
        return absl::FailedPreconditionError(absl::StrCat("cannot write key file ", path));
      }
    } else if (errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create key file ", path, ": ", std::strerror(errno)));
    }
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);  // also when another process raced us
  }
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read key file ", path, ": ", std::strerror(errno)));
  }
  char buffer[kTokenKeyBytes + 1];
  const ssize_t n = read(fd, buffer, sizeof(buffer));
  close(fd);
  if (n != static_cast<ssize_t>(kTokenKeyBytes)) {
    return absl::FailedPreconditionError(
        absl::StrCat("key file ", path, " must hold exactly ", kTokenKeyBytes, " bytes"));
  }
  key.key_.assign(buffer, kTokenKeyBytes);
  return key;
}

std::string TokenKey::Mac(std::string_view data) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return Hex(out, n);
}

bool TokenKey::MacEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string TokenKey::Mint(UserId user, TimeUs expires_at_us) const {
  const std::string payload = absl::StrCat(user.value, ".", expires_at_us);
  return absl::StrCat(payload, ".", Mac(payload));
}

absl::StatusOr<TokenKey::Verified> TokenKey::Verify(std::string_view token, TimeUs now_us) const {
  const size_t dot = token.rfind('.');
  if (dot == std::string_view::npos || token.size() > 128) {
    return absl::UnauthenticatedError("malformed token");
  }
  const std::string_view payload = token.substr(0, dot);
  if (!MacEqual(Mac(payload), token.substr(dot + 1))) {
    return absl::UnauthenticatedError("token signature does not verify");
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(payload.data(), payload.size()), '.');
  uint64_t user = 0;
  int64_t expires = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &user) ||
      !absl::SimpleAtoi(parts[1], &expires) || user == 0) {
    return absl::UnauthenticatedError("malformed token");
  }
  if (now_us >= expires) return absl::UnauthenticatedError("token expired");
  return Verified{UserId(user), expires};
}

// ---- Users -----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Users>> Users::Open(const std::string& path) {
  if (absl::Status s = CreatePrivateFile(path); !s.ok()) return s;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string reason = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat("cannot open ", path, ": ", reason));
  }
  std::unique_ptr<Users> users(new Users(db));
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE IF NOT EXISTS users (user_id INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "name TEXT NOT NULL UNIQUE, salt BLOB NOT NULL, hash BLOB NOT NULL, "
                   "iterations INTEGER NOT NULL)",
                   nullptr, nullptr, &error) != SQLITE_OK) {
    std::string reason = error != nullptr ? error : "unknown";
    sqlite3_free(error);
    return absl::FailedPreconditionError(absl::StrCat("cannot use ", path, ": ", reason));
  }
  return users;
}

Users::~Users() { sqlite3_close(db_); }

absl::StatusOr<UserId> Users::Add(std::string_view name, std::string_view password,
                                  uint32_t iterations) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a user name is 1..", kNameBytesMax, " letters, digits, '_', '-' or '.'"));
  }
  if (password.empty() || password.size() > kPasswordBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("a password is 1..", kPasswordBytesMax, " bytes"));
  }
  if (iterations == 0) return absl::InvalidArgumentError("iterations must be positive");
  unsigned char salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof(salt)) != 1) return absl::InternalError("RAND_bytes failed");
  const std::string salt_s(reinterpret_cast<const char*>(salt), sizeof(salt));
  const std::string hash = Pbkdf2(password, salt_s, iterations);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "INSERT INTO users (name, salt, hash, iterations) VALUES (?1,?2,?3,?4)",
                     -1, &s, nullptr);
  sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 2, salt_s.data(), static_cast<int>(salt_s.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 3, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 4, iterations);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(
        absl::StrCat("user ", absl::string_view(name.data(), name.size()), " exists"));
  }
  if (rc != SQLITE_DONE) return absl::InternalError(sqlite3_errmsg(db_));
  return UserId(static_cast<uint64_t>(sqlite3_last_insert_rowid(db_)));
}

absl::StatusOr<UserId> Users::Verify(std::string_view name, std::string_view password) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "SELECT user_id, salt, hash, iterations FROM users WHERE name = ?1", -1,
                     &s, nullptr);
  sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  absl::StatusOr<UserId> result = absl::UnauthenticatedError("unknown user or wrong password");
  if (password.size() <= kPasswordBytesMax && sqlite3_step(s) == SQLITE_ROW) {
    const std::string salt(static_cast<const char*>(sqlite3_column_blob(s, 1)),
                           static_cast<size_t>(sqlite3_column_bytes(s, 1)));
    const std::string hash(static_cast<const char*>(sqlite3_column_blob(s, 2)),
                           static_cast<size_t>(sqlite3_column_bytes(s, 2)));
    const auto iterations = static_cast<uint32_t>(sqlite3_column_int64(s, 3));
    const std::string computed = Pbkdf2(password, salt, iterations);
    if (TokenKey::MacEqual(computed, hash)) {
      result = UserId(static_cast<uint64_t>(sqlite3_column_int64(s, 0)));
    }
  }
  sqlite3_finalize(s);
  return result;
}

absl::StatusOr<UserId> Users::Find(std::string_view name) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "SELECT user_id FROM users WHERE name = ?1", -1, &s, nullptr);
  sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  absl::StatusOr<UserId> result = absl::NotFoundError("no such user");
  if (sqlite3_step(s) == SQLITE_ROW) {
    result = UserId(static_cast<uint64_t>(sqlite3_column_int64(s, 0)));
  }
  sqlite3_finalize(s);
  return result;
}

absl::StatusOr<std::string> Users::Name(UserId user) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "SELECT name FROM users WHERE user_id = ?1", -1, &s, nullptr);
  sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(user.value));
  absl::StatusOr<std::string> result = absl::NotFoundError("no such user");
  if (sqlite3_step(s) == SQLITE_ROW) {
    result = std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }
  sqlite3_finalize(s);
  return result;
}

}  // namespace chatlab::real
