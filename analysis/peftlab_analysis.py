#!/usr/bin/env python3
"""peftlab analysis: results tables, decomposition-dynamics and training-curve figures, and a one-page
HTML report, all read from the HDF5 run files (schema: docs/run-file.md). Driven by `peftlab table|plot|report`.
The work is done by the package beside this script (peftlab_results/); this is its command line.

Errors in the input print one line `error: <file>: <what>` and exit with status 2.
"""
import os
import sys

# The writer holds no HDF5 file lock (docs/run-file.md); skip locking here too so a live run can be read.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import h5py  # noqa: E402,F401
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("error: python3: h5py is missing (Debian: apt-get install python3-h5py)\n")
    sys.exit(2)

from peftlab_results.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
