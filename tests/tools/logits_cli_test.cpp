// `peftlab logits`: the CLI's logits equal an in-process forward of the same model on the same ids, with and
// without padding, and bad inputs are exit 2.
#include <gtest/gtest.h>

#include "core/model_io.h"
#include "core/safetensors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::run_cli;
using testing::TempDir;
using testing::write_file;

TEST(LogitsCli, EqualsInProcessForwardWithPadding) {
  TempDir dir;
  write_file(dir / "ids.json",
             R"({"input_ids": [[1, 403, 261, 45, 300], [1, 99, 7, 0, 0]], "attention_mask": [[1,1,1,1,1],[1,1,1,0,0]]})");
  auto result = run_cli({"logits", "--model", testing::stories260k_bin().string(), "--input",
                         (dir / "ids.json").string(), "--out", (dir / "logits.safetensors").string()});
  ASSERT_EQ(result.status, 0) << result.output;
  auto got = SafetensorsFile(dir / "logits.safetensors").load("logits");

  Backbone model = load_model(testing::stories260k_bin());
  model->eval();
  torch::NoGradGuard no_grad;
  auto full = model->forward(torch::tensor({1, 403, 261, 45, 300}, torch::kInt64).unsqueeze(0));
  auto short_row = model->forward(torch::tensor({1, 99, 7}, torch::kInt64).unsqueeze(0));
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 5, model->config().vocab_size}));
  EXPECT_LT((got[0] - full[0]).abs().max().item<double>(), 1e-5);
  // A right-padded row's real positions equal the row run alone.
  EXPECT_LT((got[1].slice(0, 0, 3) - short_row[0]).abs().max().item<double>(), 1e-5);
}

TEST(LogitsCli, BadInputsAreExit2) {
  TempDir dir;
  const std::string model = testing::stories260k_bin().string();
  auto run = [&](const std::string& json) {
    write_file(dir / "ids.json", json);
    return run_cli({"logits", "--model", model, "--input", (dir / "ids.json").string(), "--out",
                    (dir / "out.safetensors").string()});
  };
  for (const std::string& bad : {std::string("{"), std::string(R"({"input_ids": [[1, 2], [3]]})"),
                                 std::string(R"({"input_ids": [[1, 100000]]})"),
                                 std::string(R"({"input_ids": [[1, 2]], "attention_mask": [[1]]})")}) {
    auto result = run(bad);
    EXPECT_EQ(result.status, 2) << bad << "\n" << result.output;
    EXPECT_NE(result.output.find("ids.json"), std::string::npos) << result.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "out.safetensors"));
}

}  // namespace
}  // namespace peftlab
