// Errors that reach the user. Bad input (a file, a spec, a checkpoint, a command line) is an InputError:
// the CLI prints it as one line `error: <file>[:<line>]: <what>` and exits with status 2. Anything else that
// escapes is an internal failure (status 1).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace peftlab {

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string what, long line = 0)
      : std::runtime_error(format_message(file, what, line)),
        file_(std::move(file)), what_(std::move(what)), line_(line) {}

  const std::string& file() const { return file_; }
  const std::string& problem() const { return what_; }
  long line() const { return line_; }

 private:
  static std::string format_message(const std::string& file, const std::string& what, long line) {
    if (line > 0) return fmt::format("{}:{}: {}", file, line, what);
    return fmt::format("{}: {}", file, what);
  }
  std::string file_, what_;
  long line_;
};

// Throws InputError(file, fmt::format(...)) — the one-liner used by every validating reader.
template <typename... Args>
[[noreturn]] void input_error(const std::string& file, fmt::format_string<Args...> f, Args&&... args) {
  throw InputError(file, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace peftlab
