#include "client/attention_table.h"

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

fusion::v1::Attention TwoHeads() {
  fusion::v1::Attention a;
  a.add_tokens("[CLS]");
  a.add_tokens("refund");
  a.add_feature_names("amount");
  a.add_feature_names("hour_of_day");
  a.add_feature_names("card_present");
  // head 0 then head 1, each 2 tokens x 3 features.
  for (float v : {0.6f, 0.3f, 0.1f, 0.1f, 0.1f, 0.8f, 0.2f, 0.7f, 0.1f, 0.1f,
                  0.3f, 0.6f}) {
    a.add_text_to_features(v);
  }
  for (int d : {2, 2, 3}) a.add_text_to_features_shape(d);
  return a;
}

TEST(TextToFeatureView, AveragesHeads) {
  auto view = TextToFeatureView(TwoHeads());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->heads, 2);
  EXPECT_FLOAT_EQ(view->at(0, 0), 0.4f);
  EXPECT_FLOAT_EQ(view->at(0, 1), 0.5f);
  EXPECT_FLOAT_EQ(view->at(1, 2), 0.7f);
}

TEST(TextToFeatureView, RejectsMissingOrInconsistent) {
  EXPECT_FALSE(TextToFeatureView(fusion::v1::Attention()).ok());
  fusion::v1::Attention bad = TwoHeads();
  bad.add_tokens("extra");
  EXPECT_FALSE(TextToFeatureView(bad).ok());
}

TEST(RenderTopFeatures, ListsTopFeaturesPerTokenInOrder) {
  auto view = TextToFeatureView(TwoHeads());
  std::string table = RenderTopFeatures(*view, 2);
  // [CLS]: hour_of_day 0.50 then amount 0.40; refund: card_present first.
  const size_t cls = table.find("[CLS]");
  const size_t refund = table.find("refund");
  ASSERT_NE(cls, std::string::npos);
  ASSERT_NE(refund, std::string::npos);
  const std::string cls_line = table.substr(cls, refund - cls);
  ASSERT_NE(cls_line.find("hour_of_day"), std::string::npos);
  EXPECT_LT(cls_line.find("hour_of_day"), cls_line.find("0.50"));
  EXPECT_LT(cls_line.find("0.50"), cls_line.find("amount"));
  EXPECT_LT(cls_line.find("amount"), cls_line.find("0.40"));
  EXPECT_EQ(cls_line.find("card_present"), std::string::npos);
  EXPECT_NE(table.substr(refund).find("card_present 0.70"), std::string::npos);
  EXPECT_NE(table.find("mean of 2 heads"), std::string::npos);
}

TEST(RenderHeatmap, HasARowPerTokenAndALegend) {
  auto view = TextToFeatureView(TwoHeads());
  std::string map = RenderHeatmap(*view);
  EXPECT_NE(map.find("[CLS]"), std::string::npos);
  EXPECT_NE(map.find("refund"), std::string::npos);
  EXPECT_NE(map.find(" 3 card_present"), std::string::npos);
  EXPECT_NE(map.find("\u2588"), std::string::npos);  // each row has a max
}

}  // namespace
}  // namespace fusion::client
