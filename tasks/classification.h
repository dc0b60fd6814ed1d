// Sequence classification and regression over one or two texts: the shared part of GLUE and user-defined
// tasks. Decoder input: BOS, then the texts' tokens joined by the tokens of "\n". Encoder input (BERT,
// RoBERTa; set_template_inputs): the tokenizer's special-token template, [CLS] A [SEP] B [SEP] or
// <s> A </s></s> B </s>, with its token type ids. Either is cut to max_seq_len by removing tokens from the end
// of the longest text first (Hugging Face's "longest_first"), so a short hypothesis after a long premise
// survives.
#pragma once

#include <string>
#include <vector>

#include "core/text_tables.h"
#include "tasks/task.h"

namespace peftlab {

class SentenceTask : public Task {
 public:
  TaskKind kind() const override { return regression_ ? TaskKind::Regression : TaskKind::Classification; }
  std::vector<std::string> label_names() const override { return labels_; }
  std::vector<TokenizedExample> tokenize(const std::string& split, const std::vector<Example>& examples,
                                         const Tokenizer& tokenizer) const override;
  std::vector<Metric> metrics(const std::string& split) const override { return metrics_; }
  std::string headline_metric() const override { return headline_; }
  // Inputs built with the tokenizer's special-token template and token type ids (encoders) instead of BOS +
  // texts joined by newline (decoders). Set from the model family before tokenising.
  void set_template_inputs(bool on) { template_inputs_ = on; }
  bool template_inputs() const { return template_inputs_; }

 protected:
  // The index of label text `text` among labels_; InputError naming file:line when it is not one.
  int64_t label_index(const std::string& text, const std::string& file, long line) const;
  // Examples from table rows: `text_columns` (1 or 2), `label_column` (-1: unlabelled), `id_column` (-1: the
  // row number from 0).
  std::vector<Example> examples_from_table(const TextTable& table, const std::vector<size_t>& text_columns,
                                           long label_column, long id_column) const;
  std::string sentence_format_options() const;

  bool regression_ = false;
  bool template_inputs_ = false;
  std::vector<std::string> labels_;
  std::vector<Metric> metrics_;
  std::string headline_;
};

// The token ids of one classification input (exposed for tests): BOS + texts joined by `separator`
// ids, longest-first truncation to max_len.
// Removes tokens from the end of the longest segment (the first of equal ones) until all fit in `budget`.
void truncate_longest_first(std::vector<std::vector<int32_t>>& segments, int64_t budget);

std::vector<int32_t> join_and_truncate(std::vector<std::vector<int32_t>> segments,
                                       const std::vector<int32_t>& separator, int32_t bos, int64_t max_len);

// One classification input through the tokenizer's template (one text: `single`, two: `pair`): the texts cut
// longest-first so that texts and special tokens fit in max_len; ids and token type ids.
Encoding template_and_truncate(std::vector<std::vector<int32_t>> segments, const SpecialTokenTemplate& tokens,
                               int64_t max_len);

}  // namespace peftlab
