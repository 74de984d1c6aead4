#include "real-transport/chatd/commit_pipeline.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <variant>

namespace chatlab::real {

// The storage thread: commits submitted batches and runs submitted reads one at a time, in the
// order submitted, and reports each. Stopping (the destructor) lets it finish every job already
// submitted, then joins it.
class CommitThread {
 public:
  using Done = std::function<void(uint64_t batch, absl::Status status, double seconds)>;
  using ReadJob = std::function<void(Storage&)>;  // a read, which reports its own result
  using KeepAliveFailed = std::function<void(absl::Status)>;
  CommitThread(Storage& storage, Done done, KeepAliveFailed keepalive_failed)
      : storage_(storage),
        done_(std::move(done)),
        keepalive_failed_(std::move(keepalive_failed)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~CommitThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Submit(uint64_t batch, std::vector<PersistRecord> records) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Job job;
      job.batch = batch;
      job.records = std::move(records);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  void SubmitRead(ReadJob read) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Job job;
      job.read = std::move(read);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  struct Job {
    uint64_t batch = 0;  // 0: a read
    std::vector<PersistRecord> records;
    ReadJob read;
  };
  void Loop() {
    // Storage::KeepAlive when keepalive_ms have passed since the last renewal (a commit renews).
    const auto keepalive = std::chrono::milliseconds(storage_.keepalive_ms());
    auto next_renewal = std::chrono::steady_clock::now() + keepalive;
    bool renewing = keepalive.count() > 0;
    for (;;) {
      Job job;
      bool have_job = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        const auto ready = [this] { return stop_ || !jobs_.empty(); };
        if (renewing) {
          cv_.wait_until(lock, next_renewal, ready);
        } else {
          cv_.wait(lock, ready);
        }
        if (stop_ && jobs_.empty()) return;
        if (!jobs_.empty()) {
          job = std::move(jobs_.front());
          jobs_.pop_front();
          have_job = true;
        }
      }
      if (renewing && std::chrono::steady_clock::now() >= next_renewal) {
        absl::Status s = storage_.KeepAlive();
        next_renewal = std::chrono::steady_clock::now() + keepalive;
        if (!s.ok()) {
          renewing = false;  // reported once; the owner stops
          keepalive_failed_(std::move(s));
        }
      }
      if (!have_job) continue;
      if (job.batch == 0) {
        job.read(storage_);
        continue;
      }
      const auto start = std::chrono::steady_clock::now();
      absl::Status status = storage_.Commit(job.records);
      const auto end = std::chrono::steady_clock::now();
      if (status.ok()) next_renewal = end + keepalive;
      done_(job.batch, std::move(status), std::chrono::duration<double>(end - start).count());
    }
  }

  Storage& storage_;
  Done done_;
  KeepAliveFailed keepalive_failed_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

CommitPipeline::CommitPipeline(Storage& storage, host::NodeEnv& env, Post post, Fatal fatal)
    : storage_(storage), env_(env), post_(std::move(post)), fatal_(std::move(fatal)) {
  thread_ = std::make_unique<CommitThread>(
      storage_,
      [this](uint64_t batch, absl::Status status, double seconds) {
        post_([this, batch, status = std::move(status), seconds] {
          OnCommitted(batch, status, seconds);
        });
      },
      [this](absl::Status status) {
        post_([this, status = std::move(status)] {
          if (failed_) return;
          failed_ = true;
          fatal_(status);
        });
      });
}

CommitPipeline::~CommitPipeline() { Stop(); }

void CommitPipeline::Stop() { thread_.reset(); }

bool CommitPipeline::Gated(NodeId node) const {
  const auto it = newest_batch_.find(node);
  return it != newest_batch_.end() && it->second > durable_batch_;
}

void CommitPipeline::Apply(NodeId from, Effects& effects) {
  bool persisted = false;
  for (Effect& e : effects) {
    if (auto* p = std::get_if<Persist>(&e)) {
      open_.push_back(std::move(p->record));
      newest_batch_[from] = open_batch_;
      persisted = true;
    } else if (Gated(from)) {
      held_.push_back(Held{newest_batch_.at(from), from, std::move(e)});
    } else {
      host::Dispatch(from, e, env_);
    }
  }
  if (persisted) MaybeCommit();
}

template <typename T>
void CommitPipeline::SubmitRead(std::function<absl::StatusOr<T>(Storage&)> read,
                                std::function<void(T)> done) {
  stats_.reads++;
  thread_->SubmitRead([this, read = std::move(read), done = std::move(done)](Storage& storage) {
    post_([this, done, result = read(storage)]() mutable {
      if (failed_) return;
      if (!result.ok()) {
        failed_ = true;
        fatal_(result.status());
        return;
      }
      done(*std::move(result));
    });
  });
}

void CommitPipeline::Read(const LoadHistory& load, Loaded loaded) {
  SubmitRead<std::vector<ChatMessage>>(
      [load](Storage& storage) { return storage.ReadHistory(load.conv, load.after, load.limit); },
      std::move(loaded));
}

void CommitPipeline::Find(const LoadDedup& load, Found found) {
  SubmitRead<std::optional<ChatMessage>>(
      [load](Storage& storage) { return storage.FindMessage(load.sender, load.client_msg_id); },
      std::move(found));
}

void CommitPipeline::MaybeCommit() {
  if (committing_ || failed_ || open_.empty()) return;
  committing_ = true;
  stats_.records += open_.size();
  thread_->Submit(open_batch_++, std::move(open_));
  open_.clear();
}

void CommitPipeline::OnCommitted(uint64_t batch, const absl::Status& status, double seconds) {
  committing_ = false;
  if (!status.ok()) {
    failed_ = true;
    fatal_(status);
    return;
  }
  stats_.commits++;
  stats_.commit_latency.Observe(seconds);
  durable_batch_ = batch;
  // Take the released effects out first: carrying one out may hold new ones.
  std::vector<Held> released;
  std::deque<Held> kept;
  for (Held& h : held_) {
    if (h.batch <= batch) {
      released.push_back(std::move(h));
    } else {
      kept.push_back(std::move(h));
    }
  }
  held_ = std::move(kept);
  for (Held& h : released) host::Dispatch(h.from, h.effect, env_);
  MaybeCommit();
}

}  // namespace chatlab::real
