// Pre-tokenizers of a tokenizer pipeline (Hugging Face tokenizer.json "pre_tokenizer"): they cut normalized
// text into the words the model tokenizes one by one. Each refines a list of pieces; empty pieces are dropped.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/pcre2_regex.h"

namespace peftlab {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void split(std::vector<std::string>& pieces) const = 0;
};

// What a split does with the delimiters it finds (Hugging Face's SplitDelimiterBehavior).
enum class DelimiterBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Cuts `text` at the byte ranges `delimiters` (in order, not overlapping) as `behavior` says; with `invert`, the
// ranges are what is kept and the text between them the delimiters.
std::vector<std::string> split_at(const std::string& text, const std::vector<std::pair<size_t, size_t>>& delimiters,
                                  DelimiterBehavior behavior, bool invert);

// GPT-2's: an optional space before the text, cut by GPT-2's regex (`use_regex`), then each byte written in the
// byte-level alphabet (core/byte_level.h).
class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  void split(std::vector<std::string>& pieces) const override;
  static const char* gpt2_pattern();

 private:
  bool add_prefix_space_, use_regex_;
  Pcre2Regex regex_;
};

class RegexSplitPreTokenizer : public PreTokenizer {
 public:
  RegexSplitPreTokenizer(const std::string& regex, DelimiterBehavior behavior, bool invert)
      : regex_(regex), behavior_(behavior), invert_(invert) {}
  void split(std::vector<std::string>& pieces) const override;

 private:
  Pcre2Regex regex_;
  DelimiterBehavior behavior_;
  bool invert_;
};

// BERT's: whitespace removed, each punctuation character its own piece.
class BertPreTokenizer : public PreTokenizer {
 public:
  void split(std::vector<std::string>& pieces) const override;
};

// Runs of digits set apart, or each digit (`individual`).
class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void split(std::vector<std::string>& pieces) const override;

 private:
  bool individual_;
};

// SentencePiece's: spaces become `replacement`, which is put before the text (prepend scheme "always", or
// "first" for the first piece only) and starts each new piece when `split`.
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, std::string prepend_scheme, bool split)
      : replacement_(std::move(replacement)), prepend_scheme_(std::move(prepend_scheme)), split_(split) {}
  void split(std::vector<std::string>& pieces) const override;

 private:
  std::string replacement_, prepend_scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void split(std::vector<std::string>& pieces) const override {
    for (const auto& step : steps_) step->split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace peftlab
