// Commonsense reasoning in the LLM-Adapters record layout ({instruction, input, output, answer}) and with its
// Alpaca-style prompts, copied character for character from LLM-Adapters' finetune.py (training) and
// commonsense_evaluate.py (evaluation), as NVlabs/DoRA's commonsense_reasoning/ uses them. The two wrappers
// differ: the training one has two spaces after "request." (one with an input) and blank lines holding 16
// spaces; the evaluation one has one space after "request." (none with an input) and empty blank lines.
//
// Answers are read from generated text as LLM-Adapters does: the leftmost occurrence of any of the set's
// answer names (boolq true|false, piqa solution1|solution2, social_i_qa/ARC/openbookqa answer1..answer5,
// hellaswag ending1..ending4, winogrande option1|option2), case-sensitive; no occurrence counts as wrong.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace peftlab {

// The eight evaluation sets, in the order of the DoRA paper's table.
const std::vector<std::string>& commonsense_sets();
// The answer names LLM-Adapters' extraction pattern looks for in a set's replies, in pattern order.
const std::vector<std::string>& answer_names(const std::string& set);

struct CommonsenseRecord {
  std::string instruction, input, output, answer;
};

// The training text: prompt wrapper + output (the response the loss is on).
std::string format_train_prompt(const CommonsenseRecord& record);
// The evaluation prompt: the model continues after "### Response:\n" + 16 spaces.
std::string format_eval_prompt(const CommonsenseRecord& record);
// LLM-Adapters' answer extraction: the leftmost answer name of `set` in `generated`, or nullopt.
std::optional<std::string> extract_answer(const std::string& set, const std::string& generated);
// The reply part of a decoded prompt+generation: the text after the last "### Response:", trimmed
// (commonsense_evaluate.py's `split("### Response:")[-1].strip()`).
std::string response_text(const std::string& decoded);

// Options (besides name, max_seq_len = LLM-Adapters' cutoff_len, default 256, max_train_examples,
// max_eval_examples): train_sets (default boolq ARC-Easy ARC-Challenge openbookqa, the train sets available
// here) or train_files (paths, e.g. commonsense_170k.json); eval_sets (default all eight); data_dir
// (default <data root>/commonsense); protocol generate|loglik|both (default generate); train_on_inputs
// (default true, LLM-Adapters' default and what DoRA's scripts ran; false: loss on the response only);
// num_beams (default 1: greedy; LLM-Adapters evaluates with 4); max_new_tokens (default 32).
//
// Splits: "train" (all train files, concatenated in order) and one eval split per set, named by the set.
// Tokenised train examples: BOS + train prompt + EOS (EOS as finetune.py adds it: when the text fits in
// max_seq_len), labels = input_ids, the prompt part -100 unless train_on_inputs. Tokenised eval examples:
// BOS + eval prompt (not truncated), class_label = index of the gold answer in answer_names(set).
class CommonsenseTask : public Task, public TextAnswerTask {
 public:
  CommonsenseTask(const std::string& name, Options& options, std::vector<std::string> default_train_sets,
                  std::vector<std::string> default_eval_sets);

  int version() const override { return 1; }
  TaskKind kind() const override { return TaskKind::Generation; }
  std::vector<std::string> splits() const override;
  std::vector<std::string> eval_splits() const override { return eval_sets_; }
  std::vector<std::filesystem::path> files(const std::string& split) const override;
  std::vector<Example> load(const std::string& split) const override;
  std::vector<TokenizedExample> tokenize(const std::string& split, const std::vector<Example>& examples,
                                         const Tokenizer& tokenizer) const override;
  std::string format_options() const override;
  std::vector<Metric> metrics(const std::string& split) const override;
  std::string headline_metric() const override { return "accuracy"; }
  // With several sets the headline is their mean (split "average"), as the DoRA paper's Avg column.
  std::string headline_split() const override;
  // Each metric's mean over the sets present in by_split (accuracy, no_match_rate, loglik_accuracy), and
  // "sets": how many were averaged.
  std::map<std::string, double> summarize(
      const std::map<std::string, std::map<std::string, double>>& by_split) const override;

  // The prediction value for Task::score from a generated reply: the extracted answer's index in
  // answer_names(set), -1 when none is found.
  double prediction_from_reply(const std::string& set, const std::string& reply) const;
  double prediction_from_reply(const Example& example, const std::string& reply) const override {
    return prediction_from_reply(example.set, reply);
  }
  std::string reply_of(const std::string& decoded) const override { return response_text(decoded); }
  // One sequence per answer the record offers (its "Answer format:" line, else all of answer_names(set)):
  // the eval prompt followed by "the correct answer is <name>" (the training responses' form).
  std::vector<CandidateSequence> candidates(const Example& example, const Tokenizer& tokenizer) const override;

  EvalProtocol protocol() const override { return protocol_; }
  bool train_on_inputs() const { return train_on_inputs_; }
  int64_t num_beams() const override { return num_beams_; }
  int64_t max_new_tokens() const override { return max_new_tokens_; }

 private:
  std::vector<std::string> train_sets_, eval_sets_;
  std::vector<std::filesystem::path> train_files_;
  std::filesystem::path data_dir_;
  EvalProtocol protocol_ = EvalProtocol::Generate;
  bool train_on_inputs_ = true;
  int64_t num_beams_ = 1, max_new_tokens_ = 32;
};

// Tokenises one training record as finetune.py's generate_and_tokenize_prompt does (exposed for tests).
TokenizedExample tokenize_train_record(const CommonsenseRecord& record, const Tokenizer& tokenizer, int64_t cutoff_len,
                                       bool train_on_inputs);

}  // namespace peftlab
