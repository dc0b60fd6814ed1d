// A C interface over SentencePiece, built as its own shared library. SentencePiece links its own protobuf,
// which clashes with libtorch's libprotobuf when both sit in one process (segfault before main), so the
// tokenizer loads this library with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) instead of linking it.
#include <sentencepiece_processor.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {
void copy_error(const std::string& message, char* err, size_t err_len) {
  if (err == nullptr || err_len == 0) return;
  std::strncpy(err, message.c_str(), err_len - 1);
  err[err_len - 1] = '\0';
}
}  // namespace

extern "C" {

void* peftlab_spm_load(const char* path, char* err, size_t err_len) {
  try {
    // Owned until returned: Load() may throw (e.g. a protobuf version check), and the processor must not leak.
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    auto status = sp->Load(path);
    if (!status.ok()) {
      copy_error(status.ToString(), err, err_len);
      return nullptr;
    }
    return sp.release();
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return nullptr;
  }
}

void peftlab_spm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

int peftlab_spm_vocab_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}
int peftlab_spm_bos_id(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->bos_id(); }
int peftlab_spm_eos_id(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->eos_id(); }
int peftlab_spm_pad_id(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->pad_id(); }
int peftlab_spm_unk_id(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->unk_id(); }

// Encodes text into ids; returns the number of ids (which may exceed `capacity`: call again with more
// room), or -1 on failure.
int peftlab_spm_encode(void* handle, const char* text, size_t text_len, int* ids, int capacity) {
  std::vector<int> out;
  auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(std::string(text, text_len), &out);
  if (!status.ok()) return -1;
  for (int i = 0; i < static_cast<int>(out.size()) && i < capacity; ++i) ids[i] = out[i];
  return static_cast<int>(out.size());
}

// Decodes ids into text; returns its length in bytes (which may exceed `capacity`), or -1 on failure.
long peftlab_spm_decode(void* handle, const int* ids, int n, char* text, size_t capacity) {
  std::string out;
  auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Decode(std::vector<int>(ids, ids + n), &out);
  if (!status.ok()) return -1;
  std::memcpy(text, out.data(), out.size() < capacity ? out.size() : capacity);
  return static_cast<long>(out.size());
}

// The piece string of one id (e.g. "▁Once", "<0x0A>"); returns its length, or -1 for an id out of range.
long peftlab_spm_id_to_piece(void* handle, int id, char* text, size_t capacity) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (id < 0 || id >= sp->GetPieceSize()) return -1;
  const std::string& piece = sp->IdToPiece(id);
  std::memcpy(text, piece.data(), piece.size() < capacity ? piece.size() : capacity);
  return static_cast<long>(piece.size());
}

}  // extern "C"
