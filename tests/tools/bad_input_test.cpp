// docs/reliability.md's bad-input cases, run as written: each numbered case's `$` lines run with bash in an
// empty folder; the last must exit with status 2 and print exactly the case's `error:` line last
// ($MAX_THREADS in that line stands for this machine's thread bound).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/data_root.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

struct BadInputCase {
  std::string title;
  std::vector<std::string> commands;
  std::string expected;
};

std::vector<BadInputCase> read_cases() {
  std::ifstream doc(fs::path(PEFTLAB_SOURCE_DIR) / "docs" / "reliability.md");
  std::vector<BadInputCase> cases;
  std::string line;
  const std::regex heading(R"(^### (\d+)\. (.*)$)");
  std::smatch m;
  while (std::getline(doc, line)) {
    if (std::regex_match(line, m, heading)) cases.push_back({m[1].str() + ". " + m[2].str(), {}, ""});
    else if (!cases.empty() && line.rfind("    $ ", 0) == 0) cases.back().commands.push_back(line.substr(6));
    else if (!cases.empty() && line.rfind("    error: ", 0) == 0) cases.back().expected = line.substr(4);
  }
  return cases;
}

std::string last_line(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  const size_t at = trimmed.rfind('\n');
  return at == std::string::npos ? trimmed : trimmed.substr(at + 1);
}

TEST(BadInput, EveryCaseInTheReliabilityDocExitsTwoWithItsLine) {
  const auto cases = read_cases();
  ASSERT_GE(cases.size(), 25u) << "docs/reliability.md lists fewer than 25 bad-input cases";
  const std::string data = fs::absolute(data_root()).string();
  const std::string models = data + "/models/stories260K";
  for (const auto& c : cases) {
    SCOPED_TRACE(c.title);
    ASSERT_FALSE(c.commands.empty());
    ASSERT_FALSE(c.expected.empty()) << "no error: line";
    testing::TempDir dir;
    std::ostringstream script;
    script << "set -e\ncd '" << dir.path().string() << "'\n"
           << "peftlab() { '" << PEFTLAB_BIN << "' \"$@\"; }\n"
           << "export D='" << data << "' M='" << models << "'\n"
           << "S=\"model: {path: $M/stories260K.bin, tokenizer: $M/tok512.model}\"\n";
    for (size_t i = 0; i + 1 < c.commands.size(); ++i) script << c.commands[i] << "\n";
    script << "set +e\n" << c.commands.back() << " > out.txt 2>&1\necho $? > status.txt\n";
    testing::write_file(dir / "case.sh", script.str());
    ASSERT_EQ(std::system(("bash '" + (dir / "case.sh").string() + "'").c_str()), 0) << "setup failed";
    const std::string output = testing::read_file(dir / "out.txt");
    EXPECT_EQ(std::stoi(testing::read_file(dir / "status.txt")), 2) << output;
    // $MAX_THREADS in an expected line: the most threads this machine allows (4 per hardware thread).
    std::string expected = c.expected;
    const std::string max_threads = std::to_string(4 * std::max(1u, std::thread::hardware_concurrency()));
    for (size_t at; (at = expected.find("$MAX_THREADS")) != std::string::npos;) expected.replace(at, 12, max_threads);
    EXPECT_EQ(last_line(output), expected) << output;
  }
  std::printf("[ figures  ] %zu bad-input cases from docs/reliability.md\n", cases.size());
}

}  // namespace
}  // namespace peftlab
