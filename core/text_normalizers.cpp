#include "core/text_normalizers.h"

namespace peftlab {

std::string StripAccentsNormalizer::normalize(const std::string& text) const {
  std::string out;
  for (char32_t c : code_points(text))
    if (!is_nonspacing_mark(c)) out += utf8_of(c);
  return out;
}

std::string ReplaceNormalizer::normalize(const std::string& text) const {
  std::string out;
  size_t last = 0;
  for (const auto& [begin, end] : regex_.find_all(text)) {
    out.append(text, last, begin - last);
    out += content_;
    last = end;
  }
  out.append(text, last, std::string::npos);
  return out;
}

std::string StripNormalizer::normalize(const std::string& text) const {
  std::vector<char32_t> cps = code_points(text);
  size_t begin = 0, end = cps.size();
  if (left_)
    while (begin < end && is_whitespace_char(cps[begin])) ++begin;
  if (right_)
    while (end > begin && is_whitespace_char(cps[end - 1])) --end;
  return utf8_of(std::vector<char32_t>(cps.begin() + begin, cps.begin() + end));
}

bool is_cjk_ideograph(char32_t c) {
  // The blocks BERT's tokenizer names (CJK Unified Ideographs, Extensions A-E, Compatibility Ideographs
  // and their Supplement).
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_bert_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || is_space_separator(c);
}

bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return is_punctuation_char(c);
}

std::string BertNormalizer::normalize(const std::string& text) const {
  std::vector<char32_t> cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : code_points(text)) {
    if (clean_text_) {
      if (c == 0 || c == 0xFFFD) continue;
      if (c != '\t' && c != '\n' && c != '\r' && is_control_char(c)) continue;
      if (is_bert_whitespace(c)) c = ' ';
    }
    if (handle_chinese_chars_ && is_cjk_ideograph(c)) {
      cleaned.push_back(' ');
      cleaned.push_back(c);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(c);
    }
  }
  std::string out = utf8_of(cleaned);
  if (strip_accents_) out = StripAccentsNormalizer().normalize(normalize_unicode(out, NormalForm::NFD));
  if (lowercase_) out = to_lower_unicode(out);
  return out;
}

std::string SequenceNormalizer::normalize(const std::string& text) const {
  std::string out = text;
  for (const auto& step : steps_) out = step->normalize(out);
  return out;
}

}  // namespace peftlab
