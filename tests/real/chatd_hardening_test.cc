// Real-socket tests of what a black-box client found (issue 14): the files chatd creates are
// readable by their owner only. Like chatd_test.cc, every test starts its own chatd on a free
// 127.0.0.1 port with a temporary data directory.
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "real-transport/util.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The permission bits of path, or -1 when it does not exist.
int ModeOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

TEST(ChatdFilesTest, DataDirDatabasesAndKeyAreReadableByTheOwnerOnly) {
  // Under the most common umask, files are created world-readable unless chatd says otherwise.
  const mode_t old_umask = umask(022);
  TempDir tmp;
  const std::string data = tmp / "data";  // created by chatd
  AddUser(data, "alice");
  Chatd server(data, FreePort());
  server.Start();
  // A message makes chat.db write its WAL.
  auto alice = real::Login(server.address(), "alice", "pw");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(ModeOf(data), 0700);
  for (const char* name : {"users.db", "chat.db", "chat.db-wal", "chat.db-shm", "token.key"}) {
    EXPECT_EQ(ModeOf(data + "/" + name), 0600) << name;
  }
  // users.db's WAL, when SQLite keeps one at this moment, is private too.
  for (const char* name : {"users.db-wal", "users.db-shm"}) {
    const int mode = ModeOf(data + "/" + name);
    if (mode != -1) {
      EXPECT_EQ(mode, 0600) << name;
    }
  }
  umask(old_umask);
}

}  // namespace
}  // namespace chatlab::real::testing
