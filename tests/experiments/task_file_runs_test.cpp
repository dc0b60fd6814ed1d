// Task files end to end on the real stories260K: users' tasks with their own names beside SST-2 in one spec
// (every output type trains and evaluates), their provenance and metric directions in the run files, the
// shipped GLUE task files giving the numbers the C++ GLUE tasks gave, acc_norm against a float64 forward, and
// `peftlab tasks`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/data_root.h"
#include "core/model_io.h"
#include "core/recorder.h"
#include "experiments/evaluation.h"
#include "tasks/task.h"
#include "tests/float64_reference.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;
using testing::TempDir;
using testing::write_file;

std::string model_line() {
  const std::string data = fs::absolute(data_root()).string();
  return "model: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " + data +
         "/models/stories260K/tok512.model}\n";
}

// Small user data sets in three formats, and their task files.
void write_user_tasks(const fs::path& dir) {
  std::string tsv, csv = "id,review,stars\n", jsonl, text;
  const char* words[] = {"happy", "sad", "bright", "dark", "warm", "cold", "kind", "cruel"};
  for (int i = 0; i < 24; ++i) {
    const bool good = i % 2 == 0;
    tsv += std::string(good ? "pos" : "neg") + "\tThe dog was " + words[i % 8] + " today " + std::to_string(i) + "\n";
    csv += std::to_string(i) + ",\"It was " + words[(i + 3) % 8] + ", \"\"really\"\"\"," + (good ? "5" : "1") + "\n";
    jsonl += "{\"item\": {\"question\": \"What colour is thing " + std::to_string(i) +
             "?\"}, \"options\": [\"red\", \"blue\", \"green\"], \"gold\": " + std::to_string(i % 3) + "}\n";
    text += "Lily saw a " + std::string(words[i % 8]) + " cat. It ran to the park and played all day.\n";
  }
  write_file(dir / "mood.tsv", tsv);
  write_file(dir / "stars.csv", csv);
  write_file(dir / "colours.jsonl", jsonl);
  write_file(dir / "story.txt", text);
  std::string sums;
  for (int i = 0; i < 24; ++i)
    sums += "{\"q\": \"" + std::to_string(i) + " plus one\", \"a\": " + std::to_string(i + 1) + "}\n";
  write_file(dir / "sums.jsonl", sums);
  write_file(dir / "sums.yaml", "task: sums\noutput_type: generate\nformat: jsonl\n"
                                "splits: {train: sums.jsonl, dev: sums.jsonl}\ndoc_to_text: \"{{q}} is\"\n"
                                "doc_to_target: \"{{a}}\"\nuntil: [\"\\n\"]\nanswer_regex: \"([0-9]+)\"\n"
                                "max_new_tokens: 6\nmax_seq_len: 32\n");
  write_file(dir / "mood.yaml", "task: mood\noutput_type: classification\nformat: tsv\nheader: false\n"
                                "columns: [label, sentence]\nsplits: {train: mood.tsv, dev: mood.tsv}\n"
                                "doc_to_text: \"{{sentence}}\"\ndoc_to_target: \"{{label}}\"\nlabels: [neg, pos]\n"
                                "max_seq_len: 32\n");
  write_file(dir / "stars.yaml", "task: stars\noutput_type: classification\nformat: csv\n"
                                 "splits: {train: stars.csv, dev: stars.csv}\ndoc_to_text: \"Review: {{review}}\"\n"
                                 "doc_to_target: \"{{stars}}\"\nlabels: [\"1\", \"5\"]\nmetrics: [accuracy, f1]\n"
                                 "id_field: id\nmax_seq_len: 32\n");
  write_file(dir / "colours.yaml", "task: colours\noutput_type: multiple_choice\nformat: jsonl\n"
                                   "splits: {train: colours.jsonl, validation: colours.jsonl}\n"
                                   "doc_to_text: \"Question: {{item.question}}\\nAnswer:\"\n"
                                   "doc_to_choice: \"{{options}}\"\ndoc_to_target: \"{{gold}}\"\nmax_seq_len: 48\n");
  write_file(dir / "story.yaml", "task: story\noutput_type: rolling_loglikelihood\nformat: text\n"
                                 "splits: {train: story.txt, dev: story.txt}\nmax_seq_len: 48\n");
}

TEST(TaskFileRuns, NamedUserTasksRunBesideSst2AndTheTableShowsTheirNames) {
  TempDir dir;
  write_user_tasks(dir.path());
  const fs::path spec = dir / "named.yaml";
  write_file(spec, "name: named\n" + model_line() +
                       "methods: [{name: lora, rank: 4, alpha: 8}]\n"
                       "tasks:\n"
                       "  - {name: sst2, max_seq_len: 32, max_train_examples: 64, max_eval_examples: 32}\n"
                       "  - {file: mood.yaml}\n"
                       "  - {file: stars.yaml, max_eval_examples: 16}\n"
                       "  - {file: colours.yaml}\n"
                       "  - {file: story.yaml, max_eval_examples: 8}\n"
                       "  - {file: sums.yaml, max_eval_examples: 8}\n"
                       "train: {lr: 0.005, batch_size: 4, max_steps: 3}\n"
                       "eval: {batch_size: 8}\nrecord: {log_every: 1}\n");
  auto listed = run_cli({"validate", spec.string()});
  ASSERT_EQ(listed.status, 0) << listed.output;
  for (const char* id : {"sst2/lora-r4/seed0", "mood/lora-r4/seed0", "stars/lora-r4/seed0", "colours/lora-r4/seed0",
                         "story/lora-r4/seed0", "sums/lora-r4/seed0"})
    EXPECT_NE(listed.output.find(id), std::string::npos) << id << "\n" << listed.output;

  const fs::path out = dir / "o";
  auto run = run_cli({"--threads", "2", "-q", "run", spec.string(), "--out", out.string(), "--no-table"});
  ASSERT_EQ(run.status, 0) << run.output;
  for (const char* task : {"sst2", "mood", "stars", "colours", "story", "sums"}) {
    RunFileReader r((out / task / "lora-r4" / "seed0" / "run.h5").string());
    EXPECT_EQ(r.status(), "completed") << task;
    EXPECT_EQ(r.read_doubles("/train/loss").size(), 3u) << task;
    EXPECT_EQ(r.attribute_string("task"), task);
  }
  auto file_attrs = [&](const char* task) { return RunFileReader((out / task / "lora-r4" / "seed0" / "run.h5").string()); };
  // Provenance: the task file and its checksum; the C++-free shipped sst2 names its shipped file.
  EXPECT_EQ(file_attrs("mood").attribute_string("task_source"), (dir / "mood.yaml").string());
  EXPECT_EQ(file_attrs("mood").attribute_string("task_source_sha256"), sha256_file(dir / "mood.yaml"));
  EXPECT_EQ(file_attrs("sst2").attribute_string("task_source"), "tasks/sst2.yaml");
  // Directions of every metric.
  auto directions = nlohmann::json::parse(file_attrs("story").attribute_string("metric_directions"));
  EXPECT_EQ(directions, nlohmann::json({{"perplexity", "lower"}, {"bits_per_byte", "lower"}, {"nll_per_token", "lower"}}));
  directions = nlohmann::json::parse(file_attrs("colours").attribute_string("metric_directions"));
  EXPECT_EQ(directions, nlohmann::json({{"acc", "higher"}, {"acc_norm", "higher"}}));
  // Scores of each output type.
  auto story = file_attrs("story").final_metrics("dev");
  ASSERT_TRUE(story.count("perplexity")) << "story";
  EXPECT_NEAR(std::log(story.at("perplexity")), story.at("nll_per_token"), 1e-9);
  auto colours = file_attrs("colours").final_metrics("validation");
  ASSERT_TRUE(colours.count("acc") && colours.count("acc_norm"));
  for (double v : {colours.at("acc"), colours.at("acc_norm")}) EXPECT_TRUE(v >= 0 && v <= 1) << v;
  auto sums = file_attrs("sums").final_metrics("dev");
  ASSERT_TRUE(sums.count("exact_match") && sums.count("no_match_rate"));
  EXPECT_TRUE(sums.at("exact_match") + sums.at("no_match_rate") <= 1.0);
  auto stars = file_attrs("stars").final_metrics("dev");
  EXPECT_TRUE(stars.count("accuracy") && stars.count("f1"));

  auto table = run_cli({"table", out.string(), "--format", "csv"});
  ASSERT_EQ(table.status, 0) << table.output;
  for (const char* column : {"sst2_mean", "mood_mean", "stars_mean", "colours_mean", "story_mean", "sums_mean"})
    EXPECT_NE(table.output.find(column), std::string::npos) << column << "\n" << table.output;
  auto md = run_cli({"table", out.string()});
  ASSERT_EQ(md.status, 0) << md.output;
  for (const char* header : {"mood (accuracy)", "stars (accuracy)", "colours (acc)", "story (perplexity)",
                             "sums (exact_match)"})
    EXPECT_NE(md.output.find(header), std::string::npos) << header << "\n" << md.output;
}

TEST(TaskFileRuns, AnUnknownFieldInAUsersTaskFileIsExitTwoNamingItsLine) {
  TempDir dir;
  write_user_tasks(dir.path());
  write_file(dir / "typo.yaml", "task: typo\noutput_type: classification\nformat: csv\nsplits: {train: stars.csv}\n"
                                "doc_to_text: \"{{reviw}}\"\ndoc_to_target: \"{{stars}}\"\nlabels: [\"1\", \"5\"]\n");
  write_file(dir / "s.yaml", "name: s\n" + model_line() + "methods: [{name: lora}]\ntasks: [{file: typo.yaml}]\n");
  auto r = run_cli({"validate", (dir / "s.yaml").string()});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("error: " + (dir / "typo.yaml").string() + ":5: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unknown field 'reviw'"), std::string::npos) << r.output;
  write_file(dir / "s2.yaml", "name: s\n" + model_line() + "methods: [{name: lora}]\ntasks: [{file: nothere.yaml}]\n");
  r = run_cli({"validate", (dir / "s2.yaml").string()});
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("s2.yaml:4: file: no task file"), std::string::npos) << r.output;
}

// The GLUE tasks moved from C++ to task files: a 4-step LoRA run of each on stories260K gives the training losses
// and dev metrics that the C++ tasks gave (recorded with the program built before the move, same spec, one
// thread). STS-B had no dev metrics then: its regression split was not recognised as labelled.
TEST(TaskFileRuns, ShippedGlueTaskFilesGiveTheNumbersTheCppTasksGave) {
  TempDir dir;
  std::string tasks;
  for (const char* t : {"cola", "sst2", "mrpc", "stsb", "rte", "wnli"})
    tasks += std::string("  - {name: ") + t + ", max_seq_len: 48, max_train_examples: 64, max_eval_examples: 200}\n";
  write_file(dir / "glue.yaml", "name: glue_before\n" + model_line() + "methods:\n  - {name: lora, rank: 4, alpha: 8}\n"
                                    "tasks:\n" + tasks +
                                    "train: {batch_size: 8, max_steps: 4, lr: 0.01, threads: 1}\n"
                                    "eval: {batch_size: 16, write_predictions: false}\nrecord: {log_every: 1}\n");
  auto run = run_cli({"--threads", "1", "-q", "run", (dir / "glue.yaml").string(), "--out", (dir / "o").string(),
                      "--no-table"});
  ASSERT_EQ(run.status, 0) << run.output;
  struct Before {
    const char* task;
    std::vector<double> loss;
    std::map<std::string, double> dev;
  };
  const std::vector<Before> before = {
      {"cola", {0.6237897872924805, 0.6533635854721069, 0.15070824325084686, 0.8943256139755249},
       {{"matthews", -0.05201765927731801}}},
      {"mrpc", {0.6337084770202637, 0.8003829717636108, 0.7415903806686401, 0.6054676175117493},
       {{"accuracy", 0.645}, {"f1", 0.7760252365930599}}},
      {"rte", {0.672261118888855, 1.0747590065002441, 0.39587172865867615, 0.976684033870697}, {{"accuracy", 0.465}}},
      {"sst2", {0.6489729285240173, 0.8435646295547485, 0.693091630935669, 0.5272711515426636}, {{"accuracy", 0.5}}},
      {"stsb", {19.547306060791016, 11.77796745300293, 3.573446273803711, 3.9228789806365967}, {}},
      {"wnli", {0.7527440786361694, 0.994543731212616, 0.8014404773712158, 0.8940242528915405},
       {{"accuracy", 0.5211267605633803}}},
  };
  for (const auto& b : before) {
    RunFileReader r((dir / "o" / b.task / "lora-r4" / "seed0" / "run.h5").string());
    ASSERT_EQ(r.status(), "completed") << b.task;
    auto loss = r.read_doubles("/train/loss");
    ASSERT_EQ(loss.size(), b.loss.size()) << b.task;
    for (size_t i = 0; i < loss.size(); ++i) EXPECT_NEAR(loss[i], b.loss[i], 1e-5 * std::abs(b.loss[i])) << b.task << " " << i;
    auto dev = r.final_metrics("dev");
    for (const auto& [metric, value] : b.dev) {
      ASSERT_TRUE(dev.count(metric)) << b.task << " " << metric;
      EXPECT_NEAR(dev.at(metric), value, 1e-9) << b.task << " " << metric;
    }
    if (std::string(b.task) == "stsb") {
      EXPECT_TRUE(dev.count("pearson") && dev.count("spearman"));
    }
  }
}

using testing::continuation_logprob;

TEST(TaskFileRuns, MultipleChoiceAccAndAccNormEqualAFloat64Forward) {
  TempDir dir;
  // Choices of very different lengths, so that the per-character pick differs from the summed one somewhere.
  std::string jsonl;
  const char* endings[][3] = {{"ran", "ran to the park with her mother and father", "sat"},
                              {"was happy", "cried", "went home to sleep in her warm little bed"},
                              {"a cat", "a big red ball that rolled down the hill", "a dog"},
                              {"played", "smiled", "looked at the sky and saw many bright stars"},
                              {"tree", "flower", "very tall tree with green leaves"},
                              {"ate cake", "the little girl ate the big cake", "slept"}};
  for (int i = 0; i < 6; ++i)
    jsonl += "{\"ctx\": \"Once upon a time, Lily\", \"c\": [\"" + std::string(endings[i][0]) + "\", \"" + endings[i][1] +
             "\", \"" + endings[i][2] + "\"], \"y\": " + std::to_string(i % 3) + "}\n";
  write_file(dir / "d.jsonl", jsonl);
  write_file(dir / "mc.yaml", "task: endings\noutput_type: multiple_choice\nformat: jsonl\nsplits: {dev: d.jsonl}\n"
                              "doc_to_text: \"{{ctx}}\"\ndoc_to_choice: \"{{c}}\"\ndoc_to_target: \"{{y}}\"\n");
  auto task = make_task_from_yaml("{file: '" + (dir / "mc.yaml").string() + "'}");
  LoadedModel loaded = load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer());
  EvalSplit data = load_eval_split(*task, "dev", *loaded.tokenizer);
  TaskModel model(loaded.model, task->kind(), 0);
  auto result = evaluate_split(*model, *task, data, *loaded.tokenizer, /*batch_size=*/4);

  auto model64 = load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer()).model;
  model64->to(torch::kFloat64);
  const auto& answers = dynamic_cast<const TextAnswerTask&>(*task);
  double acc = 0, acc_norm = 0;
  int differ = 0;
  for (const auto& example : data.examples) {
    double best = -1e300, best_norm = -1e300;
    int64_t pick = -1, pick_norm = -1;
    for (const auto& c : answers.candidates(example, *loaded.tokenizer)) {
      const double lp = continuation_logprob(*model64, c.input_ids, c.continuation_start);
      const double chars = double(example.texts.at(size_t(c.answer_index)).size());  // ASCII here: bytes = characters
      if (lp > best) best = lp, pick = c.answer_index;
      if (lp / chars > best_norm) best_norm = lp / chars, pick_norm = c.answer_index;
    }
    acc += pick == example.label;
    acc_norm += pick_norm == example.label;
    differ += pick != pick_norm;
  }
  EXPECT_GT(differ, 0);  // the normalisation matters on this data
  EXPECT_NEAR(result.metrics.at("acc"), acc / 6, 1e-12);
  EXPECT_NEAR(result.metrics.at("acc_norm"), acc_norm / 6, 1e-12);
}

TEST(TaskFileRuns, TasksVerbListsEveryTaskWithItsSource) {
  auto r = run_cli({"tasks"});
  ASSERT_EQ(r.status, 0) << r.output;
  for (const auto& name : task_names()) {
    const std::string line_start = "\n" + name + " ";
    const size_t at = r.output.find(line_start);
    ASSERT_NE(at, std::string::npos) << name << "\n" << r.output;
    const size_t end = r.output.find('\n', at + 1);
    EXPECT_NE(r.output.substr(at, end - at).find(task_source(name)), std::string::npos) << name;
  }
  EXPECT_NE(r.output.find("tasks/sst2.yaml"), std::string::npos);
  auto shown = run_cli({"tasks", "--show", "mnli"});
  ASSERT_EQ(shown.status, 0) << shown.output;
  EXPECT_NE(shown.output.find("task: mnli\n"), std::string::npos) << shown.output;
  auto cpp = run_cli({"tasks", "--show", "lm"});
  EXPECT_EQ(cpp.status, 2) << cpp.output;
}

}  // namespace
}  // namespace peftlab

namespace peftlab {
namespace {

// One record per lm-evaluation-harness set, in its Hugging Face layout, with the context and choices the
// harness's templates make of it, written out by hand from those templates (arc_easy / arc_challenge:
// "Question: {{question}}\nAnswer:"; openbookqa: the question stem; piqa: "Question: {{goal}}\nAnswer:";
// social_iqa: "Q: {{context}} {{question}}\nA:"; boolq: "{{passage}}\nQuestion: {{question}}?\nAnswer:").
// hellaswag and winogrande: the strings the harness's Python (utils.process_docs; preprocess_winogrande's
// partial_context and partial_target) makes of the record, computed with Python's own str.capitalize, re.sub
// and str.replace. winogrande has one context per choice (`choices`) and one `continuation`.
struct HarnessCase {
  const char* task;
  const char* folder;
  std::string record;
  std::string context;
  std::vector<std::string> choices;
  int64_t gold;
  std::string continuation = "";  // multiple_inputs only
};

std::vector<HarnessCase> harness_cases() {
  const std::string arc = R"({"id": "q1", "question": "Which of these is a gas?", "choices": {"text": ["ice", "steam", "rock"], "label": ["A", "B", "C"]}, "answerKey": "B"})";
  return {
      {"lmeval_arc_easy", "arc_easy", arc, "Question: Which of these is a gas?\nAnswer:", {"ice", "steam", "rock"}, 1},
      {"lmeval_arc_challenge", "arc_challenge", arc, "Question: Which of these is a gas?\nAnswer:",
       {"ice", "steam", "rock"}, 1},
      {"lmeval_openbookqa", "openbookqa",
       R"({"id": "7", "question_stem": "The sun is", "choices": {"text": ["cold", "a star", "wet", "small"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"})",
       "The sun is", {"cold", "a star", "wet", "small"}, 1},
      {"lmeval_piqa", "piqa", R"({"goal": "Dry wet hands", "sol1": "Use a towel.", "sol2": "Use water.", "label": 0})",
       "Question: Dry wet hands\nAnswer:", {"Use a towel.", "Use water."}, 0},
      {"lmeval_social_iqa", "social_iqa",
       R"({"context": "Tom gave Ann a gift.", "question": "How would Ann feel?", "answerA": "happy", "answerB": "angry", "answerC": "bored", "label": "1"})",
       "Q: Tom gave Ann a gift. How would Ann feel?\nA:", {"happy", "angry", "bored"}, 0},
      {"lmeval_boolq", "boolq",
       R"({"question": "is the sky blue", "passage": "The sky is blue on a clear day.", "idx": 0, "label": 1})",
       "The sky is blue on a clear day.\nQuestion: is the sky blue?\nAnswer:", {"no", "yes"}, 1},
      {"lmeval_hellaswag", "hellaswag",
       R"({"ind": 24, "activity_label": "Personal Care and Style", "ctx_a": "[header] How to dye your hair [title] Buy the dye. [step] Pick a colour.", "ctx_b": "wASH your hair", "endings": ["first. [substeps] Use  shampoo.", " then dry it [title] Done.", "with milk.", "and [step] rinse."], "source_id": "wikihow~1", "split": "val", "split_type": "indomain", "label": "1"})",
       "Personal Care and Style: How to dye your hair. Buy the dye. Pick a colour. Wash your hair",
       {"first. Use shampoo.", "then dry it. Done.", "with milk.", "and rinse."}, 1},
      {"lmeval_winogrande", "winogrande",
       R"({"sentence": "Sarah was a much better surgeon than Maria so _ always got the harder cases.", "option1": "Sarah", "option2": "Maria", "answer": "2"})",
       "", {"Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"},
       1, "always got the harder cases."},
  };
}

void write_harness_data(const fs::path& root) {
  for (const auto& c : harness_cases())
    for (const char* split : {"train", "validation", "test"}) {
      std::string lines;
      for (int i = 0; i < 8; ++i) lines += c.record + "\n";
      write_file(root / c.folder / (std::string(split) + ".jsonl"), lines);
    }
}

TEST(HarnessTasks, PromptsAndContinuationsAreTheHarnesssStrings) {
  TempDir dir;
  write_harness_data(dir.path());
  LoadedModel loaded = load_model_and_tokenizer(testing::stories260k_bin(), testing::stories260k_tokenizer());
  const Tokenizer& tokenizer = *loaded.tokenizer;
  for (const auto& c : harness_cases()) {
    auto task = make_task_from_yaml(std::string("{name: ") + c.task + ", data_dir: '" + (dir / c.folder).string() + "'}");
    EXPECT_EQ(task_source(c.task), std::string("tasks/") + c.task + ".yaml");
    const std::string split = task->eval_splits().at(0);
    auto examples = task->load(split);
    ASSERT_EQ(examples.size(), 8u) << c.task;
    const bool multiple_inputs = !c.continuation.empty();
    EXPECT_EQ(examples[0].instruction, c.context) << c.task;
    EXPECT_EQ(examples[0].texts, c.choices) << c.task;
    EXPECT_EQ(examples[0].label, c.gold) << c.task;
    if (multiple_inputs) {
      EXPECT_EQ(examples[0].answer, c.continuation) << c.task;
    }
    // Each candidate: BOS, the context's tokens, then the tokens of context + " " + continuation after them
    // (the continuation is the choice; with multiple_inputs the choice is the context).
    auto candidates = dynamic_cast<const TextAnswerTask&>(*task).candidates(examples[0], tokenizer);
    ASSERT_EQ(candidates.size(), c.choices.size()) << c.task;
    for (size_t i = 0; i < c.choices.size(); ++i) {
      const std::string context_text = multiple_inputs ? c.choices[i] : c.context;
      const std::vector<int> context = tokenizer.encode(context_text);
      const std::vector<int> whole = tokenizer.encode(context_text + " " + (multiple_inputs ? c.continuation : c.choices[i]));
      std::vector<int32_t> expected = {int32_t(tokenizer.bos_id())};
      expected.insert(expected.end(), context.begin(), context.end());
      expected.insert(expected.end(), whole.begin() + long(context.size()), whole.end());
      EXPECT_EQ(candidates[i].input_ids, expected) << c.task << " choice " << i;
      EXPECT_EQ(candidates[i].continuation_start, int64_t(context.size()) + 1) << c.task;
    }
  }
}

TEST(HarnessTasks, EachTrainsAndEvaluatesOnStories260K) {
  TempDir dir;
  write_harness_data(dir / "data");
  std::string tasks;
  for (const auto& c : harness_cases())
    tasks += std::string("  - {name: ") + c.task + ", data_dir: '" + (dir / "data" / c.folder).string() + "'}\n";
  write_file(dir / "h.yaml", "name: h\n" + model_line() + "methods: [{name: lora, rank: 4, alpha: 8}]\ntasks:\n" +
                                 tasks + "train: {lr: 0.005, batch_size: 4, max_steps: 2}\neval: {batch_size: 8}\n");
  auto run = run_cli({"--threads", "2", "-q", "run", (dir / "h.yaml").string(), "--out", (dir / "o").string(),
                      "--no-table"});
  ASSERT_EQ(run.status, 0) << run.output;
  for (const auto& c : harness_cases()) {
    RunFileReader r((dir / "o" / c.task / "lora-r4" / "seed0" / "run.h5").string());
    EXPECT_EQ(r.status(), "completed") << c.task;
    const std::string split = r.attribute_string("headline_split");
    auto metrics = r.final_metrics(split);
    ASSERT_TRUE(metrics.count("acc")) << c.task;
    // acc_norm where choices differ; with multiple_inputs (winogrande) every choice scores the same text.
    EXPECT_EQ(metrics.count("acc_norm"), c.continuation.empty() ? 1u : 0u) << c.task;
    // Eight copies of one record: every pick is the same, so accuracy is 0 or 1.
    EXPECT_TRUE(metrics.at("acc") == 0.0 || metrics.at("acc") == 1.0) << c.task << " " << metrics.at("acc");
  }
}

}  // namespace
}  // namespace peftlab
