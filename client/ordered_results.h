// A reorder buffer: results arrive by index in any order and leave in index
// order (0, 1, 2, ...). Not thread-safe; callers hold their own lock.
#ifndef FUSION_CLIENT_ORDERED_RESULTS_H_
#define FUSION_CLIENT_ORDERED_RESULTS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace fusion::client {

template <typename T>
class OrderedResults {
 public:
  // Stores the result for `index`. Returns false (and drops `value`) when
  // that index was already stored or already released.
  bool Put(int64_t index, T value) {
    if (index < next_) return false;
    return pending_.emplace(index, std::move(value)).second;
  }

  // Appends to `out` the results from next_index() on that have no gap
  // before them, and returns how many it appended.
  size_t PopReady(std::vector<T>* out) {
    size_t popped = 0;
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_;
         it = pending_.erase(it)) {
      out->push_back(std::move(it->second));
      ++next_;
      ++popped;
    }
    return popped;
  }

  int64_t next_index() const { return next_; }  // first not yet released
  size_t buffered() const { return pending_.size(); }

 private:
  int64_t next_ = 0;
  std::map<int64_t, T> pending_;
};

}  // namespace fusion::client

#endif  // FUSION_CLIENT_ORDERED_RESULTS_H_
