// A file that appears at its target complete or not at all: written to a temporary file in the same folder,
// then renamed over the target. Every write is checked, so a full disk (ENOSPC, EFBIG) is an InputError
// naming the target, never a silently short file. Used for safetensors, checkpoints and published run files.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include "core/errors.h"

namespace peftlab {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& target) : target_(target) {
    static std::atomic<unsigned> counter{0};
    temp_ = folder() / fmt::format(".{}.tmp-{}-{}", target.filename().string(), ::getpid(), counter++);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0)
      input_error(target_.string(), "cannot create a temporary file in {}: {}", folder().string(), std::strerror(errno));
  }
  // Without commit() (an error, an exception), the temporary file goes and the target is untouched.
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::uint64_t size) {
    const auto* src = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::write(fd_, src, static_cast<size_t>(std::min<std::uint64_t>(size, 1u << 30)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) input_error(target_.string(), "cannot write: {}", std::strerror(errno));
      src += n;
      size -= static_cast<std::uint64_t>(n);
    }
  }
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

  // Renames the file into place. `durable`: fsync the file and the folder too (survives a power cut).
  void commit(bool durable = true) {
    if (durable && ::fsync(fd_) != 0) input_error(target_.string(), "cannot write (fsync): {}", std::strerror(errno));
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) input_error(target_.string(), "cannot write (close): {}", std::strerror(errno));
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      input_error(target_.string(), "cannot replace: {}", std::strerror(errno));
    committed_ = true;
    if (!durable) return;
    int dir = ::open(folder().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }

 private:
  std::filesystem::path folder() const { return target_.has_parent_path() ? target_.parent_path() : "."; }
  std::filesystem::path target_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace peftlab
