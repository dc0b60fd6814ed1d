#include "core/text_tables.h"

#include <gtest/gtest.h>

#include "core/data_root.h"
#include "core/errors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;
using testing::write_file;

// Runs `f`, expects an InputError, and returns it for checks on file and line.
template <typename F>
InputError expect_input_error(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "no InputError";
  return InputError("", "");
}

TEST(TsvReader, QuotesAreLiteralTextAndBomIsDropped) {
  TempDir dir;
  write_file(dir / "a.tsv", "\xEF\xBB\xBFQuality\ttext\n1\t\"quoted, text\n0\tsays \"hi\"\n");
  TextTable t = read_tsv(dir / "a.tsv", true);
  ASSERT_EQ(t.header, (std::vector<std::string>{"Quality", "text"}));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "\"quoted, text");
  EXPECT_EQ(t.rows[1][1], "says \"hi\"");
  EXPECT_EQ(t.lines, (std::vector<long>{2, 3}));
  EXPECT_EQ(t.column("Quality"), 0u);
}

TEST(TsvReader, NoTrailingNewlineCrLfAndEmptyCells) {
  TempDir dir;
  write_file(dir / "a.tsv", "gj04\t1\t\tfirst\r\ngj04\t0\t*\tlast");
  TextTable t = read_tsv(dir / "a.tsv", false);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.header.empty());
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"gj04", "1", "", "first"}));
  EXPECT_EQ(t.rows[1][3], "last");
}

TEST(TsvReader, WrongColumnCountNamesFileAndLine) {
  TempDir dir;
  write_file(dir / "a.tsv", "a\tb\n1\t2\n3\n4\t5\n");
  auto e = expect_input_error([&] { read_tsv(dir / "a.tsv", true); });
  EXPECT_EQ(e.file(), (dir / "a.tsv").string());
  EXPECT_EQ(e.line(), 3);
  EXPECT_NE(e.problem().find("1 columns, expected 2"), std::string::npos);
}

TEST(TsvReader, EmptyFileAndHeaderOnlyAreErrors) {
  TempDir dir;
  write_file(dir / "empty.tsv", "");
  write_file(dir / "header.tsv", "a\tb\n\n");
  EXPECT_NE(expect_input_error([&] { read_tsv(dir / "empty.tsv", true); }).problem().find("empty"), std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_tsv(dir / "header.tsv", true); }).problem().find("no rows"), std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_tsv(dir / "missing.tsv", true); }).problem().find("no such file"),
            std::string::npos);
}

TEST(TsvReader, BadNumberNamesLine) {
  TempDir dir;
  write_file(dir / "a.tsv", "s\tscore\nx\t4.5\ny\tfive\n");
  TextTable t = read_tsv(dir / "a.tsv", true);
  EXPECT_DOUBLE_EQ(t.number(0, 1), 4.5);
  auto e = expect_input_error([&] { t.number(1, 1); });
  EXPECT_EQ(e.line(), 3);
  EXPECT_NE(e.problem().find("'five' is not a number"), std::string::npos);
}

TEST(TsvReader, UnknownColumnListsTheColumns) {
  TempDir dir;
  write_file(dir / "a.tsv", "sentence\tlabel\nx\t1\n");
  TextTable t = read_tsv(dir / "a.tsv", true);
  auto e = expect_input_error([&] { t.column("sentense"); });
  EXPECT_NE(e.problem().find("columns: sentence, label"), std::string::npos);
}

TEST(TsvReader, RealMrpcHeaderWithBomAndColaWithoutTrailingNewline) {
  TextTable mrpc = read_tsv(data_path("glue/MRPC/dev.tsv"), true);
  EXPECT_EQ(mrpc.header.at(0), "Quality");  // the file's first bytes are EF BB BF
  EXPECT_EQ(mrpc.size(), 408u);
  TextTable cola = read_tsv(data_path("glue/CoLA/dev.tsv"), false);
  ASSERT_EQ(cola.size(), 1043u);
  // The last line of the file, which has no newline after it (checked with `tail -c 1`).
  EXPECT_EQ(cola.rows.back()[3].back(), '.');
  EXPECT_EQ(cola.lines.back(), 1043);
}

TEST(CsvReader, Rfc4180Quoting) {
  TempDir dir;
  write_file(dir / "a.csv", "text,label\n\"a, b\",1\n\"say \"\"hi\"\"\",0\n\"two\nlines\",1\r\nplain,0\n");
  TextTable t = read_csv(dir / "a.csv", true);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t.rows[0][0], "a, b");
  EXPECT_EQ(t.rows[1][0], "say \"hi\"");
  EXPECT_EQ(t.rows[2][0], "two\nlines");
  EXPECT_EQ(t.rows[2][1], "1");
  EXPECT_EQ(t.rows[3][0], "plain");
  EXPECT_EQ(t.lines, (std::vector<long>{2, 3, 4, 6}));  // the quoted newline moves the next row to line 6
}

TEST(CsvReader, MalformedQuotingNamesLine) {
  TempDir dir;
  write_file(dir / "open.csv", "a,b\n1,2\n\"never closed,3\n");
  write_file(dir / "stray.csv", "a,b\n1,x\"y\n");
  EXPECT_EQ(expect_input_error([&] { read_csv(dir / "open.csv", true); }).line(), 3);
  EXPECT_EQ(expect_input_error([&] { read_csv(dir / "stray.csv", true); }).line(), 2);
}

TEST(JsonReader, ArrayOfRecordsWithLines) {
  TempDir dir;
  write_file(dir / "a.json", "[\n  {\"instruction\": \"q1 {not a brace}\", \"answer\": \"true\"},\n  {\n    \"instruction\": \"q2\",\n"
                             "    \"answer\": 3\n  }\n]\n");
  JsonRecords r = read_json_array(dir / "a.json");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.lines, (std::vector<long>{2, 3}));
  EXPECT_EQ(r.string_field(0, "instruction"), "q1 {not a brace}");
  EXPECT_EQ(r.scalar_field(1, "answer"), "3");
  auto missing = expect_input_error([&] { r.string_field(1, "output"); });
  EXPECT_EQ(missing.line(), 3);
  EXPECT_NE(missing.problem().find("record 2 has no field 'output'"), std::string::npos);
  auto not_string = expect_input_error([&] { r.string_field(1, "answer"); });
  EXPECT_NE(not_string.problem().find("not a string"), std::string::npos);
}

TEST(JsonReader, InvalidJsonEmptyAndNotArray) {
  TempDir dir;
  write_file(dir / "bad.json", "[\n {\"a\": 1},\n {\"a\": }\n]\n");
  write_file(dir / "empty.json", "  \n");
  write_file(dir / "object.json", "{\"a\": 1}");
  write_file(dir / "none.json", "[]");
  auto bad = expect_input_error([&] { read_json_array(dir / "bad.json"); });
  EXPECT_EQ(bad.line(), 3);
  EXPECT_NE(bad.problem().find("invalid JSON"), std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_json_array(dir / "empty.json"); }).problem().find("empty"), std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_json_array(dir / "object.json"); }).problem().find("array"), std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_json_array(dir / "none.json"); }).problem().find("no records"),
            std::string::npos);
}

TEST(JsonlReader, RecordsPerLineAndErrors) {
  TempDir dir;
  write_file(dir / "a.jsonl", "{\"text\": \"x\", \"label\": 1}\n\n{\"text\": \"y\", \"label\": true}\r\n");
  JsonRecords r = read_jsonl(dir / "a.jsonl");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.lines, (std::vector<long>{1, 3}));
  EXPECT_EQ(r.scalar_field(1, "label"), "true");
  write_file(dir / "bad.jsonl", "{\"text\": \"x\"}\n{\"text\": x}\n");
  EXPECT_EQ(expect_input_error([&] { read_jsonl(dir / "bad.jsonl"); }).line(), 2);
  write_file(dir / "list.jsonl", "[1, 2]\n");
  EXPECT_EQ(expect_input_error([&] { read_jsonl(dir / "list.jsonl"); }).line(), 1);
  write_file(dir / "blank.jsonl", "\n\n");
  EXPECT_NE(expect_input_error([&] { read_jsonl(dir / "blank.jsonl"); }).problem().find("empty"), std::string::npos);
}

}  // namespace
}  // namespace peftlab
