// A SentencePiece .model, read through the dlopen'ed shim (core/sentencepiece_shim/): libsentencepiece
// carries its own protobuf, which clashes with libtorch's in one process.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tokenizer.h"

namespace peftlab {

struct TokenizerConfig;

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws InputError naming the file when it is missing or not a SentencePiece model. BOS is added by
  // default when the model has one, unless a tokenizer_config.json says otherwise (`config`, may be null).
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file, const TokenizerConfig* config = nullptr);
  ~SentencePieceTokenizer() override;

  std::string decode(const std::vector<int>& ids) const override;
  std::string piece(int id) const override;
  int token_id(const std::string& piece) const override;

  // The shim's function table (defined in sentencepiece_tokenizer.cpp).
  struct Shim;

 protected:
  std::vector<int> encode_text(const std::string& text) const override;

 private:
  std::shared_ptr<Shim> shim_;
  void* handle_ = nullptr;
  std::unordered_map<std::string, int> ids_by_piece_;
};

}  // namespace peftlab
