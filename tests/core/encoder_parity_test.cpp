// The encoder families against an independent reference: tests/reference/hf_encoder_reference.py, a float64
// forward pass written from Hugging Face's BERT, RoBERTa and DeBERTa-v2 model definitions and their
// sequence-classification heads, writes a tiny random *ForSequenceClassification model of each case in Hugging
// Face's layout and the hidden states and head outputs it must give for a right-padded batch (BERT with token
// types 0/1, RoBERTa padded with its padding_idx, DeBERTa-v3's bucketed disentangled attention and DeBERTa-v2's
// clamped one). Here peftlab's loader reads each folder, the family's head takes the file's
// head tensors under its Hugging Face names, and the forward pass must reproduce the reference: float32 files
// to 1e-5, float64 files to 1e-10 (in float64). The reference needs python3 with torch; without it every test
// here FAILS.
#include <gtest/gtest.h>

#include <cctype>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/backbone.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "tests/reference_run.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

fs::path encoder_script() { return fs::path(PEFTLAB_SOURCE_DIR) / "tests" / "reference" / "hf_encoder_reference.py"; }

// Every case in every dtype (<folder>/<case>/<dtype>/), run once for the whole suite.
const testing::ReferenceRun& encoder_reference() {
  static const testing::ReferenceRun run(encoder_script(), "--all");
  return run;
}

struct EncoderCase {
  std::string name, dtype;
};

void PrintTo(const EncoderCase& c, std::ostream* os) { *os << c.name << " " << c.dtype; }

std::string encoder_case_label(const ::testing::TestParamInfo<EncoderCase>& info) {
  std::string label = info.param.name + "_" + info.param.dtype;
  for (char& c : label)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return label;
}

// Largest |got - expected|, NaN counting as infinite; `real` (B, T) selects positions when given.
double max_difference(const torch::Tensor& got, const torch::Tensor& expected, const torch::Tensor& real = {}) {
  auto difference = (got.to(torch::kFloat64) - expected).abs();
  if (real.defined()) difference = difference.masked_select(real.to(torch::kBool).unsqueeze(-1).expand_as(expected));
  if (difference.isnan().any().item<bool>()) return std::numeric_limits<double>::infinity();
  return difference.max().item<double>();
}

class EncoderParity : public ::testing::TestWithParam<EncoderCase> {
 protected:
  void SetUp() override {
    const std::string failure = encoder_reference().failure();
    ASSERT_TRUE(failure.empty()) << failure;
    folder_ = encoder_reference().folder(GetParam().name, GetParam().dtype);
    SafetensorsFile expected(folder_ / "expected.safetensors");
    logits_ = expected.load("logits");
    hidden_ = expected.load("hidden");
    input_ids_ = expected.load("input_ids");
    token_type_ids_ = expected.load("token_type_ids");
    attention_mask_ = expected.load("attention_mask");
  }
  bool float64() const { return GetParam().dtype == "float64"; }
  double tolerance() const { return float64() ? 1e-10 : 1e-5; }
  void report(const std::string& what, double difference) {
    std::cout << fmt::format("[ parity   ] {:<8} {:<8} {:<14} max |diff| {:.3e}\n", GetParam().name, GetParam().dtype,
                             what, difference);
    RecordProperty(what, fmt::format("{:.3e}", difference));
  }

  fs::path folder_;
  torch::Tensor logits_, hidden_, input_ids_, token_type_ids_, attention_mask_;
};

TEST_P(EncoderParity, HiddenStatesAndHeadOutputs) {
  Backbone model = load_model(folder_ / "model");
  SafetensorsFile file(folder_ / "model" / "model.safetensors");
  SequenceHead head = model->make_sequence_head(logits_.size(1));
  if (float64()) {
    model->to(torch::kFloat64);
    head->to(torch::kFloat64);
  }
  // The file's exact values in every parameter (the float64 comparison measures the forward pass), and the
  // head's tensors found under the head's Hugging Face names: every tensor of the file is used once.
  size_t used = 0;
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      const std::string key = model->config().hf_key(item.key());
      ASSERT_TRUE(file.contains(key)) << key;
      item.value().copy_(file.load(key).to(item.value().scalar_type()));
      ++used;
    }
    for (auto& item : head->named_parameters()) {
      const std::string key = head->hf_key(item.key());
      ASSERT_TRUE(file.contains(key)) << key;
      item.value().copy_(file.load(key).to(item.value().scalar_type()));
      ++used;
    }
  }
  EXPECT_EQ(used, file.names().size());
  model->eval();
  head->eval();
  torch::NoGradGuard no_grad;
  BackboneInputs inputs;
  inputs.input_ids = input_ids_;
  inputs.token_type_ids = token_type_ids_;
  inputs.attention_mask = attention_mask_;
  auto hidden = model->hidden_states(inputs);
  ASSERT_EQ(hidden.sizes(), hidden_.sizes());
  const double hidden_difference = max_difference(hidden, hidden_, attention_mask_);
  report("hidden states", hidden_difference);
  EXPECT_LT(hidden_difference, tolerance());
  auto logits = head->forward(hidden, attention_mask_);
  ASSERT_EQ(logits.sizes(), logits_.sizes());
  const double difference = max_difference(logits, logits_);
  report("head outputs", difference);
  EXPECT_LT(difference, tolerance());
}

// The loader reads the folder's tensors as float32 (exactly for a float32 file, rounded once for float64), and a BERT head made
// after loading starts from the checkpoint's pooler, as BertForSequenceClassification.from_pretrained does.
TEST_P(EncoderParity, LoaderKeepsTheFileValues) {
  Backbone model = load_model(folder_ / "model");
  SafetensorsFile file(folder_ / "model" / "model.safetensors");
  for (const auto& item : model->named_parameters()) {
    const std::string key = model->config().hf_key(item.key());
    ASSERT_TRUE(file.contains(key)) << key;
    EXPECT_TRUE(torch::equal(item.value(), file.load(key).to(torch::kFloat32))) << key;
  }
  SequenceHead head = model->make_sequence_head(logits_.size(1));
  size_t from_checkpoint = 0;
  for (const auto& item : head->named_parameters()) {
    const std::string key = head->hf_key(item.key());
    if (key.rfind("bert.pooler.", 0) != 0) continue;  // BERT's pretrained pooler; DeBERTa's pooler is new
    EXPECT_TRUE(torch::equal(item.value(), file.load(key).to(torch::kFloat32))) << key;
    ++from_checkpoint;
  }
  EXPECT_EQ(from_checkpoint, GetParam().name == "bert" ? 2u : 0u);
}

std::vector<EncoderCase> encoder_cases() {
  std::vector<EncoderCase> out;
  for (const char* name : {"bert", "roberta", "deberta-v3", "deberta-v2"})
    for (const char* dtype : {"float32", "float64"}) out.push_back({name, dtype});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Encoders, EncoderParity, ::testing::ValuesIn(encoder_cases()), encoder_case_label);

TEST(EncoderParityReference, SelfTestPasses) {
  auto [status, output] = testing::run_python(encoder_script(), "--self-test");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("0 failure(s)"), std::string::npos) << output;
}

}  // namespace
}  // namespace peftlab
