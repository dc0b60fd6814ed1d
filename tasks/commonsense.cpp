#include "tasks/commonsense.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/data_root.h"
#include "core/errors.h"
#include "core/suggest.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"

namespace peftlab {

namespace fs = std::filesystem;

const std::vector<std::string>& commonsense_sets() {
  static const std::vector<std::string> sets = {"boolq",      "piqa",     "social_i_qa",   "hellaswag",
                                                "winogrande", "ARC-Easy", "ARC-Challenge", "openbookqa"};
  return sets;
}

const std::vector<std::string>& answer_names(const std::string& set) {
  static const std::map<std::string, std::vector<std::string>> names = {
      {"boolq", {"true", "false"}},
      {"piqa", {"solution1", "solution2"}},
      {"social_i_qa", {"answer1", "answer2", "answer3", "answer4", "answer5"}},
      {"ARC-Challenge", {"answer1", "answer2", "answer3", "answer4", "answer5"}},
      {"ARC-Easy", {"answer1", "answer2", "answer3", "answer4", "answer5"}},
      {"openbookqa", {"answer1", "answer2", "answer3", "answer4", "answer5"}},
      {"hellaswag", {"ending1", "ending2", "ending3", "ending4"}},
      {"winogrande", {"option1", "option2"}},
  };
  auto it = names.find(set);
  if (it == names.end()) input_error("commonsense", "{}", unknown_name_message("commonsense set", set, commonsense_sets()));
  return it->second;
}

// ---- prompts -----------------------------------------------------------------------------------------------
// The Python sources build these with triple-quoted f-strings indented by 16 spaces; every line after the
// first starts with those spaces, and the training wrapper's "blank" lines hold them too.

namespace {

const std::string kIndent(16, ' ');

}  // namespace

std::string format_train_prompt(const CommonsenseRecord& r) {
  const std::string& i = kIndent;
  if (!r.input.empty())
    return "Below is an instruction that describes a task, paired with an input that provides further context. "
           "Write a response that appropriately completes the request. \n\n" +
           i + "### Instruction:\n" + i + r.instruction + "\n" + i + "\n" + i + "### Input:\n" + i + r.input + "\n" + i +
           "\n" + i + "### Response:\n" + i + r.output;
  return "Below is an instruction that describes a task. Write a response that appropriately completes the "
         "request.  \n\n" +
         i + "### Instruction:\n" + i + r.instruction + "\n" + i + "\n" + i + "### Response:\n" + i + r.output;
}

std::string format_eval_prompt(const CommonsenseRecord& r) {
  const std::string& i = kIndent;
  if (!r.input.empty())
    return "Below is an instruction that describes a task, paired with an input that provides further context. "
           "Write a response that appropriately completes the request.\n\n" +
           i + "### Instruction:\n" + i + r.instruction + "\n\n" + i + "### Input:\n" + i + r.input + "\n\n" + i +
           "### Response:\n" + i;
  return "Below is an instruction that describes a task. Write a response that appropriately completes the "
         "request. \n\n" +
         i + "### Instruction:\n" + i + r.instruction + "\n\n" + i + "### Response:\n" + i;
}

std::optional<std::string> extract_answer(const std::string& set, const std::string& generated) {
  const auto& names = answer_names(set);
  // re.findall(r'a|b|...', s)[0]: the leftmost match; at one position the first alternative that matches.
  for (size_t pos = 0; pos < generated.size(); ++pos)
    for (const auto& name : names)
      if (generated.compare(pos, name.size(), name) == 0) return name;
  return std::nullopt;
}

std::string response_text(const std::string& decoded) {
  const std::string marker = "### Response:";
  size_t at = decoded.rfind(marker);
  std::string tail = at == std::string::npos ? decoded : decoded.substr(at + marker.size());
  const char* space = " \t\n\r\f\v";
  size_t begin = tail.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  size_t end = tail.find_last_not_of(space);
  return tail.substr(begin, end - begin + 1);
}

TokenizedExample tokenize_train_record(const CommonsenseRecord& record, const Tokenizer& tokenizer, int64_t cutoff_len,
                                       bool train_on_inputs) {
  // finetune.py: tokenizer(prompt, truncation=True, max_length=cutoff_len) (LLaMA's tokenizer adds BOS), then
  // EOS when the text does not already end with it and is shorter than cutoff_len.
  auto encode = [&](const std::string& text, bool add_eos) {
    std::vector<int> ids = tokenizer.encode(text, /*add_bos=*/true);
    if (int64_t(ids.size()) > cutoff_len) ids.resize(size_t(cutoff_len));
    if (add_eos && (ids.empty() || ids.back() != tokenizer.eos_id()) && int64_t(ids.size()) < cutoff_len)
      ids.push_back(tokenizer.eos_id());
    return std::vector<int32_t>(ids.begin(), ids.end());
  };
  TokenizedExample t;
  t.input_ids = encode(format_train_prompt(record), true);
  t.labels = t.input_ids;
  if (!train_on_inputs) {
    CommonsenseRecord prompt_only = record;
    prompt_only.output.clear();
    size_t prompt_len = std::min(encode(format_train_prompt(prompt_only), false).size(), t.labels.size());
    std::fill(t.labels.begin(), t.labels.begin() + long(prompt_len), kIgnoreIndex);
  }
  return t;
}

// ---- the task ----------------------------------------------------------------------------------------------

namespace {

EvalProtocol parse_protocol(Options& options) {
  std::string text = options.get<std::string>("protocol", "generate");
  if (text == "generate") return EvalProtocol::Generate;
  if (text == "loglik") return EvalProtocol::LogLikelihood;
  if (text == "both") return EvalProtocol::Both;
  throw InputError(options.file(),
                   fmt::format("{}.protocol: {}", options.path(),
                               unknown_name_message("protocol", text, {"generate", "loglik", "both"})),
                   Options::line_of(options.raw("protocol")));
}

void check_sets(Options& options, const std::string& key, const std::vector<std::string>& sets) {
  for (const auto& set : sets)
    if (std::find(commonsense_sets().begin(), commonsense_sets().end(), set) == commonsense_sets().end())
      throw InputError(options.file(),
                       fmt::format("{}.{}: {}", options.path(), key,
                                   unknown_name_message("commonsense set", set, commonsense_sets())),
                       Options::line_of(options.raw(key)));
}

CommonsenseRecord record_of(const Example& e) { return {e.instruction, e.input, e.output, e.answer}; }

}  // namespace

CommonsenseTask::CommonsenseTask(const std::string& name, Options& options, std::vector<std::string> default_train_sets,
                                 std::vector<std::string> default_eval_sets) {
  name_ = name;
  read_common_options(options, 256);
  auto dir = options.get_optional<std::string>("data_dir");
  data_dir_ = dir ? fs::path(*dir) : data_path("commonsense");
  bool has_train_files = options.has("train_files");
  if (has_train_files && options.has("train_sets"))
    throw InputError(options.file(), fmt::format("{}: give train_sets or train_files, not both", options.path()),
                     Options::line_of(options.raw("train_files")));
  train_sets_ = string_list_option(options, "train_sets", has_train_files ? std::vector<std::string>{} : default_train_sets);
  check_sets(options, "train_sets", train_sets_);
  for (const auto& f : string_list_option(options, "train_files", {})) train_files_.emplace_back(f);
  for (const auto& set : train_sets_) train_files_.push_back(data_dir_ / set / "train.json");
  eval_sets_ = string_list_option(options, "eval_sets", default_eval_sets);
  check_sets(options, "eval_sets", eval_sets_);
  if (eval_sets_.empty())
    throw InputError(options.file(), fmt::format("{}.eval_sets: name at least one set", options.path()), options.line());
  protocol_ = parse_protocol(options);
  train_on_inputs_ = options.get<bool>("train_on_inputs", true);
  num_beams_ = options.get<int64_t>("num_beams", 1);
  max_new_tokens_ = options.get<int64_t>("max_new_tokens", 32);
  if (num_beams_ < 1 || max_new_tokens_ < 1)
    throw InputError(options.file(), fmt::format("{}: num_beams and max_new_tokens must be positive", options.path()),
                     options.line());
}

std::vector<std::string> CommonsenseTask::splits() const {
  std::vector<std::string> out{"train"};
  out.insert(out.end(), eval_sets_.begin(), eval_sets_.end());
  return out;
}

std::vector<fs::path> CommonsenseTask::files(const std::string& split) const {
  check_split(split);
  if (split == "train") return train_files_;
  return {data_dir_ / split / "test.json"};
}

std::vector<Example> CommonsenseTask::load(const std::string& split) const {
  std::vector<Example> out;
  for (const auto& path : files(split)) {
    if (split == "train" && !fs::exists(path))
      throw InputError(path.string(),
                       "no such file (the training sets of this task are LLM-Adapters' JSON files; its 170k-record "
                       "mix is ft-training_set/commonsense_170k.json in the LLM-Adapters repository: docs/tasks.md)");
    JsonRecords records = read_json_array(path);
    for (size_t i = 0; i < records.size(); ++i) {
      Example e;
      e.instruction = records.string_field(i, "instruction");
      e.input = records.string_field(i, "input");
      e.output = records.string_field(i, "output");
      e.answer = records.string_field(i, "answer");
      e.line = records.lines[i];
      e.id = std::to_string(out.size());
      if (split != "train") {
        e.set = split;
        const auto& names = answer_names(split);
        auto it = std::find(names.begin(), names.end(), e.answer);
        if (it == names.end())
          throw InputError(path.string(),
                           fmt::format("record {}: answer '{}' is not one of {}", i + 1, e.answer, fmt::join(names, "/")),
                           e.line);
        e.label = int64_t(it - names.begin());
      }
      out.push_back(std::move(e));
    }
  }
  return limit(split, std::move(out));
}

std::vector<TokenizedExample> CommonsenseTask::tokenize(const std::string& split, const std::vector<Example>& examples,
                                                        const Tokenizer& tokenizer) const {
  std::vector<TokenizedExample> out;
  out.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    TokenizedExample t;
    if (split == "train") {
      t = tokenize_train_record(record_of(examples[i]), tokenizer, max_seq_len_, train_on_inputs_);
    } else {
      std::vector<int> ids = tokenizer.encode(format_eval_prompt(record_of(examples[i])), /*add_bos=*/true);
      t.input_ids.assign(ids.begin(), ids.end());
      t.class_label = examples[i].label;
    }
    t.example_index = int64_t(i);
    out.push_back(std::move(t));
  }
  return out;
}

std::string CommonsenseTask::format_options() const {
  return common_format_options() + fmt::format(";prompt=llm-adapters;train_on_inputs={};train_sets={};eval_sets={}",
                                               train_on_inputs_, fmt::join(train_sets_, ","), fmt::join(eval_sets_, ","));
}

std::vector<Metric> CommonsenseTask::metrics(const std::string& split) const {
  // "accuracy" is the generate protocol's when it runs; with protocol both the evaluator adds
  // loglik_accuracy from its second pass (experiments/evaluation.cpp).
  if (protocol_ == EvalProtocol::LogLikelihood) return {metric_by_name("accuracy")};
  if (protocol_ == EvalProtocol::Both)  // loglik_accuracy: computed by the evaluator, listed for its direction
    return {metric_by_name("accuracy"), metric_by_name("no_match_rate"), {"loglik_accuracy", nullptr, true}};
  return {metric_by_name("accuracy"), metric_by_name("no_match_rate")};
}

std::string CommonsenseTask::headline_split() const {
  return eval_sets_.size() > 1 ? summary_split() : eval_sets_.at(0);
}

std::map<std::string, double> CommonsenseTask::summarize(
    const std::map<std::string, std::map<std::string, double>>& by_split) const {
  std::map<std::string, double> sums;
  std::map<std::string, int> counts;
  int sets = 0;
  for (const auto& set : eval_sets_) {
    auto it = by_split.find(set);
    if (it == by_split.end()) continue;
    ++sets;
    for (const auto& [metric, value] : it->second) sums[metric] += value, ++counts[metric];
  }
  if (sets == 0) return {};
  std::map<std::string, double> out;
  // A metric missing from some set has no honest mean: NaN.
  for (const auto& [metric, sum] : sums) out[metric] = counts[metric] == sets ? sum / sets : std::nan("");
  out["sets"] = sets;
  return out;
}

double CommonsenseTask::prediction_from_reply(const std::string& set, const std::string& reply) const {
  auto answer = extract_answer(set, reply);
  if (!answer) return -1;
  const auto& names = answer_names(set);
  return double(std::find(names.begin(), names.end(), *answer) - names.begin());
}

std::vector<CandidateSequence> CommonsenseTask::candidates(const Example& example, const Tokenizer& tokenizer) const {
  const auto& names = answer_names(example.set);
  std::vector<std::string> offered;
  const std::string marker = "Answer format: ";
  if (size_t at = example.instruction.rfind(marker); at != std::string::npos) {
    std::string list = example.instruction.substr(at + marker.size());
    size_t start = 0;
    while (start <= list.size()) {
      size_t slash = list.find('/', start);
      std::string item = list.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      item.erase(item.find_last_not_of(" \t\r\n") + 1);
      if (std::find(names.begin(), names.end(), item) != names.end()) offered.push_back(item);
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  if (offered.empty()) offered = names;
  std::string prompt = format_eval_prompt(record_of(example));
  std::vector<int> prompt_ids = tokenizer.encode(prompt, true);
  std::vector<CandidateSequence> out;
  for (const auto& name : offered) {
    std::vector<int> ids = tokenizer.encode(prompt + "the correct answer is " + name, true);
    // The continuation starts where the joint tokenisation stops agreeing with the prompt's own.
    size_t start = 0;
    while (start < ids.size() && start < prompt_ids.size() && ids[start] == prompt_ids[start]) ++start;
    CandidateSequence c;
    c.input_ids.assign(ids.begin(), ids.end());
    c.continuation_start = int64_t(std::min(start, ids.size() - 1));
    c.answer_index = int64_t(std::find(names.begin(), names.end(), name) - names.begin());
    out.push_back(std::move(c));
  }
  return out;
}

void builtin::add_commonsense_tasks(std::map<std::string, TaskFactory>& registry) {
  const std::vector<std::string> available_train = {"boolq", "ARC-Easy", "ARC-Challenge", "openbookqa"};
  registry["commonsense"] = [available_train](Options& options) {
    return std::make_unique<CommonsenseTask>("commonsense", options, available_train, commonsense_sets());
  };
  for (const auto& set : commonsense_sets())
    registry[set] = [set](Options& options) {
      return std::make_unique<CommonsenseTask>(set, options, std::vector<std::string>{set}, std::vector<std::string>{set});
    };
}

}  // namespace peftlab
