#include "core/pre_tokenizers.h"

#include <algorithm>

#include "core/byte_level.h"
#include "core/text_normalizers.h"
#include "core/unicode_text.h"

namespace peftlab {

std::vector<std::string> split_at(const std::string& text, const std::vector<std::pair<size_t, size_t>>& delimiters,
                                  DelimiterBehavior behavior, bool invert) {
  // The text as consecutive parts, each a delimiter or not.
  struct Part {
    size_t begin, end;
    bool delimiter;
  };
  std::vector<Part> parts;
  size_t last = 0;
  for (const auto& [begin, end] : delimiters) {
    if (begin > last) parts.push_back({last, begin, invert});
    parts.push_back({begin, end, !invert});
    last = end;
  }
  if (last < text.size()) parts.push_back({last, text.size(), invert});

  std::vector<std::string> out;
  if (behavior == DelimiterBehavior::MergedWithNext) {
    // From the end: a delimiter joins the part after it unless that part is a delimiter too.
    bool next_delimiter = false;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      std::string piece = text.substr(it->begin, it->end - it->begin);
      if (it->delimiter && !next_delimiter && !out.empty())
        out.back() = piece + out.back();
      else
        out.push_back(piece);
      next_delimiter = it->delimiter;
    }
    std::reverse(out.begin(), out.end());
  } else {
    bool previous_delimiter = false;
    for (const Part& part : parts) {
      std::string piece = text.substr(part.begin, part.end - part.begin);
      const bool join = (behavior == DelimiterBehavior::MergedWithPrevious && part.delimiter && !previous_delimiter) ||
                        (behavior == DelimiterBehavior::Contiguous && part.delimiter && previous_delimiter);
      if (behavior == DelimiterBehavior::Removed && part.delimiter) {
        // dropped
      } else if (join && !out.empty()) {
        out.back() += piece;
      } else {
        out.push_back(piece);
      }
      previous_delimiter = part.delimiter;
    }
  }
  std::vector<std::string> nonempty;
  for (auto& piece : out)
    if (!piece.empty()) nonempty.push_back(std::move(piece));
  return nonempty;
}

namespace {

// Applies `cut` to every piece, keeping the order.
template <typename Cut>
void refine(std::vector<std::string>& pieces, Cut cut) {
  std::vector<std::string> out;
  for (const auto& piece : pieces)
    for (auto& part : cut(piece))
      if (!part.empty()) out.push_back(std::move(part));
  pieces = std::move(out);
}

}  // namespace

const char* ByteLevelPreTokenizer::gpt2_pattern() {
  return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), use_regex_(use_regex), regex_(gpt2_pattern()) {}

void ByteLevelPreTokenizer::split(std::vector<std::string>& pieces) const {
  refine(pieces, [&](const std::string& piece) {
    std::string text = piece;
    if (add_prefix_space_ && (text.empty() || text[0] != ' ')) text = " " + text;
    std::vector<std::string> parts =
        use_regex_ ? split_at(text, regex_.find_all(text), DelimiterBehavior::Isolated, false)
                   : std::vector<std::string>{text};
    for (auto& part : parts) part = bytes_to_byte_level(part);
    return parts;
  });
}

void RegexSplitPreTokenizer::split(std::vector<std::string>& pieces) const {
  refine(pieces, [&](const std::string& piece) { return split_at(piece, regex_.find_all(piece), behavior_, invert_); });
}

namespace {

// Byte ranges of the characters of `text` for which `is` holds.
template <typename Is>
std::vector<std::pair<size_t, size_t>> char_ranges(const std::string& text, Is is) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence_length(static_cast<unsigned char>(text[i]));
    const std::vector<char32_t> c = code_points(text.substr(i, n));
    if (!c.empty() && is(c[0])) out.emplace_back(i, i + n);
    i += n;
  }
  return out;
}

// Consecutive ranges joined.
std::vector<std::pair<size_t, size_t>> joined(const std::vector<std::pair<size_t, size_t>>& ranges) {
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& r : ranges) {
    if (!out.empty() && out.back().second == r.first)
      out.back().second = r.second;
    else
      out.push_back(r);
  }
  return out;
}

}  // namespace

void BertPreTokenizer::split(std::vector<std::string>& pieces) const {
  refine(pieces, [](const std::string& piece) {
    return split_at(piece, char_ranges(piece, [](char32_t c) { return is_whitespace_char(c) || is_bert_whitespace(c); }),
                    DelimiterBehavior::Removed, false);
  });
  refine(pieces, [](const std::string& piece) {
    return split_at(piece, char_ranges(piece, is_bert_punctuation), DelimiterBehavior::Isolated, false);
  });
}

void DigitsPreTokenizer::split(std::vector<std::string>& pieces) const {
  refine(pieces, [&](const std::string& piece) {
    auto digits = char_ranges(piece, is_numeric_char);
    return split_at(piece, individual_ ? digits : joined(digits), DelimiterBehavior::Isolated, false);
  });
}

void MetaspacePreTokenizer::split(std::vector<std::string>& pieces) const {
  bool first = true;
  refine(pieces, [&](const std::string& piece) {
    std::string text;
    for (char c : piece) {
      if (c == ' ')
        text += replacement_;
      else
        text += c;
    }
    const bool prepend = prepend_scheme_ == "always" || (prepend_scheme_ == "first" && first);
    first = false;
    if (prepend && text.compare(0, replacement_.size(), replacement_) != 0) text = replacement_ + text;
    if (!split_) return std::vector<std::string>{text};
    std::vector<std::pair<size_t, size_t>> marks;
    for (size_t at = text.find(replacement_); at != std::string::npos; at = text.find(replacement_, at + replacement_.size()))
      marks.emplace_back(at, at + replacement_.size());
    return split_at(text, marks, DelimiterBehavior::MergedWithNext, false);
  });
}

}  // namespace peftlab
