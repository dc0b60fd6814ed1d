# shellcheck shell=bash
# Sourced by scripts/setup.sh and scripts/gpu_check.sh: finds the LibTorch to build against and the CMake
# arguments for it (docs/gpu.md).
#
#   PEFTLAB_TORCH=python          the LibTorch inside the PyTorch that $PEFTLAB_PYTHON (default python3) imports
#   PEFTLAB_TORCH=/opt/libtorch   an unpacked LibTorch archive (or its share/cmake, or its share/cmake/Torch)
#   unset                         the system's LibTorch (Debian's libtorch-dev, CPU only)
#
# torch_env_resolve sets TORCH_ENV_DIR (the folder holding TorchConfig.cmake), TORCH_ENV_LIB (LibTorch's lib
# folder), TORCH_ENV_CUDA (yes/no), TORCH_ENV_NVCC (nvcc's path, or empty) and TORCH_ENV_CMAKE_ARGS (an
# array), and prints what it found; on a LibTorch that cannot be used it prints one line that says why and
# what to do, and returns 1.

torch_env_say() { echo "torch-env: $*"; }

# nvcc: $CUDACXX, PATH, $CUDA_HOME, /usr/local/cuda, the newest /usr/local/cuda-*.
torch_env_find_nvcc() {
  local candidate versioned=()
  for candidate in /usr/local/cuda-*/bin/nvcc; do [ -x "$candidate" ] && versioned=("$candidate" "${versioned[@]}"); done
  for candidate in "${CUDACXX:-}" "$(command -v nvcc 2>/dev/null || true)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" \
                   /usr/local/cuda/bin/nvcc "${versioned[@]}"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

torch_env_resolve() {
  local spec="${PEFTLAB_TORCH:-}" python="${PEFTLAB_PYTHON:-python3}" dir=""
  TORCH_ENV_DIR="" TORCH_ENV_LIB="" TORCH_ENV_CUDA=no TORCH_ENV_NVCC="" TORCH_ENV_CMAKE_ARGS=()
  if [ -z "$spec" ]; then
    torch_env_say "PEFTLAB_TORCH unset: the system's LibTorch (CPU only on Debian)"
    return 0
  fi
  if [ "$spec" = python ]; then
    local prefix
    if ! prefix=$("$python" -c "import torch; print(torch.utils.cmake_prefix_path)" 2>/dev/null); then
      torch_env_say "error: PEFTLAB_TORCH=python, but '$python' cannot import torch (set PEFTLAB_PYTHON to the interpreter that has PyTorch)"
      return 1
    fi
    dir="$prefix/Torch"
    local abi
    abi=$("$python" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))" 2>/dev/null || echo "?")
    torch_env_say "PyTorch $("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) from $python (CXX11 ABI: $abi)"
  elif [ -f "$spec/TorchConfig.cmake" ]; then dir="$spec"
  elif [ -f "$spec/Torch/TorchConfig.cmake" ]; then dir="$spec/Torch"
  elif [ -f "$spec/share/cmake/Torch/TorchConfig.cmake" ]; then dir="$spec/share/cmake/Torch"
  else
    torch_env_say "error: PEFTLAB_TORCH=$spec: no TorchConfig.cmake there (expected an unpacked LibTorch archive, its share/cmake/Torch, or 'python')"
    return 1
  fi
  if [ ! -f "$dir/TorchConfig.cmake" ]; then
    torch_env_say "error: no TorchConfig.cmake in $dir"
    return 1
  fi
  TORCH_ENV_DIR=$(cd "$dir" && pwd)
  if [ -d "$TORCH_ENV_DIR/../../../lib" ]; then TORCH_ENV_LIB=$(cd "$TORCH_ENV_DIR/../../../lib" && pwd); fi
  # The ABI trap: a LibTorch built with the pre-C++11 ABI makes every compile use it, and nothing so compiled
  # links with the system's yaml-cpp, fmt, spdlog or HDF5.
  if grep -q "_GLIBCXX_USE_CXX11_ABI=0" "$TORCH_ENV_DIR/TorchConfig.cmake"; then
    torch_env_say "error: LibTorch at $TORCH_ENV_DIR uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0) and cannot link with this system's C++ libraries: use the official cxx11-ABI LibTorch archive (PEFTLAB_TORCH=/path/to/libtorch) or a PyTorch >= 2.7 wheel"
    return 1
  fi
  if [ -n "$TORCH_ENV_LIB" ] && ls "$TORCH_ENV_LIB"/libtorch_cuda.so* >/dev/null 2>&1; then TORCH_ENV_CUDA=yes; fi
  TORCH_ENV_CMAKE_ARGS=(-DTorch_DIR="$TORCH_ENV_DIR")
  if [ "$TORCH_ENV_CUDA" = yes ]; then
    if TORCH_ENV_NVCC=$(torch_env_find_nvcc); then
      local toolkit
      toolkit=$(cd "$(dirname "$TORCH_ENV_NVCC")/.." && pwd)
      TORCH_ENV_CMAKE_ARGS+=(-DCMAKE_CUDA_COMPILER="$TORCH_ENV_NVCC" -DCUDAToolkit_ROOT="$toolkit"
                             -DCUDA_TOOLKIT_ROOT_DIR="$toolkit")
      torch_env_say "LibTorch with CUDA at $TORCH_ENV_DIR; nvcc: $TORCH_ENV_NVCC"
    else
      TORCH_ENV_NVCC=""
      torch_env_say "warning: LibTorch at $TORCH_ENV_DIR has CUDA, but no nvcc was found (PATH, CUDACXX, CUDA_HOME, /usr/local/cuda): its CMake config needs the CUDA toolkit and will likely fail"
    fi
    # No CUDA code is compiled here: a fixed architecture list spares TorchConfig's GPU probe.
    [ -n "${TORCH_CUDA_ARCH_LIST:-}" ] || export TORCH_CUDA_ARCH_LIST="8.0;9.0"
    if ls "$TORCH_ENV_LIB"/libtorch_cuda.so* >/dev/null 2>&1 && grep -aq "ProcessGroupNCCL" "$TORCH_ENV_LIB"/libtorch_cuda.so 2>/dev/null; then
      torch_env_say "NCCL: this LibTorch has c10d ProcessGroupNCCL (peftlab's data-parallel runs use Gloo)"
    else
      torch_env_say "NCCL: not found in this LibTorch (peftlab's data-parallel runs use Gloo)"
    fi
  else
    torch_env_say "LibTorch without CUDA at $TORCH_ENV_DIR"
  fi
  return 0
}
