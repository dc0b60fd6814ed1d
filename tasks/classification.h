// Sequence classification and regression over one or two texts: the shared part of GLUE and user-defined
// tasks. Input: BOS, then the texts' tokens joined by the tokens of "\n", cut to max_seq_len by removing
// tokens from the end of the longest text first (Hugging Face's "longest_first"), so a short hypothesis after
// a long premise survives. The head reads the hidden state of the last real token (Batch::last_index).
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

 protected:
  // The index of label text `text` among labels_; InputError naming file:line when it is not one.
  int64_t label_index(const std::string& text, const std::string& file, long line) const;
  // Examples from table rows: `text_columns` (1 or 2), `label_column` (-1: unlabelled), `id_column` (-1: the
  // row number from 0).
  std::vector<Example> examples_from_table(const TextTable& table, const std::vector<size_t>& text_columns,
                                           long label_column, long id_column) const;
  std::string sentence_format_options() const;

  bool regression_ = false;
  std::vector<std::string> labels_;
  std::vector<Metric> metrics_;
  std::string headline_;
};

// The token ids of one classification input (exposed for tests): BOS + texts joined by `separator`
// ids, longest-first truncation to max_len.
std::vector<int32_t> join_and_truncate(std::vector<std::vector<int32_t>> segments,
                                       const std::vector<int32_t>& separator, int32_t bos, int64_t max_len);

}  // namespace peftlab
