#include "real-transport/play/player.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "core/client.h"
#include "host/deployment.h"
#include "host/dispatch.h"
#include "real-transport/history_recorder.h"
#include "real-transport/json_codec.h"
#include "real-transport/play/truth_reader.h"
#include "real-transport/ws_client.h"
#include "sim/workload_model.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// How long the clients get, after they disconnect at the end, for their close frames to go out
// before the loop stops.
constexpr auto kCloseGrace = std::chrono::milliseconds(300);
// Frames a client takes (the server's pages are bounded by the protocol's limits).
constexpr JsonLimits kFrameLimits{64u << 20, 64};

// One user of the population: its chatd account, its core client, its workload stream and its
// WebSocket (at most one at a time: a ClientSession asks for one session at a time).
struct User {
  size_t index = 0;  // in the population; the population's UserId is index + 1
  UserId id;         // chatd's
  std::string name;
  std::string token;
  std::unique_ptr<ClientSession> client;
  // The user's workload draws, one Rng per stream (sim::UserStream).
  std::optional<Rng> churn, sends, other;
  std::shared_ptr<WsClient> ws;  // the current connection, or null
  SessionId session;             // set once ws is open and the client was told
  int process = -1;              // the process of ws (or of the last one)
  int connected_process = -1;    // the process of the last session that opened
  bool joined_groups = false;    // JoinGroup sent for the population's groups
  bool went_online = false;      // the workload took the user online before (a reconnect)
};

class Player : public ClientObserver, private host::ClientEnv {
 public:
  explicit Player(const PlayOptions& o) : o_(o), s_(o.scenario) {}

  absl::Status LogIn();
  void Run();
  absl::StatusOr<PlayResult> Finish(double wall_time_s);

  // ClientObserver: everything goes to the recorder; displays also schedule reads.
  void OnSent(TimeUs now, UserId u, ClientMsgId id, const ConversationId& conv) override {
    recorder_.OnSent(now, u, id, conv);
  }
  void OnSendAnswered(TimeUs now, UserId u, const SendAck& ack) override {
    recorder_.OnSendAnswered(now, u, ack);
  }
  void OnAcked(TimeUs now, UserId u, const SendAck& ack) override {
    recorder_.OnAcked(now, u, ack);
  }
  void OnSendFailed(TimeUs now, UserId u, const SendAck& ack) override {
    recorder_.OnSendFailed(now, u, ack);
  }
  void OnReceiptShown(TimeUs now, UserId u, const ReceiptUpdate& r) override {
    recorder_.OnReceiptShown(now, u, r);
  }
  void OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                   bool duplicate) override;

 private:
  User& UserOf(UserId id) { return users_[index_of_.at(id)]; }
  double Elapsed() const {
    return std::chrono::duration<double>(SteadyClock::now() - start_).count();
  }
  // Runs fn at t_s seconds after the start (at once if that is past), unless the play ended.
  void At(double t_s, std::function<void()> fn);
  void Apply(User& u, Effects& effects) { host::Dispatch(u.id, effects, *this); }
  ConversationId RealConv(const ConversationId& population_conv) const;

  // The workload (the simulator's sim/world/workload.cc, event by event).
  void Start();
  // at_s: when the event was due; the next one is drawn from it (timer lateness does not move
  // the user's schedule).
  void GoOnline(User& u, double at_s);
  void GoOffline(User& u, double at_s);
  void WorkloadSend(User& u, double at_s);
  void Send(User& u, double now);  // one workload send (sim: WorkloadSend), typed or not
  void Introduce(User& u, size_t contact);
  void Heal();
  void End();

  // host::ClientEnv.
  void SendToServer(UserId user, Message msg) override;
  void OpenSession(UserId user, NodeId server) override;
  void CloseSession(UserId user, SessionId session) override;
  void ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) override;
  void OnOpened(User& u, const std::shared_ptr<WsClient>& ws, const boost::system::error_code& ec);
  void OnFrame(User& u, std::string_view frame);

  const PlayOptions& o_;
  const sim::Scenario& s_;
  asio::io_context io_;
  std::vector<sim::PopulationUser> population_;
  std::vector<User> users_;
  absl::btree_map<UserId, size_t> index_of_;  // chatd id -> index in users_
  HistoryRecorder recorder_;
  PlayTotals totals_;
  SteadyClock::time_point start_;
  uint64_t session_next_ = 0;
  std::vector<const PlayFault*> at_heal_;  // faults due at duration_s or later: run at the heal
  bool healed_ = false;                    // from duration_s: nobody sends, nobody goes offline
  bool ended_ = false;                     // from duration_s + quiet_s: nothing more is scheduled
};

absl::Status Player::LogIn() {
  population_ = sim::BuildPopulation(s_, o_.seed);
  users_.resize(population_.size());
  const TimeUs first_cmid = NowUs();  // past every id an earlier run of these accounts used
  for (size_t i = 0; i < users_.size(); i++) {
    User& u = users_[i];
    u.index = i;
    u.name = absl::StrCat(o_.user_prefix, i + 1);
    const HostPort& at = o_.cluster[static_cast<size_t>(population_[i].home_server)];
    absl::StatusOr<LoginResult> login = Login(at, u.name, o_.password);
    if (!login.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "user ", u.name, ": ", login.status().message(), " (the play needs accounts ",
          o_.user_prefix, "1..", o_.user_prefix, users_.size(), ": chatd adduser --count ",
          users_.size(), " ", o_.user_prefix, ")"));
    }
    u.id = login->user;
    u.token = login->token;
    if (!index_of_.try_emplace(u.id, i).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("user ", u.name, " has the id of another user of the play"));
    }
    ClientSession::Options co;
    co.user = u.id;
    co.config = s_.protocol;
    co.seed = sim::ClientSeed(o_.seed, i);
    co.observer = this;
    co.client_msg_id_first = static_cast<ClientMsgId>(first_cmid);
    u.client = std::make_unique<ClientSession>(co);
    u.churn.emplace(sim::UserStreamSeed(o_.seed, i, sim::UserStream::kChurn));
    u.sends.emplace(sim::UserStreamSeed(o_.seed, i, sim::UserStream::kSend));
    u.other.emplace(sim::UserStreamSeed(o_.seed, i, sim::UserStream::kOther));
    recorder_.AddUser(u.id, u.name);
  }
  return absl::OkStatus();
}

ConversationId Player::RealConv(const ConversationId& c) const {
  if (c.is_group()) return ConversationId::Group(GroupId(o_.group_base + c.group().value));
  return ConversationId::Direct(users_[c.low - 1].id, users_[c.high - 1].id);
}

void Player::At(double t_s, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_at(start_ + std::chrono::microseconds(static_cast<int64_t>(t_s * 1e6)));
  timer->async_wait([this, timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec && !ended_) fn();
  });
}

void Player::Run() {
  if (o_.at_start) o_.at_start();
  start_ = SteadyClock::now();
  // The simulator's measurement window, on the clock the history's times are on.
  const TimeUs t0 = NowUs();
  recorder_.SetWindow(t0 + static_cast<TimeUs>(s_.window_start_s() * 1e6),
                      t0 + static_cast<TimeUs>(s_.window_end_s() * 1e6));
  Start();
  io_.run();
}

// The simulator's HubStart: each user's start, first send and first introduction.
void Player::Start() {
  for (User& u : users_) {
    const sim::StartPlan start = sim::PlanStart(s_, *u.churn);
    At(start.at_s, [this, &u, at_s = start.at_s] { GoOnline(u, at_s); });
    if (s_.send_rate_per_user_hz() > 0) {
      const double first_s = s_.send_start_s + sim::NextSendGap(s_, *u.sends);
      At(first_s, [this, &u, first_s] { WorkloadSend(u, first_s); });
    }
    if (s_.introduce_contacts) {
      At(sim::IntroductionAt(s_, 0, *u.sends), [this, &u] { Introduce(u, 0); });
    }
  }
  // The faults in their order (stable: of two due at once, the first listed runs first), those
  // due at once on one timer; those due at the heal or later run at the start of Heal().
  std::vector<const PlayFault*> faults;
  for (const PlayFault& f : o_.faults) faults.push_back(&f);
  std::stable_sort(faults.begin(), faults.end(),
                   [](const PlayFault* a, const PlayFault* b) { return a->at_s < b->at_s; });
  for (size_t i = 0; i < faults.size();) {
    size_t j = i;
    while (j < faults.size() && faults[j]->at_s == faults[i]->at_s) ++j;
    std::vector<const PlayFault*> due(faults.begin() + static_cast<ptrdiff_t>(i),
                                      faults.begin() + static_cast<ptrdiff_t>(j));
    if (faults[i]->at_s < s_.duration_s) {
      At(faults[i]->at_s, [this, due] {
        for (const PlayFault* f : due) f->act(Elapsed());
      });
    } else {
      at_heal_.insert(at_heal_.end(), due.begin(), due.end());
    }
    i = j;
  }
  At(s_.duration_s, [this] { Heal(); });
  At(s_.duration_s + s_.quiet_s, [this] { End(); });
}

void Player::GoOnline(User& u, double at_s) {
  const int server = sim::ConnectServer(s_, population_[u.index], u.went_online, *u.churn);
  u.went_online = true;
  Effects effects;
  u.client->Connect(NowUs(), host::ChatServerId(server), effects);
  Apply(u, effects);
  if (!healed_ && s_.session_mean_s > 0) {
    const double off_s = at_s + sim::ExponentialDraw(s_.session_mean_s, *u.churn);
    At(off_s, [this, &u, off_s] { GoOffline(u, off_s); });
  }
}

void Player::GoOffline(User& u, double at_s) {
  if (healed_) return;
  Effects effects;
  u.client->Disconnect(NowUs(), effects);
  Apply(u, effects);
  const double on_s = at_s + sim::ExponentialDraw(s_.offline_mean_s, *u.churn);
  At(on_s, [this, &u, on_s] { GoOnline(u, on_s); });
}

// at_s: when this send was due (the next one is drawn from it, so timer lateness does not
// slow the rate down).
void Player::WorkloadSend(User& u, double at_s) {
  if (healed_ || at_s >= s_.duration_s) return;
  if (s_.send_end_s > 0 && at_s >= s_.send_end_s) return;  // sending is over
  Send(u, Elapsed());
  const double next_s = at_s + sim::NextSendGap(s_, *u.sends);
  At(next_s, [this, &u, next_s] { WorkloadSend(u, next_s); });
}

void Player::Send(User& u, double now) {
  if (!u.client->wants_online()) return;
  const sim::SendChoice choice =
      sim::ChooseSend(s_, UserId(u.index + 1), population_[u.index], *u.sends);
  const ConversationId conv = RealConv(choice.conv);
  Effects effects;
  if (choice.typing_first) {
    u.client->SetTyping(NowUs(), conv, true, effects);
    At(now + s_.typing_lead_ms / 1000, [this, &u, conv] {
      Effects typed;
      (void)u.client->Send(NowUs(), conv, sim::WorkloadBody(s_), typed);
      u.client->SetTyping(NowUs(), conv, false, typed);
      Apply(u, typed);
    });
  } else {
    (void)u.client->Send(NowUs(), conv, sim::WorkloadBody(s_), effects);
  }
  Apply(u, effects);
}

void Player::Introduce(User& u, size_t contact) {
  if (healed_) return;
  // Sent online or not: an offline user's client holds it until it connects.
  const sim::PopulationUser& p = population_[u.index];
  const ConversationId conv =
      RealConv(ConversationId::Direct(UserId(u.index + 1), p.contacts[contact]));
  Effects effects;
  (void)u.client->Send(NowUs(), conv, sim::WorkloadBody(s_), effects);
  Apply(u, effects);
  if (contact + 1 < p.contacts.size()) {
    At(sim::IntroductionAt(s_, contact + 1, *u.sends),
       [this, &u, contact] { Introduce(u, contact + 1); });
  }
}

void Player::OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                         bool duplicate) {
  recorder_.OnDisplayed(now, viewer, m, out_of_order, duplicate);
  if (m.sender == viewer) return;
  if (!duplicate) totals_.displays_to_others++;
  if (s_.read_delay_mean_s <= 0) return;
  User& u = UserOf(viewer);
  At(Elapsed() + sim::ExponentialDraw(s_.read_delay_mean_s, *u.other), [this, &u, conv = m.conv] {
    Effects effects;
    u.client->MarkRead(NowUs(), conv, effects);
    Apply(u, effects);
  });
}

void Player::Heal() {
  for (const PlayFault* f : at_heal_) f->act(Elapsed());
  healed_ = true;
  if (o_.progress) o_.progress("heal: everybody online, nobody sends");
  for (User& u : users_) {
    Effects effects;
    u.client->Connect(NowUs(), NodeId(), effects);
    Apply(u, effects);
  }
}

void Player::End() {
  if (o_.progress) o_.progress("end: clients disconnect");
  for (User& u : users_) {
    Effects effects;
    u.client->Disconnect(NowUs(), effects);
    Apply(u, effects);
  }
  ended_ = true;
  auto stop = std::make_shared<asio::steady_timer>(io_, kCloseGrace);
  stop->async_wait([this, stop](const boost::system::error_code&) { io_.stop(); });
}

// ---- host::ClientEnv ----------------------------------------------------------------------------

void Player::SendToServer(UserId user, Message msg) {
  User& u = UserOf(user);
  if (u.ws && u.session.valid()) u.ws->Send(ToJson(msg));
}

void Player::OpenSession(UserId user, NodeId server) {
  User& u = UserOf(user);
  const int processes = static_cast<int>(o_.cluster.size());
  int process = static_cast<int>(server.value - host::kFirstChatServer);
  if (!server.valid() || process < 0 || process >= processes) {
    // Any process: the simulator's OpenSession picks a uniform server of the region.
    process = static_cast<int>(u.other->Uniform(static_cast<uint64_t>(processes)));
  }
  u.process = process;
  auto ws = std::make_shared<WsClient>(io_);
  u.ws = ws;
  // The connection's own callbacks name it by address: a shared_ptr held in its own members
  // would be a cycle that never frees it (LeakSanitizer found it).
  const WsClient* self = ws.get();
  ws->on_frame = [this, &u, self](std::string_view frame) {
    if (u.ws.get() == self && u.session.valid()) OnFrame(u, frame);
  };
  ws->on_closed = [this, &u, self](const boost::system::error_code&) {
    if (u.ws.get() != self) return;
    u.ws.reset();
    if (!u.session.valid()) return;
    u.session = SessionId();
    recorder_.Note(NowUs(), u.id, "disconnected", {{"process", u.process + 1}});
    Effects effects;
    u.client->OnDisconnected(NowUs(), effects);
    Apply(u, effects);
  };
  ws->Connect(o_.cluster[static_cast<size_t>(process)], "/ws?token=" + u.token,
              [this, &u, ws](const boost::system::error_code& ec) { OnOpened(u, ws, ec); });
}

void Player::OnOpened(User& u, const std::shared_ptr<WsClient>& ws,
                      const boost::system::error_code& ec) {
  if (u.ws != ws) return;
  Effects effects;
  if (ec) {
    totals_.connects_failed++;
    u.ws.reset();
    recorder_.Note(NowUs(), u.id, "note", {{"connect_failed", ec.message()}});
    u.client->OnConnectFailed(NowUs(), effects);
    Apply(u, effects);
    return;
  }
  u.session = SessionId(++session_next_);
  if (u.connected_process >= 0 && u.connected_process != u.process) {
    totals_.reconnects_elsewhere++;
  }
  u.connected_process = u.process;
  recorder_.Note(NowUs(), u.id, "connected", {{"process", u.process + 1}});
  u.client->OnConnected(NowUs(), u.session, host::ChatServerId(u.process), effects);
  // The simulator's kOpenResult: a user joins its groups on its first session.
  if (!u.joined_groups && u.client->connected()) {
    u.joined_groups = true;
    for (GroupId g : population_[u.index].groups) {
      u.client->JoinGroup(NowUs(), RealConv(ConversationId::Group(g)).group(), effects);
    }
  }
  Apply(u, effects);
}

void Player::OnFrame(User& u, std::string_view frame) {
  absl::StatusOr<Message> m = FromJson(frame, kFrameLimits);
  if (!m.ok()) {
    totals_.frames_undecodable++;
    recorder_.Note(NowUs(), u.id, "note",
                   {{"undecodable_frame", std::string(m.status().message())}});
    return;
  }
  if (std::holds_alternative<ErrorReply>(*m)) totals_.error_replies++;
  Effects effects;
  u.client->OnServerMessage(NowUs(), *m, effects);
  Apply(u, effects);
}

void Player::CloseSession(UserId user, SessionId session) {
  User& u = UserOf(user);
  if (!u.ws || u.session != session) return;
  u.ws->Close();
  u.ws.reset();
  u.session = SessionId();
  recorder_.Note(NowUs(), u.id, "disconnected", {{"process", u.process + 1}});
}

void Player::ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) {
  User& u = UserOf(user);
  auto timer = std::make_shared<asio::steady_timer>(
      io_, std::chrono::microseconds(std::max<TimeUs>(0, at_us - NowUs())));
  timer->async_wait([this, &u, timer, timer_id](const boost::system::error_code& ec) {
    if (ec || ended_) return;
    Effects effects;
    u.client->OnTimer(NowUs(), timer_id, effects);
    Apply(u, effects);
  });
}

// ---- The end: the truth and the totals ----------------------------------------------------------

absl::StatusOr<PlayResult> Player::Finish(double wall_time_s) {
  if (o_.before_truth) o_.before_truth();
  if (o_.progress) o_.progress("truth: reading the store through the Web Service");
  std::vector<TruthReader> readers;
  for (const User& u : users_) {
    readers.push_back(TruthReader{
        u.id, u.token, o_.cluster[static_cast<size_t>(population_[u.index].home_server)]});
  }
  absl::StatusOr<std::vector<ConversationTruth>> truth = ReadTruth(readers);
  if (!truth.ok()) return truth.status();
  PlayResult r;
  r.totals = totals_;
  r.totals.users = users_.size();
  for (const User& u : users_) {
    const ClientSession::Stats& st = u.client->stats();
    r.totals.sends += st.sends;
    r.totals.retries += st.retries;
    r.totals.acks += st.acks;
    r.totals.send_failures += st.send_failures;
    r.totals.catchups += st.catchups;
    r.totals.gaps_detected += st.gaps_detected;
    r.totals.connects += st.connects;
    r.totals.disconnects += st.disconnects;
  }
  r.totals.truth_conversations = truth->size();
  for (const ConversationTruth& t : *truth) r.totals.truth_messages += t.messages.size();
  r.history = recorder_.Render("chatplay: a scenario played against a chatd cluster", &*truth);
  r.wall_time_s = wall_time_s;
  return r;
}

}  // namespace

absl::StatusOr<PlayResult> Play(const PlayOptions& options) {
  const auto wall_start = SteadyClock::now();
  Player player(options);
  if (options.progress) options.progress("logging the users in");
  if (absl::Status s = player.LogIn(); !s.ok()) return s;
  if (options.progress) options.progress("playing");
  player.Run();
  return player.Finish(std::chrono::duration<double>(SteadyClock::now() - wall_start).count());
}

}  // namespace chatlab::real
