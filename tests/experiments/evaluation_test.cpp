// Evaluation protocols checked against independent routes: log-likelihood scoring against a float64 full
// forward of each candidate, generate-and-extract against greedy decoding without the KV cache; and the
// runner end to end on commonsense (both protocols, the average over sets), GLUE test predictions, a
// user-defined task, and exported adapters evaluated and generated from again.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/data_root.h"
#include "core/model_io.h"
#include "core/recorder.h"
#include "experiments/evaluation.h"
#include "tasks/commonsense.h"
#include "tests/float64_reference.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;
using testing::TempDir;

struct BaseModel {
  LoadedModel loaded = load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer());
};

using testing::continuation_logprob;

TEST(Evaluation, LoglikProtocolPicksWhatAFloat64ForwardPrefers) {
  BaseModel base;
  auto task = make_task_from_yaml("{name: piqa, protocol: loglik, max_eval_examples: 6}");
  const auto& answers = dynamic_cast<const CommonsenseTask&>(*task);
  EvalSplit data = load_eval_split(*task, "piqa", *base.loaded.tokenizer);
  ASSERT_EQ(data.examples.size(), 6u);
  TaskModel model(base.loaded.model, task->kind(), 0);
  auto result = evaluate_split(*model, *task, data, *base.loaded.tokenizer, /*batch_size=*/4);

  auto model64 = load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer()).model;
  model64->to(torch::kFloat64);
  int correct = 0;
  for (size_t i = 0; i < data.examples.size(); ++i) {
    double best = -std::numeric_limits<double>::infinity();
    int64_t chosen = -1;
    for (const auto& c : answers.candidates(data.examples[i], *base.loaded.tokenizer)) {
      const double lp = continuation_logprob(*model64, c.input_ids, c.continuation_start);
      if (lp > best) best = lp, chosen = c.answer_index;
    }
    EXPECT_EQ(result.predictions[i], double(chosen)) << "example " << i;
    correct += chosen == data.examples[i].label;
  }
  EXPECT_DOUBLE_EQ(result.metrics.at("accuracy"), correct / 6.0);
  EXPECT_EQ(result.metrics.count("no_match_rate"), 0u);  // nothing is generated under loglik
}

TEST(Evaluation, GenerateProtocolEqualsGreedyDecodingWithoutTheCache) {
  BaseModel base;
  auto task = make_task_from_yaml("{name: boolq, protocol: generate, max_new_tokens: 6, max_eval_examples: 3}");
  const auto& answers = dynamic_cast<const CommonsenseTask&>(*task);
  EvalSplit data = load_eval_split(*task, "boolq", *base.loaded.tokenizer);
  TaskModel model(base.loaded.model, task->kind(), 0);
  auto result = evaluate_split(*model, *task, data, *base.loaded.tokenizer, 4);
  int matched = 0, correct = 0;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < data.tokenized.size(); ++i) {
    std::vector<int64_t> ids(data.tokenized[i].input_ids.begin(), data.tokenized[i].input_ids.end());
    for (int step = 0; step < 6; ++step) {
      auto logits = base.loaded.model->forward(torch::tensor(ids).unsqueeze(0)).select(1, long(ids.size()) - 1);
      const int64_t next = logits.argmax(-1).item<int64_t>();
      if (next == base.loaded.tokenizer->eos_id()) break;
      ids.push_back(next);
    }
    std::string decoded = base.loaded.tokenizer->decode(std::vector<int>(ids.begin(), ids.end()));
    const double expected = answers.prediction_from_reply("boolq", response_text(decoded));
    EXPECT_EQ(result.predictions[i], expected) << decoded;
    matched += expected >= 0;
    correct += expected == double(data.examples[i].label);
  }
  EXPECT_DOUBLE_EQ(result.metrics.at("accuracy"), correct / 3.0);
  EXPECT_DOUBLE_EQ(result.metrics.at("no_match_rate"), (3 - matched) / 3.0);
}

std::string model_yaml() {
  const std::string data = fs::absolute(data_root()).string();
  return "model: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " + data +
         "/models/stories260K/tok512.model}\n";
}

fs::path run_spec(const TempDir& dir, const std::string& name, const std::string& body) {
  fs::path file = dir / (name + ".yaml");
  std::ofstream(file) << "name: " << name << "\n" << model_yaml() << body;
  return file;
}

fs::path only_run_file(const fs::path& root) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.path().filename() == "run.h5") found.push_back(entry.path());
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? fs::path() : found[0];
}

TEST(Evaluation, CommonsenseRunRecordsBothProtocolsAndTheAverage) {
  TempDir dir;
  auto spec = run_spec(dir, "cs",
                       "methods: [{name: lora, rank: 2, targets: [q_proj, v_proj]}]\n"
                       "tasks: [{name: commonsense, protocol: both, eval_sets: [boolq, piqa], max_new_tokens: 4,\n"
                       "         max_train_examples: 32, max_eval_examples: 3, max_seq_len: 128}]\n"
                       "seeds: [0]\ntrain: {lr: 0.001, batch_size: 4, max_steps: 3}\n");
  auto r = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", (dir / "runs").string(), "--no-table"});
  ASSERT_EQ(r.status, 0) << r.output;
  RunFileReader run(only_run_file(dir / "runs").string());
  EXPECT_EQ(run.status(), "completed");
  auto boolq = run.final_metrics("boolq"), piqa = run.final_metrics("piqa"), average = run.final_metrics("average");
  for (const char* metric : {"accuracy", "no_match_rate", "loglik_accuracy"}) {
    ASSERT_TRUE(boolq.count(metric) && piqa.count(metric) && average.count(metric)) << metric;
    EXPECT_DOUBLE_EQ(average.at(metric), (boolq.at(metric) + piqa.at(metric)) / 2) << metric;
  }
  EXPECT_EQ(run.attribute_string("headline_split"), "average");
}

int count_data_rows(const fs::path& tsv) {
  std::ifstream in(tsv);
  std::string line;
  int rows = -1;  // the header
  while (std::getline(in, line)) rows += !line.empty();
  return rows;
}

TEST(Evaluation, GlueRunWritesTestPredictionsInTheSubmissionLayout) {
  TempDir dir;
  auto spec = run_spec(dir, "sst2",
                       "methods: [{name: lora, rank: 2, targets: [q_proj]}]\n"
                       "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 32}]\n"
                       "seeds: [0]\ntrain: {batch_size: 8, max_steps: 2}\neval: {max_examples: 16, write_predictions: true}\n");
  auto r = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", (dir / "runs").string(), "--no-table"});
  ASSERT_EQ(r.status, 0) << r.output;
  fs::path submission = only_run_file(dir / "runs").parent_path() / "predictions" / "SST-2.tsv";
  ASSERT_TRUE(fs::exists(submission));
  const fs::path test = data_path("glue/SST-2/test.tsv");
  EXPECT_EQ(count_data_rows(submission), count_data_rows(test));
  std::ifstream in(submission), source(test);
  std::string line, source_line;
  std::getline(in, line);
  EXPECT_EQ(line, "index\tprediction");
  std::getline(source, source_line);
  while (std::getline(in, line) && std::getline(source, source_line)) {
    EXPECT_EQ(line.substr(0, line.find('\t')), source_line.substr(0, source_line.find('\t')));
    const std::string label = line.substr(line.find('\t') + 1);
    EXPECT_TRUE(label == "0" || label == "1") << line;
  }
}

TEST(Evaluation, UserDefinedTaskRunsEndToEndFromYamlAlone) {
  TempDir dir;
  // A separable toy task: the label is whether the sentence mentions a dog or a cat.
  std::string train = "text\tanimal\n", dev = "text\tanimal\n", test = "id\ttext\n";
  const char* dogs[] = {"the dog barked", "a big dog ran", "my dog sleeps", "the dog is happy"};
  const char* cats[] = {"the cat purred", "a small cat sat", "my cat sleeps", "the cat is happy"};
  for (int repeat = 0; repeat < 8; ++repeat)
    for (int i = 0; i < 4; ++i) train += std::string(dogs[i]) + "\tdog\n" + cats[i] + "\tcat\n";
  for (int i = 0; i < 4; ++i) dev += std::string(dogs[i]) + "\tdog\n" + cats[i] + "\tcat\n";
  test += "t1\tthe dog sat\nt2\tthe cat ran\n";
  testing::write_file(dir / "train.tsv", train);
  testing::write_file(dir / "dev.tsv", dev);
  testing::write_file(dir / "test.tsv", test);
  auto spec = run_spec(dir, "pets",
                       "methods: [{name: dora, rank: 4, alpha: 8, targets: all-linear}]\n"
                       "tasks: [{name: custom, label: pets, format: tsv, train: " + (dir / "train.tsv").string() +
                           ", dev: " + (dir / "dev.tsv").string() + ", test: " + (dir / "test.tsv").string() +
                           ", text_fields: [text], label_field: animal, labels: [cat, dog], id_field: id,"
                           " metrics: [accuracy, f1]}]\n"
                           "seeds: [0]\ntrain: {lr: 0.01, batch_size: 8, max_steps: 30}\neval: {write_predictions: true}\n");
  auto r = run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", (dir / "runs").string()});
  ASSERT_EQ(r.status, 0) << r.output;
  fs::path file = only_run_file(dir / "runs");
  RunFileReader run(file.string());
  EXPECT_EQ(run.status(), "completed");
  auto dev_metrics = run.final_metrics("dev");
  EXPECT_GT(dev_metrics.at("accuracy"), 0.5);  // 8 dev rows, 4 per class: chance is 0.5
  EXPECT_TRUE(dev_metrics.count("f1"));
  std::string predictions = testing::read_file(file.parent_path() / "predictions" / "test.tsv");
  EXPECT_EQ(predictions.substr(0, predictions.find('\n')), "index\tprediction");
  EXPECT_NE(predictions.find("\nt1\t"), std::string::npos) << predictions;
  EXPECT_NE(predictions.find("\nt2\t"), std::string::npos) << predictions;
}

TEST(Evaluation, ExportedAdapterEvaluatesAndGeneratesLikeTheRun) {
  TempDir dir;
  auto spec = run_spec(dir, "adapter",
                       "methods: [{name: bora, rank: 2, alpha: 4, targets: [q_proj, k_proj, v_proj, down_proj]}]\n"
                       "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 64}]\n"
                       "seeds: [0]\ntrain: {lr: 0.01, batch_size: 8, max_steps: 6}\neval: {max_examples: 48}\n");
  ASSERT_EQ(run_cli({"--threads", "1", "-q", "run", spec.string(), "--out", (dir / "runs").string(), "--no-table"}).status, 0);
  const fs::path run_dir = only_run_file(dir / "runs").parent_path();
  ASSERT_EQ(run_cli({"-q", "export", run_dir.string(), "--out", (dir / "adapter").string()}).status, 0);
  ASSERT_EQ(run_cli({"-q", "export", run_dir.string(), "--merged", "--out", (dir / "merged").string()}).status, 0);

  auto from_run = run_cli({"--threads", "1", "-q", "eval", run_dir.string(), "--max-examples", "48"});
  auto from_adapter = run_cli({"--threads", "1", "-q", "eval", "--adapter", (dir / "adapter").string(), "--model",
                               testing::stories260k_bin().string(), "--task", "{name: sst2, max_seq_len: 32}",
                               "--max-examples", "48"});
  ASSERT_EQ(from_run.status, 0) << from_run.output;
  ASSERT_EQ(from_adapter.status, 0) << from_adapter.output;
  auto a = nlohmann::json::parse(from_run.output), b = nlohmann::json::parse(from_adapter.output);
  EXPECT_EQ(a["dev"]["accuracy"].get<double>(), b["dev"]["accuracy"].get<double>());
  EXPECT_EQ(a["dev"]["accuracy"].get<double>(), RunFileReader((run_dir / "run.h5").string()).final_metrics("dev").at("accuracy"));

  // The adapter attached to the base model writes the same text as the merged export.
  auto attached = run_cli({"-q", "generate", "--model", testing::stories260k_bin().string(), "--adapter",
                           (dir / "adapter").string(), "--max-new-tokens", "40"});
  auto merged = run_cli({"-q", "generate", "--model", (dir / "merged").string(), "--tokenizer",
                         testing::stories260k_tokenizer().string(), "--max-new-tokens", "40"});
  ASSERT_EQ(attached.status, 0) << attached.output;
  ASSERT_EQ(merged.status, 0) << merged.output;
  EXPECT_EQ(attached.output, merged.output);
  EXPECT_GT(attached.output.size(), 40u);
}

TEST(Evaluation, AdapterWithoutTaskIsRefusedWithExitStatus2) {
  TempDir dir;
  auto r = run_cli({"eval", "--adapter", (dir / "nowhere").string()});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--adapter needs --task"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace peftlab
