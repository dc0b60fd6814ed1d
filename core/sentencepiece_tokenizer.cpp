#include "core/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <mutex>

#include "core/checksum.h"
#include "core/errors.h"
#include "core/tokenizer_config.h"

namespace peftlab {

namespace fs = std::filesystem;

// The shim's functions, resolved once per process.
struct SentencePieceTokenizer::Shim {
  void* library = nullptr;
  void* (*load)(const char*, char*, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  int (*vocab_size)(void*) = nullptr;
  int (*bos_id)(void*) = nullptr;
  int (*eos_id)(void*) = nullptr;
  int (*pad_id)(void*) = nullptr;
  int (*encode)(void*, const char*, size_t, int*, int) = nullptr;
  long (*decode)(void*, const int*, int, char*, size_t) = nullptr;
  long (*id_to_piece)(void*, int, char*, size_t) = nullptr;
};

namespace {

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : exe.parent_path();
}

// Where the shim may be: $PEFTLAB_SENTENCEPIECE_SHIM, beside the executable, ../lib from it (installed),
// or the build folder it was built in.
std::vector<fs::path> shim_candidates() {
  const char* name = "libpeftlab_sentencepiece_shim.so";
  std::vector<fs::path> out;
  if (const char* env = std::getenv("PEFTLAB_SENTENCEPIECE_SHIM")) out.emplace_back(env);
  out.push_back(executable_dir() / name);
  out.push_back(executable_dir() / ".." / "lib" / name);
  out.emplace_back(PEFTLAB_SHIM_BUILD_PATH);
  return out;
}

template <typename F>
void resolve(void* library, const char* symbol, F& out) {
  out = reinterpret_cast<F>(dlsym(library, symbol));
  if (out == nullptr) throw std::runtime_error(std::string("sentencepiece shim lacks ") + symbol);
}

// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND). AddressSanitizer's dlopen interceptor refuses RTLD_DEEPBIND
// outright (google/sanitizers#611: a deep-bound library could bind malloc/free to libc instead of ASan).
// That cannot happen here: in a sanitized build the shim itself is linked with -fsanitize=address, so
// libasan comes first among its own dependencies and its deep-bound scope resolves malloc, free, new and
// delete to ASan (checked with LD_DEBUG=bindings). So a sanitized build calls libc's dlopen directly, then
// opens the loaded library once more through the interceptor without RTLD_DEEPBIND (RTLD_NOLOAD: no new
// load) so that ASan still learns about the new module.
void* dlopen_deepbind(const char* path) {
  constexpr int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#if defined(__SANITIZE_ADDRESS__)
  using DlopenFn = void* (*)(const char*, int);
  static DlopenFn libc_dlopen = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    return libc == nullptr ? nullptr : reinterpret_cast<DlopenFn>(dlsym(libc, "dlopen"));
  }();
  if (libc_dlopen == nullptr) return dlopen(path, flags);
  void* library = libc_dlopen(path, flags);
  if (library != nullptr) {
    if (void* again = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) dlclose(again);
  }
  return library;
#else
  return dlopen(path, flags);
#endif
}

std::shared_ptr<SentencePieceTokenizer::Shim> load_shim_once() {
  static std::mutex mutex;
  static std::shared_ptr<SentencePieceTokenizer::Shim> shim;
  std::lock_guard<std::mutex> lock(mutex);
  if (shim) return shim;
  std::string tried;
  void* library = nullptr;
  for (const auto& candidate : shim_candidates()) {
    if (!fs::exists(candidate)) continue;
    library = dlopen_deepbind(candidate.c_str());
    if (library != nullptr) break;
    tried += std::string(" ") + dlerror();
  }
  if (library == nullptr) throw std::runtime_error("cannot load the SentencePiece shim library" + tried);
  auto s = std::make_shared<SentencePieceTokenizer::Shim>();
  s->library = library;
  resolve(library, "peftlab_spm_load", s->load);
  resolve(library, "peftlab_spm_free", s->free);
  resolve(library, "peftlab_spm_vocab_size", s->vocab_size);
  resolve(library, "peftlab_spm_bos_id", s->bos_id);
  resolve(library, "peftlab_spm_eos_id", s->eos_id);
  resolve(library, "peftlab_spm_pad_id", s->pad_id);
  resolve(library, "peftlab_spm_encode", s->encode);
  resolve(library, "peftlab_spm_decode", s->decode);
  resolve(library, "peftlab_spm_id_to_piece", s->id_to_piece);
  shim = s;
  return shim;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& model_file, const TokenizerConfig* config) {
  path_ = model_file;
  format_ = "sentencepiece";
  if (!fs::exists(model_file)) throw InputError(model_file.string(), "no such file");
  if (fs::is_directory(model_file)) throw InputError(model_file.string(), "is a directory, not a SentencePiece .model file");
  shim_ = load_shim_once();
  char err[512] = {0};
  handle_ = shim_->load(model_file.c_str(), err, sizeof(err));
  if (handle_ == nullptr) throw InputError(model_file.string(), std::string("not a SentencePiece model: ") + err);
  vocab_size_ = shim_->vocab_size(handle_);
  bos_id_ = shim_->bos_id(handle_);
  eos_id_ = shim_->eos_id(handle_);
  pad_id_ = shim_->pad_id(handle_);
  for (int id = 0; id < vocab_size_; ++id) ids_by_piece_.emplace(piece(id), id);
  checksum_ = sha256_file(model_file);
  // Llama's convention: BOS before every text, no EOS.
  adds_bos_ = bos_id_ >= 0;
  if (config != nullptr) {
    apply_config_specials(*config, *this, bos_id_, eos_id_, pad_id_, adds_bos_, adds_eos_);
    checksum_ = sha256_bytes(checksum_ + config->checksum);
  }
  set_template_from_bos_eos();
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_ != nullptr) shim_->free(handle_);
}

int SentencePieceTokenizer::token_id(const std::string& piece) const {
  auto it = ids_by_piece_.find(piece);
  return it == ids_by_piece_.end() ? -1 : it->second;
}

std::vector<int> SentencePieceTokenizer::encode_text(const std::string& text) const {
  std::vector<int> ids(text.size() + 16);
  int n = shim_->encode(handle_, text.data(), text.size(), ids.data(), static_cast<int>(ids.size()));
  if (n < 0) throw std::runtime_error("SentencePiece failed to encode text");
  if (n > static_cast<int>(ids.size())) {
    ids.resize(n);
    shim_->encode(handle_, text.data(), text.size(), ids.data(), n);
  }
  ids.resize(n);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
  std::string text(ids.size() * 8 + 16, '\0');
  long n = shim_->decode(handle_, ids.data(), static_cast<int>(ids.size()), text.data(), text.size());
  if (n < 0) throw std::runtime_error("SentencePiece failed to decode ids");
  if (n > static_cast<long>(text.size())) {
    text.resize(n);
    shim_->decode(handle_, ids.data(), static_cast<int>(ids.size()), text.data(), text.size());
  }
  text.resize(n);
  return text;
}

std::string SentencePieceTokenizer::piece(int id) const {
  char buffer[256];
  long n = shim_->id_to_piece(handle_, id, buffer, sizeof(buffer));
  if (n < 0) throw std::out_of_range("token id out of range");
  return std::string(buffer, static_cast<size_t>(std::min<long>(n, sizeof(buffer))));
}

}  // namespace peftlab
