#include "core/safetensors.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <limits>
#include <random>

#include "core/errors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

// Bytes built by hand, independently of write_safetensors: 8-byte little-endian length, header, data.
std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}
std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

fs::path fixture_path() { return fs::path(PEFTLAB_SOURCE_DIR) / "tests/fixtures/safetensors/independent.safetensors"; }

// Opens `bytes` as a safetensors file and loads every tensor; returns the InputError's problem text
// (checking that it names the file), or "<accepted>".
class SafetensorsMalformed : public ::testing::Test {
 protected:
  std::string problem(const std::string& bytes) {
    write_file(path_, bytes);
    try {
      SafetensorsFile file(path_);
      file.load_all();
      return "<accepted>";
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), path_.string());
      return e.problem();
    }
  }
  // A header with one F32 tensor 'a' whose entry is `entry`, and `data_bytes` bytes of data.
  std::string one_tensor(const std::string& entry, size_t data_bytes) {
    return problem(safetensors_bytes("{\"a\":" + entry + "}", std::string(data_bytes, '\0')));
  }
  TempDir dir_;
  fs::path path_ = dir_ / "bad.safetensors";
};

const std::string kSupported = "(supported: BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64)";

// ------------------------------------------------------------------------------------------- round trip

TEST(Safetensors, RoundTripEveryDtype) {
  // Values exactly representable in each dtype, so equality is exact.
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::tensor({0.5, -1.25, 3.0e38, 1.0e-40}, torch::kFloat)},
      {"f16", torch::tensor({1.0, -2.5, 0.333251953125, 65504.0, 6.103515625e-05}, torch::kHalf)},
      {"bf16", torch::tensor({1.0, -2.5, 3.140625, 0.0078125, -65536.0}, torch::kBFloat16)},
      {"f64", torch::tensor({0.1, -1e300, 5e-324}, torch::kDouble)},
      {"i64", torch::tensor({std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}, std::int64_t{1} << 40},
                            torch::kLong)},
      {"i32", torch::tensor({std::numeric_limits<std::int32_t>::min(), 0, 7}, torch::kInt)},
      {"i16", torch::tensor({-32768, 12345}, torch::kShort)},
      {"i8", torch::tensor({-128, 0, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 1, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
  };
  tensors[0].second = tensors[0].second.reshape({2, 2});
  TempDir dir;
  write_safetensors(dir / "m.safetensors", tensors);
  SafetensorsFile file(dir / "m.safetensors");
  ASSERT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, expected] : tensors) {
    SCOPED_TRACE(name);
    torch::Tensor got = file.load(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type());
    EXPECT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_TRUE(torch::equal(got, expected));
  }
  EXPECT_EQ(file.info("f32").dtype, "F32");
  EXPECT_EQ(file.info("bf16").dtype, "BF16");
  EXPECT_EQ(file.info("bool").dtype, "BOOL");
  EXPECT_TRUE(file.metadata().empty());
}

TEST(Safetensors, WriterBytesMatchHandBuiltLayout) {
  TempDir dir;
  write_safetensors(dir / "a.safetensors", {{"a", torch::tensor({1.0f})}});
  // nlohmann writes object keys sorted; the reference writer pads the header with spaces to 8 bytes.
  std::string header = R"({"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})";  // 54 bytes
  header += std::string(2, ' ');
  std::string float_one("\x00\x00\x80\x3f", 4);  // IEEE 754 1.0f, little-endian
  EXPECT_EQ(testing::read_file(dir / "a.safetensors"), le64(56) + header + float_one);
}

TEST(Safetensors, WriterStoresBfloat16AndHalfBitsLittleEndian) {
  TempDir dir;
  write_safetensors(dir / "h.safetensors", {{"b", torch::tensor({3.140625}, torch::kBFloat16)},
                                            {"h", torch::tensor({-2.0}, torch::kHalf)}});
  SafetensorsFile file(dir / "h.safetensors");
  std::string bytes = testing::read_file(dir / "h.safetensors");
  size_t data_start = bytes.size() - 4;
  EXPECT_EQ(file.info("b").begin, 0u);
  EXPECT_EQ(bytes.substr(data_start, 2), std::string("\x49\x40", 2));  // bf16 0x4049 = 3.140625
  EXPECT_EQ(bytes.substr(data_start + 2, 2), std::string("\x00\xc0", 2));  // f16 0xC000 = -2.0
}

TEST(Safetensors, RoundTripMetadataScalarsEmptyAndNonContiguous) {
  TempDir dir;
  torch::Tensor base = torch::arange(6, torch::kFloat).reshape({2, 3});
  write_safetensors(dir / "m.safetensors",
                    {{"t", base.t()}, {"scalar", torch::tensor(42.0)}, {"empty", torch::zeros({0, 4})}},
                    {{"format", "pt"}, {"note", "ünïcode"}});
  SafetensorsFile file(dir / "m.safetensors");
  torch::Tensor t = file.load("t");
  EXPECT_EQ(t.sizes(), torch::IntArrayRef({3, 2}));
  EXPECT_EQ(t[0][1].item<float>(), 3.0f);  // base[1][0]
  EXPECT_EQ(file.load("scalar").dim(), 0);
  EXPECT_EQ(file.load("scalar").item<float>(), 42.0f);
  EXPECT_EQ(file.load("empty").sizes(), torch::IntArrayRef({0, 4}));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode"}}));
}

// A file built by another route (tests/fixtures/safetensors/make_fixtures.py, struct + json only).
TEST(Safetensors, ReadsIndependentlyWrittenFixture) {
  SafetensorsFile file(fixture_path());
  EXPECT_EQ(file.names(), (std::vector<std::string>{"bf16", "bytes", "empty", "f64", "half", "i16", "i32", "i8",
                                                    "ids", "mask", "scalar", "weight"}));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  auto all = file.load_all();
  EXPECT_TRUE(torch::equal(all["weight"], torch::tensor({0.5f, -1.25f, 3.0f, 1024.0f, -0.0078125f, 7.0f}).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(all["half"], torch::tensor({1.0, -2.0, 0.333251953125, 65504.0}, torch::kHalf)));
  EXPECT_EQ(all["half"].scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(all["bf16"], torch::tensor({1.0, 3.140625, -0.5}, torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(all["f64"], torch::tensor({0.1, -1e300}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(all["ids"], torch::tensor({std::int64_t{1}, std::int64_t{-2}, std::int64_t{1} << 40,
                                                      -(std::int64_t{1} << 62)}).reshape({2, 2})));
  EXPECT_TRUE(torch::equal(all["i32"], torch::tensor({std::numeric_limits<std::int32_t>::min(), 7}, torch::kInt)));
  EXPECT_TRUE(torch::equal(all["i16"], torch::tensor({-32768, 12345}, torch::kShort)));
  EXPECT_TRUE(torch::equal(all["i8"], torch::tensor({-128, 127}, torch::kChar)));
  EXPECT_TRUE(torch::equal(all["bytes"], torch::tensor({0, 255}, torch::kByte)));
  EXPECT_TRUE(torch::equal(all["mask"], torch::tensor({true, false, true})));
  EXPECT_EQ(all["scalar"].dim(), 0);
  EXPECT_EQ(all["scalar"].item<float>(), 42.0f);
  EXPECT_EQ(all["empty"].sizes(), torch::IntArrayRef({0, 4}));
}

// ------------------------------------------------------------------------------------------- writing

TEST(Safetensors, WriteReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  TempDir dir;
  write_safetensors(dir / "m.safetensors", {{"a", torch::ones({3})}});
  write_safetensors(dir / "m.safetensors", {{"b", torch::zeros({2})}});
  EXPECT_EQ(SafetensorsFile(dir / "m.safetensors").names(), std::vector<std::string>{"b"});
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) entries += (e.path().filename() == "m.safetensors") ? 1 : 100;
  EXPECT_EQ(entries, 1u);
}

TEST(Safetensors, WriteFailureKeepsTheOldFileAndCleansUp) {
  TempDir dir;
  write_safetensors(dir / "m.safetensors", {{"old", torch::ones({2})}});
  // A file-size limit stands in for a full disk: write() fails with EFBIG instead of raising SIGXFSZ.
  struct rlimit saved {};
  getrlimit(RLIMIT_FSIZE, &saved);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 1000;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string problem;
  try {
    write_safetensors(dir / "m.safetensors", {{"big", torch::ones({4000})}});
  } catch (const InputError& e) {
    problem = e.problem();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(problem, "cannot write: File too large");
  EXPECT_EQ(SafetensorsFile(dir / "m.safetensors").names(), std::vector<std::string>{"old"});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Safetensors, WriteIntoMissingFolderIsInputError) {
  TempDir dir;
  try {
    write_safetensors(dir / "no/such/m.safetensors", {{"a", torch::ones({1})}});
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), (dir / "no/such/m.safetensors").string());
    EXPECT_EQ(e.problem(), "cannot create a temporary file in " + (dir / "no/such").string() +
                               ": No such file or directory");
  }
}

TEST(Safetensors, WriterRejectsCallerMistakes) {
  TempDir dir;
  auto path = dir / "m.safetensors";
  EXPECT_THROW(write_safetensors(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}), std::invalid_argument);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", torch::ones({1})}}), std::invalid_argument);
  EXPECT_THROW(write_safetensors(path, {{"", torch::ones({1})}}), std::invalid_argument);
  EXPECT_THROW(write_safetensors(path, {{"c", torch::ones({1}, torch::kComplexFloat)}}), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path));
}

// ------------------------------------------------------------------------------------------- bad files

TEST_F(SafetensorsMalformed, EmptyFile) {
  EXPECT_EQ(problem(""), "file is 0 bytes, too short for a safetensors file (the header length alone is 8)");
}

TEST_F(SafetensorsMalformed, TruncatedLengthField) {
  EXPECT_EQ(problem(std::string("\x10\0\0\0\0", 5)), "file is 5 bytes, too short for a safetensors file (the header length alone is 8)");
}

TEST_F(SafetensorsMalformed, HeaderLengthLargerThanFile) {
  EXPECT_EQ(problem(le64(100) + "{}"), "header length 100 exceeds the 2 bytes that follow the length field");
}

TEST_F(SafetensorsMalformed, TruncatedInsideTheData) {
  std::string good = safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(16, '\0'));
  EXPECT_EQ(problem(good.substr(0, good.size() - 3)), "tensor 'a': data_offsets [0, 16] end past the data buffer (13 bytes)");
}

TEST_F(SafetensorsMalformed, HeaderLengthOverTheLimit) {
  EXPECT_EQ(problem(le64(std::numeric_limits<std::uint64_t>::max()) + "{}"),
            "header length 18446744073709551615 exceeds the limit of 100000000 bytes");
  EXPECT_EQ(problem(le64(100'000'001) + "{}"), "header length 100000001 exceeds the limit of 100000000 bytes");
}

TEST_F(SafetensorsMalformed, HeaderNotJson) {
  EXPECT_EQ(problem(safetensors_bytes("{\"a\": ")).rfind("header is not valid JSON: parse error at line 1, column 7", 0), 0u);
  EXPECT_EQ(problem(safetensors_bytes("")).rfind("header is not valid JSON: ", 0), 0u);
  EXPECT_EQ(problem(safetensors_bytes("{\"\xff\":1}")).rfind("header is not valid JSON: ", 0), 0u);  // not UTF-8
}

TEST_F(SafetensorsMalformed, HeaderIsArrayOrString) {
  EXPECT_EQ(problem(safetensors_bytes("[1, 2]")), "header is a JSON array, expected a JSON object");
  EXPECT_EQ(problem(safetensors_bytes("\"x\"")), "header is the string 'x', expected a JSON object");
}

TEST_F(SafetensorsMalformed, EntryNotAnObject) {
  EXPECT_EQ(problem(safetensors_bytes(R"({"a": 3})")), "tensor 'a': entry is 3, expected an object");
}

TEST_F(SafetensorsMalformed, MissingFields) {
  EXPECT_EQ(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})", 4), "tensor 'a': missing field 'dtype'");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","data_offsets":[0,4]})", 4), "tensor 'a': missing field 'shape'");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1]})", 4), "tensor 'a': missing field 'data_offsets'");
}

TEST_F(SafetensorsMalformed, UnknownAndUnsupportedDtype) {
  EXPECT_EQ(one_tensor(R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})", 4),
            "tensor 'a': unknown dtype 'F33' " + kSupported);
  EXPECT_EQ(one_tensor(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4),
            "tensor 'a': unknown dtype 'f32' " + kSupported);
  EXPECT_EQ(one_tensor(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})", 1),
            "tensor 'a': unsupported dtype 'F8_E4M3' " + kSupported);
  EXPECT_EQ(one_tensor(R"({"dtype":5,"shape":[1],"data_offsets":[0,4]})", 4), "tensor 'a': dtype is 5, expected a string");
}

TEST_F(SafetensorsMalformed, BadShapes) {
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4),
            "tensor 'a': shape[0] is -1, expected a non-negative integer");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1,2.5],"data_offsets":[0,4]})", 4),
            "tensor 'a': shape[1] is 2.5, expected a non-negative integer");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":"x","data_offsets":[0,4]})", 4),
            "tensor 'a': shape is the string 'x', expected an array of non-negative integers");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[null],"data_offsets":[0,4]})", 4),
            "tensor 'a': shape[0] is a JSON null, expected a non-negative integer");
}

TEST_F(SafetensorsMalformed, ShapeOverflow) {
  // 2^32 * 2^32 = 2^64 wraps to 0 in 64 bits: a naive product would "match" an empty byte range.
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})", 0),
            "tensor 'a': shape [4294967296,4294967296] is too large (its element count overflows 64 bits)");
  // Zero elements, but LibTorch's strides (2^62 * 4) would still overflow.
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]})", 0),
            "tensor 'a': shape [0,4611686018427387904,4] is too large (its element count overflows 64 bits)");
  // numel fits in int64 but numel * 8 bytes does not.
  EXPECT_EQ(one_tensor(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]})", 0),
            "tensor 'a': data_offsets [0, 0] hold 0 bytes, but shape [4611686018427387904] of F64 needs "
            "4611686018427387904 x 8 bytes");
}

TEST_F(SafetensorsMalformed, OffsetsPastTheEnd) {
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 7),
            "tensor 'a': data_offsets [0, 8] end past the data buffer (7 bytes)");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]})", 4),
            "tensor 'a': data_offsets [18446744073709551615, 18446744073709551615] end past the data buffer (4 bytes)");
}

TEST_F(SafetensorsMalformed, OffsetsMalformed) {
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8),
            "tensor 'a': data_offsets [8, 4] begin after they end");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 4),
            "tensor 'a': data_offsets is an array of 1 values, expected an array of two non-negative integers");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":{"b":0}})", 4),
            "tensor 'a': data_offsets is a JSON object, expected an array of two non-negative integers");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 4),
            "tensor 'a': data_offsets[0] is -4, expected a non-negative integer");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})", 4),
            "tensor 'a': data_offsets[1] is the string '4', expected a non-negative integer");
}

TEST_F(SafetensorsMalformed, ByteLengthDisagreesWithShapeAndDtype) {
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 8),
            "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 3 x 4 bytes");
  EXPECT_EQ(one_tensor(R"({"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]})", 16),
            "tensor 'a': data_offsets [0, 16] hold 16 bytes, but shape [2, 2] of BF16 needs 4 x 2 bytes");
}

TEST_F(SafetensorsMalformed, OverlappingTensors) {
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                      std::string(12, '\0'))),
            "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  // The same range twice.
  EXPECT_EQ(problem(safetensors_bytes(R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                      std::string(4, '\0'))),
            "tensors 'a' [0, 4] and 'b' [0, 4] overlap");
  // One range inside another.
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                      R"("z":{"dtype":"U8","shape":[1],"data_offsets":[12,13]},)"
                                      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      std::string(13, '\0'))),
            "tensors 'a' [0, 12] and 'c' [4, 8] overlap");
}

TEST_F(SafetensorsMalformed, DuplicateKeys) {
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      std::string(8, '\0'))),
            "header has the key 'a' more than once");
  EXPECT_EQ(one_tensor(R"({"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]})", 4),
            "header has the key 'dtype' more than once");
}

TEST_F(SafetensorsMalformed, BadMetadata) {
  EXPECT_EQ(problem(safetensors_bytes(R"({"__metadata__":{"k":1}})")),
            "__metadata__ value for key 'k' is 1, expected a string");
  EXPECT_EQ(problem(safetensors_bytes(R"({"__metadata__":["x"]})")),
            "__metadata__ is a JSON array, expected an object of strings");
}

TEST_F(SafetensorsMalformed, BoolByteOtherThanZeroOrOne) {
  EXPECT_EQ(problem(safetensors_bytes(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", "\x01\x02")),
            "tensor 'm': BOOL element 1 is 2, expected 0 or 1");
}

TEST_F(SafetensorsMalformed, LongNamesAreShortenedInMessages) {
  std::string name(300, 'x');
  EXPECT_EQ(problem(safetensors_bytes("{\"" + name + "\": 3}")),
            "tensor '" + std::string(120, 'x') + "...': entry is 3, expected an object");
}

TEST_F(SafetensorsMalformed, AcceptedOddities) {
  // No tensors at all; empty tensors anywhere in range (they occupy no bytes); whitespace padding.
  EXPECT_EQ(problem(safetensors_bytes("{}")), "<accepted>");
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                                      R"("g":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}   )",
                                      std::string(9, '\0'))),
            "<accepted>");
}

TEST_F(SafetensorsMalformed, HolesAndTrailingBytesAreRefused) {
  // The format's data buffer is the tensors back to back (the reference reader refuses the rest too).
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[80,96]}})",
                                      std::string(96, '\0'))),
            "tensor 'b' starts at byte 80 of the data, but the tensors before it end at byte 16: a hole of 64 bytes "
            "(the format requires contiguous data)");
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}})",
                                      std::string(20, '\0'))),
            "tensor 'a' starts at byte 4 of the data, but the tensors before it end at byte 0: a hole of 4 bytes "
            "(the format requires contiguous data)");
  EXPECT_EQ(problem(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                      std::string(16, '\0'))),
            "8 bytes of data follow the last tensor, which ends at byte 8 (the format requires the tensors to fill "
            "the data)");
}

TEST(Safetensors, MissingFileDirectoryAndUnknownTensor) {
  TempDir dir;
  try {
    SafetensorsFile file(dir / "none.safetensors");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.what(), (dir / "none.safetensors").string() + ": cannot open: No such file or directory");
  }
  try {
    SafetensorsFile file(dir.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.problem(), "is a directory, expected a safetensors file");
  }
  write_safetensors(dir / "m.safetensors", {{"a", torch::ones({1})}});
  SafetensorsFile file(dir / "m.safetensors");
  try {
    file.load("zzz");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.problem(), "no tensor named 'zzz'");
  }
}

// Deterministic random corruption of a valid file: every outcome is a clean load or an InputError. (The
// libFuzzer target in fuzz/ does this at scale under sanitizers; this keeps a cheap guard in every build.)
TEST(Safetensors, RandomCorruptionOnlyEverGivesInputError) {
  TempDir dir;
  write_safetensors(dir / "good.safetensors",
                    {{"w", torch::randn({3, 4})}, {"b", torch::ones({4}, torch::kBFloat16)},
                     {"m", torch::tensor({true, false})}, {"i", torch::arange(5)}},
                    {{"k", "v"}});
  const std::string good = testing::read_file(dir / "good.safetensors");
  const std::string alphabet = "0123456789-[]{},:\". eE\x01\xff";
  std::mt19937 rng(12345);
  int accepted = 0, rejected = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bytes = good;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: bytes.erase(pos, 1 + rng() % 3); break;
        case 2: bytes.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        default: bytes.resize(pos); break;
      }
      if (bytes.empty()) break;
    }
    // A fresh file each time: truncating a file that has data makes ext4 flush it (auto_da_alloc), ~5 ms.
    fs::remove(dir / "bad.safetensors");
    write_file(dir / "bad.safetensors", bytes);
    try {
      SafetensorsFile(dir / "bad.safetensors").load_all();
      ++accepted;
    } catch (const InputError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);  // most corruptions are caught ...
  EXPECT_GT(accepted, 0);     // ... and some (inside tensor data) are legitimately harmless
}

// ------------------------------------------------------------------------------------------- sharded index

class SafetensorsIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "model");
    write_safetensors(dir_ / "model/model-00001-of-00002.safetensors", {{"a", torch::ones({2})}});
    write_safetensors(dir_ / "model/model-00002-of-00002.safetensors", {{"b", torch::ones({1})}});
    write_safetensors(dir_ / "outside.safetensors", {{"a", torch::ones({2})}});
  }
  std::string problem(const std::string& json) {
    write_file(index_, json);
    try {
      read_safetensors_index(index_);
      return "<accepted>";
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), index_.string());
      return e.problem();
    }
  }
  TempDir dir_;
  fs::path index_ = dir_ / "model/model.safetensors.index.json";
};

TEST_F(SafetensorsIndexTest, ReadsWeightMap) {
  write_file(index_, R"({"metadata": {"total_size": 12}, "weight_map": {
      "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
      "c": "model-00001-of-00002.safetensors"}})");
  SafetensorsIndex index = read_safetensors_index(index_);
  EXPECT_EQ(index.total_size, 12u);
  EXPECT_EQ(index.weight_map.size(), 3u);
  EXPECT_EQ(index.weight_map.at("b"), dir_ / "model/model-00002-of-00002.safetensors");
  EXPECT_EQ(index.shards, (std::vector<fs::path>{dir_ / "model/model-00001-of-00002.safetensors",
                                                 dir_ / "model/model-00002-of-00002.safetensors"}));
  EXPECT_EQ(SafetensorsFile(index.weight_map.at("a")).load("a").numel(), 2);
}

TEST_F(SafetensorsIndexTest, ShardEscapingTheFolder) {
  // ../outside.safetensors exists: the check is about where it is, not whether it exists.
  EXPECT_EQ(problem(R"({"weight_map": {"a": "../outside.safetensors"}})"),
            "weight_map: shard '../outside.safetensors' (tensor 'a') leaves the index's folder");
  EXPECT_EQ(problem(R"({"weight_map": {"a": "sub/../../outside.safetensors"}})"),
            "weight_map: shard 'sub/../../outside.safetensors' (tensor 'a') leaves the index's folder");
  EXPECT_EQ(problem("{\"weight_map\": {\"a\": \"" + (dir_ / "outside.safetensors").string() + "\"}}"),
            "weight_map: shard '" + (dir_ / "outside.safetensors").string() +
                "' (tensor 'a') is an absolute path; it must be inside the index's folder");
}

TEST_F(SafetensorsIndexTest, MalformedIndex) {
  EXPECT_EQ(problem(R"({"weight_map": {"a": "nope.safetensors"}})"),
            "weight_map: shard 'nope.safetensors' (tensor 'a') does not exist");
  EXPECT_EQ(problem(R"({"metadata": {}})"), "missing field 'weight_map'");
  EXPECT_EQ(problem(R"({"weight_map": []})"), "weight_map is a JSON array, expected an object");
  EXPECT_EQ(problem(R"({"weight_map": {}})"), "weight_map is empty");
  EXPECT_EQ(problem(R"({"weight_map": {"a": 3}})"), "weight_map: tensor 'a' maps to 3, expected a shard file name");
  EXPECT_EQ(problem(R"({"weight_map": {"a": ""}})"), "weight_map: tensor 'a' has an empty shard file name");
  EXPECT_EQ(problem(R"({"weight_map": {"a": "model-00001-of-00002.safetensors\u0000/../x"}})"),
            std::string("weight_map: shard 'model-00001-of-00002.safetensors\0/../x' (tensor 'a') contains a NUL "
                        "character", 96));
  EXPECT_EQ(problem(R"({"weight_map": {"a": "."}})"), "weight_map: shard '.' (tensor 'a') is not a regular file");
  EXPECT_EQ(problem(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                        "a": "model-00002-of-00002.safetensors"}})"),
            "index has the key 'a' more than once");
  EXPECT_EQ(problem(R"({"metadata": {"total_size": -1}, "weight_map": {"a": "model-00001-of-00002.safetensors"}})"),
            "metadata.total_size is -1, expected a non-negative integer");
  EXPECT_EQ(problem("[]"), "index is a JSON array, expected a JSON object");
  EXPECT_EQ(problem("{").rfind("index is not valid JSON: ", 0), 0u);
}

TEST(SafetensorsIndex, MissingIndexFile) {
  TempDir dir;
  try {
    read_safetensors_index(dir / "model.safetensors.index.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.problem(), "cannot open: No such file or directory");
  }
}

}  // namespace
}  // namespace peftlab
