// UTF-8 text helpers over ICU: validity, code points, Unicode normalization forms, character categories.
#pragma once

#include <string>
#include <vector>

namespace peftlab {

bool is_valid_utf8(const std::string& text);
// `text` with each byte that does not start a valid UTF-8 sequence replaced by U+FFFD.
std::string to_valid_utf8(const std::string& text);

// Code points of valid UTF-8 text, and back.
std::vector<char32_t> code_points(const std::string& text);
std::string utf8_of(char32_t code_point);
std::string utf8_of(const std::vector<char32_t>& code_points);
// Byte length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
size_t utf8_sequence_length(unsigned char lead);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize_unicode(const std::string& text, NormalForm form);
// Full Unicode lower-casing (root locale): one code point may become several.
std::string to_lower_unicode(const std::string& text);
// NFD, then every nonspacing mark (category Mn) removed.
std::string strip_accents(const std::string& text);

// General categories.
bool is_control_char(char32_t c);       // Cc, Cf, Cn, Co, Cs
bool is_space_separator(char32_t c);    // Zs
bool is_punctuation_char(char32_t c);   // Pc, Pd, Ps, Pe, Pi, Pf, Po
bool is_alphanumeric_char(char32_t c);  // L*, N*
bool is_whitespace_char(char32_t c);    // the White_Space property
bool is_nonspacing_mark(char32_t c);    // Mn
bool is_numeric_char(char32_t c);       // Nd, Nl, No

}  // namespace peftlab
