// Authentication for chatd: accounts with salted slow password hashes, and signed expiring
// tokens. OpenSSL does the cryptography (PBKDF2-HMAC-SHA256, HMAC-SHA256, RAND_bytes,
// CRYPTO_memcmp); nothing here is hand-rolled.
//
// Thread-safety: TokenKey is immutable after construction and safe to share. Users is not
// thread-safe: chatd uses it from its one auth thread only.
#ifndef CHATLAB_REAL_TRANSPORT_AUTH_H_
#define CHATLAB_REAL_TRANSPORT_AUTH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/types.h"

struct sqlite3;

namespace chatlab::real {

// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
inline constexpr uint32_t kPbkdf2IterationsDefault = 210000;
inline constexpr size_t kTokenKeyBytes = 32;
// Longest user name and password accepted (bytes).
inline constexpr size_t kNameBytesMax = 64;
inline constexpr size_t kPasswordBytesMax = 1024;

// The 32-byte secret that signs tokens and node-to-node requests. Every process of a cluster
// must use the same key.
class TokenKey {
 public:
  // Reads the key file, or creates it (mode 0600, random bytes) when it does not exist.
  static absl::StatusOr<TokenKey> LoadOrCreate(const std::string& path);

  // "USERID.EXPIRES_US.MAC", MAC = hex HMAC-SHA256("USERID.EXPIRES_US").
  std::string Mint(UserId user, TimeUs expires_at_us) const;
  // What a valid token says.
  struct Verified {
    UserId user;
    TimeUs expires_at_us = 0;
  };
  // The token's user and expiry. Unauthenticated when malformed, forged or expired at now_us.
  absl::StatusOr<Verified> Verify(std::string_view token, TimeUs now_us) const;
  // Hex HMAC-SHA256 of data under the key (node-to-node request authentication).
  std::string Mac(std::string_view data) const;
  // Constant-time comparison of two MACs.
  static bool MacEqual(std::string_view a, std::string_view b);

 private:
  std::string key_;  // kTokenKeyBytes bytes
};

// The users table (users.db): name -> id, salted PBKDF2 hash, iteration count.
class Users {
 public:
  // Opens or creates (mode 0600: it holds password hashes) the database at path (WAL,
  // synchronous = FULL).
  static absl::StatusOr<std::unique_ptr<Users>> Open(const std::string& path);
  ~Users();
  Users(const Users&) = delete;
  Users& operator=(const Users&) = delete;

  // Creates a user; AlreadyExists if the name is taken; InvalidArgument for an empty or too
  // long name (letters, digits, '_', '-', '.') or password.
  absl::StatusOr<UserId> Add(std::string_view name, std::string_view password,
                             uint32_t iterations = kPbkdf2IterationsDefault);
  // The user's id if the password matches; Unauthenticated otherwise (the same error for an
  // unknown name and a wrong password).
  absl::StatusOr<UserId> Verify(std::string_view name, std::string_view password);
  // The id of a name; NotFound if there is none.
  absl::StatusOr<UserId> Find(std::string_view name);
  // The name of a user id; NotFound if there is none.
  absl::StatusOr<std::string> Name(UserId user);

 private:
  explicit Users(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_AUTH_H_
