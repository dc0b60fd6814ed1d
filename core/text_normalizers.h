// Normalizers of a tokenizer pipeline (Hugging Face tokenizer.json "normalizer"): text in, text out, applied
// to the text between added tokens before pre-tokenization.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/pcre2_regex.h"
#include "core/unicode_text.h"

namespace peftlab {

class TextNormalizer {
 public:
  virtual ~TextNormalizer() = default;
  virtual std::string normalize(const std::string& text) const = 0;
};

class UnicodeNormalizer : public TextNormalizer {  // NFC, NFD, NFKC, NFKD
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  std::string normalize(const std::string& text) const override { return normalize_unicode(text, form_); }

 private:
  NormalForm form_;
};

class LowercaseNormalizer : public TextNormalizer {
 public:
  std::string normalize(const std::string& text) const override { return to_lower_unicode(text); }
};

class StripAccentsNormalizer : public TextNormalizer {  // removes nonspacing marks (after an NFD normalizer)
 public:
  std::string normalize(const std::string& text) const override;
};

class PrependNormalizer : public TextNormalizer {  // `prefix` before non-empty text
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(const std::string& text) const override { return text.empty() ? text : prefix_ + text; }

 private:
  std::string prefix_;
};

// Every match of a regex (a literal string is escaped into one) replaced by `content`.
class ReplaceNormalizer : public TextNormalizer {
 public:
  ReplaceNormalizer(const std::string& regex, std::string content) : regex_(regex), content_(std::move(content)) {}
  std::string normalize(const std::string& text) const override;

 private:
  Pcre2Regex regex_;
  std::string content_;
};

class StripNormalizer : public TextNormalizer {  // whitespace off the left and/or right end
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(const std::string& text) const override;

 private:
  bool left_, right_;
};

// BERT's text cleanup: control characters removed and whitespace made ' ', CJK ideographs set apart with
// spaces, accents stripped, lower-cased — each step as configured.
class BertNormalizer : public TextNormalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text), handle_chinese_chars_(handle_chinese_chars), strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  std::string normalize(const std::string& text) const override;

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

class SequenceNormalizer : public TextNormalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<TextNormalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(const std::string& text) const override;

 private:
  std::vector<std::unique_ptr<TextNormalizer>> steps_;
};

// BERT's "Chinese character": a code point in the CJK Unified Ideographs blocks (not Hangul, Hiragana, Katakana).
bool is_cjk_ideograph(char32_t c);
// BERT's whitespace: ' ', '\t', '\n', '\r' and category Zs.
bool is_bert_whitespace(char32_t c);
// BERT's punctuation: ASCII symbols that are not letters, digits or space, and category P*.
bool is_bert_punctuation(char32_t c);

}  // namespace peftlab
