#include "host/dispatch.h"

#include <utility>
#include <variant>

namespace chatlab::host {

void Dispatch(NodeId from, Effect& effect, NodeEnv& env) {
  if (auto* send = std::get_if<chatlab::SendToNode>(&effect)) {
    env.SendToNode(from, send->to, std::move(send->msg));
  } else if (auto* to_client = std::get_if<chatlab::SendToClient>(&effect)) {
    env.SendToClient(from, to_client->session, std::move(to_client->msg));
  } else if (auto* close = std::get_if<chatlab::CloseSession>(&effect)) {
    env.CloseSession(from, close->session);
  } else if (auto* timer = std::get_if<chatlab::ArmTimer>(&effect)) {
    env.ArmTimer(from, timer->timer_id, timer->at_us);
  } else if (auto* push = std::get_if<chatlab::PushToDevice>(&effect)) {
    env.PushToDevice(from, *push);
  } else if (auto* persist = std::get_if<chatlab::Persist>(&effect)) {
    env.Persist(from, std::move(persist->record));
  } else if (auto* load = std::get_if<chatlab::LoadHistory>(&effect)) {
    env.LoadHistory(from, *load);
  } else if (auto* dedup = std::get_if<chatlab::LoadDedup>(&effect)) {
    env.LoadDedup(from, *dedup);
  } else {
    env.Unexpected(from, effect);
  }
}

void Dispatch(NodeId from, Effects& effects, NodeEnv& env) {
  for (Effect& e : effects) Dispatch(from, e, env);
}

void Dispatch(UserId user, Effects& effects, ClientEnv& env) {
  for (Effect& e : effects) {
    if (auto* send = std::get_if<chatlab::SendToServer>(&e)) {
      env.SendToServer(user, std::move(send->msg));
    } else if (auto* open = std::get_if<chatlab::OpenSession>(&e)) {
      env.OpenSession(user, open->server);
    } else if (auto* close = std::get_if<chatlab::CloseSession>(&e)) {
      env.CloseSession(user, close->session);
    } else if (auto* timer = std::get_if<chatlab::ArmTimer>(&e)) {
      env.ArmTimer(user, timer->timer_id, timer->at_us);
    } else {
      env.Unexpected(user, e);
    }
  }
}

std::vector<PersistRecord> TakePersists(Effects& effects) {
  std::vector<PersistRecord> records;
  std::erase_if(effects, [&records](Effect& e) {
    auto* p = std::get_if<chatlab::Persist>(&e);
    if (p == nullptr) return false;
    records.push_back(std::move(p->record));
    return true;
  });
  return records;
}

}  // namespace chatlab::host
