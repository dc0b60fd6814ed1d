#include "core/options.h"

#include <gtest/gtest.h>

#include "core/suggest.h"

namespace peftlab {

TEST(Suggest, EditDistanceClosedCases) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("lora", "lora"), 0u);
  EXPECT_EQ(edit_distance("alpah", "alpha"), 1u);  // one transposition
}

TEST(Suggest, ClosestMatchFindsTyposOnly) {
  EXPECT_EQ(closest_match("lorra", {"full", "lora", "dora", "bora"}), "lora");
  EXPECT_EQ(closest_match("xyzzy", {"full", "lora"}), "");
}

TEST(Options, UnknownKeyNamesPathLineAndSuggestion) {
  YAML::Node node = YAML::Load("rank: 8\nalpah: 16\n");
  Options options(node, "spec.yaml", "method");
  EXPECT_EQ(options.get<int>("rank", 4), 8);
  EXPECT_EQ(options.get<double>("alpha", 1.0), 1.0);
  try {
    options.finish();
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "spec.yaml:2: unknown key 'method.alpah' (did you mean 'alpha'?)");
  }
}

TEST(Options, WrongTypeNamesLine) {
  YAML::Node node = YAML::Load("a: 1\nrank: eight\n");
  Options options(node, "spec.yaml", "method");
  try {
    options.get<int>("rank", 4);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_NE(std::string(e.what()).find("expected an integer"), std::string::npos);
  }
}

TEST(Options, MissingRequiredKey) {
  Options options(YAML::Load("{}"), "f.yaml", "model");
  EXPECT_THROW(options.require<std::string>("path"), InputError);
}

}  // namespace peftlab
