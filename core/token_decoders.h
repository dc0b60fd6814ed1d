// Decoders of a tokenizer pipeline (Hugging Face tokenizer.json "decoder"): they turn the tokens of ids back
// into text. Each rewrites the list of token strings; the result is their concatenation.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace peftlab {

class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  virtual void decode(std::vector<std::string>& tokens) const = 0;
};

// Byte-level tokens back to bytes, all joined into one text (bytes that are not valid UTF-8 read as U+FFFD);
// a token with a character outside the byte-level alphabet (an added token's raw text) is taken as it is.
class ByteLevelDecoder : public TokenDecoder {
 public:
  void decode(std::vector<std::string>& tokens) const override;
};

// Each occurrence of `pattern` (a literal string) in each token replaced by `content`.
class ReplaceDecoder : public TokenDecoder {
 public:
  ReplaceDecoder(std::string pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode(std::vector<std::string>& tokens) const override;

 private:
  std::string pattern_, content_;
};

// Runs of <0xNN> tokens back to their bytes: the text they spell, or one U+FFFD per byte when not valid UTF-8.
class ByteFallbackDecoder : public TokenDecoder {
 public:
  void decode(std::vector<std::string>& tokens) const override;
};

class FuseDecoder : public TokenDecoder {  // all tokens joined into one
 public:
  void decode(std::vector<std::string>& tokens) const override;
};

// Up to `start` leading and `stop` trailing copies of `content` off each token.
class StripDecoder : public TokenDecoder {
 public:
  StripDecoder(std::string content, int start, int stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode(std::vector<std::string>& tokens) const override;

 private:
  std::string content_;
  int start_, stop_;
};

// WordPiece: `prefix` off continuation tokens, a space before the others; with `cleanup`, the spaces before
// punctuation and English contractions that BERT's tokenization put there are taken out.
class WordPieceDecoder : public TokenDecoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode(std::vector<std::string>& tokens) const override;

 private:
  std::string prefix_;
  bool cleanup_;
};

// SentencePiece's metaspace: `replacement` back to spaces, the first token's leading space dropped when one
// was prepended.
class MetaspaceDecoder : public TokenDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepended) : replacement_(std::move(replacement)), prepended_(prepended) {}
  void decode(std::vector<std::string>& tokens) const override;

 private:
  std::string replacement_;
  bool prepended_;
};

class SequenceDecoder : public TokenDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokenDecoder>> steps) : steps_(std::move(steps)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode(tokens);
  }

 private:
  std::vector<std::unique_ptr<TokenDecoder>> steps_;
};

// `text` with every occurrence of `from` replaced by `to`.
std::string replace_all(const std::string& text, const std::string& from, const std::string& to);

}  // namespace peftlab
