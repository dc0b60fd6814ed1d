// GPT-2's byte-level alphabet: each byte stands for one printable character, so that a BPE vocabulary over
// characters covers every byte string (the bytes of '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves,
// the other 68 for U+0100 upwards in byte order).
#pragma once

#include <string>

namespace peftlab {

// The characters (UTF-8) standing for each byte of `bytes`.
std::string bytes_to_byte_level(const std::string& bytes);
// Back: false when `text` holds a character that stands for no byte.
bool byte_level_to_bytes(const std::string& text, std::string& bytes);

}  // namespace peftlab
