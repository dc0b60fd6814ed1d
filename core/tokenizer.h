// Tokenizers behind one interface. load_tokenizer reads any of the formats models ship (a SentencePiece
// .model, a Hugging Face tokenizer.json, GPT-2's vocab.json + merges.txt, a tiktoken-format tokenizer.model,
// BERT's vocab.txt) from a file or a model folder; docs/tokenizers.md lists the formats and the rules.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace peftlab {

// Token ids of one text or a text pair with the family's special tokens, and which text each token belongs to
// (0 for the first text and the specials the template gives type 0, 1 for the second).
struct Encoding {
  std::vector<int> ids;
  std::vector<int> type_ids;
};

// Where a family puts its special tokens around one text (`single`) and a text pair (`pair`), as a
// post-processor template: e.g. BERT [CLS] A [SEP] B [SEP], RoBERTa <s> A </s></s> B </s>, Llama <s> A.
struct SpecialTokenTemplate {
  struct Item {
    std::vector<int> special_ids;  // the special token(s) of this item; empty: the text `sequence` here
    int sequence = 0;              // 0 = the first text (A), 1 = the second (B)
    int type_id = 0;
  };
  std::vector<Item> single, pair;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text` without the family's special tokens around it; add BOS/EOS with the flags. Text that
  // is not valid UTF-8 has each bad byte read as U+FFFD.
  std::vector<int> encode(const std::string& text, bool add_bos = false, bool add_eos = false) const;
  // Text of `ids`; special tokens (BOS, EOS, padding, [CLS], ...) give no text.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  // The vocabulary entry of `id` as the file spells it ("Ġthe", "▁the", "##ing", "<0x0A>").
  virtual std::string piece(int id) const = 0;
  // The id of a vocabulary entry or added token spelled `piece`; -1 when there is none.
  virtual int token_id(const std::string& piece) const = 0;

  // Number of ids, added tokens included (one more than the largest id).
  int vocab_size() const { return vocab_size_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  // Many tokenizers have no pad id (-1); callers pad with pad_or_eos_id().
  int pad_id() const { return pad_id_; }
  int pad_or_eos_id() const { return pad_id_ >= 0 ? pad_id_ : eos_id_; }
  // Whether the family puts BOS before (EOS after) a text by default.
  bool adds_bos() const { return adds_bos_; }
  bool adds_eos() const { return adds_eos_; }

  // One text with the family's special tokens, as its post-processor template puts them.
  Encoding encode_with_specials(const std::string& text) const;
  // A text pair with the family's special tokens and token type ids, as its post-processor template puts them.
  Encoding encode_pair(const std::string& first, const std::string& second) const;
  const SpecialTokenTemplate& special_template() const { return template_; }

  // The file read (for a folder, the main file found in it).
  const std::filesystem::path& path() const { return path_; }
  // SHA-256 of the file read; over several files (vocab.json + merges.txt, a tokenizer_config.json), of their
  // names and hashes. For cache keys and provenance.
  const std::string& checksum() const { return checksum_; }
  // The format read, e.g. "sentencepiece", "tokenizer.json", "vocab.json+merges.txt", "tiktoken", "vocab.txt".
  const std::string& format() const { return format_; }

 protected:
  Tokenizer() = default;
  // Ids of valid UTF-8 text, no special tokens added around it.
  virtual std::vector<int> encode_text(const std::string& text) const = 0;
  // The template from bos/eos and adds_bos/adds_eos: [BOS] A [EOS] and [BOS] A [EOS] [BOS] B [EOS], types 0 then 1.
  void set_template_from_bos_eos();

  std::filesystem::path path_;
  std::string checksum_, format_;
  int vocab_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  bool adds_bos_ = false, adds_eos_ = false;
  SpecialTokenTemplate template_;
};

// Reads a tokenizer from a file or a model folder (the folder search is find_tokenizer_file's). Throws
// InputError naming the file when nothing is found or the file is malformed.
std::shared_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& file_or_folder);

// The tokenizer file in a model folder, in this order: tokenizer.json, tokenizer.model, vocab.json (with
// merges.txt beside it), vocab.txt; empty when there is none.
std::filesystem::path find_tokenizer_file(const std::filesystem::path& folder);

}  // namespace peftlab
