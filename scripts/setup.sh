#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only) and builds peftlab into ./build.
# Safe to run again: installed packages are skipped and the build is incremental.
# Another LibTorch (one with CUDA: docs/gpu.md): PEFTLAB_TORCH=python (the PyTorch that python3, or
# $PEFTLAB_PYTHON, imports) or PEFTLAB_TORCH=/path/to/libtorch; it builds into ./build-cuda (or $PEFTLAB_BUILD_DIR)
# and Debian's LibTorch is then not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
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

source scripts/torch_env.sh
BUILD_DIR=${PEFTLAB_BUILD_DIR:-build}
if [ -n "${PEFTLAB_TORCH:-}" ]; then
  torch_env_resolve || exit 2
  BUILD_DIR=${PEFTLAB_BUILD_DIR:-build-cuda}
  # The chosen LibTorch replaces Debian's (and the CPU Python reference's torch).
  PACKAGES=("${PACKAGES[@]/libtorch-dev/}")
  PACKAGES=("${PACKAGES[@]/python3-torch/}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

JOBS=$(nproc)
GENERATOR=()
# Ninja (a folder configured earlier keeps its generator): unlike Make, adding a source file does not rebuild the rest.
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
mkdir -p "$BUILD_DIR"
if ! cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release "${TORCH_ENV_CMAKE_ARGS[@]}" \
       >"$BUILD_DIR/configure.log" 2>&1; then
  tail -n 30 "$BUILD_DIR/configure.log"
  echo "setup: cmake could not configure $BUILD_DIR (whole log: $BUILD_DIR/configure.log)"
  exit 1
fi
grep "peftlab: " "$BUILD_DIR/configure.log" || true
cmake --build "$BUILD_DIR" -j"$JOBS"
