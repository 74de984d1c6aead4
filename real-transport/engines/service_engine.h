// A core service carried out by an external engine (docs/engines.md).
//
// Where an engine (Redis, RabbitMQ) stands in for one of the core's services, the environment
// hands the messages addressed to that service to a ServiceEngine instead of a core Node. The
// engine carries out the service's contract (docs/protocol-nodes.md) with the engine's own
// operations and answers with the effects the core service would have produced. Nothing about
// chat servers, clients or the store lives here: only the one service's contract.
//
// CoreServiceEngine wraps the core's own service behind the same interface, so that one
// conformance suite (tests/real/engine_conformance_test.cc) runs the same cases against the
// model the simulator runs and the engine chatd deploys.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_SERVICE_ENGINE_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_SERVICE_ENGINE_H_

#include <functional>
#include <memory>
#include <utility>

#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab::real {

class ServiceEngine {
 public:
  using Done = std::function<void(Effects)>;
  virtual ~ServiceEngine() = default;

  // One message from node `from` addressed to the service. `done` receives the service's
  // effects (possibly none), on the environment's io thread, in the order of Submit calls. It
  // is never called for a message the engine could not carry out (unreachable, refused): that
  // message is lost, as the network may lose any node message, and the core's timeouts,
  // retries and refreshes repair it. `now` is the environment's clock; an engine with a clock
  // of its own (Redis's expiry) may ignore it.
  virtual void Submit(TimeUs now, NodeId from, Message msg, Done done) = 0;
};

// The core's service itself: answers at once, from Submit.
class CoreServiceEngine final : public ServiceEngine {
 public:
  explicit CoreServiceEngine(std::unique_ptr<Node> node) : node_(std::move(node)) {}
  void Submit(TimeUs now, NodeId from, Message msg, Done done) override {
    Effects out;
    node_->OnMessage(now, from, msg, out);
    done(std::move(out));
  }
  Node& node() { return *node_; }

 private:
  std::unique_ptr<Node> node_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_SERVICE_ENGINE_H_
