#include "experiments/evaluation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/generate.h"
#include "methods/adaptation.h"

namespace peftlab {

namespace {

bool is_labelled(const EvalSplit& data) {
  // Regression examples carry their target in Example::target (NaN when unlabelled).
  return std::any_of(data.tokenized.begin(), data.tokenized.end(),
                     [](const TokenizedExample& e) { return e.class_label >= 0 || !e.labels.empty(); }) ||
         std::any_of(data.examples.begin(), data.examples.end(), [](const Example& e) { return !std::isnan(e.target); });
}

// Per-example values from the model's batched predict() (class, value or summed NLL).
std::vector<double> batched_predictions(TaskModelImpl& model, const std::vector<TokenizedExample>& examples,
                                        LabelKind label_kind, int64_t batch_size, int64_t pad_id) {
  BatcherOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.pad_id = pad_id;
  options.label_kind = label_kind;
  Batcher batches(examples, options);
  std::vector<double> out;
  out.reserve(examples.size());
  while (auto batch = batches.next_in_epoch()) {
    auto values = model.predict(*batch).to(torch::kCPU).contiguous();
    out.insert(out.end(), values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  }
  return out;
}

// generate: the extracted answer of each example's reply (-1: none). Prompts go `batch_size` at a time, sorted by
// length so that a batch pads little; each reply is the one-prompt generation's (core/generate.h).
std::vector<double> generated_answers(TaskModelImpl& model, const TextAnswerTask& answers, const EvalSplit& data,
                                      const Tokenizer& tokenizer, int64_t batch_size) {
  const std::vector<int> stop_ids = {tokenizer.eos_id()};
  const ReplyEnded at_stop_string =
      answers.decodes_reply_alone() ? reply_contains_any(tokenizer, answers.stop_strings()) : ReplyEnded();
  // A prompt longer than the context keeps its end (the question and answer format), leaving room to reply.
  const int64_t room = std::max<int64_t>(1, model.backbone->config().max_position_embeddings - answers.max_new_tokens());
  std::vector<std::vector<int>> prompts;
  for (const auto& example : data.tokenized) {
    const size_t skip = example.input_ids.size() > size_t(room) ? example.input_ids.size() - size_t(room) : 0;
    prompts.emplace_back(example.input_ids.begin() + long(skip), example.input_ids.end());
  }
  std::vector<size_t> order(prompts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
  std::vector<std::vector<int>> replies(prompts.size());
  const size_t per_batch = size_t(std::max<int64_t>(1, batch_size));
  for (size_t first = 0; first < order.size(); first += per_batch) {
    std::vector<std::vector<int>> chunk;
    for (size_t i = first; i < std::min(order.size(), first + per_batch); ++i) chunk.push_back(prompts[order[i]]);
    auto chunk_replies = answers.num_beams() > 1
                             ? beam_search_batch(*model.backbone, chunk, answers.num_beams(), answers.max_new_tokens(), stop_ids)
                             : generate_batch(*model.backbone, chunk, answers.max_new_tokens(), stop_ids, at_stop_string);
    for (size_t i = 0; i < chunk_replies.size(); ++i) replies[order[first + i]] = std::move(chunk_replies[i]);
  }
  std::vector<double> out;
  out.reserve(data.tokenized.size());
  for (size_t i = 0; i < data.tokenized.size(); ++i) {
    const Example& raw = data.examples.at(size_t(data.tokenized[i].example_index));
    if (answers.decodes_reply_alone()) {
      out.push_back(answers.prediction_from_reply(raw, tokenizer.decode(replies[i])));
      continue;
    }
    // As LLM-Adapters: decode prompt and reply together, keep the text after the last response marker.
    std::vector<int> all = prompts[i];
    all.insert(all.end(), replies[i].begin(), replies[i].end());
    out.push_back(answers.prediction_from_reply(raw, answers.reply_of(tokenizer.decode(all))));
  }
  return out;
}

// The log-likelihood protocol's picks: by summed log-probability, and by log-probability per character of the
// answer (lm-evaluation-harness' acc_norm; the summed pick where a candidate has no characters).
struct LoglikPicks {
  std::vector<double> by_sum, by_char;
};

// loglik: the candidate whose continuation has the highest summed log-probability (the first on ties).
LoglikPicks loglik_answers(TaskModelImpl& model, const TextAnswerTask& answers, const EvalSplit& data,
                           const Tokenizer& tokenizer, int64_t batch_size) {
  const size_t context = size_t(model.backbone->config().max_position_embeddings);
  std::vector<TokenizedExample> sequences;
  std::vector<std::pair<size_t, int64_t>> owner;  // (example, answer index) of each sequence
  std::vector<int64_t> chars;                     // the answer's characters, per sequence
  for (const auto& example : data.tokenized) {
    const Example& raw = data.examples.at(size_t(example.example_index));
    for (auto& candidate : answers.candidates(raw, tokenizer)) {
      TokenizedExample s;
      // Longer than the context: the left end goes (lm-evaluation-harness' rule), the continuation stays.
      const size_t skip = candidate.input_ids.size() > context ? candidate.input_ids.size() - context : 0;
      s.input_ids.assign(candidate.input_ids.begin() + long(skip), candidate.input_ids.end());
      s.labels = s.input_ids;
      const int64_t start = std::max<int64_t>(1, candidate.continuation_start - int64_t(skip));
      std::fill(s.labels.begin(), s.labels.begin() + std::min<int64_t>(start, int64_t(s.labels.size())), -100);
      s.example_index = int64_t(sequences.size());
      sequences.push_back(std::move(s));
      owner.emplace_back(size_t(&example - data.tokenized.data()), candidate.answer_index);
      chars.push_back(candidate.continuation_chars);
    }
  }
  const auto nll = batched_predictions(model, sequences, LabelKind::Tokens, batch_size, tokenizer.pad_or_eos_id());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> best_nll(data.tokenized.size(), inf), best_per_char(data.tokenized.size(), inf);
  LoglikPicks out{std::vector<double>(data.tokenized.size(), -1), std::vector<double>(data.tokenized.size(), -1)};
  for (size_t i = 0; i < sequences.size(); ++i) {
    auto [example, answer] = owner[i];
    if (nll[i] < best_nll[example]) best_nll[example] = nll[i], out.by_sum[example] = double(answer);
    const double per_char = chars[i] > 0 ? nll[i] / double(chars[i]) : nll[i];
    if (per_char < best_per_char[example]) best_per_char[example] = per_char, out.by_char[example] = double(answer);
  }
  return out;
}

SplitEvaluation evaluate_text_answers(TaskModelImpl& model, const Task& task, const TextAnswerTask& answers,
                                      const EvalSplit& data, const Tokenizer& tokenizer, int64_t batch_size) {
  SplitEvaluation result;
  const EvalProtocol protocol = answers.protocol();
  LoglikPicks picks;
  if (protocol == EvalProtocol::LogLikelihood) {
    picks = loglik_answers(model, answers, data, tokenizer, batch_size);
    result.predictions = picks.by_sum;
  } else {
    result.predictions = generated_answers(model, answers, data, tokenizer, batch_size);
  }
  if (!is_labelled(data)) return result;
  result.metrics = task.score(data.split, data.tokenized, result.predictions);
  if (protocol == EvalProtocol::Both) {
    auto loglik = task.score(data.split, data.tokenized, loglik_answers(model, answers, data, tokenizer, batch_size).by_sum);
    result.metrics["loglik_accuracy"] = loglik.at("accuracy");
  }
  if (protocol == EvalProtocol::LogLikelihood && answers.reports_acc_norm()) {
    std::vector<double> references;
    for (const auto& e : data.tokenized) references.push_back(double(e.class_label));
    result.metrics["acc_norm"] = accuracy(picks.by_char, references);
  }
  return result;
}

}  // namespace

EvalSplit load_eval_split(const Task& task, const std::string& split, const Tokenizer& tokenizer, int64_t max_examples) {
  task.check_split(split);
  EvalSplit out;
  out.split = split;
  out.examples = task.load(split);
  out.tokenized = tokenized_split(task, split, tokenizer);
  // A causal-LM split is one text cut into many blocks: its examples do not pair with its blocks, and
  // max_examples counts blocks.
  const bool paired = task.kind() != TaskKind::CausalLM;
  if (paired && out.examples.size() != out.tokenized.size())
    throw std::logic_error(task.name() + " " + split + ": examples and tokenised examples differ in number");
  if (max_examples > 0 && int64_t(out.tokenized.size()) > max_examples) {
    if (paired) out.examples.resize(size_t(max_examples));
    out.tokenized.resize(size_t(max_examples));
  }
  return out;
}

SplitEvaluation evaluate_split(TaskModelImpl& model, const Task& task, const EvalSplit& data, const Tokenizer& tokenizer,
                               int64_t batch_size) {
  const bool was_training = model.is_training();
  model.eval();
  merge_all(*model.backbone);
  SplitEvaluation result;
  try {
    if (task.kind() == TaskKind::Generation) {
      const auto* answers = dynamic_cast<const TextAnswerTask*>(&task);
      if (answers == nullptr) throw std::logic_error("generation task " + task.name() + " is not a TextAnswerTask");
      result = evaluate_text_answers(model, task, *answers, data, tokenizer, batch_size);
    } else {
      result.predictions =
          batched_predictions(model, data.tokenized, task.label_kind(), batch_size, tokenizer.pad_or_eos_id());
      if (is_labelled(data)) result.metrics = task.score(data.split, data.tokenized, result.predictions);
    }
  } catch (...) {
    unmerge_all(*model.backbone);
    if (was_training) model.train();
    throw;
  }
  unmerge_all(*model.backbone);
  if (was_training) model.train();
  return result;
}

std::vector<double> references_of(const Task& task, const EvalSplit& data) {
  if (task.kind() == TaskKind::CausalLM || !is_labelled(data)) return {};
  std::vector<double> out;
  out.reserve(data.tokenized.size());
  for (const auto& e : data.tokenized)  // as Task::score reads them
    out.push_back(task.kind() == TaskKind::Regression ? e.target : double(e.class_label));
  return out;
}

std::map<std::string, std::map<std::string, double>> evaluate_splits(
    TaskModelImpl& model, const Task& task, const std::vector<EvalSplit>& splits, const Tokenizer& tokenizer,
    int64_t batch_size, std::map<std::string, SplitPredictions>* kept) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& data : splits) {
    SplitEvaluation result = evaluate_split(model, task, data, tokenizer, batch_size);
    out[data.split] = std::move(result.metrics);
    if (kept == nullptr) continue;
    auto references = references_of(task, data);
    if (!references.empty() && references.size() == result.predictions.size())
      (*kept)[data.split] = {std::move(result.predictions), std::move(references)};
  }
  auto summary = task.summarize(out);
  if (!summary.empty()) out[Task::summary_split()] = std::move(summary);
  return out;
}

}  // namespace peftlab
