#include "sim/disk.h"

#include <cassert>

namespace chatlab::sim {

SimDisk::SimDisk(double fsync_s) : fsync_s_(fsync_s) { assert(fsync_s >= 0); }

double SimDisk::Write(double now, std::vector<PersistRecord> records) {
  Settle(now);
  if (records.empty()) return now;
  double durable_at = 0;
  if (last_end_s_ <= now) {
    // The disk is idle: an fsync starts now.
    last_end_s_ = now + fsync_s_;
    fsyncs_++;
  } else if (last_end_s_ - fsync_s_ <= now) {
    // The latest fsync is running: these records wait for the next one, which starts when it
    // ends.
    last_end_s_ += fsync_s_;
    fsyncs_++;
  }
  // Otherwise the latest fsync has not started yet and takes these records too.
  durable_at = last_end_s_;
  for (PersistRecord& r : records) unsynced_.emplace_back(durable_at, std::move(r));
  records_written_ += records.size();
  assert(durable_at >= now);
  return durable_at;
}

SimDisk::CrashLoss SimDisk::Crash(double now, bool torn_write) {
  Settle(now);
  CrashLoss loss;
  loss.lost = unsynced_.size();
  loss.torn = torn_write && loss.lost > 0;
  unsynced_.clear();
  last_end_s_ = -1;  // the fsync in progress died with the process
  return loss;
}

const std::vector<PersistRecord>& SimDisk::Durable(double now) {
  Settle(now);
  return durable_;
}

void SimDisk::Settle(double now) {
  while (!unsynced_.empty() && unsynced_.front().first <= now) {
    durable_.push_back(std::move(unsynced_.front().second));
    unsynced_.pop_front();
  }
}

}  // namespace chatlab::sim
