#include "tasks/commonsense.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/tokenizer.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

// Record counts of LLM-Adapters' test sets (`len(json.load(...))` of each file).
TEST(CommonsenseTask, AllEightTestSetsLoadWithExactCounts) {
  auto task = make_task_from_yaml("{name: commonsense}");
  const std::map<std::string, size_t> expected = {
      {"boolq", 3270},    {"piqa", 1838},     {"social_i_qa", 1954},   {"hellaswag", 10042},
      {"winogrande", 1267}, {"ARC-Easy", 2376}, {"ARC-Challenge", 1172}, {"openbookqa", 500}};
  ASSERT_EQ(task->eval_splits(), commonsense_sets());
  for (const auto& [set, count] : expected) {
    auto examples = task->load(set);
    EXPECT_EQ(examples.size(), count) << set;
    EXPECT_EQ(examples[0].set, set);
  }
}

TEST(CommonsenseTask, TrainSetsAndGoldIndices) {
  auto task = make_task_from_yaml("{name: commonsense, train_sets: [boolq, openbookqa], eval_sets: [ARC-Challenge]}");
  // 9,427 + 4,957 records (len(json.load(...)) of the two train files).
  EXPECT_EQ(task->load("train").size(), 9427u + 4957u);
  auto arc = task->load("ARC-Challenge");
  // The first record's answer is "answer3" (see the file): index 2 of answer1..answer5.
  EXPECT_EQ(arc[0].answer, "answer3");
  EXPECT_EQ(arc[0].label, 2);
  EXPECT_EQ(task->splits(), (std::vector<std::string>{"train", "ARC-Challenge"}));
}

// Expected strings: the generate_prompt functions of LLM-Adapters' finetune.py and commonsense_evaluate.py (as
// NVlabs/DoRA's commonsense_reasoning/ ships them) run by python3 on these records, printed with json.dumps.
TEST(CommonsensePrompts, MatchLlmAdaptersCharacterForCharacter) {
  CommonsenseRecord r{"Q?\n\nAnswer format: true/false", "", "the correct answer is true", "true"};
  CommonsenseRecord with_input{"Add.", "2 3", "5", ""};
  EXPECT_EQ(format_train_prompt(r),
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.  "
            "\n\n                ### Instruction:\n                Q?\n\nAnswer format: true/false\n                \n   "
            "             ### Response:\n                the correct answer is true");
  EXPECT_EQ(format_train_prompt(with_input),
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
            "response that appropriately completes the request. \n\n                ### Instruction:\n                "
            "Add.\n                \n                ### Input:\n                2 3\n                \n              "
            "  ### Response:\n                5");
  EXPECT_EQ(format_eval_prompt(r),
            "Below is an instruction that describes a task. Write a response that appropriately completes the request. "
            "\n\n                ### Instruction:\n                Q?\n\nAnswer format: true/false\n\n                "
            "### Response:\n                ");
  EXPECT_EQ(format_eval_prompt(with_input),
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
            "response that appropriately completes the request.\n\n                ### Instruction:\n                "
            "Add.\n\n                ### Input:\n                2 3\n\n                ### Response:\n                ");
}

TEST(CommonsenseAnswers, ExtractionFollowsTheRegexes) {
  EXPECT_EQ(extract_answer("boolq", "the correct answer is false"), "false");
  EXPECT_EQ(extract_answer("boolq", "it is true, not false"), "true");  // leftmost match
  EXPECT_EQ(extract_answer("boolq", "True"), std::nullopt);             // case-sensitive, as re.findall
  EXPECT_EQ(extract_answer("piqa", "solution2 is better than solution1"), "solution2");
  EXPECT_EQ(extract_answer("ARC-Easy", "the correct answer is answer5"), "answer5");
  EXPECT_EQ(extract_answer("social_i_qa", "answer10"), "answer1");  // the pattern has no word boundary
  EXPECT_EQ(extract_answer("hellaswag", "ending3"), "ending3");
  EXPECT_EQ(extract_answer("hellaswag", "answer3"), std::nullopt);
  EXPECT_EQ(extract_answer("winogrande", "option2"), "option2");
  EXPECT_THROW(extract_answer("boolqq", "true"), InputError);
  EXPECT_EQ(response_text("prompt ### Response:\n   the correct answer is true  \n"), "the correct answer is true");
  EXPECT_EQ(response_text("a ### Response: x ### Response: y"), "y");
}

TEST(CommonsenseAnswers, PredictionsAndScore) {
  auto task = make_task_from_yaml("{name: boolq}");
  auto& cs = dynamic_cast<CommonsenseTask&>(*task);
  EXPECT_EQ(cs.prediction_from_reply("boolq", "the correct answer is false"), 1.0);
  EXPECT_EQ(cs.prediction_from_reply("boolq", "I do not know"), -1.0);
  std::vector<TokenizedExample> examples(4);
  for (int i = 0; i < 4; ++i) examples[size_t(i)].class_label = i % 2;  // gold: true false true false
  auto s = task->score("boolq", examples, {0, -1, 1, 1});
  EXPECT_DOUBLE_EQ(s.at("accuracy"), 0.5);        // examples 0 and 3 right; the no-match counts wrong
  EXPECT_DOUBLE_EQ(s.at("no_match_rate"), 0.25);
  auto summary = task->summarize({{"boolq", s}});
  EXPECT_DOUBLE_EQ(summary.at("accuracy"), 0.5);
  auto two = task->summarize({{"boolq", {{"accuracy", 0.5}, {"no_match_rate", 0.25}}},
                              {"piqa", {{"accuracy", 0.75}, {"no_match_rate", 0.0}}}});
  EXPECT_DOUBLE_EQ(two.at("accuracy"), 0.5);  // boolq only: piqa is not one of this task's sets
  auto all = make_task_from_yaml("{name: commonsense, eval_sets: [boolq, piqa]}");
  EXPECT_EQ(all->headline_split(), "average");
  auto mean = all->summarize({{"boolq", {{"accuracy", 0.5}, {"no_match_rate", 0.25}}},
                              {"piqa", {{"accuracy", 0.75}, {"no_match_rate", 0.0}}}});
  EXPECT_DOUBLE_EQ(mean.at("accuracy"), 0.625);
  EXPECT_DOUBLE_EQ(mean.at("no_match_rate"), 0.125);
  EXPECT_DOUBLE_EQ(mean.at("sets"), 2);
}

TEST(CommonsenseTokens, ResponseOnlyLossAndEos) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  CommonsenseRecord r{"Is the sky blue?\n\nAnswer format: true/false", "", "the correct answer is true", "true"};
  TokenizedExample all = tokenize_train_record(r, tokenizer, 256, /*train_on_inputs=*/true);
  TokenizedExample response = tokenize_train_record(r, tokenizer, 256, /*train_on_inputs=*/false);
  std::vector<int> full = tokenizer.encode(format_train_prompt(r), true);
  full.push_back(tokenizer.eos_id());
  EXPECT_EQ(all.input_ids, std::vector<int32_t>(full.begin(), full.end()));
  EXPECT_EQ(all.labels, all.input_ids);
  EXPECT_EQ(response.input_ids, all.input_ids);
  CommonsenseRecord prompt_only = r;
  prompt_only.output.clear();
  size_t prompt_len = tokenizer.encode(format_train_prompt(prompt_only), true).size();
  ASSERT_LT(prompt_len, response.labels.size());
  for (size_t i = 0; i < response.labels.size(); ++i)
    EXPECT_EQ(response.labels[i], i < prompt_len ? kIgnoreIndex : response.input_ids[i]) << i;
  EXPECT_EQ(response.labels.back(), tokenizer.eos_id());
  // Cut at cutoff_len: no EOS appended (finetune.py appends it only when the text is shorter).
  TokenizedExample cut = tokenize_train_record(r, tokenizer, 20, true);
  EXPECT_EQ(cut.input_ids.size(), 20u);
  EXPECT_EQ(cut.input_ids, std::vector<int32_t>(full.begin(), full.begin() + 20));
}

TEST(CommonsenseTokens, EvalPromptsAndCandidates) {
  SentencePieceTokenizer tokenizer(testing::stories260k_tokenizer());
  auto task = make_task_from_yaml("{name: commonsense, eval_sets: [ARC-Easy], max_eval_examples: 3}");
  auto& cs = dynamic_cast<CommonsenseTask&>(*task);
  auto examples = task->load("ARC-Easy");
  auto tokens = task->tokenize("ARC-Easy", examples, tokenizer);
  ASSERT_EQ(tokens.size(), 3u);
  std::vector<int> prompt = tokenizer.encode(format_eval_prompt({examples[0].instruction, "", "", ""}), true);
  EXPECT_EQ(tokens[0].input_ids, std::vector<int32_t>(prompt.begin(), prompt.end()));
  EXPECT_EQ(tokens[0].class_label, examples[0].label);
  auto candidates = cs.candidates(examples[0], tokenizer);
  ASSERT_EQ(candidates.size(), 4u);  // "Answer format: answer1/answer2/answer3/answer4"
  for (size_t k = 0; k < candidates.size(); ++k) {
    EXPECT_EQ(candidates[k].answer_index, int64_t(k));
    const auto& c = candidates[k];
    std::vector<int32_t> continuation(c.input_ids.begin() + c.continuation_start, c.input_ids.end());
    std::string text = tokenizer.decode(std::vector<int>(continuation.begin(), continuation.end()));
    EXPECT_NE(text.find("answer" + std::to_string(k + 1)), std::string::npos) << text;
  }
}

TEST(CommonsenseTask, OptionErrors) {
  try {
    make_task_from_yaml("name: commonsense\neval_sets: [boolq, hellaswagg]\n", "spec.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("did you mean 'hellaswag'"), std::string::npos);
  }
  EXPECT_THROW(make_task_from_yaml("{name: commonsense, protocol: sample}"), InputError);
  EXPECT_THROW(make_task_from_yaml("{name: commonsense, train_sets: [boolq], train_files: [x.json]}"), InputError);
  auto both = make_task_from_yaml("{name: commonsense, protocol: both, num_beams: 4, train_on_inputs: false}");
  EXPECT_EQ(dynamic_cast<CommonsenseTask&>(*both).protocol(), EvalProtocol::Both);
}

TEST(CommonsenseTask, TrainFilesAndBadRecords) {
  TempDir dir;
  write_file(dir / "mixed.json",
             "[{\"instruction\": \"Q1\", \"input\": \"\", \"output\": \"the correct answer is true\", \"answer\": \"true\"},\n"
             " {\"instruction\": \"Q2\", \"input\": \"\", \"answer\": \"false\"}]");
  auto task = make_task_from_yaml("{name: commonsense, train_files: [" + (dir / "mixed.json").string() + "]}");
  try {
    task->load("train");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(e.problem().find("no field 'output'"), std::string::npos);
  }
}

}  // namespace
}  // namespace peftlab
