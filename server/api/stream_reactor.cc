#include "server/api/stream_reactor.h"

#include <deque>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace fusion::api {
namespace {

class StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(StreamHandler handle, int max_in_flight)
      : handle_(std::move(handle)), max_in_flight_(max_in_flight) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the stream broke
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    handle_(request_, [this](grpc::ByteBuffer response) {
      OnResponse(std::move(response));
    });
    request_.Clear();
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      read_more = outstanding_ < max_in_flight_;
      read_paused_ = !read_more;
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    bool finish;
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
      finish = ShouldFinishLocked();
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  void OnResponse(grpc::ByteBuffer response) {
    const grpc::ByteBuffer* write = nullptr;
    bool resume_reading = false, finish;
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
      if (read_paused_ && !reads_done_ && outstanding_ < max_in_flight_) {
        read_paused_ = false;
        resume_reading = true;
      }
      finish = ShouldFinishLocked();
    }
    if (write != nullptr) StartWrite(write);
    if (resume_reading) StartRead(&request_);
    if (finish) Finish(grpc::Status::OK);
  }

  // True exactly once: when nothing can be read, computed or written.
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || outstanding_ > 0 || writing_) return false;
    finished_ = true;
    return true;
  }

  const StreamHandler handle_;
  const int max_in_flight_;
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
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewStreamReactor(
    StreamHandler handle, int max_in_flight) {
  return new StreamReactor(std::move(handle), max_in_flight);
}

}  // namespace fusion::api
