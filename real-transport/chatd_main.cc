// chatd: the ChatLab server. `chatd --help` lists every flag; docs/chatd.md is the design.
//
//   chatd --data_dir DIR [--listen 127.0.0.1:7000] [--config chatd.toml] [flags...]
//   chatd adduser --data_dir DIR [--password P | password on stdin] [--count N] NAME
//
// Exit status: 0 after a graceful shutdown, 1 when the server cannot start (the reason is
// logged), 2 for a usage error (an unknown flag or config key is named).
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "real-transport/auth.h"
#include "real-transport/chatd.h"
#include "toml++/toml.h"

namespace chatlab::real {
namespace {

struct Flag {
  const char* name;
  std::string help;
  std::function<bool(const std::string&)> set;  // false: the value is invalid
};

template <typename T>
std::function<bool(const std::string&)> Num(T& field) {
  return [&field](const std::string& v) { return absl::SimpleAtoi(v, &field); };
}
std::function<bool(const std::string&)> Dbl(double& field) {
  return [&field](const std::string& v) { return absl::SimpleAtod(v, &field); };
}
std::function<bool(const std::string&)> Str(std::string& field) {
  return [&field](const std::string& v) {
    field = v;
    return true;
  };
}
std::function<bool(const std::string&)> Ms(TimeUs& field) {
  return [&field](const std::string& v) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(v, &ms) || ms < 0) return false;
    field = ms * kUsPerMs;
    return true;
  };
}
std::function<bool(const std::string&)> Bool(bool& field) {
  return [&field](const std::string& v) {
    if (v != "true" && v != "false") return false;
    field = v == "true";
    return true;
  };
}
template <typename E>
std::function<bool(const std::string&)> Enum(E& field,
                                             std::optional<E> (*parse)(std::string_view)) {
  return [&field, parse](const std::string& v) {
    auto e = parse(v);
    if (e) field = *e;
    return e.has_value();
  };
}

std::vector<Flag> ServeFlags(ChatdOptions& o, std::string& config_file) {
  ProtocolConfig& c = o.config;
  return {
      {"config", "TOML file; keys are these flag names; flags given override it", Str(config_file)},
      {"listen", "host:port to serve on (port 0: any free port)", Str(o.listen)},
      {"cluster", "comma-separated host:port of every process, in index order; an entry "
                  "\"a:1|b:2\" lists a process's place and its standbys' (postgres store shards)",
       [&o](const std::string& v) {
         o.cluster = absl::StrSplit(v, ',', absl::SkipEmpty());
         return true;
       }},
      {"index", "this process's 1-based index in --cluster; 1 hosts the services", Num(o.index)},
      {"data_dir", "directory for chat.db (and users.db, token.key by default)", Str(o.data_dir)},
      {"users_db", "users database (a cluster shares one)", Str(o.users_db)},
      {"key_file", "32-byte token key, created if missing (a cluster shares one)", Str(o.key_file)},
      {"port_file", "write the bound port here once listening", Str(o.port_file)},
      {"web_dir", "development: serve the web client from this directory (default: embedded)",
       Str(o.web_dir)},
      {"store", "the store shard's disk (process k hosts shard k-1): sqlite (data_dir/chat.db) "
                "or postgres",
       Str(o.store)},
      {"store_postgres", "libpq connection string of this process's store shard's database "
                         "(--store postgres)",
       Str(o.store_postgres)},
      {"store_retry_ms", "postgres: reconnect this long to a lost database before exiting",
       Num(o.store_retry_ms)},
      {"store_lease_ms", "postgres: the store's lease; a standby chatd takes over this long after "
                         "the owner stops renewing it", Num(o.store_lease_ms)},
      {"redis", "host:port of a Redis server holding the user mapping, presence and "
                "notification (every process uses it; default: process 1's memory)", Str(o.redis)},
      {"redis_prefix", "prefix of every Redis key (deployments sharing a server)",
       Str(o.redis_prefix)},
      {"rabbitmq", "amqp://user:password@host:port/vhost of a RabbitMQ holding one queue per chat "
                   "server (forwarding=queue only; default: process 1's memory)",
       Str(o.rabbitmq)},
      {"tls_cert", "PEM certificate chain: serve HTTPS and wss:// only (with --tls_key)",
       Str(o.tls_cert)},
      {"tls_key", "PEM private key of --tls_cert", Str(o.tls_key)},
      {"tls_ca", "PEM CA file peer links verify other processes by (default: system's)",
       Str(o.tls_ca)},
      {"seed", "seed of the nodes' random generators (0: random)", Num(o.seed)},
      {"log_level", "debug|info|warn|error",
       [&o](const std::string& v) {
         const std::pair<const char*, LogLevel> levels[] = {{"debug", LogLevel::kDebug},
                                                            {"info", LogLevel::kInfo},
                                                            {"warn", LogLevel::kWarn},
                                                            {"error", LogLevel::kError}};
         for (const auto& [name, level] : levels) {
           if (v == name) {
             o.log_level = level;
             return true;
           }
         }
         return false;
       }},
      {"frame_bytes_max", "largest client frame; larger ones get ErrorReply",
       Num(o.frame_bytes_max)},
      {"json_depth_max", "deepest JSON nesting in a client frame", Num(o.json_depth_max)},
      {"send_queue_max", "frames queued per connection; beyond it the connection is dropped",
       Num(o.send_queue_max)},
      {"send_queue_bytes_max", "bytes queued per connection; beyond it the connection is dropped",
       Num(o.send_queue_bytes_max)},
      {"user_rate_per_s", "inbound frames per second per user (token bucket)",
       Dbl(o.user_rate_per_s)},
      {"user_burst", "token bucket size per user", Dbl(o.user_burst)},
      {"connections_max", "open WebSocket connections; beyond it upgrades get 503",
       Num(o.connections_max)},
      {"http_body_bytes_max", "largest HTTP request body (except /node)",
       Num(o.http_body_bytes_max)},
      {"http_header_timeout_ms",
       "a request header must be complete this long after its first byte; else closed",
       Num(o.http_header_timeout_ms)},
      {"http_body_timeout_ms", "a request body must be complete this long after its header",
       Num(o.http_body_timeout_ms)},
      {"http_idle_timeout_ms", "a keep-alive connection waits this long for its next request",
       Num(o.http_idle_timeout_ms)},
      {"node_queue_max", "node messages queued per peer process; beyond it they are dropped",
       Num(o.node_queue_max)},
      {"peer_connections_max", "keep-alive connections per peer process",
       Num(o.peer_connections_max)},
      {"drain_timeout_ms", "longest SIGTERM drain", Num(o.drain_timeout_ms)},
      {"token_ttl_s", "login token lifetime", Num(o.token_ttl_s)},
      // Protocol switches and limits (core/config.h).
      {"forwarding", Choices<ForwardingStrategy>(),
       Enum<ForwardingStrategy>(c.forwarding, &ParseForwardingStrategy)},
      {"group_delivery", Choices<GroupDelivery>(),
       Enum<GroupDelivery>(c.group_delivery, &ParseGroupDelivery)},
      {"id_scheme", Choices<IdScheme>(), Enum<IdScheme>(c.id_scheme, &ParseIdScheme)},
      {"id_generator", Choices<IdGenerator>(),
       Enum<IdGenerator>(c.id_generator, &ParseIdGenerator)},
      {"presence_fanout", Choices<PresenceFanout>(),
       Enum<PresenceFanout>(c.presence_fanout, &ParsePresenceFanout)},
      {"write_path", "direct (batched is refused: chatd does not keep the writer's log)",
       Enum<WritePath>(c.write_path, &ParseWritePath)},
      {"dedup_enabled",
       "true|false; false is broken on purpose: the store keeps every retry of a message "
       "(tests show the oracle catching it on a real history; never in production)",
       Bool(c.dedup_enabled)},
      {"request_timeout_ms", "chat server waiting on a service", Ms(c.request_timeout_us)},
      {"buffered_flush_interval_ms", "buffered forwarding window",
       Ms(c.buffered_flush_interval_us)},
      {"buffered_flush_jitter_ms", "buffered forwarding random offset",
       Ms(c.buffered_flush_jitter_us)},
      {"typing_ttl_ms", "typing shown without refresh", Ms(c.typing_ttl_us)},
      {"hybrid_push_members_max", "group_delivery hybrid: a group with more members is large",
       Num(c.hybrid_push_members_max)},
      {"hybrid_push_rate_max",
       "group_delivery hybrid: a group with more messages per hybrid_rate_window_ms is active",
       Num(c.hybrid_push_rate_max)},
      {"hybrid_rate_window_ms", "group_delivery hybrid: the window a group's rate is counted in",
       Ms(c.hybrid_rate_window_us)},
      {"presence_short_list_size", "presence_fanout short_list: contacts told of each change",
       Num(c.presence_short_list_size)},
      {"body_bytes_max", "largest message body", Num(c.body_bytes_max)},
      {"server_sessions_max", "sessions per chat server", Num(c.server_sessions_max)},
      {"server_pending_max", "chat server operations in flight", Num(c.server_pending_max)},
      {"get_messages_limit_max", "largest history page", Num(c.get_messages_limit_max)},
      {"store_dedup_window_max", "dedup entries kept in memory (with store_dedup_lookup false, a "
                                 "retry older than this many newer messages is stored again)",
       Num(c.store_dedup_window_max)},
      {"store_dedup_lookup", "true|false: a resend that misses the window is looked up on disk "
                             "(false: the window alone decides)", Bool(c.store_dedup_lookup)},
      {"store_tail_cache", "messages per conversation kept in memory; older reads go to disk "
                           "(0: every message in memory, restored at start)",
       Num(c.store_tail_cache)},
      {"store_group_members_max", "members per group", Num(c.store_group_members_max)},
      {"map_refresh_ms", "every chat server re-sends its users to the mapping and presence this "
                         "often (0: never)", Ms(c.map_refresh_interval_us)},
      {"mapping_ttl_ms", "a mapping not refreshed this long expires (0: never; else more than "
                         "2 * (map_refresh_ms + the server tick))", Ms(c.mapping_ttl_us)},
      {"store_shards", "message store shards by conversation, 1 to 64: process k hosts shard "
                       "k-1, so at most the processes in --cluster; every process the same",
       Num(c.store_shards)},
  };
}

std::string Normalize(std::string name) {
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

void Usage(const std::vector<Flag>& flags) {
  std::cout << "usage: chatd --data_dir DIR [flags]\n"
               "       chatd adduser --data_dir DIR [--password P] [--count N] "
               "[--pbkdf2_iterations N] NAME\n\nflags (also config file keys):\n";
  for (const Flag& f : flags) std::cout << "  --" << f.name << "\n      " << f.help << "\n";
}

// Applies name=value; false (and a message on stderr) for an unknown name or a bad value.
bool Set(const std::vector<Flag>& flags, const std::string& raw_name, const std::string& value,
         const char* where) {
  const std::string name = Normalize(raw_name);
  for (const Flag& f : flags) {
    if (name != f.name) continue;
    if (f.set(value)) return true;
    std::cerr << "chatd: " << where << " " << raw_name << ": invalid value \"" << value << "\"\n";
    return false;
  }
  std::cerr << "chatd: unknown " << where << " \"" << raw_name << "\" (chatd --help lists them)\n";
  return false;
}

// Parses --name=value / --name value pairs; positional arguments go to positional.
bool ParseArgs(int argc, char** argv, int first, const std::vector<Flag>& flags,
               std::vector<std::string>* positional) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (positional == nullptr) {
        std::cerr << "chatd: unexpected argument \"" << arg << "\"\n";
        return false;
      }
      positional->push_back(arg);
      continue;
    }
    arg = arg.substr(2);
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      bool known = false;
      for (const Flag& f : flags) known = known || Normalize(arg) == f.name;
      std::cerr << "chatd: "
                << (known ? "flag --" + arg + " needs a value"
                          : "unknown flag --" + arg + " (chatd --help lists them)")
                << "\n";
      return false;
    }
    if (!Set(flags, arg, value, "flag")) return false;
  }
  return true;
}

bool LoadConfig(const std::string& path, const std::vector<Flag>& flags) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::cerr << "chatd: config " << path << ": " << e.description() << "\n";
    return false;
  }
  bool ok = true;
  for (const auto& [key, node] : table) {
    std::string value;
    if (const auto* s = node.as_string()) {
      value = s->get();
    } else if (const auto* n = node.as_integer()) {
      value = std::to_string(n->get());
    } else if (const auto* d = node.as_floating_point()) {
      value = std::to_string(d->get());
    } else if (const auto* b = node.as_boolean()) {
      value = b->get() ? "true" : "false";
    } else if (const auto* a = node.as_array()) {
      std::vector<std::string> items;
      for (const auto& item : *a) items.push_back(item.value_or(std::string()));
      value = absl::StrJoin(items, ",");
    }
    ok = Set(flags, std::string(key.str()), value, "config key") && ok;
  }
  return ok;
}

int AddUser(int argc, char** argv) {
  std::string data_dir, users_db, password;
  uint32_t count = 0;
  uint32_t iterations = kPbkdf2IterationsDefault;
  const std::vector<Flag> flags = {
      {"data_dir", "", Str(data_dir)},
      {"users_db", "", Str(users_db)},
      {"password", "", Str(password)},
      {"count", "", Num(count)},
      {"pbkdf2_iterations", "", Num(iterations)},
  };
  std::vector<std::string> names;
  if (!ParseArgs(argc, argv, 2, flags, &names)) return 2;
  if (names.size() != 1 || (data_dir.empty() && users_db.empty())) {
    std::cerr << "usage: chatd adduser --data_dir DIR [--password P] [--count N] NAME\n";
    return 2;
  }
  if (users_db.empty()) users_db = data_dir + "/users.db";
  if (!data_dir.empty()) mkdir(data_dir.c_str(), 0700);
  if (password.empty() && !std::getline(std::cin, password)) {
    std::cerr << "chatd adduser: no password (give --password or one line on stdin)\n";
    return 2;
  }
  auto users = Users::Open(users_db);
  if (!users.ok()) {
    std::cerr << "chatd adduser: " << users.status().message() << "\n";
    return 1;
  }
  const uint32_t n = count == 0 ? 1 : count;
  for (uint32_t i = 1; i <= n; ++i) {
    const std::string name = count == 0 ? names[0] : absl::StrCat(names[0], i);
    auto id = (*users)->Add(name, password, iterations);
    if (!id.ok()) {
      std::cerr << "chatd adduser: " << name << ": " << id.status().message() << "\n";
      return 1;
    }
    if (count == 0 || i == 1 || i == n) std::cout << name << " " << id->value << "\n";
  }
  return 0;
}

int Serve(int argc, char** argv, int first) {
  ChatdOptions options;
  std::string config_file;
  const std::vector<Flag> flags = ServeFlags(options, config_file);
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage(flags);
      return 0;
    }
  }
  // The config file first, then the flags over it.
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--config=", 0) == 0) config_file = a.substr(9);
    if (a == "--config" && i + 1 < argc) config_file = argv[i + 1];
  }
  if (!config_file.empty() && !LoadConfig(config_file, flags)) return 2;
  if (!ParseArgs(argc, argv, first, flags, nullptr)) return 2;
  signal(SIGPIPE, SIG_IGN);
  Chatd chatd(std::move(options));
  if (absl::Status s = chatd.Init(); !s.ok()) {
    std::cerr << "{\"level\":\"error\",\"event\":\"start_failed\",\"error\":\""
              << absl::StrReplaceAll(s.message(), {{"\"", "'"}}) << "\"}\n";
    std::cerr << "chatd: cannot start: " << s.message() << "\n";
    return 1;
  }
  return chatd.Run();
}

}  // namespace
}  // namespace chatlab::real

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "adduser") return chatlab::real::AddUser(argc, argv);
  const int first = (argc >= 2 && std::string(argv[1]) == "serve") ? 2 : 1;
  return chatlab::real::Serve(argc, argv, first);
}
