#include "tasks/glue.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/tokenizer.h"
#include "tasks/classification.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

size_t rows(const std::string& task, const std::string& split) {
  return make_task_from_yaml("{name: " + task + "}")->load(split).size();
}

std::vector<int64_t> label_counts(const std::vector<Example>& examples, size_t classes) {
  std::vector<int64_t> counts(classes, 0);
  for (const auto& e : examples) counts.at(size_t(e.label)) += 1;
  return counts;
}

// Row counts of the real files: test splits from `wc -l` minus the header.
TEST(GlueTasks, RealFilesLoadWithExactRowCounts) {
  EXPECT_EQ(rows("sst2", "train"), 67349u);
  EXPECT_EQ(rows("sst2", "dev"), 872u);
  EXPECT_EQ(rows("cola", "train"), 8551u);
  EXPECT_EQ(rows("cola", "dev"), 1043u);
  EXPECT_EQ(rows("mrpc", "train"), 3668u);
  EXPECT_EQ(rows("mrpc", "dev"), 408u);
  EXPECT_EQ(rows("rte", "train"), 2490u);
  EXPECT_EQ(rows("rte", "dev"), 277u);
  EXPECT_EQ(rows("stsb", "train"), 5749u);
  EXPECT_EQ(rows("stsb", "dev"), 1500u);
  EXPECT_EQ(rows("wnli", "dev"), 71u);
  EXPECT_EQ(rows("qnli", "dev"), 5463u);
  EXPECT_EQ(rows("cola", "test"), 1063u);
  EXPECT_EQ(rows("mrpc", "test"), 1725u);
  EXPECT_EQ(rows("rte", "test"), 3000u);
  EXPECT_EQ(rows("sst2", "test"), 1821u);
  EXPECT_EQ(rows("stsb", "test"), 1379u);
  EXPECT_EQ(rows("wnli", "test"), 146u);
}

// Label distributions counted with awk over the label column (e.g. `awk -F'\t' '{print $2}' CoLA/dev.tsv |
// sort | uniq -c`), so a wrong column or label mapping shows.
TEST(GlueTasks, RealDevLabelsAndTexts) {
  auto sst2 = make_task_from_yaml("{name: sst2}");
  auto dev = sst2->load("dev");
  EXPECT_EQ(label_counts(dev, 2), (std::vector<int64_t>{428, 444}));
  EXPECT_EQ(dev[0].texts, (std::vector<std::string>{"it 's a charming and often affecting journey . "}));
  EXPECT_EQ(dev[0].label, 1);
  EXPECT_EQ(dev[0].line, 2);

  auto cola = make_task_from_yaml("{name: cola}")->load("dev");
  EXPECT_EQ(label_counts(cola, 2), (std::vector<int64_t>{322, 721}));
  EXPECT_EQ(cola.back().texts[0], "John talked to Bill about himself.");

  auto mrpc = make_task_from_yaml("{name: mrpc}")->load("dev");
  EXPECT_EQ(label_counts(mrpc, 2), (std::vector<int64_t>{129, 279}));
  ASSERT_EQ(mrpc[0].texts.size(), 2u);
  // Quotes are text: this sentence starts with a quote that is never closed.
  EXPECT_EQ(mrpc[0].texts[1], "\"The foodservice pie business does not fit our long-term growth strategy.");

  EXPECT_EQ(label_counts(make_task_from_yaml("{name: rte}")->load("dev"), 2), (std::vector<int64_t>{146, 131}));
  EXPECT_EQ(label_counts(make_task_from_yaml("{name: wnli}")->load("dev"), 2), (std::vector<int64_t>{40, 31}));
  EXPECT_EQ(label_counts(make_task_from_yaml("{name: qnli}")->load("dev"), 2), (std::vector<int64_t>{2702, 2761}));

  auto stsb = make_task_from_yaml("{name: stsb}")->load("dev");
  double sum = 0;
  for (const auto& e : stsb) sum += e.target;
  EXPECT_NEAR(sum, 3545.8613333333, 1e-6);  // awk -F'\t' 'NR>1{s+=$10} END{printf "%.10f", s}'
  EXPECT_EQ(stsb[0].texts[0], "A man with a hard hat is dancing.");
}

TEST(GlueTasks, TestSplitsAreUnlabelledWithIds) {
  auto test = make_task_from_yaml("{name: sst2}")->load("test");
  EXPECT_EQ(test[0].label, -1);
  EXPECT_EQ(test[0].id, "0");
  EXPECT_EQ(test[1].texts[0].substr(0, 19), "this film 's relati");
}

TEST(GlueTasks, KindsMetricsAndHeadlines) {
  auto cola = make_task_from_yaml("{name: cola}");
  EXPECT_EQ(cola->kind(), TaskKind::Classification);
  EXPECT_EQ(cola->headline_metric(), "matthews");
  auto stsb = make_task_from_yaml("{name: stsb}");
  EXPECT_EQ(stsb->kind(), TaskKind::Regression);
  EXPECT_EQ(stsb->label_kind(), LabelKind::Target);
  EXPECT_EQ(stsb->metrics("dev").size(), 2u);
  auto mnli = make_task_from_yaml("{name: mnli}");
  EXPECT_EQ(mnli->eval_splits(), (std::vector<std::string>{"dev_matched", "dev_mismatched"}));
  EXPECT_EQ(mnli->headline_split(), "dev_matched");
  EXPECT_EQ(mnli->num_labels(), 3);
}

TEST(GlueTasks, ScoreUsesTheOfficialMetrics) {
  auto mrpc = make_task_from_yaml("{name: mrpc}");
  std::vector<TokenizedExample> examples(4);
  std::vector<int64_t> gold = {1, 0, 1, 1};
  for (size_t i = 0; i < 4; ++i) examples[i].class_label = gold[i];
  auto s = mrpc->score("dev", examples, {1, 1, 0, 1});
  EXPECT_DOUBLE_EQ(s.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(s.at("f1"), 2.0 * 2 / (2 * 2 + 1 + 1));  // TP=2, FP=1, FN=1
}

// QQP is not in the shared data: a small file in its real layout (GLUE's QQP/train.tsv header).
TEST(GlueTasks, QqpLoaderOnItsLayout) {
  TempDir dir;
  write_file(dir / "train.tsv",
             "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
             "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0\n"
             "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n");
  write_file(dir / "test.tsv", "id\tquestion1\tquestion2\n0\tWhy \"quotes\"?\tWhy not?\n");
  auto qqp = make_task_from_yaml("{name: qqp, data_dir: " + dir.path().string() + "}");
  auto train = qqp->load("train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[1].label, 1);
  EXPECT_EQ(train[1].texts[1], "How do you control your horniness?");
  EXPECT_EQ(train[0].id, "133273");
  auto test = qqp->load("test");
  EXPECT_EQ(test[0].texts[0], "Why \"quotes\"?");
  EXPECT_EQ(test[0].label, -1);
  EXPECT_THROW(qqp->load("dev"), InputError);  // dev.tsv not written: the error names the file
}

// MNLI: GLUE's column layout (train has label1 only, dev label1..label5; gold_label last).
TEST(GlueTasks, MnliLoaderOnItsLayout) {
  TempDir dir;
  const std::string head = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                           "sentence1_parse\tsentence2_parse\tsentence1\tsentence2";
  write_file(dir / "train.tsv", head + "\tlabel1\tgold_label\n" +
                                    "0\t31193\t31193n\tgovernment\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tConceptually cream "
                                    "skimming has two basic dimensions.\tProduct and geography are what make cream "
                                    "skimming work. \tneutral\tneutral\n");
  write_file(dir / "dev_matched.tsv",
             head + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
                 "0\t63735\t63735n\tslate\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe new rights are nice enough\tEveryone "
                 "really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n" +
                 "1\t91383\t91383c\tgovernment\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThis site includes a list.\tThe "
                 "Government Executive articles housed on the website are not able to be searched .\tcontradiction\t"
                 "contradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\n");
  write_file(dir / "dev_mismatched.tsv", head + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
                                             "0\t75290\t75290c\tletters\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tYour "
                                             "contribution helped.\tYour contribution did not help.\tcontradiction\t"
                                             "contradiction\tcontradiction\tcontradiction\tcontradiction\tentailment\n");
  write_file(dir / "test_matched.tsv", head + "\n0\t31493\t31493\ttravel\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tHierbas."
                                              "\tHierbas is a name.\n");
  auto mnli = make_task_from_yaml("{name: mnli, data_dir: " + dir.path().string() + "}");
  auto train = mnli->load("train");
  ASSERT_EQ(train.size(), 1u);
  EXPECT_EQ(train[0].label, 1);  // neutral: entailment 0, neutral 1, contradiction 2
  EXPECT_EQ(train[0].texts[0], "Conceptually cream skimming has two basic dimensions.");
  auto matched = mnli->load("dev_matched");
  ASSERT_EQ(matched.size(), 2u);
  EXPECT_EQ(matched[0].label, 1);
  EXPECT_EQ(matched[1].label, 2);
  EXPECT_EQ(mnli->load("dev_mismatched")[0].label, 0);  // gold_label, not label1
  EXPECT_EQ(mnli->load("test_matched")[0].texts[1], "Hierbas is a name.");
  EXPECT_EQ(glue_submission_file_name("mnli", "test_mismatched"), "MNLI-mm.tsv");
}

TEST(GlueTasks, BadLabelAndBadScoreNameFileAndLine) {
  TempDir dir;
  write_file(dir / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n");
  write_file(dir / "train.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                                "0\tg\tf\ty\to\ts\ts\ta\tb\tfour\n");
  try {
    make_task_from_yaml("{name: rte, data_dir: " + dir.path().string() + "}")->load("dev");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "dev.tsv").string());
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(e.problem().find("unknown label 'maybe'"), std::string::npos);
  }
  try {
    make_task_from_yaml("{name: stsb, data_dir: " + dir.path().string() + "}")->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
  }
}

TEST(GlueTasks, MaxExamplesAndUnknownSplit) {
  auto task = make_task_from_yaml("{name: sst2, max_train_examples: 100, max_eval_examples: 10}");
  EXPECT_EQ(task->load("train").size(), 100u);
  EXPECT_EQ(task->load("dev").size(), 10u);
  try {
    task->load("validation");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(e.problem().find("unknown split 'validation'"), std::string::npos);
  }
}

TEST(GlueTasks, SubmissionLayout) {
  TempDir dir;
  auto rte = make_task_from_yaml("{name: rte}");
  std::vector<Example> examples(3);
  examples[0].id = "0", examples[1].id = "1", examples[2].id = "2";
  write_glue_submission(dir / "RTE.tsv", *rte, examples, {1, 0, 1});
  EXPECT_EQ(testing::read_file(dir / "RTE.tsv"),
            "index\tprediction\n0\tnot_entailment\n1\tentailment\n2\tnot_entailment\n");
  auto stsb = make_task_from_yaml("{name: stsb}");
  write_glue_submission(dir / "STS-B.tsv", *stsb, std::vector<Example>(examples.begin(), examples.begin() + 2),
                        {4.25, 0.1});
  EXPECT_EQ(testing::read_file(dir / "STS-B.tsv"), "index\tprediction\n0\t4.250\n1\t0.100\n");
  EXPECT_EQ(glue_submission_file_name("sst2", "test"), "SST-2.tsv");
  EXPECT_THROW(write_glue_submission(dir / "x.tsv", *rte, examples, {1, 0, 7}), std::invalid_argument);
}

TEST(Classification, LongestFirstTruncationKeepsTheShortSegment) {
  // 1 (BOS) + 6 + 1 (separator) + 2 = 10 > 8: two tokens come off the long first segment.
  auto ids = join_and_truncate({{10, 11, 12, 13, 14, 15}, {20, 21}}, {99}, 1, 8);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 10, 11, 12, 13, 99, 20, 21}));
  auto single = join_and_truncate({{5, 6, 7}}, {99}, 1, 3);
  EXPECT_EQ(single, (std::vector<int32_t>{1, 5, 6}));
}

TEST(Classification, TokenizesRealExamplesWithBosAndLimit) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto rte = make_task_from_yaml("{name: rte, max_seq_len: 64, max_eval_examples: 5}");
  auto examples = rte->load("dev");
  auto tokens = rte->tokenize("dev", examples, tokenizer);
  ASSERT_EQ(tokens.size(), 5u);
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_EQ(tokens[i].input_ids.front(), tokenizer.bos_id());
    EXPECT_LE(tokens[i].input_ids.size(), 64u);
    EXPECT_EQ(tokens[i].class_label, examples[i].label);
    EXPECT_EQ(tokens[i].example_index, int64_t(i));
  }
  // Example 0's premise is long and its hypothesis ("Christopher Reeve had an accident.") short: the premise
  // is cut, the hypothesis survives whole at the end.
  std::vector<int> premise = tokenizer.encode(examples[0].texts[0]), hyp = tokenizer.encode(examples[0].texts[1]);
  ASSERT_GT(premise.size() + hyp.size() + 2, 64u);
  ASSERT_LT(hyp.size(), 30u);
  EXPECT_EQ(tokens[0].input_ids.size(), 64u);
  std::vector<int> sep = tokenizer.encode("\n");
  ASSERT_FALSE(sep.empty());  // the newline survives tokenisation (byte fallback)
  std::vector<int32_t> expected{tokenizer.bos_id()};
  expected.insert(expected.end(), premise.begin(), premise.begin() + long(64 - 1 - sep.size() - hyp.size()));
  expected.insert(expected.end(), sep.begin(), sep.end());
  expected.insert(expected.end(), hyp.begin(), hyp.end());
  EXPECT_EQ(tokens[0].input_ids, expected);
}

TEST(TaskRegistry, UnknownTaskAndOptionSuggest) {
  try {
    make_task_from_yaml("{name: sst-2}", "spec.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "spec.yaml");
    EXPECT_NE(e.problem().find("did you mean 'sst2'"), std::string::npos);
  }
  try {
    make_task_from_yaml("name: sst2\nmax_seq_lenn: 64\n", "spec.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("did you mean 'max_seq_len'"), std::string::npos);
  }
  auto names = task_names();
  for (const char* n : {"sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "commonsense", "boolq",
                        "lm", "custom"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

TEST(TaskRegistry, ProvenanceHasVersionAndChecksums) {
  auto p = make_task_from_yaml("{name: wnli}")->provenance();
  EXPECT_EQ(p.name, "wnli");
  EXPECT_EQ(p.version, 1);
  ASSERT_EQ(p.files.size(), 3u);
  EXPECT_EQ(p.files[1].split, "dev");
  // From the shared data's SHA256SUMS (sha256sum).
  EXPECT_EQ(p.files[1].sha256, "cba00490596dd14be8cf53b4f53bb744abe3a7b89f81ab210528d80225338ed5");
  auto qnli = make_task_from_yaml("{name: qnli}")->provenance();
  EXPECT_EQ(qnli.files[0].sha256, "missing");  // QNLI train is not in the shared data
}

}  // namespace
}  // namespace peftlab
