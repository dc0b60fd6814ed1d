// The decoder families against an independent reference: tests/reference/hf_decoder_reference.py, a float64
// forward pass written from Hugging Face's llama, mistral and qwen2 model definitions, writes a tiny random
// model of each case in Hugging Face's layout and the logits it must give. Here peftlab's loader reads each
// folder and its forward pass must reproduce those logits: the whole right-padded batch at once, and again
// position by position through the KV cache (with a multi-token prefill and a multi-token chunk after it).
// float32 files to 1e-5, float64 files to 1e-10 (in float64); bfloat16 and float16 files check the loader's
// widening. The reference needs python3 with torch and numpy; without them every test here FAILS.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
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

// ---- The one place this file touches the model API. ----

Backbone load(const fs::path& folder) { return load_model(folder); }

// Logits (B, T, vocab) of a whole right-padded batch; `attention_mask` (B, T) is 1 on real tokens.
torch::Tensor full_logits(Backbone& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  BackboneInputs inputs;
  inputs.input_ids = input_ids;
  inputs.attention_mask = attention_mask;
  return model->logits(model->hidden_states(inputs));
}

// Logits of the chunk input_ids (B, T) at positions start_pos..start_pos+T-1, extending `cache`;
// `attention_mask` covers the past and the chunk, (B, start_pos + T).
torch::Tensor chunk_logits(Backbone& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                           int64_t start_pos, KVCache& cache) {
  BackboneInputs inputs;
  inputs.input_ids = input_ids;
  inputs.attention_mask = attention_mask;
  inputs.start_pos = start_pos;
  inputs.cache = &cache;
  return model->logits(model->hidden_states(inputs));
}

// The safetensors key of a parameter named as named_parameters() names it.
std::string hf_key(const Backbone& model, const std::string& parameter) { return model->config().hf_key(parameter); }

// ---- The reference's output. ----

const std::vector<std::string> kCases = {"llama-plain", "llama", "llama-linear", "mistral", "qwen2"};

fs::path script() { return fs::path(PEFTLAB_SOURCE_DIR) / "tests" / "reference" / "hf_decoder_reference.py"; }

// Every case in every dtype (<folder>/<case>/<dtype>/), run once for the whole suite.
const testing::ReferenceRun& reference() {
  static const testing::ReferenceRun run(script(), "--all");
  return run;
}

struct Expected {
  torch::Tensor logits, input_ids, attention_mask;  // (B, T, vocab) float64; (B, T) int64 each
};

Expected read_expected(const fs::path& folder) {
  SafetensorsFile file(folder / "expected.safetensors");
  return {file.load("logits"), file.load("input_ids"), file.load("attention_mask")};
}

// Largest |got - expected| over real (unpadded) positions, in float64.
double max_difference(const torch::Tensor& got, const Expected& expected) {
  auto real = expected.attention_mask.to(torch::kBool).unsqueeze(-1).expand_as(expected.logits);
  auto difference = (got.to(torch::kFloat64) - expected.logits).masked_select(real).abs();
  // A NaN anywhere at a real position must fail, not vanish in max().
  if (difference.isnan().any().item<bool>()) return std::numeric_limits<double>::infinity();
  return difference.max().item<double>();
}

// Every loaded parameter equals the file's tensor converted to the parameter's dtype (widening F16/BF16 is
// exact; an F64 file loaded in float32 is rounded once).
void expect_parameters_equal_file(const Backbone& model, const fs::path& folder) {
  SafetensorsFile file(folder / "model.safetensors");
  size_t checked = 0;
  for (const auto& item : model->named_parameters()) {
    const std::string key = hf_key(model, item.key());
    ASSERT_TRUE(file.contains(key)) << key;
    auto stored = file.load(key).to(item.value().scalar_type());
    EXPECT_TRUE(torch::equal(item.value(), stored)) << key;
    ++checked;
  }
  EXPECT_EQ(checked, file.names().size()) << "every tensor in the file is a parameter";
}

// The file's exact values in the model's parameters (after `to(float64)`), so that a float64 comparison
// measures the forward pass and not how the loader rounds.
void assign_file_values(Backbone& model, const fs::path& folder) {
  SafetensorsFile file(folder / "model.safetensors");
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    auto stored = file.load(hf_key(model, item.key()));
    ASSERT_EQ(stored.sizes(), item.value().sizes()) << item.key();
    item.value().copy_(stored.to(item.value().scalar_type()));
  }
}

struct ParityCase {
  std::string name, dtype;
};

// gtest prints the parameter of a failing test with this.
void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.name << " " << c.dtype; }

std::string case_label(const ::testing::TestParamInfo<ParityCase>& info) {
  std::string label = info.param.name + "_" + info.param.dtype;
  for (char& c : label)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return label;
}

class FamilyParity : public ::testing::TestWithParam<ParityCase> {
 protected:
  void SetUp() override {
    const std::string failure = reference().failure();
    ASSERT_TRUE(failure.empty()) << failure;
    folder_ = reference().folder(GetParam().name, GetParam().dtype);
    expected_ = read_expected(folder_);
  }
  bool float64() const { return GetParam().dtype == "float64"; }
  double tolerance() const { return float64() ? 1e-10 : 1e-5; }
  // The case's model. For float64 it is the float32 file's model moved to float64 and given the float64
  // file's exact values, so that the float64 comparisons measure the forward pass whatever the loader does
  // with F64 files (LoaderKeepsTheFileValues checks that on its own).
  Backbone loaded() {
    Backbone model = load(reference().folder(GetParam().name, float64() ? "float32" : GetParam().dtype) / "model");
    model->eval();
    if (float64()) {
      model->to(torch::kFloat64);
      assign_file_values(model, folder_ / "model");
    }
    return model;
  }
  void report(const std::string& what, double difference) {
    std::cout << fmt::format("[ parity   ] {:<13} {:<8} {:<26} max |diff| {:.3e}\n", GetParam().name,
                             GetParam().dtype, what, difference);
    RecordProperty(what, fmt::format("{:.3e}", difference));
  }

  fs::path folder_;
  Expected expected_;
};

TEST_P(FamilyParity, LoaderKeepsTheFileValues) {
  Backbone model = load(folder_ / "model");
  expect_parameters_equal_file(model, folder_ / "model");
}

TEST_P(FamilyParity, FullSequenceWithPadding) {
  Backbone model = loaded();
  torch::NoGradGuard no_grad;
  auto logits = full_logits(model, expected_.input_ids, expected_.attention_mask);
  ASSERT_EQ(logits.sizes(), expected_.logits.sizes());
  const double difference = max_difference(logits, expected_);
  report("full sequence", difference);
  EXPECT_LT(difference, tolerance());
}

// Decoding in chunks through the KV cache gives the full sequence's logits at every position. `chunks` are
// chunk lengths summing to the sequence length.
void expect_chunked_equals_full(Backbone& model, const Expected& expected,
                                const std::vector<int64_t>& chunks, double tolerance, const std::string& what,
                                const std::function<void(const std::string&, double)>& report) {
  torch::NoGradGuard no_grad;
  const int64_t T = expected.input_ids.size(1);
  KVCache cache;
  std::vector<torch::Tensor> pieces;
  int64_t start = 0;
  for (int64_t length : chunks) {
    auto ids = expected.input_ids.narrow(1, start, length);
    auto mask = expected.attention_mask.narrow(1, 0, start + length);
    pieces.push_back(chunk_logits(model, ids, mask, start, cache));
    start += length;
  }
  ASSERT_EQ(start, T);
  EXPECT_EQ(cache.length(), T);
  const double difference = max_difference(torch::cat(pieces, 1), expected);
  report(what, difference);
  EXPECT_LT(difference, tolerance);
}

TEST_P(FamilyParity, TokenByTokenThroughTheCache) {
  Backbone model = loaded();
  const int64_t T = expected_.input_ids.size(1);
  expect_chunked_equals_full(model, expected_, std::vector<int64_t>(T, 1), tolerance(), "token by token",
                             [this](const std::string& w, double d) { report(w, d); });
}

TEST_P(FamilyParity, PrefillThenChunksThroughTheCache) {
  // A 4-token prefill, a 3-token chunk that starts after cached positions (and, for mistral, crosses the
  // window), then single tokens.
  Backbone model = loaded();
  const int64_t T = expected_.input_ids.size(1);
  std::vector<int64_t> chunks = {4, 3};
  for (int64_t done = 7; done < T; ++done) chunks.push_back(1);
  expect_chunked_equals_full(model, expected_, chunks, tolerance(), "prefill 4, chunk 3, then 1s",
                             [this](const std::string& w, double d) { report(w, d); });
}

std::vector<ParityCase> forward_cases() {
  std::vector<ParityCase> cases;
  for (const auto& name : kCases)
    for (const char* dtype : {"float32", "float64"}) cases.push_back({name, dtype});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Decoders, FamilyParity, ::testing::ValuesIn(forward_cases()), case_label);

// bfloat16 and float16 files: the loader widens them exactly, and the float32 forward pass matches the
// reference computed from the same stored values.
class HalfPrecisionFiles : public FamilyParity {};

TEST_P(HalfPrecisionFiles, WidenedExactlyAndSameLogits) {
  Backbone model = load(folder_ / "model");
  expect_parameters_equal_file(model, folder_ / "model");
  model->eval();
  torch::NoGradGuard no_grad;
  const double difference = max_difference(full_logits(model, expected_.input_ids, expected_.attention_mask), expected_);
  report("full sequence", difference);
  EXPECT_LT(difference, 1e-5);
}

std::vector<ParityCase> half_cases() {
  std::vector<ParityCase> cases;
  for (const auto& name : kCases)
    for (const char* dtype : {"bfloat16", "float16"}) cases.push_back({name, dtype});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Decoders, HalfPrecisionFiles, ::testing::ValuesIn(half_cases()), case_label);

// The reference's own cross-checks (a second, loop-by-loop implementation; every exercised feature changes the
// logits; the safetensors writer) pass on this machine.
TEST(FamilyParityReference, SelfTestPasses) {
  auto [status, output] = testing::run_python(script(), "--self-test");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("0 failure(s)"), std::string::npos) << output;
}

}  // namespace
}  // namespace peftlab
