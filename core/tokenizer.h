// SentencePiece tokenizer (.model files), through the dlopen'ed shim (see sentencepiece_shim.cpp).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace peftlab {

class Tokenizer {
 public:
  // Throws InputError naming the file when it is missing or not a SentencePiece model.
  explicit Tokenizer(const std::filesystem::path& model_file);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`, without BOS/EOS; add them with the flags.
  std::vector<int> encode(const std::string& text, bool add_bos = false, bool add_eos = false) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;

  int vocab_size() const { return vocab_size_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  // SentencePiece models often have no pad id (-1); callers pad with pad_or_eos_id().
  int pad_id() const { return pad_id_; }
  int pad_or_eos_id() const { return pad_id_ >= 0 ? pad_id_ : eos_id_; }
  const std::filesystem::path& path() const { return path_; }
  // SHA-256 of the model file, for cache keys and provenance.
  const std::string& checksum() const { return checksum_; }

 // The dlopen'ed shim's function table (defined in tokenizer.cpp).
  struct Shim;

 private:
  std::shared_ptr<Shim> shim_;
  void* handle_ = nullptr;
  std::filesystem::path path_;
  std::string checksum_;
  int vocab_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

}  // namespace peftlab
