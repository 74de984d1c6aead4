#include "sim/world/cost.h"

#include <algorithm>
#include <variant>

namespace chatlab::sim::world {
namespace {

size_t Entries(const ForwardBatch& b) {
  return b.messages.size() + b.receipts.size() + b.typing.size();
}

template <typename... F>
struct Overload : F... {
  using F::operator()...;
};

}  // namespace

size_t ItemsOf(const Message& m) {
  const size_t n = std::visit(Overload{
                                  [](const StoreAppendBatch& x) { return x.messages.size(); },
                                  [](const StoreAppendBatchResult& x) { return x.outcomes.size(); },
                                  [](const WriterCommitted& x) { return x.items.size(); },
                                  [](const ForwardBatch& x) { return Entries(x); },
                                  [](const QueuePublish& x) { return Entries(x.batch); },
                                  [](const QueueDeliver& x) { return Entries(x.batch); },
                                  [](const MapLookup& x) { return x.users.size(); },
                                  [](const MapLookupResult& x) { return x.locations.size(); },
                                  [](const PresenceLookup& x) { return x.users.size(); },
                                  [](const PresenceLookupResult& x) { return x.statuses.size(); },
                                  [](const PresenceQuery& x) { return x.users.size(); },
                                  [](const PresencePush& x) { return x.recipients.size(); },
                                  [](const StoreReadResult& x) { return x.messages.size(); },
                                  [](const StoreSyncResult& x) { return x.heads.size(); },
                                  [](const StoreMembersResult& x) { return x.members.size(); },
                                  [](const auto&) { return size_t{1}; },
                              },
                              m);
  return std::max<size_t>(n, 1);
}

StoreRows CountStoreRows(const Effects& out) {
  StoreRows rows;
  for (const Effect& e : out) {
    if (const auto* p = std::get_if<Persist>(&e)) {
      if (std::holds_alternative<PersistMessage>(p->record)) rows.messages_written++;
      if (std::holds_alternative<PersistMembership>(p->record)) rows.memberships_written++;
      if (std::holds_alternative<PersistWatermark>(p->record) ||
          std::holds_alternative<PersistAggregate>(p->record)) {
        rows.receipts_written++;
      }
    } else if (const auto* s = std::get_if<SendToNode>(&e)) {
      if (const auto* r = std::get_if<StoreReadResult>(&s->msg))
        rows.rows_read += r->messages.size();
      if (const auto* r = std::get_if<StoreSyncResult>(&s->msg)) rows.rows_read += r->heads.size();
      if (const auto* r = std::get_if<StoreMembersResult>(&s->msg)) {
        rows.rows_read += r->members.size();
      }
    }
  }
  return rows;
}

size_t SendsOf(const Effects& out) {
  size_t n = 0;
  for (const Effect& e : out) {
    n += std::holds_alternative<SendToNode>(e) || std::holds_alternative<SendToClient>(e) ||
         std::holds_alternative<PushToDevice>(e);
  }
  return n;
}

double CpuUs(const Scenario& sc, host::Role role, const Message& input, const Effects& out) {
  const double sends = sc.send_us * static_cast<double>(SendsOf(out));
  if (role == host::Role::kStore) {
    const StoreRows rows = CountStoreRows(out);
    const bool writes =
        rows.messages_written + rows.memberships_written + rows.receipts_written > 0;
    return sc.store_request_us + (writes ? sc.store_commit_us : 0) + sends +
           sc.store_item_write_us * static_cast<double>(rows.messages_written) +
           sc.store_item_membership_us * static_cast<double>(rows.memberships_written) +
           sc.store_item_receipt_us * static_cast<double>(rows.receipts_written) +
           sc.store_item_read_us * static_cast<double>(rows.rows_read);
  }
  double request_us = 0, item_us = 0;
  switch (role) {
    case host::Role::kChatServer:
      request_us = sc.server_request_us, item_us = sc.server_item_us;
      break;
    case host::Role::kWriter:
      request_us = sc.writer_request_us, item_us = sc.writer_item_us;
      break;
    case host::Role::kMapping:
      request_us = sc.mapping_request_us, item_us = sc.mapping_item_us;
      break;
    case host::Role::kPresence:
      request_us = sc.presence_request_us, item_us = sc.presence_item_us;
      break;
    case host::Role::kNotification:
      request_us = sc.notification_request_us, item_us = sc.notification_item_us;
      break;
    case host::Role::kBroker:
      request_us = sc.broker_request_us, item_us = sc.broker_item_us;
      break;
    case host::Role::kStore:
      break;  // above
  }
  return request_us + item_us * static_cast<double>(ItemsOf(input)) + sends;
}

}  // namespace chatlab::sim::world
