// chatd serves the web client (web/, embedded) and the user directory the page needs. The
// browser tests (web/tests/, label "web") check the page itself and its headers in Chromium.
#include <string>

#include "real-transport/chatd/web_assets.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

TEST(WebServing, EveryEmbeddedFileHasAPathAndAType) {
  ASSERT_FALSE(WebAssets().empty());
  for (const WebAsset& a : WebAssets()) {
    EXPECT_EQ(a.path.substr(0, 1), "/");
    EXPECT_FALSE(a.content_type.empty()) << a.path;
    EXPECT_FALSE(a.body.empty()) << a.path;
  }
  ASSERT_NE(FindWebAsset("/"), nullptr);
  EXPECT_EQ(FindWebAsset("/")->body, FindWebAsset("/index.html")->body);
  EXPECT_EQ(FindWebAsset("/js/main.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindWebAsset("/../CMakeLists.txt"), nullptr);
}

TEST(WebServing, ServesThePageWithoutATokenAndNothingElse) {
  Single s({"alice"});
  auto index = HttpCall(s.server->address(), "GET", "/", "");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->body.find("<script type=\"module\" src=\"/js/main.js\">"), std::string::npos);
  auto js = HttpCall(s.server->address(), "GET", "/js/client.js", "");
  ASSERT_TRUE(js.ok());
  EXPECT_EQ(js->status, 200);
  auto missing = HttpCall(s.server->address(), "GET", "/js/missing.js", "");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto post = HttpCall(s.server->address(), "POST", "/", "");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 404);
}

TEST(WebServing, NamesAUserIdForAnAuthenticatedCaller) {
  Single s({"alice", "bob"});
  const LoginResult alice = s.Login("alice");
  const LoginResult bob = s.Login("bob");
  const std::string path = "/api/user_names/" + std::to_string(bob.user.value);
  auto named = HttpCall(s.server->address(), "GET", path, "", alice.token);
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->status, 200);
  EXPECT_NE(named->body.find("\"user\":\"bob\""), std::string::npos) << named->body;
  auto anonymous = HttpCall(s.server->address(), "GET", path, "");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  for (const char* bad : {"/api/user_names/999", "/api/user_names/0", "/api/user_names/x"}) {
    auto r = HttpCall(s.server->address(), "GET", bad, "", alice.token);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 404) << bad;
  }
}

}  // namespace
}  // namespace chatlab::real::testing
