#include "server/api/stream_reactor.h"

#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace fusion::api {
namespace {

const grpc::Status& ShuttingDown() {
  static const grpc::Status* status = new grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      "server is shutting down; requests without a response were not "
      "started (safe to retry)");
  return *status;
}

class StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public OpenStreams::Stream {
 public:
  StreamReactor(StreamHandler handle, int max_in_flight, OpenStreams* open)
      : handle_(std::move(handle)), max_in_flight_(max_in_flight), open_(open) {
    if (open_ != nullptr && !open_->Add(this)) {
      open_ = nullptr;
      Finish(ShuttingDown());
      return;
    }
    StartRead(&request_);
  }

  // Stops reading; the stream ends once what was read is answered. A read
  // in flight completes with !ok once the stream is finished.
  bool BeginClose() override {
    absl::MutexLock lock(&mu_);
    if (reads_done_) return false;  // ends by itself
    reads_done_ = true;
    end_status_ = ShuttingDown();
    close_now_ = FinishStatusLocked();
    return close_now_.has_value();
  }
  // Alive until here: nothing else finishes it once BeginClose said so.
  void FinishClose() override {
    std::optional<grpc::Status> status;
    {
      absl::MutexLock lock(&mu_);
      status.swap(close_now_);
    }
    Finish(*status);
  }

  void OnReadDone(bool ok) override {
    std::optional<grpc::Status> finish;
    bool closed;
    {
      absl::MutexLock lock(&mu_);
      // !ok: the client half-closed, or the stream broke or was finished.
      // A message read after CloseAll is dropped: not started, as the end
      // status says.
      closed = !ok || reads_done_;
      if (closed) {
        reads_done_ = true;
        finish = FinishStatusLocked();
      } else {
        ++outstanding_;
      }
    }
    if (closed) {
      if (finish) Finish(*finish);
      return;
    }
    handle_(request_, [this](grpc::ByteBuffer response) {
      OnResponse(std::move(response));
    });
    request_.Clear();
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      read_more = !reads_done_ && HeldLocked() < max_in_flight_;
      read_paused_ = !read_more;
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    bool resume_reading;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) {  // the client is gone: drop what is left to write
        write_failed_ = true;
        writes_.clear();
      }
      if (!writes_.empty()) {
        next = &writes_.front();
      } else {
        writing_ = false;
      }
      resume_reading = ResumeReadingLocked();
      finish = FinishStatusLocked();
    }
    if (next != nullptr) StartWrite(next);
    if (resume_reading) StartRead(&request_);
    if (finish) Finish(*finish);
  }

  void OnDone() override {
    if (open_ != nullptr) open_->Remove(this);
    delete this;
  }

 private:
  void OnResponse(grpc::ByteBuffer response) {
    const grpc::ByteBuffer* write = nullptr;
    bool resume_reading = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      if (!write_failed_) {
        writes_.push_back(std::move(response));
        if (!writing_) {
          writing_ = true;
          write = &writes_.front();
        }
      }
      resume_reading = ResumeReadingLocked();
      finish = FinishStatusLocked();
    }
    if (write != nullptr) StartWrite(write);
    if (resume_reading) StartRead(&request_);
    if (finish) Finish(*finish);
  }

  // Messages of this stream the server holds: being computed, or answered
  // and waiting for the client to read them (a client that never reads must
  // not make the server buffer without bound).
  int HeldLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return outstanding_ + static_cast<int>(writes_.size());
  }

  // True if reading was paused at the limit and may go on now.
  bool ResumeReadingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!read_paused_ || reads_done_ || HeldLocked() >= max_in_flight_) {
      return false;
    }
    read_paused_ = false;
    return true;
  }

  // The status to finish with, exactly once: when nothing can be read,
  // computed or written.
  std::optional<grpc::Status> FinishStatusLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || outstanding_ > 0 || writing_) {
      return std::nullopt;
    }
    finished_ = true;
    return end_status_;
  }

  const StreamHandler handle_;
  const int max_in_flight_;
  OpenStreams* open_;
  grpc::ByteBuffer request_;  // target of the one read in flight
  absl::Mutex mu_;
  // deque: elements stay put while their write is in flight.
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // OK, or UNAVAILABLE once closed by CloseAll.
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
  // Set by BeginClose for FinishClose.
  std::optional<grpc::Status> close_now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void OpenStreams::CloseAll() {
  std::vector<Stream*> idle;
  {
    // A stream leaves the set (Remove) before it is deleted, so every one
    // in it is alive here.
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (Stream* stream : streams_) {
      if (stream->BeginClose()) idle.push_back(stream);
    }
  }
  // Finishing may run callbacks inline: not under the lock.
  for (Stream* stream : idle) stream->FinishClose();
}

int64_t OpenStreams::count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(streams_.size());
}

bool OpenStreams::Add(Stream* stream) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  streams_.insert(stream);
  return true;
}

void OpenStreams::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewStreamReactor(
    StreamHandler handle, int max_in_flight, OpenStreams* open) {
  return new StreamReactor(std::move(handle), max_in_flight, open);
}

}  // namespace fusion::api
