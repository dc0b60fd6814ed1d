#include "tasks/lm.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "core/data_root.h"
#include "core/errors.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

namespace peftlab {

namespace fs = std::filesystem;

int64_t token_byte_count(const Tokenizer& tokenizer, int id) {
  if (id == tokenizer.bos_id() || id == tokenizer.eos_id() || id == tokenizer.pad_id()) return 0;
  std::string piece = tokenizer.piece(id);
  if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece.back() == '>') return 1;  // byte fallback
  if (piece == "<unk>" || piece == "<s>" || piece == "</s>") return 0;
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
  int64_t bytes = 0;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, 3, space) == 0) {
      bytes += 1;
      i += 3;
    } else {
      bytes += 1;
      i += 1;
    }
  }
  return bytes;
}

std::map<std::string, double> language_model_metrics(double nll_sum, double token_count, double byte_count) {
  return {{"perplexity", perplexity(nll_sum, token_count)},
          {"bits_per_byte", bits_per_byte(nll_sum, byte_count)},
          {"nll_per_token", token_count > 0 ? nll_sum / token_count : std::nan("")}};
}

std::vector<TokenizedExample> causal_lm_blocks(const std::vector<int>& stream, int64_t block_size, int64_t cap,
                                               const Tokenizer& tokenizer, int64_t first_index) {
  const size_t block = size_t(block_size), stride = block - 1;
  std::vector<TokenizedExample> out;
  for (size_t start = 0; start + 1 < stream.size(); start += stride) {
    if (cap > 0 && int64_t(out.size()) >= cap) break;
    size_t end = std::min(start + block, stream.size());
    TokenizedExample t;
    t.input_ids.assign(stream.begin() + long(start), stream.begin() + long(end));
    t.labels = t.input_ids;
    t.labels[0] = kIgnoreIndex;
    for (size_t i = 1; i < t.input_ids.size(); ++i) t.byte_count += token_byte_count(tokenizer, t.input_ids[i]);
    t.example_index = first_index + int64_t(out.size());
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, double> causal_lm_score(const std::vector<TokenizedExample>& blocks,
                                              const std::vector<double>& nll) {
  if (nll.size() != blocks.size())
    throw std::invalid_argument(fmt::format("causal LM score: {} values for {} blocks", nll.size(), blocks.size()));
  double sum = 0, tokens = 0, bytes = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    sum += nll[i];
    for (size_t t = 1; t < blocks[i].labels.size(); ++t) tokens += blocks[i].labels[t] != kIgnoreIndex;
    bytes += double(blocks[i].byte_count);
  }
  return language_model_metrics(sum, tokens, bytes);
}

namespace {

class LanguageModelTask : public Task {
 public:
  explicit LanguageModelTask(Options& options) {
    name_ = "lm";
    read_common_options(options, 128);
    max_seq_len_ = options.get<int64_t>("block_size", max_seq_len_);
    if (max_seq_len_ < 2)
      throw InputError(options.file(), fmt::format("{}.block_size must be at least 2", options.path()), options.line());
    auto train = options.get_optional<std::string>("train_file");
    train_file_ = train ? fs::path(*train) : data_path("corpora/tinyshakespeare.txt");
    if (auto eval = options.get_optional<std::string>("eval_file")) eval_file_ = fs::path(*eval);
    eval_fraction_ = options.get<double>("eval_fraction", 0.1);
    if (!(eval_fraction_ > 0 && eval_fraction_ < 1))
      throw InputError(options.file(), fmt::format("{}.eval_fraction must be between 0 and 1", options.path()),
                       Options::line_of(options.raw("eval_fraction")));
  }

  int version() const override { return 1; }
  TaskKind kind() const override { return TaskKind::CausalLM; }
  std::vector<std::string> splits() const override { return {"train", "dev"}; }
  std::vector<std::string> eval_splits() const override { return {"dev"}; }
  std::vector<fs::path> files(const std::string& split) const override {
    check_split(split);
    if (split == "dev" && !eval_file_.empty()) return {eval_file_};
    return {train_file_};
  }
  std::string format_options() const override {
    return common_format_options() +
           fmt::format(";blocks=bos+stream,stride block_size-1;held_out={}", eval_file_.empty() ? eval_fraction_ : 0.0);
  }
  std::string headline_metric() const override { return "perplexity"; }

  std::vector<Metric> metrics(const std::string& split) const override {
    // Corpus-level metrics computed by score(); listed for their names and directions.
    return {{"perplexity", nullptr, false}, {"bits_per_byte", nullptr, false}, {"nll_per_token", nullptr, false}};
  }

  std::vector<Example> load(const std::string& split) const override {
    std::string text = read_text_file(files(split).at(0));
    if (text.empty()) input_error(files(split).at(0).string(), "empty file: no text");
    if (eval_file_.empty()) {
      // Hold out the tail, cut at the start of a line so no word (or UTF-8 sequence) is split.
      size_t cut = size_t(double(text.size()) * (1.0 - eval_fraction_));
      size_t line_start = text.find('\n', cut);
      cut = line_start == std::string::npos ? cut : line_start + 1;
      if (cut == 0 || cut >= text.size())
        input_error(train_file_.string(), "too short to hold out {} of it for evaluation", eval_fraction_);
      text = split == "train" ? text.substr(0, cut) : text.substr(cut);
    }
    Example e;
    e.texts = {std::move(text)};
    e.id = split;
    return {e};
  }

  std::vector<TokenizedExample> tokenize(const std::string& split, const std::vector<Example>& examples,
                                         const Tokenizer& tokenizer) const override {
    std::vector<int> stream;
    if (tokenizer.bos_id() >= 0) stream.push_back(tokenizer.bos_id());  // Qwen2's tokenizer has none
    for (const auto& e : examples) {
      std::vector<int> ids = tokenizer.encode(e.texts.at(0));
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    const int64_t cap = split == "train" ? max_train_examples_ : max_eval_examples_;
    std::vector<TokenizedExample> out = causal_lm_blocks(stream, max_seq_len_, cap, tokenizer);
    return out;
  }

  std::map<std::string, double> score(const std::string& split, const std::vector<TokenizedExample>& examples,
                                      const std::vector<double>& predictions) const override {
    if (predictions.size() != examples.size())
      throw std::invalid_argument(fmt::format("lm {}: {} predictions for {} blocks", split, predictions.size(),
                                              examples.size()));
    return causal_lm_score(examples, predictions);
  }

 private:
  fs::path train_file_, eval_file_;
  double eval_fraction_ = 0.1;
};

}  // namespace

void builtin::add_lm_task(std::map<std::string, TaskFactory>& registry) {
  registry["lm"] = [](Options& options) { return std::make_unique<LanguageModelTask>(options); };
}

}  // namespace peftlab
