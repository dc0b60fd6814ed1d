#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with network, the .deb files of the system libraries peftlab links
# (the -dev packages scripts/setup.sh installs, and their shared libraries) into build-debs/ (about 30 MB),
# for a CUDA machine that has PyTorch but neither these packages nor a network: scripts/gpu_check.sh unpacks
# them into a private prefix (build-cuda-deps/) there. Nothing is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${PEFTLAB_DEBS:-build-debs}
PACKAGES=(
  libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9 libspdlog-dev libspdlog1.10 libcli11-dev nlohmann-json3-dev
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0
  libgtest-dev libssl-dev libssl3 libsentencepiece-dev libsentencepiece0 libpcre2-dev libpcre2-8-0
  libicu-dev libicu72 libgloo-dev
)
if ! command -v apt-get >/dev/null; then
  echo "gpu_debs: needs apt-get (a Debian 12 machine)"
  exit 2
fi
mkdir -p "$DEST"
cd "$DEST"
rm -f ./*.deb
apt-get download "${PACKAGES[@]}"
echo "gpu_debs: $(find . -maxdepth 1 -name "*.deb" | wc -l) files, $(du -sh . | cut -f1) in $DEST"
