// SourceMap: where each line of a spec came from (file and line, through includes, overrides and the
// YAML written for them), so that every error names the place the user wrote.
#include "experiments/spec.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/data_root.h"
#include "core/suggest.h"

namespace peftlab {

namespace fs = std::filesystem;

static long count_lines(const std::string& text) { return 1 + std::count(text.begin(), text.end(), '\n'); }

std::string SourceMap::pad(Source source, const std::string& text) {
  source.first = next_line_;
  source.count = count_lines(text);
  next_line_ += source.count;
  sources_.push_back(source);
  return std::string(static_cast<size_t>(source.first - 1), '\n') + text;
}

std::string SourceMap::add_file(const std::string& file, const std::string& text) {
  return pad(Source{file, 0, 0, -1}, text);
}

std::string SourceMap::add_alias(const Location& at, const std::string& text) {
  return pad(Source{at.file, 0, 0, at.line}, text);
}

YAML::Node SourceMap::parse_at(const Location& at, const std::string& text) {
  std::string padded = add_alias(at, text);
  try {
    return YAML::Load(padded);
  } catch (const YAML::DeepRecursion& e) {
    throw InputError(at.file, fmt::format("cannot parse '{}' as YAML: lists or mappings nested more than {} levels deep",
                                          text.substr(0, 40), e.depth()),
                     at.line);
  } catch (const YAML::Exception& e) {
    throw InputError(at.file, fmt::format("cannot parse '{}' as YAML: {}", text, e.msg), at.line);
  }
}

SourceMap::Location SourceMap::locate(long global_line) const {
  if (global_line > 0) {
    for (const auto& s : sources_) {
      if (global_line < s.first || global_line >= s.first + s.count) continue;
      return {s.file, s.fixed_line >= 0 ? s.fixed_line : global_line - s.first + 1};
    }
  }
  return {sources_.empty() ? std::string() : sources_.front().file, 0};
}

InputError SourceMap::relocate(const InputError& error) const {
  if (sources_.empty() || error.file() != primary() || error.line() <= 0) return error;
  Location at = locate(error.line());
  return InputError(at.file, error.problem(), at.line);
}

void SourceMap::fail(const YAML::Node& node, const std::string& what) const {
  Location at = locate(node);
  throw InputError(at.file, what, at.line);
}

void with_source_locations(const SourceMap& sources, const std::function<void()>& body) {
  try {
    body();
  } catch (const InputError& e) {
    throw sources.relocate(e);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    SourceMap::Location at = sources.locate(e.mark.is_null() ? 0L : e.mark.line + 1L);
    throw InputError(at.file, fmt::format("lists or mappings nested more than {} levels deep", e.depth()), at.line);
  } catch (const YAML::Exception& e) {
    SourceMap::Location at = sources.locate(e.mark.is_null() ? 0L : e.mark.line + 1L);
    throw InputError(at.file, e.msg, at.line);
  }
}

}  // namespace peftlab
