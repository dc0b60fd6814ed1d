#include "core/tokenizer.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "core/sentencepiece_tokenizer.h"
#include "tests/test_support.h"

namespace peftlab {

TEST(Tokenizer, LoadsStories260kVocabulary) {
  SentencePieceTokenizer tok(testing::stories260k_tokenizer());
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
}

TEST(Tokenizer, RoundTripsText) {
  SentencePieceTokenizer tok(testing::stories260k_tokenizer());
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  auto ids = tok.encode(text, /*add_bos=*/true);
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(ids.front(), tok.bos_id());
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(Tokenizer, MissingFileIsInputError) {
  EXPECT_THROW(load_tokenizer("/nonexistent/tok.model"), InputError);
}

TEST(Tokenizer, GarbageFileIsInputError) {
  testing::TempDir dir;
  testing::write_file(dir / "bad.model", "this is not a protobuf");
  try {
    load_tokenizer(dir / "bad.model");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model"), std::string::npos);
  }
}

}  // namespace peftlab
