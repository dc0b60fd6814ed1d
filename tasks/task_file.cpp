#include "tasks/task_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <regex>

#include "core/checksum.h"
#include "core/data_root.h"
#include "core/errors.h"
#include "core/suggest.h"
#include "core/text_tables.h"
#include "tasks/builtin.h"
#include "tasks/classification.h"
#include "tasks/lm.h"
#include "tasks/process_docs.h"
#include "tasks/template.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

enum class OutputType { Classification, Regression, MultipleChoice, RollingLoglikelihood, Generate };

const std::vector<std::string>& output_type_names() {
  static const std::vector<std::string> names = {"classification", "regression", "multiple_choice",
                                                 "rolling_loglikelihood", "generate"};
  return names;
}

// ${data} in a path of a task file (the only variable a task file knows).
std::string expand_data_variable(const std::string& text, const std::string& file, long line) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find("${", pos);
    if (at == std::string::npos) return out + text.substr(pos);
    size_t end = text.find('}', at);
    std::string name = end == std::string::npos ? text.substr(at) : text.substr(at + 2, end - at - 2);
    if (end == std::string::npos || name != "data")
      throw InputError(file, fmt::format("unknown variable in '{}' (a task file knows ${{data}} only)", text), line);
    out += text.substr(pos, at - pos) + data_root().string();
    pos = end + 1;
  }
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& known) {
  const std::string guess = closest_match(name, known);
  return guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess);
}

// UTF-8 code points: Python's len() of the text, which lm-evaluation-harness normalises by.
int64_t code_points(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

struct SplitSource {
  std::string split;
  fs::path path;
  bool header = true;
  std::vector<std::string> columns;
};

// One split's records (tabular rows become objects of their column names).
struct Records {
  std::string file;
  std::vector<nlohmann::json> rows;
  std::vector<long> lines;
  std::vector<std::string> columns;  // tabular formats: the columns; empty for JSON and text
};

class FileTask : public SentenceTask, public TextAnswerTask {
 public:
  FileTask(const std::string& text, const std::string& file, const fs::path& base_dir, Options& entry)
      : file_(file), sha256_(sha256_bytes(text)) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw InputError(file, "invalid YAML: " + e.msg, e.mark.line + 1);
    }
    if (!root.IsMap())
      throw InputError(file, "a task file is a YAML mapping (task, output_type, format, splits, doc_to_text, ...)");
    Options o(root, file, "task");
    name_ = o.require<std::string>("task");
    static const std::regex name_pattern("[A-Za-z0-9._+=,-]+");
    if (!std::regex_match(name_, name_pattern))
      throw InputError(file, fmt::format("task: '{}' must be a name of letters, digits and ._+=,-", name_),
                       Options::line_of(o.raw("task")));
    version_ = o.get<int64_t>("version", 1);
    o.get<std::string>("description", "");
    read_output_type(o);
    read_common_options(o, 128);
    override_common_options(entry);
    read_data(o, base_dir, entry);
    read_process_docs(o);
    read_templates(o);
    o.finish();
    resolved_ = YAML::Clone(root);
    resolved_["max_seq_len"] = max_seq_len_;
    resolved_["max_train_examples"] = max_train_examples_;
    resolved_["max_eval_examples"] = max_eval_examples_;
    resolved_["data_dir"] = data_dir_.string();
  }

  int version() const override { return int(version_); }
  TaskKind kind() const override {
    switch (type_) {
      case OutputType::Classification: return TaskKind::Classification;
      case OutputType::Regression: return TaskKind::Regression;
      case OutputType::MultipleChoice: return TaskKind::Generation;
      case OutputType::RollingLoglikelihood: return TaskKind::CausalLM;
      case OutputType::Generate: return TaskKind::Generation;
    }
    return TaskKind::Classification;
  }
  std::string source() const override { return file_; }
  std::string source_sha256() const override { return sha256_; }

  std::vector<std::string> splits() const override {
    std::vector<std::string> out;
    for (const auto& s : sources_) out.push_back(s.split);
    return out;
  }
  std::vector<std::string> eval_splits() const override { return eval_splits_; }
  std::vector<fs::path> files(const std::string& split) const override { return {source_of(split).path}; }

  std::string format_options() const override {
    YAML::Emitter text;
    text << YAML::Flow << resolved_;
    // Classification and regression inputs depend on the backbone (joined text or the tokenizer's template).
    const bool sentences = type_ == OutputType::Classification || type_ == OutputType::Regression;
    return (sentences ? sentence_format_options() : common_format_options()) +
           fmt::format(";source={};source_sha256={};resolved={}", file_, sha256_, text.c_str());
  }

  std::vector<Metric> metrics(const std::string& split) const override {
    switch (type_) {
      case OutputType::MultipleChoice:
        if (multiple_inputs_) return {metric_by_name("acc")};
        return {metric_by_name("acc"), {"acc_norm", nullptr, true}};
      // Predictions are 1 (the extracted answer equals the target), 0 (it does not) or -1 (no answer found).
      case OutputType::Generate: return {{"exact_match", accuracy, true}, metric_by_name("no_match_rate")};
      case OutputType::RollingLoglikelihood:
        // Corpus-level: computed by score() from the blocks' summed NLL.
        return {{"perplexity", nullptr, false}, {"bits_per_byte", nullptr, false}, {"nll_per_token", nullptr, false}};
      default: return metrics_;
    }
  }
  std::string headline_metric() const override { return headline_; }

  std::map<std::string, double> score(const std::string& split, const std::vector<TokenizedExample>& examples,
                                      const std::vector<double>& predictions) const override {
    if (type_ == OutputType::RollingLoglikelihood) return causal_lm_score(examples, predictions);
    return Task::score(split, examples, predictions);
  }

  void check_files() const override {
    for (const auto& s : sources_) {
      if (!fs::exists(s.path) && !fs::is_symlink(s.path)) continue;
      require_regular_file(s.path);
      if ((format_ != "tsv" && format_ != "csv") || !s.header) continue;
      TextTable header = read_header(s.path, format_);
      if (header.header.empty()) continue;  // an empty file: the full read says so
      check_columns(s.split, header.header, s.path.string());
    }
  }

  std::vector<Example> load(const std::string& split) const override {
    Records records = read_records(split);
    std::vector<Example> out;
    out.reserve(records.rows.size());
    const bool needs_target = split == "train" || is_eval_split(split);
    for (size_t r = 0; r < records.rows.size(); ++r) {
      nlohmann::json& row = records.rows[r];
      const long line = records.lines[r];
      if (!process_docs_.empty()) process_docs::apply(process_docs_, row, records.file, line);
      Example e;
      e.line = line;
      e.id = std::to_string(r);
      if (!id_field_.empty())
        if (const nlohmann::json* id = find_field(row, id_field_))
          if (auto text = scalar_text(*id)) e.id = *text;
      const bool labelled = type_ != OutputType::RollingLoglikelihood && (needs_target || has_fields(row, target_));
      switch (type_) {
        case OutputType::Classification:
        case OutputType::Regression:
          for (const auto& t : inputs_) e.texts.push_back(t.render(row, records.file, line));
          if (labelled && type_ == OutputType::Classification)
            e.label = label_index(target_.render(row, records.file, line), records.file, line);
          if (labelled && type_ == OutputType::Regression) e.target = number(target_.render(row, records.file, line), records.file, line);
          break;
        case OutputType::MultipleChoice:
          // multiple_inputs: one context per choice, one continuation scored after each.
          if (multiple_inputs_) e.answer = continuation_.render(row, records.file, line);
          else e.instruction = inputs_.at(0).render(row, records.file, line);
          e.texts = choices(row, records.file, line);
          e.set = split;
          if (labelled) e.label = gold_index(row, e.texts, records.file, line);
          break;
        case OutputType::RollingLoglikelihood:
          e.texts = {inputs_.at(0).render(row, records.file, line)};
          break;
        case OutputType::Generate:
          e.instruction = inputs_.at(0).render(row, records.file, line);
          if (labelled) e.answer = target_.render(row, records.file, line), e.label = 1;
          break;
      }
      out.push_back(std::move(e));
    }
    // A causal-LM split's caps count blocks (tokenize applies them).
    return type_ == OutputType::RollingLoglikelihood ? out : limit(split, std::move(out));
  }

  std::vector<TokenizedExample> tokenize(const std::string& split, const std::vector<Example>& examples,
                                         const Tokenizer& tokenizer) const override {
    switch (type_) {
      case OutputType::Classification:
      case OutputType::Regression: return SentenceTask::tokenize(split, examples, tokenizer);
      case OutputType::RollingLoglikelihood: {
        // Each document is its own stream (BOS first), cut into blocks as the lm task cuts its corpus.
        const int64_t cap = split == "train" ? max_train_examples_ : max_eval_examples_;
        std::vector<TokenizedExample> out;
        for (const auto& e : examples) {
          std::vector<int> stream;
          if (tokenizer.bos_id() >= 0) stream.push_back(tokenizer.bos_id());
          std::vector<int> ids = tokenizer.encode(e.texts.at(0));
          stream.insert(stream.end(), ids.begin(), ids.end());
          auto blocks = causal_lm_blocks(stream, max_seq_len_, cap > 0 ? cap - int64_t(out.size()) : 0, tokenizer,
                                         int64_t(out.size()));
          out.insert(out.end(), blocks.begin(), blocks.end());
          if (cap > 0 && int64_t(out.size()) >= cap) break;
        }
        return out;
      }
      case OutputType::MultipleChoice:
      case OutputType::Generate: break;
    }
    std::vector<TokenizedExample> out;
    out.reserve(examples.size());
    for (size_t i = 0; i < examples.size(); ++i) {
      const Example& e = examples[i];
      TokenizedExample t;
      if (split == "train") {
        // The context followed by the gold choice; the loss on the choice (and the context with train_on_inputs).
        const bool generate = type_ == OutputType::Generate;
        auto sequence = generate          ? choice_sequence(e.instruction, e.answer, tokenizer)
                        : multiple_inputs_ ? choice_sequence(e.texts.at(size_t(e.label)), e.answer, tokenizer)
                                           : choice_sequence(e.instruction, e.texts.at(size_t(e.label)), tokenizer);
        t.input_ids = sequence.input_ids;
        if (generate && tokenizer.eos_id() >= 0) t.input_ids.push_back(tokenizer.eos_id());  // learn to stop
        t.labels = t.input_ids;
        if (!train_on_inputs_)
          std::fill(t.labels.begin(), t.labels.begin() + sequence.continuation_start, kIgnoreIndex);
        if (int64_t(t.input_ids.size()) > max_seq_len_) {  // keep the answer: cut the left end
          const long skip = long(t.input_ids.size()) - long(max_seq_len_);
          t.input_ids.erase(t.input_ids.begin(), t.input_ids.begin() + skip);
          t.labels.erase(t.labels.begin(), t.labels.begin() + skip);
        }
      } else {
        std::vector<int> ids = tokenizer.encode(multiple_inputs_ ? e.texts.at(0) : e.instruction, /*add_bos=*/true);
        t.input_ids.assign(ids.begin(), ids.end());
        t.class_label = e.label;
      }
      t.example_index = int64_t(i);
      out.push_back(std::move(t));
    }
    return out;
  }

  // Predictions files only for tasks whose predictions are labels.
  std::vector<std::string> prediction_splits() const override {
    if (type_ != OutputType::Classification && type_ != OutputType::Regression) return {};
    return Task::prediction_splits();
  }
  fs::path write_predictions(const fs::path& dir, const std::string& split, const std::vector<Example>& examples,
                             const std::vector<double>& predictions) const override {
    auto it = prediction_files_.find(split);
    fs::path path = dir / (it == prediction_files_.end() ? split + ".tsv" : it->second);
    write_prediction_table(path, *this, examples, predictions);
    return path;
  }

  // ---- multiple choice (the log-likelihood protocol) and generate
  EvalProtocol protocol() const override {
    return type_ == OutputType::Generate ? EvalProtocol::Generate : EvalProtocol::LogLikelihood;
  }
  int64_t num_beams() const override { return 1; }
  int64_t max_new_tokens() const override { return max_new_tokens_; }
  std::string reply_of(const std::string& decoded) const override { return decoded; }
  bool decodes_reply_alone() const override { return true; }
  std::vector<std::string> stop_strings() const override { return until_; }
  // With multiple_inputs every choice scores the same continuation: acc_norm would equal acc.
  bool reports_acc_norm() const override { return type_ == OutputType::MultipleChoice && !multiple_inputs_; }
  // The reply is cut at the first stop sequence (`until`); the answer is the first match of answer_regex (its
  // first group when it has one), else the whole reply; both sides are compared with whitespace trimmed.
  double prediction_from_reply(const Example& example, const std::string& reply) const override {
    if (type_ != OutputType::Generate) return -1;
    return double(score_reply(example.answer, reply));
  }

  int score_reply(const std::string& target, std::string reply) const {
    for (const auto& stop : until_) {
      size_t at = reply.find(stop);
      if (at != std::string::npos) reply.resize(at);
    }
    std::string answer = reply;
    if (has_answer_regex_) {
      std::smatch match;
      if (!std::regex_search(reply, match, answer_regex_)) return -1;
      answer = match.size() > 1 && match[1].matched ? match[1].str() : match[0].str();
    }
    return trim(answer) == trim(target) ? 1 : 0;
  }

  static std::string trim(const std::string& text) {
    const char* space = " \t\n\r\f\v";
    size_t begin = text.find_first_not_of(space);
    if (begin == std::string::npos) return "";
    return text.substr(begin, text.find_last_not_of(space) - begin + 1);
  }

  std::vector<CandidateSequence> candidates(const Example& example, const Tokenizer& tokenizer) const override {
    std::vector<CandidateSequence> out;
    for (size_t i = 0; i < example.texts.size(); ++i) {
      CandidateSequence c = multiple_inputs_ ? choice_sequence(example.texts[i], example.answer, tokenizer)
                                             : choice_sequence(example.instruction, example.texts[i], tokenizer);
      c.answer_index = int64_t(i);
      c.continuation_chars = code_points(multiple_inputs_ ? example.answer : example.texts[i]);
      out.push_back(std::move(c));
    }
    return out;
  }

 private:
  // lm-evaluation-harness' pairing: trailing whitespace of the context moves to the continuation
  // (target_delimiter + choice); the continuation's tokens are those of context + continuation after the
  // context's own tokens. BOS (when the tokenizer has one) comes first.
  CandidateSequence choice_sequence(std::string context, const std::string& choice, const Tokenizer& tokenizer) const {
    std::string continuation = target_delimiter_ + choice;
    size_t end = context.find_last_not_of(" \t\n\r\f\v");
    size_t keep = end == std::string::npos ? 0 : end + 1;
    continuation = context.substr(keep) + continuation;
    context.resize(keep);
    std::vector<int> whole = tokenizer.encode(context + continuation);
    std::vector<int> context_ids = context.empty() ? std::vector<int>{} : tokenizer.encode(context);
    CandidateSequence c;
    if (tokenizer.bos_id() >= 0) c.input_ids.push_back(tokenizer.bos_id());
    c.input_ids.insert(c.input_ids.end(), context_ids.begin(), context_ids.end());
    c.continuation_start = int64_t(c.input_ids.size());
    const size_t from = std::min(context_ids.size(), whole.size());
    c.input_ids.insert(c.input_ids.end(), whole.begin() + long(from), whole.end());
    if (c.continuation_start >= int64_t(c.input_ids.size()))  // an empty continuation: score the last token
      c.continuation_start = int64_t(c.input_ids.size()) - 1;
    return c;
  }

  void read_process_docs(Options& o) {
    YAML::Node node = o.raw("process_docs");
    if (!node || node.IsNull()) return;
    process_docs_ = o.get<std::string>("process_docs", "");
    const auto& known = process_docs::names();
    if (std::find(known.begin(), known.end(), process_docs_) == known.end())
      throw InputError(file_, fmt::format("process_docs: {}", unknown_name_message("record processor", process_docs_, known)),
                       Options::line_of(node));
  }

  void read_output_type(Options& o) {
    const std::string type = o.require<std::string>("output_type");
    const auto& names = output_type_names();
    auto it = std::find(names.begin(), names.end(), type);
    if (it == names.end())
      throw InputError(file_, fmt::format("output_type: {}", unknown_name_message("output type", type, names)),
                       Options::line_of(o.raw("output_type")));
    type_ = OutputType(it - names.begin());
  }

  void override_common_options(Options& entry) {
    auto check = [&](const char* key, int64_t value, int64_t minimum) {
      if (value < minimum)
        throw InputError(entry.file(), fmt::format("{}.{} must be at least {}", entry.path(), key, minimum),
                         Options::line_of(entry.raw(key)));
      return value;
    };
    if (auto v = entry.get_optional<int64_t>("max_seq_len")) max_seq_len_ = check("max_seq_len", *v, 2);
    if (auto v = entry.get_optional<int64_t>("max_train_examples")) max_train_examples_ = check("max_train_examples", *v, 0);
    if (auto v = entry.get_optional<int64_t>("max_eval_examples")) max_eval_examples_ = check("max_eval_examples", *v, 0);
  }

  void read_data(Options& o, const fs::path& base_dir, Options& entry) {
    format_ = o.require<std::string>("format");
    const std::vector<std::string> formats = {"tsv", "csv", "jsonl", "json", "text"};
    if (std::find(formats.begin(), formats.end(), format_) == formats.end())
      throw InputError(file_, fmt::format("format: {}", unknown_name_message("format", format_, formats)),
                       Options::line_of(o.raw("format")));
    const bool tabular = format_ == "tsv" || format_ == "csv";
    const bool header = o.get<bool>("header", true);
    const auto columns = string_list_option(o, "columns", {});
    YAML::Node node = o.raw("data_dir");
    data_dir_ = base_dir;
    if (node && !node.IsNull()) {
      fs::path dir = expand_data_variable(o.get<std::string>("data_dir", ""), file_, Options::line_of(node));
      data_dir_ = dir.is_absolute() ? dir : base_dir / dir;
    }
    // A spec's data_dir replaces the file's; its paths are as written (relative to the working folder).
    if (auto dir = entry.get_optional<std::string>("data_dir")) data_dir_ = fs::path(*dir);
    YAML::Node splits = o.raw("splits");
    if (!splits || !splits.IsMap() || splits.size() == 0)
      throw InputError(file_, "splits: expected a mapping from split name to data file (train: train.csv, ...)",
                       Options::line_of(splits ? splits : o.node()));
    for (const auto& entry_node : splits) {
      SplitSource s;
      s.split = entry_node.first.Scalar();
      s.header = header;
      s.columns = columns;
      std::string path;
      if (entry_node.second.IsScalar()) {
        path = entry_node.second.Scalar();
      } else {
        Options split(entry_node.second, file_, "splits." + s.split);
        path = split.require<std::string>("file");
        s.header = split.get<bool>("header", header);
        s.columns = string_list_option(split, "columns", columns);
        split.finish();
      }
      fs::path p = expand_data_variable(path, file_, Options::line_of(entry_node.second));
      s.path = p.is_absolute() ? p : data_dir_ / p;
      if (tabular && !s.header && s.columns.empty())
        throw InputError(file_, fmt::format("splits.{}: a file without a header needs `columns: [names]`", s.split),
                         Options::line_of(entry_node.second));
      for (const auto& other : sources_)
        if (other.split == s.split)
          throw InputError(file_, fmt::format("splits: '{}' is listed twice", s.split), Options::line_of(entry_node.first));
      if (s.split == "train") sources_.insert(sources_.begin(), s);
      else sources_.push_back(s);
    }
    std::vector<std::string> defaults;
    for (const char* preferred : {"dev", "validation"})
      if (defaults.empty() && has_split(preferred)) defaults = {preferred};
    for (const auto& s : sources_)
      if (defaults.empty() && s.split != "train") defaults = {s.split};
    if (defaults.empty()) defaults = {sources_.front().split};
    eval_splits_ = string_list_option(o, "eval_splits", defaults);
    for (const auto& split : eval_splits_)
      if (!has_split(split))
        throw InputError(file_, fmt::format("eval_splits: {}", unknown_name_message("split", split, splits_list())),
                         Options::line_of(o.raw("eval_splits")));
    id_field_ = o.get<std::string>("id_field", "");
    if (YAML::Node files = o.raw("prediction_files"); files && !files.IsNull()) {
      if (!files.IsMap()) throw InputError(file_, "prediction_files: expected split: file name", Options::line_of(files));
      for (const auto& f : files) prediction_files_[f.first.Scalar()] = f.second.Scalar();
    }
  }

  std::vector<std::string> splits_list() const { return splits(); }

  TextTemplate template_at(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar())
      throw InputError(file_, fmt::format("{}: expected a template (text with {{{{field}}}} references)", key),
                       Options::line_of(node));
    return TextTemplate(node.Scalar(), file_, Options::line_of(node), key);
  }

  std::vector<TextTemplate> template_list(const YAML::Node& node, const std::string& key) const {
    std::vector<TextTemplate> out;
    if (node.IsSequence()) {
      for (const auto& item : node) out.push_back(template_at(item, key));
      if (out.empty()) throw InputError(file_, fmt::format("{}: expected at least one template", key), Options::line_of(node));
    } else {
      out.push_back(template_at(node, key));
    }
    return out;
  }

  void read_templates(Options& o) {
    auto required = [&](const char* key) {
      YAML::Node node = o.raw(key);
      if (!node || node.IsNull())
        throw InputError(file_, fmt::format("missing required key '{}' (output_type {})", key,
                                            output_type_names()[size_t(type_)]),
                         o.line());
      return node;
    };
    if (type_ == OutputType::RollingLoglikelihood) {
      YAML::Node text = o.raw("doc_to_text");
      inputs_ = {text && !text.IsNull() ? template_at(text, "doc_to_text")
                                         : TextTemplate("{{text}}", file_, o.line(), "doc_to_text")};
      headline_ = "perplexity";
      if (format_ != "text" && !text) required("doc_to_text");
      return;
    }
    multiple_inputs_ = type_ == OutputType::MultipleChoice && o.get<bool>("multiple_inputs", false);
    if (multiple_inputs_) {
      if (YAML::Node text = o.raw("doc_to_text"); text && !text.IsNull())
        throw InputError(file_, "doc_to_text: with multiple_inputs the choices are the contexts and "
                                "doc_to_continuation the text scored after each", Options::line_of(text));
      continuation_ = template_at(required("doc_to_continuation"), "doc_to_continuation");
    } else {
      inputs_ = template_list(required("doc_to_text"), "doc_to_text");
    }
    target_ = template_at(required("doc_to_target"), "doc_to_target");
    if (type_ == OutputType::Generate) {
      if (inputs_.size() != 1)
        throw InputError(file_, "doc_to_text: a generate prompt is one template", Options::line_of(o.raw("doc_to_text")));
      target_delimiter_ = o.get<std::string>("target_delimiter", " ");
      train_on_inputs_ = o.get<bool>("train_on_inputs", false);
      until_ = string_list_option(o, "until", {});
      max_new_tokens_ = o.get<int64_t>("max_new_tokens", 32);
      if (max_new_tokens_ < 1)
        throw InputError(file_, "max_new_tokens must be at least 1", Options::line_of(o.raw("max_new_tokens")));
      if (YAML::Node pattern = o.raw("answer_regex"); pattern && !pattern.IsNull()) {
        try {
          answer_regex_ = std::regex(pattern.Scalar(), std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          throw InputError(file_, fmt::format("answer_regex: not a regular expression: {}", e.what()),
                           Options::line_of(pattern));
        }
        has_answer_regex_ = true;
      }
      headline_ = "exact_match";
      return;
    }
    if (type_ == OutputType::MultipleChoice) {
      if (!multiple_inputs_ && inputs_.size() != 1)
        throw InputError(file_, "doc_to_text: a multiple_choice context is one template", Options::line_of(o.raw("doc_to_text")));
      YAML::Node choices = required("doc_to_choice");
      choices_ = template_list(choices, "doc_to_choice");
      choice_list_ = !choices.IsSequence();
      if (YAML::Node labels = o.raw("choice_labels"); labels && !labels.IsNull()) {
        if (labels.IsSequence()) choice_labels_ = string_list_option(o, "choice_labels", {});
        else choice_labels_template_ = template_at(labels, "choice_labels");
        has_choice_labels_ = true;
      }
      target_delimiter_ = o.get<std::string>("target_delimiter", " ");
      train_on_inputs_ = o.get<bool>("train_on_inputs", false);
      headline_ = "acc";
      return;
    }
    regression_ = type_ == OutputType::Regression;
    if (!regression_) {
      labels_ = string_list_option(o, "labels", {});
      const long line = Options::line_of(o.raw("labels"));
      if (labels_.size() < 2)
        throw InputError(file_, fmt::format("labels: a classification needs at least two labels, got {}", labels_.size()),
                         line ? line : o.line());
      for (size_t i = 1; i < labels_.size(); ++i)
        if (std::find(labels_.begin(), labels_.begin() + long(i), labels_[i]) != labels_.begin() + long(i))
          throw InputError(file_, fmt::format("labels: '{}' is listed twice", labels_[i]), line);
    }
    auto names = string_list_option(o, "metrics", regression_ ? std::vector<std::string>{"pearson", "spearman"}
                                                              : std::vector<std::string>{"accuracy"});
    const long metrics_line = Options::line_of(o.raw("metrics"));
    for (const auto& m : names) metrics_.push_back(metric_by_name(m, file_, metrics_line));
    if (metrics_.empty()) throw InputError(file_, "metrics: name at least one", metrics_line);
    headline_ = o.get<std::string>("headline", metrics_.front().name);
    if (std::find(names.begin(), names.end(), headline_) == names.end())
      throw InputError(file_, fmt::format("headline: {}", unknown_name_message("metric", headline_, names)),
                       Options::line_of(o.raw("headline")));
  }

  const SplitSource& source_of(const std::string& split) const {
    check_split(split);
    for (const auto& s : sources_)
      if (s.split == split) return s;
    throw std::logic_error("unreachable");
  }

  bool is_eval_split(const std::string& split) const {
    return std::find(eval_splits_.begin(), eval_splits_.end(), split) != eval_splits_.end();
  }

  // Every template's fields must be columns of a tabular split (the target only where it is required).
  void check_columns(const std::string& split, const std::vector<std::string>& columns, const std::string& data_file) const {
    const bool needs_target = split == "train" || is_eval_split(split);
    const auto added = process_docs::added_fields(process_docs_);
    auto check = [&](const TextTemplate& t) {
      for (const auto& field : t.fields())
        if (std::find(columns.begin(), columns.end(), field) == columns.end() &&
            std::find(added.begin(), added.end(), field) == added.end())
          throw InputError(t.file(), fmt::format("{}: unknown field '{}': {} has columns {}{}", t.key(), field, data_file,
                                                 fmt::join(columns, ", "), did_you_mean(field, columns)),
                           t.line());
    };
    for (const auto& t : inputs_) check(t);
    for (const auto& t : choices_) check(t);
    if (!continuation_.empty()) check(continuation_);
    if (!choice_labels_template_.empty()) check(choice_labels_template_);
    if (needs_target && !target_.empty()) check(target_);
  }

  Records read_records(const std::string& split) const {
    const SplitSource& s = source_of(split);
    Records out;
    out.file = s.path.string();
    if (format_ == "tsv" || format_ == "csv") {
      const size_t width = s.header ? 0 : s.columns.size();
      TextTable table = format_ == "tsv" ? read_tsv(s.path, s.header, width) : read_csv(s.path, s.header, width);
      if (!s.header) table.header = s.columns;
      check_columns(split, table.header, out.file);
      out.columns = table.header;
      for (size_t r = 0; r < table.size(); ++r) {
        nlohmann::json row = nlohmann::json::object();
        for (size_t c = 0; c < table.header.size(); ++c) row[table.header[c]] = table.rows[r][c];
        out.rows.push_back(std::move(row));
        out.lines.push_back(table.lines[r]);
      }
    } else if (format_ == "text") {
      std::string text = read_text_file(s.path);
      if (text.empty()) input_error(out.file, "empty file: no text");
      out.rows.push_back({{"text", text}});
      out.lines.push_back(1);
    } else {
      JsonRecords records = format_ == "jsonl" ? read_jsonl(s.path) : read_json_array(s.path);
      out.rows = std::move(records.records);
      out.lines = std::move(records.lines);
    }
    return out;
  }

  static bool has_fields(const nlohmann::json& row, const TextTemplate& t) {
    for (const auto& field : t.fields()) {
      const nlohmann::json* value = find_field(row, field);
      if (value == nullptr || value->is_null()) return false;
    }
    return true;
  }

  static double number(const std::string& text, const std::string& file, long line) {
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size())
      throw InputError(file, fmt::format("doc_to_target: '{}' is not a number", text), line);
    return value;
  }

  std::vector<std::string> choices(const nlohmann::json& row, const std::string& file, long line) const {
    std::vector<std::string> out;
    if (choice_list_) {
      auto list = choices_.at(0).render_list(row, file, line);
      if (!list)
        throw InputError(choices_[0].file(),
                         fmt::format("{}: one template for the choices must be one reference to a list field "
                                     "(\"{{{{choices.text}}}}\"); else give a list of templates",
                                     choices_[0].where()),
                         choices_[0].line());
      out = *list;
    } else {
      for (const auto& t : choices_) out.push_back(t.render(row, file, line));
    }
    if (out.size() < 2) throw InputError(file, fmt::format("{} choices: a multiple_choice record needs two or more", out.size()), line);
    return out;
  }

  // The gold choice: doc_to_target looked up in choice_labels when given, else a 0-based index.
  int64_t gold_index(const nlohmann::json& row, const std::vector<std::string>& choices, const std::string& file,
                     long line) const {
    const std::string target = target_.render(row, file, line);
    if (has_choice_labels_) {
      std::vector<std::string> labels = choice_labels_;
      if (!choice_labels_template_.empty()) {
        auto list = choice_labels_template_.render_list(row, file, line);
        if (!list) throw InputError(file_, "choice_labels: expected a list, or one reference to a list field",
                                    choice_labels_template_.line());
        labels = *list;
      }
      auto it = std::find(labels.begin(), labels.end(), target);
      if (it == labels.end() || size_t(it - labels.begin()) >= choices.size())
        throw InputError(file, fmt::format("doc_to_target '{}' is not one of the choice labels ({})", target,
                                           fmt::join(labels, ", ")),
                         line);
      return int64_t(it - labels.begin());
    }
    char* end = nullptr;
    long index = std::strtol(target.c_str(), &end, 10);
    if (target.empty() || end != target.c_str() + target.size() || index < 0 || size_t(index) >= choices.size())
      throw InputError(file, fmt::format("doc_to_target '{}' is not a choice index 0..{} (or give choice_labels)", target,
                                         choices.size() - 1),
                       line);
    return index;
  }

  std::string file_, sha256_, format_;
  int64_t version_ = 1;
  OutputType type_ = OutputType::Classification;
  fs::path data_dir_;
  std::vector<SplitSource> sources_;
  std::vector<std::string> eval_splits_;
  std::string id_field_;
  std::map<std::string, std::string> prediction_files_;
  std::vector<TextTemplate> inputs_, choices_;
  TextTemplate target_, choice_labels_template_, continuation_;
  bool choice_list_ = false, has_choice_labels_ = false, train_on_inputs_ = false, multiple_inputs_ = false;
  std::string process_docs_;
  std::vector<std::string> choice_labels_;
  std::string target_delimiter_ = " ";
  std::vector<std::string> until_;
  int64_t max_new_tokens_ = 1;
  std::regex answer_regex_;
  bool has_answer_regex_ = false;
  YAML::Node resolved_;
};

}  // namespace

std::unique_ptr<Task> make_file_task(const std::string& text, const std::string& file, const fs::path& base_dir,
                                     Options& entry) {
  return std::make_unique<FileTask>(text, file, base_dir, entry);
}

std::unique_ptr<Task> make_file_task(const fs::path& path, Options& entry) {
  require_regular_file(path);
  return make_file_task(read_text_file(path), path.string(), path.parent_path(), entry);
}

std::string task_file_name(const fs::path& path) {
  require_regular_file(path);
  YAML::Node root;
  try {
    root = YAML::Load(read_text_file(path));
  } catch (const YAML::Exception& e) {
    throw InputError(path.string(), "invalid YAML: " + e.msg, e.mark.line + 1);
  }
  if (!root.IsMap() || !root["task"] || !root["task"].IsScalar())
    throw InputError(path.string(), "a task file names its task: `task: my_task`");
  return root["task"].Scalar();
}

void builtin::add_shipped_tasks(std::map<std::string, TaskFactory>& registry) {
  for (const auto& [file, text] : shipped_task_files()) {
    YAML::Node root = YAML::Load(text);
    const std::string name = root["task"].Scalar();
    const std::string* body = &text;
    const std::string source = file;
    registry[name] = [body, source](Options& entry) { return make_file_task(*body, source, fs::path(), entry); };
  }
}

}  // namespace peftlab
