// The analysis verbs (table, plot, report) are Python (matplotlib + h5py, analysis/peftlab_analysis.py);
// this runs that script with the CLI's arguments and passes its exit status through.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace peftlab {

// The folder holding peftlab_analysis.py: $PEFTLAB_ANALYSIS_DIR, else the source tree's analysis/, else
// <exe dir>/../share/peftlab/analysis (installed). Throws InputError when none holds the script.
std::filesystem::path analysis_dir();

// $PEFTLAB_PYTHON, else /usr/bin/python3 (where Debian's python3-h5py and python3-matplotlib live, even
// when another python3 comes first on PATH), else python3 from PATH.
std::string analysis_python();

// Runs `python peftlab_analysis.py <args...>` with stdout and stderr inherited; returns its exit status.
// The script reports bad input itself (`error: <file>: <what>`, status 2).
int run_analysis(const std::vector<std::string>& args);

}  // namespace peftlab
