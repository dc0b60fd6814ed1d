#include "core/byte_level.h"

#include <array>
#include <unordered_map>

#include "core/unicode_text.h"

namespace peftlab {

namespace {

struct ByteAlphabet {
  std::array<std::string, 256> char_of_byte;
  std::unordered_map<char32_t, unsigned char> byte_of_char;

  ByteAlphabet() {
    auto stands_for_itself = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = stands_for_itself(b) ? static_cast<char32_t>(b) : next++;
      char_of_byte[b] = utf8_of(c);
      byte_of_char[c] = static_cast<unsigned char>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

std::string bytes_to_byte_level(const std::string& bytes) {
  const ByteAlphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) out += a.char_of_byte[static_cast<unsigned char>(b)];
  return out;
}

bool byte_level_to_bytes(const std::string& text, std::string& bytes) {
  const ByteAlphabet& a = alphabet();
  bytes.clear();
  for (char32_t c : code_points(text)) {
    auto it = a.byte_of_char.find(c);
    if (it == a.byte_of_char.end()) return false;
    bytes += static_cast<char>(it->second);
  }
  return true;
}

}  // namespace peftlab
