#include "client/cli/argv_util.h"

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

TEST(ExtractRepeatedFlag, AllFormsInOrder) {
  std::vector<std::string> args = {"prog",   "score",        "--feature=a=1",
                                   "--text", "hi",           "--feature",
                                   "b=2",    "-feature=c=3", "-feature",
                                   "d=4",    "--featureX=1"};
  EXPECT_EQ(ExtractRepeatedFlag(args, "feature"),
            (std::vector<std::string>{"a=1", "b=2", "c=3", "d=4"}));
  EXPECT_EQ(args, (std::vector<std::string>{"prog", "score", "--text", "hi",
                                            "--featureX=1"}));
}

TEST(ExtractRepeatedFlag, StopsAtTerminatorAndHandlesMissingValue) {
  std::vector<std::string> tail = {"prog", "--header"};
  EXPECT_EQ(ExtractRepeatedFlag(tail, "header"),
            (std::vector<std::string>{""}));
  std::vector<std::string> term = {"prog", "--", "--feature=x"};
  EXPECT_TRUE(ExtractRepeatedFlag(term, "feature").empty());
  EXPECT_EQ(term.size(), 3u);
}

}  // namespace
}  // namespace fusion::client
