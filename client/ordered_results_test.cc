#include "client/ordered_results.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

TEST(OrderedResults, ReleasesOnlyContiguousPrefix) {
  OrderedResults<std::string> order;
  std::vector<std::string> out;
  EXPECT_TRUE(order.Put(2, "c"));
  EXPECT_TRUE(order.Put(1, "b"));
  EXPECT_EQ(order.PopReady(&out), 0u);
  EXPECT_TRUE(order.Put(0, "a"));
  EXPECT_EQ(order.PopReady(&out), 3u);
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(order.next_index(), 3);
  EXPECT_EQ(order.buffered(), 0u);
}

TEST(OrderedResults, RejectsDuplicatesAndReleased) {
  OrderedResults<int> order;
  std::vector<int> out;
  EXPECT_TRUE(order.Put(1, 10));
  EXPECT_FALSE(order.Put(1, 11));
  EXPECT_TRUE(order.Put(0, 0));
  order.PopReady(&out);
  EXPECT_FALSE(order.Put(0, 5));
  EXPECT_EQ(out, (std::vector<int>{0, 10}));
}

TEST(OrderedResults, ShuffledArrivalsComeOutInOrder) {
  std::vector<int> indices(1000);
  std::iota(indices.begin(), indices.end(), 0);
  std::shuffle(indices.begin(), indices.end(), std::mt19937(7));
  OrderedResults<int> order;
  std::vector<int> out;
  for (int i : indices) {
    order.Put(i, i);
    order.PopReady(&out);
  }
  ASSERT_EQ(out.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(out[i], i);
}

}  // namespace
}  // namespace fusion::client
