#include "core/token_decoders.h"

#include "core/byte_level.h"
#include "core/unicode_text.h"

namespace peftlab {

std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  std::string out;
  size_t last = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, last)) {
    out.append(text, last, at - last);
    out += to;
    last = at + from.size();
  }
  out.append(text, last, std::string::npos);
  return out;
}

void ByteLevelDecoder::decode(std::vector<std::string>& tokens) const {
  std::string bytes, token_bytes;
  for (const auto& token : tokens) bytes += byte_level_to_bytes(token, token_bytes) ? token_bytes : token;
  tokens = {to_valid_utf8(bytes)};
}

void ReplaceDecoder::decode(std::vector<std::string>& tokens) const {
  for (auto& token : tokens) token = replace_all(token, pattern_, content_);
}

namespace {

// The byte of a "<0xNN>" token, or -1.
int fallback_byte(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(token[3]), lo = hex(token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

void ByteFallbackDecoder::decode(std::vector<std::string>& tokens) const {
  std::vector<std::string> out;
  std::string pending;
  size_t pending_tokens = 0;
  auto flush = [&] {
    if (pending_tokens == 0) return;
    if (is_valid_utf8(pending)) {
      out.push_back(pending);
    } else {
      for (size_t i = 0; i < pending_tokens; ++i) out.push_back("\xEF\xBF\xBD");
    }
    pending.clear();
    pending_tokens = 0;
  };
  for (const auto& token : tokens) {
    const int byte = fallback_byte(token);
    if (byte >= 0) {
      pending += static_cast<char>(byte);
      ++pending_tokens;
    } else {
      flush();
      out.push_back(token);
    }
  }
  flush();
  tokens = std::move(out);
}

void FuseDecoder::decode(std::vector<std::string>& tokens) const {
  std::string joined;
  for (const auto& token : tokens) joined += token;
  tokens = {joined};
}

void StripDecoder::decode(std::vector<std::string>& tokens) const {
  for (auto& token : tokens) {
    for (int i = 0; i < start_ && token.compare(0, content_.size(), content_) == 0 && !content_.empty(); ++i)
      token.erase(0, content_.size());
    for (int i = 0; i < stop_ && !content_.empty() && token.size() >= content_.size() &&
                    token.compare(token.size() - content_.size(), content_.size(), content_) == 0;
         ++i)
      token.erase(token.size() - content_.size());
  }
}

void WordPieceDecoder::decode(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string& token = tokens[i];
    if (i > 0) {
      if (token.compare(0, prefix_.size(), prefix_) == 0)
        token.erase(0, prefix_.size());
      else
        token = " " + token;
    }
    if (cleanup_) {
      static const std::pair<const char*, const char*> kCleanups[] = {
          {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
          {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
      for (const auto& [from, to] : kCleanups) token = replace_all(token, from, to);
    }
  }
}

void MetaspaceDecoder::decode(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = replace_all(tokens[i], replacement_, " ");
    if (i == 0 && prepended_ && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
  }
}

}  // namespace peftlab
