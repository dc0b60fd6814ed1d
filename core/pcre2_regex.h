// A compiled PCRE2 regex over UTF-8 text (UTF and UCP: \p{L}, \s, \w are Unicode's).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace peftlab {

class Pcre2Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message when `pattern` does not compile.
  explicit Pcre2Regex(const std::string& pattern);

  // Byte ranges [begin, end) of the successive non-overlapping matches in valid UTF-8 text; an empty match
  // moves on by one character.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<Compiled> compiled_;
};

// `text` as a regex matching itself literally.
std::string regex_escape(const std::string& text);

}  // namespace peftlab
