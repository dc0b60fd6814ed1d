#include <gtest/gtest.h>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/tokenizer.h"
#include "tasks/task.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(CustomTask, CsvClassificationFromYamlAlone) {
  TempDir dir;
  write_file(dir / "train.csv", "id,review,sentiment\n1,\"Loved it, truly.\",pos\n2,\"Dull \"\"plot\"\"\",neg\n");
  write_file(dir / "dev.csv", "id,review,sentiment\n7,Fine,pos\n");
  write_file(dir / "test.csv", "id,review\n9,Unknown\n");
  auto task = make_task_from_yaml("{name: custom, format: csv, train: " + (dir / "train.csv").string() +
                                  ", dev: " + (dir / "dev.csv").string() + ", test: " + (dir / "test.csv").string() +
                                  ", text_fields: [review], label_field: sentiment, labels: [neg, pos], "
                                  "metrics: [accuracy, f1], id_field: id}");
  EXPECT_EQ(task->kind(), TaskKind::Classification);
  EXPECT_EQ(task->label_names(), (std::vector<std::string>{"neg", "pos"}));
  auto train = task->load("train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[0].texts[0], "Loved it, truly.");
  EXPECT_EQ(train[0].label, 1);
  EXPECT_EQ(train[1].texts[0], "Dull \"plot\"");
  EXPECT_EQ(train[1].id, "2");
  EXPECT_EQ(task->eval_splits(), (std::vector<std::string>{"dev"}));
  EXPECT_EQ(task->load("test")[0].label, -1);
  EXPECT_EQ(task->headline_metric(), "accuracy");
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto tokens = task->tokenize("train", train, tokenizer);
  EXPECT_EQ(tokens[1].class_label, 0);
  std::vector<TokenizedExample> scored(2);
  scored[0].class_label = 1, scored[1].class_label = 0;
  EXPECT_DOUBLE_EQ(task->score("dev", scored, {1, 1}).at("accuracy"), 0.5);
}

TEST(CustomTask, HeaderlessTsvPairRegression) {
  TempDir dir;
  write_file(dir / "dev.tsv", "a cat\ta kitten\t4.5\nsun\tmoon\t1.0\n");
  auto task = make_task_from_yaml("{name: custom, format: tsv, dev: " + (dir / "dev.tsv").string() +
                                  ", header: false, columns: [s1, s2, score], text_fields: [s1, s2], "
                                  "label_field: score, regression: true}");
  EXPECT_EQ(task->kind(), TaskKind::Regression);
  auto dev = task->load("dev");
  ASSERT_EQ(dev.size(), 2u);
  EXPECT_EQ(dev[0].texts, (std::vector<std::string>{"a cat", "a kitten"}));
  EXPECT_DOUBLE_EQ(dev[0].target, 4.5);
  EXPECT_EQ(task->headline_metric(), "pearson");  // regression default: pearson, spearman
  EXPECT_EQ(task->metrics("dev").size(), 2u);
}

TEST(CustomTask, JsonlWithNumericLabels) {
  TempDir dir;
  write_file(dir / "train.jsonl", "{\"text\": \"good\", \"label\": 1}\n{\"text\": \"bad\", \"label\": 0}\n");
  auto task = make_task_from_yaml("{name: custom, format: jsonl, train: " + (dir / "train.jsonl").string() +
                                  ", text_fields: [text], label_field: label, labels: ['0', '1'], metrics: matthews}");
  auto train = task->load("train");
  EXPECT_EQ(train[0].label, 1);
  EXPECT_EQ(train[1].label, 0);
  EXPECT_EQ(task->eval_splits(), (std::vector<std::string>{"train"}));  // no dev: the first split given
}

TEST(CustomTask, ErrorsNameTheSpecOrTheFile) {
  TempDir dir;
  write_file(dir / "train.jsonl", "{\"text\": \"good\", \"label\": \"pos\"}\n{\"txt\": \"bad\", \"label\": \"neg\"}\n");
  const std::string base = "name: custom\nformat: jsonl\ntrain: " + (dir / "train.jsonl").string() + "\n";
  try {
    make_task_from_yaml(base + "text_fields: [text]\nlabel_field: label\nlabels: [neg, pos]\nmetrics: [auroc]\n", "s.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 7);
    EXPECT_NE(e.problem().find("unknown metric 'auroc'"), std::string::npos);
  }
  EXPECT_THROW(make_task_from_yaml(base + "text_fields: [text]\nlabel_field: label\n"), InputError);  // no labels
  EXPECT_THROW(make_task_from_yaml(base + "text_fields: [text]\nlabel_field: label\nlabels: [a]\nregression: true\n"),
               InputError);
  EXPECT_THROW(make_task_from_yaml("{name: custom, format: xml, train: x}"), InputError);
  EXPECT_THROW(make_task_from_yaml("{name: custom, format: tsv, text_fields: [t], label_field: l, labels: [a]}"),
               InputError);  // no file
  auto task = make_task_from_yaml(base + "text_fields: [text]\nlabel_field: label\nlabels: [neg, pos]\n");
  try {
    task->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "train.jsonl").string());
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("no field 'text'"), std::string::npos);
  }
  write_file(dir / "bad.tsv", "text\tlabel\ngood\tpos\nbad\tmeh\n");
  auto tsv = make_task_from_yaml("{name: custom, format: tsv, train: " + (dir / "bad.tsv").string() +
                                 ", text_fields: [text], label_field: label, labels: [neg, pos]}");
  try {
    tsv->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(e.problem().find("unknown label 'meh'"), std::string::npos);
  }
}

}  // namespace
}  // namespace peftlab
