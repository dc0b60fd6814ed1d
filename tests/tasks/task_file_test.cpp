// Task files (tasks/task_file.h) and their templates (tasks/template.h): users' own data from a task file
// alone, the template syntax and its errors, the token cache key, and the multiple-choice pairing of
// lm-evaluation-harness.
#include <gtest/gtest.h>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "tasks/lm.h"
#include "tasks/task.h"
#include "tasks/task_file.h"
#include "tasks/template.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

// A task from a task file written into `dir` (spec entry options in `entry`, YAML).
std::unique_ptr<Task> task_from(const fs::path& file, const std::string& entry = "{}") {
  const std::string rest = entry.substr(1, entry.size() - 2);
  return make_task_from_yaml("{file: '" + file.string() + "'" + (rest.empty() ? "" : ", " + rest) + "}");
}

TEST(TaskTemplate, RendersFieldsNestedPathsAndLiterals) {
  nlohmann::json record = {{"question", "Who?"}, {"#1 String", "a b"}, {"n", 3}, {"ok", true},
                           {"a", {{"b", "deep"}}}, {"a.b", "flat"}, {"choices", {{"text", {"x", "y"}}}}};
  EXPECT_EQ(TextTemplate("Q: {{question}}\nA:", "t.yaml", 1, "k").render(record, "d", 1), "Q: Who?\nA:");
  EXPECT_EQ(TextTemplate("{{ #1 String }}|{{n}}|{{ok}}", "t.yaml", 1, "k").render(record, "d", 1), "a b|3|true");
  EXPECT_EQ(TextTemplate("{{a.b}}", "t.yaml", 1, "k").render(record, "d", 1), "flat");  // the key as written first
  EXPECT_EQ(TextTemplate("{{choices.text.1}}", "t.yaml", 1, "k").render(record, "d", 1), "y");
  EXPECT_EQ(TextTemplate("{{\"{{\"}}x}}", "t.yaml", 1, "k").render(record, "d", 1), "{{x}}");
  auto list = TextTemplate("{{choices.text}}", "t.yaml", 1, "k").render_list(record, "d", 1);
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(*list, (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(TextTemplate("x {{choices.text}}", "t.yaml", 1, "k").render_list(record, "d", 1).has_value());
}

TEST(TaskTemplate, ErrorsNameTheTemplateOrTheRecord) {
  try {
    TextTemplate("Q: {{question", "t.yaml", 7, "doc_to_text");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "t.yaml");
    EXPECT_EQ(e.line(), 7);
    EXPECT_NE(e.problem().find("no closing"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TextTemplate("{{ }}", "t.yaml", 2, "k"), InputError);
  try {
    TextTemplate("{{qestion}}", "t.yaml", 4, "doc_to_text").render({{"question", "q"}}, "data.jsonl", 12);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "data.jsonl");
    EXPECT_EQ(e.line(), 12);
    EXPECT_NE(e.problem().find("no field 'qestion' (read by t.yaml:4 (doc_to_text))"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TextTemplate("{{a}}", "t.yaml", 1, "k").render({{"a", {1, 2}}}, "d", 1), InputError);  // a list
}

TEST(TaskFile, HeaderlessTsvWithTheLabelFirst) {
  TempDir dir;
  write_file(dir / "train.tsv", "pos\tA fine film\nneg\tA dull \"film\"\n");
  write_file(dir / "dev.tsv", "neg\tBad\n");
  write_file(dir / "reviews.yaml", "task: reviews\noutput_type: classification\nformat: tsv\nheader: false\n"
                                   "columns: [label, text]\nsplits: {train: train.tsv, dev: dev.tsv}\n"
                                   "doc_to_text: \"{{text}}\"\ndoc_to_target: \"{{label}}\"\nlabels: [neg, pos]\n");
  auto task = task_from(dir / "reviews.yaml");
  EXPECT_EQ(task->name(), "reviews");
  EXPECT_EQ(task->kind(), TaskKind::Classification);
  EXPECT_EQ(task->source(), (dir / "reviews.yaml").string());
  EXPECT_EQ(task->source_sha256().size(), 64u);
  auto train = task->load("train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[0].texts, (std::vector<std::string>{"A fine film"}));
  EXPECT_EQ(train[0].label, 1);
  EXPECT_EQ(train[1].texts[0], "A dull \"film\"");  // TSV: quotes are text
  EXPECT_EQ(train[1].label, 0);
  EXPECT_EQ(task->eval_splits(), (std::vector<std::string>{"dev"}));
  EXPECT_EQ(task->headline_metric(), "accuracy");
}

TEST(TaskFile, CsvWithQuotedTextAndAHeaderAndTwoTexts) {
  TempDir dir;
  write_file(dir / "d.csv", "id,premise,hypothesis,gold\n1,\"A man, smiling.\",\"He is \"\"happy\"\"\",yes\n"
                            "2,\"Two\nlines\",None,no\n");
  write_file(dir / "nli.yaml", "task: my_nli\nversion: 3\noutput_type: classification\nformat: csv\n"
                               "splits: {dev: d.csv}\ndoc_to_text: [\"{{premise}}\", \"Hypothesis: {{hypothesis}}\"]\n"
                               "doc_to_target: \"{{gold}}\"\nlabels: [no, yes]\nmetrics: [accuracy, f1]\n"
                               "id_field: id\n");
  auto task = task_from(dir / "nli.yaml");
  EXPECT_EQ(task->version(), 3);
  auto dev = task->load("dev");
  ASSERT_EQ(dev.size(), 2u);
  EXPECT_EQ(dev[0].texts, (std::vector<std::string>{"A man, smiling.", "Hypothesis: He is \"happy\""}));
  EXPECT_EQ(dev[0].label, 1);
  EXPECT_EQ(dev[0].id, "1");
  EXPECT_EQ(dev[1].texts[0], "Two\nlines");
  EXPECT_EQ(dev[1].line, 3);
  EXPECT_EQ(task->metrics("dev").size(), 2u);
  EXPECT_EQ(task->eval_splits(), (std::vector<std::string>{"dev"}));
}

TEST(TaskFile, JsonlWithNestedFieldsMultipleChoice) {
  TempDir dir;
  write_file(dir / "dev.jsonl",
             "{\"q\": {\"text\": \"Sky?\"}, \"choices\": {\"label\": [\"A\", \"B\"], \"text\": [\"blue\", \"green\"]}, "
             "\"answerKey\": \"A\"}\n"
             "{\"q\": {\"text\": \"Grass?\"}, \"choices\": {\"label\": [\"A\", \"B\"], \"text\": [\"blue\", \"green\"]}, "
             "\"answerKey\": \"B\"}\n");
  write_file(dir / "mc.yaml", "task: colours\noutput_type: multiple_choice\nformat: jsonl\nsplits: {dev: dev.jsonl}\n"
                              "doc_to_text: \"Question: {{q.text}}\\nAnswer:\"\ndoc_to_choice: \"{{choices.text}}\"\n"
                              "choice_labels: \"{{choices.label}}\"\ndoc_to_target: \"{{answerKey}}\"\n");
  auto task = task_from(dir / "mc.yaml");
  EXPECT_EQ(task->kind(), TaskKind::Generation);
  EXPECT_EQ(task->headline_metric(), "acc");
  auto dev = task->load("dev");
  ASSERT_EQ(dev.size(), 2u);
  EXPECT_EQ(dev[0].instruction, "Question: Sky?\nAnswer:");
  EXPECT_EQ(dev[0].texts, (std::vector<std::string>{"blue", "green"}));
  EXPECT_EQ(dev[0].label, 0);
  EXPECT_EQ(dev[1].label, 1);

  // lm-evaluation-harness' pairing: context "Question: Sky?\nAnswer:", continuation " blue"; the continuation's
  // tokens are those of the joint text after the context's own tokens.
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  const auto& answers = dynamic_cast<const TextAnswerTask&>(*task);
  EXPECT_TRUE(answers.reports_acc_norm());
  auto candidates = answers.candidates(dev[0], tokenizer);
  ASSERT_EQ(candidates.size(), 2u);
  const std::vector<int> context = tokenizer.encode("Question: Sky?\nAnswer:");
  const std::vector<int> whole = tokenizer.encode("Question: Sky?\nAnswer: green");
  std::vector<int32_t> expected = {int32_t(tokenizer.bos_id())};
  expected.insert(expected.end(), context.begin(), context.end());
  expected.insert(expected.end(), whole.begin() + long(context.size()), whole.end());
  EXPECT_EQ(candidates[1].input_ids, expected);
  EXPECT_EQ(candidates[1].continuation_start, int64_t(context.size()) + 1);
  EXPECT_EQ(candidates[1].continuation_chars, 5);  // "green"
  EXPECT_EQ(candidates[1].answer_index, 1);
}

TEST(TaskFile, TrailingSpaceOfTheContextMovesToTheContinuation) {
  TempDir dir;
  write_file(dir / "d.json", R"([{"ctx": "It is ", "a": "red", "b": "blue", "y": 1}])");
  write_file(dir / "t.yaml", "task: t\noutput_type: multiple_choice\nformat: json\nsplits: {dev: d.json}\n"
                             "doc_to_text: \"{{ctx}}\"\ndoc_to_choice: [\"{{a}}\", \"{{b}}\"]\ndoc_to_target: \"{{y}}\"\n"
                             "target_delimiter: \"\"\n");
  auto task = task_from(dir / "t.yaml");
  auto dev = task->load("dev");
  EXPECT_EQ(dev[0].label, 1);
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto c = dynamic_cast<const TextAnswerTask&>(*task).candidates(dev[0], tokenizer);
  const std::vector<int> context = tokenizer.encode("It is");
  const std::vector<int> whole = tokenizer.encode("It is blue");
  std::vector<int32_t> expected = {int32_t(tokenizer.bos_id())};
  expected.insert(expected.end(), context.begin(), context.end());
  expected.insert(expected.end(), whole.begin() + long(context.size()), whole.end());
  EXPECT_EQ(c[1].input_ids, expected);
}

TEST(TaskFile, UnknownFieldIsAnErrorAtTheTemplatesLine) {
  TempDir dir;
  write_file(dir / "d.csv", "review,sentiment\ngood,pos\n");
  write_file(dir / "t.yaml", "task: t\noutput_type: classification\nformat: csv\nsplits: {train: d.csv}\n"
                             "doc_to_text: \"{{revew}}\"\ndoc_to_target: \"{{sentiment}}\"\nlabels: [neg, pos]\n");
  auto task = task_from(dir / "t.yaml");
  try {
    task->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "t.yaml").string());
    EXPECT_EQ(e.line(), 5);
    EXPECT_NE(e.problem().find("unknown field 'revew'"), std::string::npos) << e.what();
    EXPECT_NE(e.problem().find("did you mean 'review'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(task->check_files(), InputError);  // `validate` finds it from the header alone

  write_file(dir / "u.yaml", "task: u\noutput_type: clasification\nformat: csv\nsplits: {train: d.csv}\n");
  try {
    task_from(dir / "u.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("did you mean 'classification'"), std::string::npos) << e.what();
  }
  write_file(dir / "v.yaml", "task: v\noutput_type: classification\nformat: csv\nsplits: {train: d.csv}\n"
                             "doc_to_text: \"{{review}}\"\ndoc_to_target: \"{{sentiment}}\"\nlabels: [neg, pos]\n"
                             "colums: [a]\n");
  try {
    task_from(dir / "v.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "v.yaml").string());
    EXPECT_EQ(e.line(), 8);
    EXPECT_NE(e.problem().find("colums"), std::string::npos) << e.what();
  }
  // A label that is not one of `labels`: the data file and its line.
  write_file(dir / "bad.csv", "review,sentiment\ngood,pos\nbad,meh\n");
  write_file(dir / "w.yaml", "task: w\noutput_type: classification\nformat: csv\nsplits: {train: bad.csv}\n"
                             "doc_to_text: \"{{review}}\"\ndoc_to_target: \"{{sentiment}}\"\nlabels: [neg, pos]\n");
  try {
    task_from(dir / "w.yaml")->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "bad.csv").string());
    EXPECT_EQ(e.line(), 3);
  }
}

TEST(TaskFile, SpecEntryNameMustMatchAndOnlyCommonKeysOverride) {
  TempDir dir;
  write_file(dir / "d.csv", "review,sentiment\ngood,pos\n");
  write_file(dir / "t.yaml", "task: mine\noutput_type: classification\nformat: csv\nsplits: {train: d.csv}\n"
                             "doc_to_text: \"{{review}}\"\ndoc_to_target: \"{{sentiment}}\"\nlabels: [neg, pos]\n"
                             "max_seq_len: 40\n");
  EXPECT_EQ(task_from(dir / "t.yaml")->max_seq_len(), 40);
  EXPECT_EQ(task_from(dir / "t.yaml", "{max_seq_len: 24}")->max_seq_len(), 24);  // the spec wins
  EXPECT_THROW(task_from(dir / "t.yaml", "{name: other}"), InputError);
  EXPECT_THROW(task_from(dir / "t.yaml", "{columns: [a, b]}"), InputError);  // not a spec-side option
}

// Any change to the task file (here `columns`) or the spec's options is a new cache key: the split is tokenised
// again. The same for `custom` tasks (every option as written is in the key).
TEST(TaskFile, ChangedColumnsRetokenise) {
  TempDir dir;
  write_file(dir / "train.tsv", "pos\tgood\tx\nneg\tbad\ty\n");
  const std::string head = "task: t\noutput_type: classification\nformat: tsv\nheader: false\n";
  const std::string tail = "splits: {train: train.tsv}\ndoc_to_text: \"{{text}}\"\ndoc_to_target: \"{{label}}\"\n"
                           "labels: [neg, pos]\n";
  write_file(dir / "t.yaml", head + "columns: [label, text, note]\n" + tail);
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  const fs::path cache = dir / "cache";
  bool hit = true;
  tokenized_split(*task_from(dir / "t.yaml"), "train", tokenizer, cache, &hit);
  EXPECT_FALSE(hit);
  tokenized_split(*task_from(dir / "t.yaml"), "train", tokenizer, cache, &hit);
  EXPECT_TRUE(hit);
  write_file(dir / "t.yaml", head + "columns: [label, text, comment]\n" + tail);
  tokenized_split(*task_from(dir / "t.yaml"), "train", tokenizer, cache, &hit);
  EXPECT_FALSE(hit);
  tokenized_split(*task_from(dir / "t.yaml", "{max_train_examples: 1}"), "train", tokenizer, cache, &hit);
  EXPECT_FALSE(hit);

  const std::string custom = "{name: custom, format: tsv, train: '" + (dir / "train.tsv").string() +
                             "', header: false, text_fields: [text], label_field: label, labels: [neg, pos], ";
  tokenized_split(*make_task_from_yaml(custom + "columns: [label, text, note]}"), "train", tokenizer, cache, &hit);
  EXPECT_FALSE(hit);
  tokenized_split(*make_task_from_yaml(custom + "columns: [label, text, comment]}"), "train", tokenizer, cache, &hit);
  EXPECT_FALSE(hit);
}

// A rolling_loglikelihood task over one text file makes exactly the blocks the lm task makes of it.
TEST(TaskFile, RollingLoglikelihoodBlocksEqualTheLmTasks) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Once upon a time there was a little dog named " + std::to_string(i) + ".\n";
  write_file(dir / "c.txt", text);
  write_file(dir / "r.yaml", "task: corpus\noutput_type: rolling_loglikelihood\nformat: text\n"
                             "splits: {train: c.txt, dev: c.txt}\nmax_seq_len: 32\n");
  auto rolling = task_from(dir / "r.yaml");
  EXPECT_EQ(rolling->kind(), TaskKind::CausalLM);
  EXPECT_EQ(rolling->headline_metric(), "perplexity");
  for (const auto& m : rolling->metrics("dev")) EXPECT_FALSE(m.higher_is_better) << m.name;
  auto lm = make_task_from_yaml("{name: lm, train_file: '" + (dir / "c.txt").string() + "', eval_file: '" +
                                (dir / "c.txt").string() + "', block_size: 32}");
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto a = rolling->tokenize("dev", rolling->load("dev"), tokenizer);
  auto b = lm->tokenize("dev", lm->load("dev"), tokenizer);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].input_ids, b[i].input_ids) << i;
    EXPECT_EQ(a[i].labels, b[i].labels) << i;
    EXPECT_EQ(a[i].byte_count, b[i].byte_count) << i;
  }
  std::vector<double> nll(a.size(), 2.0);
  EXPECT_EQ(rolling->score("dev", a, nll), lm->score("dev", b, nll));
}

TEST(TaskFile, GenerateCutsAtStopSequencesAndExtractsByRegex) {
  TempDir dir;
  write_file(dir / "d.jsonl", "{\"q\": \"2+2\", \"a\": 4}\n");
  write_file(dir / "g.yaml", "task: sums\noutput_type: generate\nformat: jsonl\nsplits: {dev: d.jsonl}\n"
                             "doc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: \"{{a}}\"\nuntil: [\"\\n\", \"Q:\"]\n"
                             "answer_regex: \"(-?[0-9]+)\"\nmax_new_tokens: 8\n");
  auto task = task_from(dir / "g.yaml");
  EXPECT_EQ(task->kind(), TaskKind::Generation);
  EXPECT_EQ(task->headline_metric(), "exact_match");
  auto dev = task->load("dev");
  ASSERT_EQ(dev.size(), 1u);
  EXPECT_EQ(dev[0].instruction, "Q: 2+2\nA:");
  EXPECT_EQ(dev[0].answer, "4");
  const auto& answers = dynamic_cast<const TextAnswerTask&>(*task);
  EXPECT_EQ(answers.protocol(), EvalProtocol::Generate);
  EXPECT_EQ(answers.max_new_tokens(), 8);
  EXPECT_EQ(answers.prediction_from_reply(dev[0], " 4 apples"), 1);
  EXPECT_EQ(answers.prediction_from_reply(dev[0], " it is 5\n4"), 0);    // cut at the newline first
  EXPECT_EQ(answers.prediction_from_reply(dev[0], " four Q: 4"), -1);     // cut at "Q:": no number left
  EXPECT_EQ(answers.prediction_from_reply(dev[0], "-4"), 0);
  std::vector<TokenizedExample> scored(3);
  for (auto& t : scored) t.class_label = 1;
  auto metrics = task->score("dev", scored, {1, 0, -1});
  EXPECT_DOUBLE_EQ(metrics.at("exact_match"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(metrics.at("no_match_rate"), 1.0 / 3);
  for (const auto& m : task->metrics("dev")) EXPECT_EQ(m.higher_is_better, m.name == "exact_match") << m.name;
}

TEST(ShippedTasks, GlueTasksAreTaskFilesAndListTheirSource) {
  for (const char* name : {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}) {
    EXPECT_EQ(task_source(name), std::string("tasks/") + name + ".yaml");
    auto task = make_task_from_yaml(std::string("{name: ") + name + "}");
    EXPECT_EQ(task->source(), std::string("tasks/") + name + ".yaml");
    EXPECT_EQ(task->source_sha256().size(), 64u);
  }
  EXPECT_EQ(task_source("lm"), "tasks/lm.cpp");
  EXPECT_EQ(task_source("boolq"), "tasks/commonsense.cpp");
  EXPECT_EQ(task_source("custom"), "tasks/custom.cpp");
  for (const auto& name : task_names()) EXPECT_FALSE(task_source(name).empty()) << name;
}


// Record processors and multiple_inputs: their mistakes name the task file's line or the data file's.
TEST(TaskFile, RecordProcessorAndMultipleInputsErrorsNameTheirLine) {
  TempDir dir;
  write_file(dir / "w.jsonl", "{\"sentence\": \"A _ b.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"1\"}\n"
                              "{\"sentence\": \"No blank.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"2\"}\n");
  const std::string head = "task: w\noutput_type: multiple_choice\nformat: jsonl\nsplits: {dev: w.jsonl}\n";
  const std::string body = "multiple_inputs: true\ndoc_to_choice: \"{{contexts}}\"\n"
                           "doc_to_continuation: \"{{continuation}}\"\ndoc_to_target: \"{{gold}}\"\n";
  write_file(dir / "unknown.yaml", head + "process_docs: winogrand\n" + body);
  try {
    task_from(dir / "unknown.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 5);
    EXPECT_NE(e.problem().find("winogrande"), std::string::npos) << e.what();  // the suggestion
  }
  write_file(dir / "both.yaml", head + "process_docs: winogrande\n" + body + "doc_to_text: \"{{sentence}}\"\n");
  try {
    task_from(dir / "both.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 10);
    EXPECT_NE(e.problem().find("multiple_inputs"), std::string::npos) << e.what();
  }
  write_file(dir / "w.yaml", head + "process_docs: winogrande\n" + body);
  try {
    task_from(dir / "w.yaml")->load("dev");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "w.jsonl").string());
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("no blank"), std::string::npos) << e.what();
  }
}
}  // namespace
}  // namespace peftlab
