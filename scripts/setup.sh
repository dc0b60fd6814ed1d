#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only) and builds peftlab into ./build.
# Safe to run again: installed packages are skipped and the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-openmp          # without OpenBLAS, libtorch falls back to the reference BLAS (~30x slower)
  libsentencepiece-dev libyaml-cpp-dev libhdf5-dev libfmt-dev libspdlog-dev
  libcli11-dev nlohmann-json3-dev libssl-dev libgtest-dev
  libpcre2-dev libicu-dev                  # tokenizers: Unicode regexes, normalization forms, character categories
  python3-regex                            # tests/reference/: the tokenizer oracles' \p{L} regexes
  libgloo-dev                              # headers for torch c10d ProcessGroupGloo (data-parallel runs)
  python3 python3-matplotlib python3-h5py python3-numpy   # analysis: tables and figures from run files
  python3-scipy                                            # analysis: paired comparisons (table --baseline)
  python3-torch                                            # bench/reference_step.py: the PEFT-style step `peftlab bench` compares with
  clang libclang-rt-14-dev                                 # fuzz/ (libFuzzer, sanitizers): docs/fuzzing.md
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
