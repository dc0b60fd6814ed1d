// core/subprocess: exit codes and signals as a shell reports them, captured stdout, environment overrides,
// and a program that does not exist.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <system_error>

#include "core/subprocess.h"

namespace peftlab {
namespace {

TEST(Subprocess, CapturesStdoutAndTheExitCode) {
  const auto out = run_capturing_stdout({"sh", "-c", "printf 'one\\ntwo\\n'; echo to-stderr >&2; exit 3"});
  EXPECT_EQ(out.stdout_text, "one\ntwo\n");
  EXPECT_EQ(out.status, 3);
}

TEST(Subprocess, ASignalIs128PlusItsNumber) {
  const auto out = run_capturing_stdout({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(out.status, 128 + SIGKILL);
}

TEST(Subprocess, ExtraEnvironmentWinsOverTheInheritedValue) {
  ::setenv("PEFTLAB_SUBPROCESS_TEST", "inherited", 1);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = start_child({"sh", "-c", "printf %s \"$PEFTLAB_SUBPROCESS_TEST\""},
                                {"PEFTLAB_SUBPROCESS_TEST=given"}, fds[1]);
  close(fds[1]);
  char buffer[64] = {};
  const ssize_t n = read(fds[0], buffer, sizeof buffer - 1);
  close(fds[0]);
  EXPECT_EQ(wait_child(pid), 0);
  EXPECT_EQ(std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0), "given");
  ::unsetenv("PEFTLAB_SUBPROCESS_TEST");
}

TEST(Subprocess, AProgramThatDoesNotExistThrows) {
  EXPECT_THROW(start_child({"/nonexistent/peftlab-no-such-program"}), std::system_error);
  EXPECT_THROW(run_capturing_stdout({"peftlab-no-such-program-on-path"}), std::system_error);
}

}  // namespace
}  // namespace peftlab
