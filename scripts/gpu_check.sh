#!/usr/bin/env bash
# The GPU check (docs/gpu.md), one script for one CUDA machine, about 8 minutes on one H200:
#   1. probe      PyTorch, CUDA, the GPU, NCCL, transformers, PEFT, nvcc, cmake, ninja (env.json)
#   2. hf         bench/hf_peft_step.py: LoRA and DoRA in transformers + PEFT at the 110M and the 1B shape
#   3. deps       the system libraries peftlab links (Debian packages); .deb files in $PEFTLAB_DEBS are
#                 unpacked into a private prefix when the system lacks them (scripts/gpu_debs.sh fetches them)
#   4. configure  cmake against that PyTorch's LibTorch (scripts/torch_env.sh) into build-cuda/, Ninja if present
#   5. build      the peftlab binary, all cores
#   6. bench      `peftlab --device cuda bench` for lora, dora, bora (+bf16) at the 110M and the 1B shape
#   7. tests      peftlab_tests, then the device, training-step, decoder parity and method conformance suites
# then a markdown table of both sides (summary.md), printed at the end.
#
# Every stage runs under `timeout` within a total budget, so one failing or slow stage leaves the others'
# results; a stage that has no time left is reported as skipped. Everything lands in $OUT (default
# ./gpu-check-out): gpu_check.log (the whole console), summary.md, results.json (every measurement and each
# stage's outcome) and raw.tar.gz (configure, build and test logs, the bench's --markdown and --json files,
# the Python JSON lines), refreshed after every stage.
#
# Environment: OUT; PEFTLAB_PYTHON (default: python3, the one with PyTorch); PEFTLAB_TORCH (default: python;
# or a LibTorch folder); PEFTLAB_GPU_CHECK_SECONDS (total budget, default 450); PEFTLAB_GPU_CHECK_STEPS (timed
# steps per case, default 5); PEFTLAB_DEBS (folder of .deb files, default build-debs); PEFTLAB_DATA (data
# root for the tests' stories260K, default ./data when it exists); PEFTLAB_JOBS (default: all cores);
# PEFTLAB_GPU_CHECK_HF=0 or PEFTLAB_GPU_CHECK_TESTS=0 leave out the transformers + PEFT stage or the tests (a
# second run on the same machine, whose build-cuda/ is then incremental, can spend its budget on the rest).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT" || { echo "gpu_check: cannot create $OUT"; exit 2; }
OUT=$(cd "$OUT" && pwd)
BUILD=${PEFTLAB_BUILD_DIR:-$ROOT/build-cuda}
RAW=$BUILD-check                     # the raw files, packed into $OUT/raw.tar.gz
DEPS=$BUILD-deps                     # where .deb files are unpacked
BUDGET=${PEFTLAB_GPU_CHECK_SECONDS:-450}
STEPS=${PEFTLAB_GPU_CHECK_STEPS:-5}
JOBS=${PEFTLAB_JOBS:-$(nproc)}
DEBS=${PEFTLAB_DEBS:-$ROOT/build-debs}
PEFTLAB_PYTHON=${PEFTLAB_PYTHON:-$(command -v python3 || echo python3)}
PEFTLAB_TORCH=${PEFTLAB_TORCH:-python}
if [ -z "${PEFTLAB_DATA:-}" ] && [ -d "$ROOT/data" ]; then PEFTLAB_DATA=$ROOT/data; fi
export ROOT OUT BUILD RAW DEPS STEPS JOBS PEFTLAB_PYTHON PEFTLAB_TORCH PEFTLAB_DATA
case "$BUDGET$STEPS$JOBS" in *[!0-9]*) echo "gpu_check: PEFTLAB_GPU_CHECK_SECONDS, PEFTLAB_GPU_CHECK_STEPS and PEFTLAB_JOBS must be whole numbers"; exit 2;; esac
rm -rf "$RAW"
mkdir -p "$RAW/shapes/110M" "$RAW/shapes/TinyLlama-1.1B" || { echo "gpu_check: cannot create $RAW"; exit 2; }
rm -f "$OUT/gpu_check.log" "$OUT/summary.md" "$OUT/results.json" "$OUT/raw.tar.gz"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
START=$SECONDS
echo "gpu_check: $(date -u +%FT%TZ) in $ROOT; budget ${BUDGET}s; out: $OUT"

# The shapes, as config.json files (random weights): llama2.c's 110M (what `--shape 110M` builds) and
# TinyLlama-1.1B's configuration.
cat >"$RAW/shapes/110M/config.json" <<'EOF'
{"model_type": "llama", "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
 "num_attention_heads": 12, "num_key_value_heads": 12, "vocab_size": 32000, "max_position_embeddings": 1024,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true, "hidden_act": "silu"}
EOF
cat >"$RAW/shapes/TinyLlama-1.1B/config.json" <<'EOF'
{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 5632,
 "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "hidden_act": "silu", "torch_dtype": "bfloat16"}
EOF
# Batch x sequence of each shape, the same on both sides.
export BATCH_110M=8 SEQ_110M=256 BATCH_1B=8 SEQ_1B=512

printf 'stage\tstatus\tseconds\tnote\n' >"$RAW/stages.tsv"

pack() {
  tar czf "$OUT/raw.tar.gz.part" -C "$RAW" . 2>/dev/null && mv "$OUT/raw.tar.gz.part" "$OUT/raw.tar.gz"
  timeout 60 "$PEFTLAB_PYTHON" - "$RAW" "$OUT" >/dev/null 2>"$RAW/summary.err" <<'PY' || echo "gpu_check: the summary could not be written (see summary.err in raw.tar.gz)"
import glob, json, os, sys

raw, out = sys.argv[1], sys.argv[2]
names = {"110M": "110M"}


def shape_name(shape):
    return os.path.basename(os.path.normpath(shape)) if os.sep in shape else shape


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


env = load(os.path.join(raw, "env.json")) or {}
stages = []
with open(os.path.join(raw, "stages.tsv")) as f:
    next(f)
    for line in f:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 4:
            stages.append(dict(zip(("stage", "status", "seconds", "note"), parts)))
rows = []  # (shape, method, implementation, step s, tokens/s, peak bytes, loss, note)
for path in sorted(glob.glob(os.path.join(raw, "bench-*.json"))):
    bench = load(path)
    if not bench:
        continue
    for shape in bench.get("shapes", []):
        for case in shape.get("cases", []):
            c = case["case"]
            tokens = c["batch"] * c["seq_len"]
            impl = "peftlab (fp32 weights, bf16 autocast)" if c["precision"] == "bf16" else "peftlab (" + c["precision"] + ")"
            rows.append((shape_name(c["shape"]), c["method"], impl, case["step_seconds"], tokens / case["step_seconds"],
                         case.get("peak_gpu_bytes"), case.get("final_loss"), ""))
hf = []
hf_path = os.path.join(raw, "hf_peft.jsonl")
if os.path.exists(hf_path):
    with open(hf_path) as f:
        for line in f:
            try:
                hf.append(json.loads(line))
            except ValueError:
                pass
for r in hf:
    if "method" not in r:
        rows.append((shape_name(r.get("shape", "?")), "-", "transformers + PEFT", None, None, None, None, r.get("error", "")))
        continue
    impl = {"autocast": "transformers + PEFT (fp32 weights, bf16 autocast)",
            "bf16": "transformers + PEFT (bf16 weights)", "fp32": "transformers + PEFT (fp32)"}.get(r.get("precision"), "transformers + PEFT")
    note = r.get("error") or r.get("missing") or ""
    rows.append((shape_name(r.get("shape", "?")), r["method"], impl, r.get("step_seconds_median"),
                 r.get("tokens_per_second"), r.get("peak_gpu_bytes"), r.get("final_loss"), note))
order = {"110M": 0, "TinyLlama-1.1B": 1}
rows.sort(key=lambda r: (order.get(r[0], 9), r[0], r[1], r[2]))


def fmt(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else ""


lines = ["## GPU check", ""]
gpu = env.get("gpu") or "no GPU seen"
lines.append(f"GPU: {gpu}; PyTorch {env.get('torch', '?')} (CUDA {env.get('cuda', '?')}); transformers "
             f"{env.get('transformers', '-')}; PEFT {env.get('peft', '-')}; NCCL {env.get('nccl', '-')}. "
             f"Batch x sequence: 110M {os.environ.get('BATCH_110M')} x {os.environ.get('SEQ_110M')}, TinyLlama-1.1B "
             f"{os.environ.get('BATCH_1B')} x {os.environ.get('SEQ_1B')}; rank 8, alpha 16, every linear; AdamW; "
             f"random weights and tokens; median of {os.environ.get('STEPS')} steps after 2 warm-up. Peak GPU: "
             "the CUDA caching allocator's peak (torch.cuda.max_memory_allocated) over setup and the steps.")
lines += ["", "| shape | method | implementation | step (ms) | tokens/s | peak GPU (MiB) | final loss | note |",
          "|---|---|---|---:|---:|---:|---:|---|"]
for shape, method, impl, step, tps, peak, loss, note in rows:
    lines.append(f"| {shape} | {method} | {impl} | {fmt(step * 1e3 if step else None, '.1f')} | {fmt(tps, '.0f')} | "
                 f"{fmt(peak / 2**20 if peak else None, '.0f')} | {fmt(loss, '.4f')} | {note} |")
if not rows:
    lines.append("| - | - | nothing measured | | | | | see the stages below |")
lines += ["", "| stage | status | seconds | note |", "|---|---|---:|---|"]
lines += [f"| {s['stage']} | {s['status']} | {s['seconds']} | {s['note']} |" for s in stages]
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"env": env, "stages": stages, "hf_peft": hf,
               "peftlab": [load(p) for p in sorted(glob.glob(os.path.join(raw, "bench-*.json")))]}, f, indent=1)
print(text)
PY
}

record() {  # record STAGE STATUS SECONDS NOTE
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW/stages.tsv"
  echo "gpu_check: stage $1: $2 (${3}s)${4:+: $4}"
}

# stage NAME CAP FUNCTION: runs the exported FUNCTION under timeout (CAP seconds, or what the budget has left).
stage() {
  local name=$1 cap=$2 fn=$3 left limit t0 rc
  left=$((BUDGET - (SECONDS - START) - 10))
  limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 20 ]; then
    record "$name" skipped 0 "the ${BUDGET}s budget is spent"
    return 99
  fi
  echo
  echo "== $name (limit ${limit}s, $((SECONDS - START))s elapsed)"
  t0=$SECONDS
  timeout --kill-after=10 "$limit" bash -c "$fn"
  rc=$?
  if [ $rc -eq 0 ]; then record "$name" ok $((SECONDS - t0)) ""
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then record "$name" "timed out" $((SECONDS - t0)) "stopped after ${limit}s"
  else record "$name" failed $((SECONDS - t0)) "exit $rc$(tail -n 1 "$RAW/$name.why" 2>/dev/null | sed 's/^/: /')"
  fi
  pack
  return $rc
}

# ---- 1. probe ----
probe() {
  "$PEFTLAB_PYTHON" - "$RAW/env.json" <<'PY'
import json, sys
env = {}
try:
    import torch
    env["torch"] = torch.__version__
    env["cuda"] = torch.version.cuda
    env["cxx11_abi"] = bool(torch._C._GLIBCXX_USE_CXX11_ABI)
    env["cmake_prefix_path"] = torch.utils.cmake_prefix_path
    env["cuda_available"] = torch.cuda.is_available()
    if env["cuda_available"]:
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"
    try:
        import torch.distributed as dist
        env["nccl"] = ".".join(map(str, torch.cuda.nccl.version())) if dist.is_nccl_available() else "not available"
    except Exception as e:
        env["nccl"] = f"unknown ({type(e).__name__})"
except Exception as e:
    env["torch_error"] = f"{type(e).__name__}: {e}"
for name in ("transformers", "peft"):
    try:
        env[name] = __import__(name).__version__
    except Exception as e:
        env[name + "_error"] = f"{type(e).__name__}: {e}"
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env, indent=1))
if "torch_error" in env:
    print("gpu_check: this python3 has no PyTorch (set PEFTLAB_PYTHON to the interpreter that has it)")
    sys.exit(1)
if not env.get("cuda_available"):
    print("gpu_check: PyTorch sees no CUDA device (torch.cuda.is_available() is False): the GPU stages will fail")
    sys.exit(1)
PY
  local rc=$?
  nvidia-smi -L 2>&1 | head -n 4
  echo "nvcc: $(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || echo none) $( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -n 1)"
  echo "cmake: $(cmake --version 2>/dev/null | head -n 1 || echo none); ninja: $(ninja --version 2>/dev/null || echo none); c++: $(c++ --version 2>/dev/null | head -n 1 || echo none)"
  if [ -f "${PEFTLAB_DATA:-$ROOT/data}/models/stories260K/stories260K.bin" ]; then
    echo "data: stories260K found under ${PEFTLAB_DATA:-$ROOT/data}"
  else
    echo "data: no models/stories260K under ${PEFTLAB_DATA:-$ROOT/data}: the training-step and conformance tests will fail (copy ../shared/data/models/stories260K to ./data/models/ and carry data)"
  fi
  return $rc
}
export -f probe

# ---- 2. transformers + PEFT ----
hf() {
  local out=$RAW/hf_peft.jsonl status=0
  PYTHONUNBUFFERED=1 "$PEFTLAB_PYTHON" bench/hf_peft_step.py --config "$RAW/shapes/110M" --label 110M \
    --methods lora,dora,bora --precision autocast,bf16 --batch "$BATCH_110M" --seq-len "$SEQ_110M" \
    --warmup 2 --steps "$STEPS" --out "$out" || status=$?
  PYTHONUNBUFFERED=1 "$PEFTLAB_PYTHON" bench/hf_peft_step.py --config "$RAW/shapes/TinyLlama-1.1B" \
    --label TinyLlama-1.1B --methods lora,dora,bora --precision autocast,bf16 --batch "$BATCH_1B" \
    --seq-len "$SEQ_1B" --warmup 2 --steps "$STEPS" --out "$out" || status=$?
  [ $status -eq 0 ] || echo "a transformers + PEFT case failed (its line in hf_peft.jsonl says why)" >"$RAW/hf.why"
  return $status
}
export -f hf

# ---- 3. deps ----
# Header -> Debian package, for what peftlab's CMakeLists.txt finds.
DEP_HEADERS=(yaml-cpp/yaml.h:libyaml-cpp-dev fmt/format.h:libfmt-dev spdlog/spdlog.h:libspdlog-dev
             CLI/CLI.hpp:libcli11-dev nlohmann/json.hpp:nlohmann-json3-dev hdf5/serial/H5Cpp.h:libhdf5-dev
             gtest/gtest.h:libgtest-dev openssl/evp.h:libssl-dev sentencepiece_processor.h:libsentencepiece-dev
             pcre2.h:libpcre2-dev unicode/uchar.h:libicu-dev)
missing_deps() {  # prints the packages whose header is in neither /usr/include nor $1/usr/include
  local entry header torch_include=""
  # Gloo's headers (experiments/distributed.cpp includes c10d's ProcessGroupGloo.hpp): LibTorch's own when it
  # ships them, else the system's.
  # shellcheck source=scripts/torch_env.sh
  source scripts/torch_env.sh
  if torch_env_resolve >/dev/null 2>&1 && [ -n "$TORCH_ENV_LIB" ]; then torch_include="$TORCH_ENV_LIB/../include"; fi
  if [ ! -e "$torch_include/gloo/algorithm.h" ] && [ ! -e /usr/include/gloo/algorithm.h ] &&
     { [ -z "$1" ] || [ ! -e "$1/usr/include/gloo/algorithm.h" ]; }; then
    printf '%s ' libgloo-dev
  fi
  for entry in "${DEP_HEADERS[@]}"; do
    header=${entry%%:*}
    if [ ! -e "/usr/include/$header" ] && [ ! -e "/usr/local/include/$header" ] && { [ -z "$1" ] || [ ! -e "$1/usr/include/$header" ]; }; then
      printf '%s ' "${entry##*:}"
    fi
  done
}
DEPS_CMAKE_ARGS=()
deps() {
  local t0=$SECONDS missing debs=() f arch
  missing=$(missing_deps "")
  if [ -z "$missing" ]; then record deps ok $((SECONDS - t0)) "every library is installed"; return 0; fi
  echo "gpu_check: not installed here: $missing"
  for f in "$DEBS"/*.deb; do [ -f "$f" ] && debs+=("$f"); done
  if [ ${#debs[@]} -eq 0 ]; then
    record deps failed $((SECONDS - t0)) "missing $missing; no .deb files in $DEBS (run scripts/gpu_debs.sh on a Debian 12 machine and carry build-debs)"
    return 1
  fi
  rm -rf "$DEPS" && mkdir -p "$DEPS"
  for f in "${debs[@]}"; do timeout 60 dpkg-deb -x "$f" "$DEPS" || echo "gpu_check: cannot unpack $f"; done
  # pkg-config files name /usr: point them at the prefix.
  find "$DEPS" -name '*.pc' -exec sed -i "s#=\s*/usr#=$DEPS/usr#g; s#-I/usr#-I$DEPS/usr#g; s#-L/usr#-L$DEPS/usr#g" {} +
  arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  local libdirs="$DEPS/usr/lib/$arch:$DEPS/usr/lib/$arch/hdf5/serial"
  export PKG_CONFIG_PATH="$DEPS/usr/lib/$arch/pkgconfig:$DEPS/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  # RPATH (not RUNPATH) so that the libraries' own dependencies are found in the prefix as well.
  local rpath="-Wl,--disable-new-dtags -Wl,-rpath,${libdirs//:/ -Wl,-rpath,} -Wl,-rpath-link,${libdirs//:/ -Wl,-rpath-link,}"
  # CMAKE_PREFIX_PATH, not HDF5_ROOT: FindHDF5 then searches the prefix's multiarch folders (lib/<arch>/hdf5/serial).
  # -idirafter: the prefix's headers (Gloo's among them) only where nothing else has them.
  DEPS_CMAKE_ARGS=(-DCMAKE_PREFIX_PATH="$DEPS/usr" -DCMAKE_EXE_LINKER_FLAGS="$rpath" -DCMAKE_SHARED_LINKER_FLAGS="$rpath"
                   -DCMAKE_CXX_FLAGS="-idirafter $DEPS/usr/include")
  missing=$(missing_deps "$DEPS")
  if [ -n "$missing" ]; then
    record deps failed $((SECONDS - t0)) "still missing after unpacking ${#debs[@]} .deb files: $missing"
    return 1
  fi
  record deps ok $((SECONDS - t0)) "unpacked ${#debs[@]} .deb files into $DEPS"
}

# ---- 4. configure (in this shell: it reads DEPS_CMAKE_ARGS; cmake runs under timeout $LIMIT) ----
configure() {
  # shellcheck source=scripts/torch_env.sh
  source scripts/torch_env.sh
  torch_env_resolve >"$RAW/torch_env.log" 2>&1
  local rc=$?
  cat "$RAW/torch_env.log"
  if [ $rc -ne 0 ]; then tail -n 1 "$RAW/torch_env.log" >"$RAW/configure.why"; return 2; fi
  local generator=()
  if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  timeout --kill-after=10 "$LIMIT" cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    "${TORCH_ENV_CMAKE_ARGS[@]}" "${DEPS_CMAKE_ARGS[@]}" >"$RAW/configure.log" 2>&1
  rc=$?
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && return $rc
  grep "peftlab: \|torch-env" "$RAW/configure.log"
  if [ $rc -ne 0 ]; then
    local why
    why=$(grep -m1 -E "Could NOT find [A-Za-z0-9_-]+|Could not find a package configuration file provided by \"[^\"]+\"|pre-C\+\+11 ABI|CUDA[^.]*(not found|cannot|Could not|Failed)|No CMAKE_CUDA_COMPILER|Failed to find nvcc|CMake [0-9.]+ or higher is required" "$RAW/configure.log")
    echo "gpu_check: cmake failed: ${why:-see configure.log}"
    if grep -qi "cuda" <<<"$why"; then echo "gpu_check: CMake cannot find the CUDA toolkit that LibTorch's config needs: put nvcc on PATH or set CUDACXX / CUDA_HOME"; fi
    echo "${why:-see configure.log}" >"$RAW/configure.why"
    tail -n 25 "$RAW/configure.log"
    return 1
  fi
  grep -q "with CUDA at" "$RAW/configure.log" || echo "gpu_check: warning: configured without CUDA (see configure.log)"
}

build_target() {  # build_target TARGET STAGE
  cmake --build "$BUILD" --target "$1" -j"$JOBS" >"$RAW/$2.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    grep -m 3 -E "error:|undefined reference|cannot find -l" "$RAW/$2.log" | tee "$RAW/$2.why"
    tail -n 15 "$RAW/$2.log"
  else
    tail -n 2 "$RAW/$2.log"
  fi
  return $rc
}
build_peftlab() { build_target peftlab build; }
build_tests() { build_target peftlab_tests build-tests; }
export -f build_target build_peftlab build_tests

# ---- 6. bench ----
bench_shape() {  # bench_shape NAME SHAPE BATCH SEQ
  local name=$1 shape=$2
  "$BUILD/peftlab" --device cuda bench --shape "$shape" --methods lora+bf16,dora+bf16,bora+bf16 --batch "$3" \
    --seq-len "$4" --steps "$STEPS" --warmup 2 --eval-repeats 1 --no-reference --markdown "$RAW/bench-$name.md" \
    --json "$RAW/bench-$name.json" 2>&1 | tee "$RAW/bench-$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || grep -m1 -E "error|failed" "$RAW/bench-$name.log" >"$RAW/bench-$name.why"
  return "$rc"
}
bench_110m() { bench_shape 110M 110M "$BATCH_110M" "$SEQ_110M"; }
bench_1b() { bench_shape TinyLlama-1.1B "$RAW/shapes/TinyLlama-1.1B" "$BATCH_1B" "$SEQ_1B"; }
export -f bench_shape bench_110m bench_1b

# ---- 7. tests ----
# The device suite, the shared training step, the decoder parity suites (against tests/reference/, run by
# $PEFTLAB_PYTHON) and the method conformance suites.
TEST_REGEX='^(Device|TrainingStep|Rotary|FamilyParityReference|Decoders/FamilyParity|Decoders/HalfPrecisionFiles|AllMethods/MethodConformance|Bora/BoraConformance|ExactNormMethods/ExactGradientConformance|MethodConformanceTable)$'
export TEST_REGEX
run_tests() {
  ctest --test-dir "$BUILD" -R "$TEST_REGEX" -j"$JOBS" --output-on-failure --timeout 200 >"$RAW/ctest.log" 2>&1
  local rc=$?
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Timeout" "$RAW/ctest.log" | head -n 20
  [ $rc -eq 0 ] || grep -m1 "tests failed" "$RAW/ctest.log" >"$RAW/tests.why"
  return $rc
}
export -f run_tests

# ---- the run ----
stage probe 90 probe
if [ "${PEFTLAB_GPU_CHECK_HF:-1}" = 0 ]; then record hf skipped 0 "PEFTLAB_GPU_CHECK_HF=0"; else stage hf 170 hf; fi
deps
deps_ok=$?
if [ $deps_ok -ne 0 ]; then
  for s in configure build bench-110M bench-TinyLlama-1.1B build-tests tests; do record "$s" skipped 0 "system libraries missing (stage deps)"; done
else
  LIMIT=$((BUDGET - (SECONDS - START) - 10))
  LIMIT=$((LIMIT < 150 ? LIMIT : 150))
  if [ "$LIMIT" -lt 20 ]; then
    record configure skipped 0 "the ${BUDGET}s budget is spent"
    configured=1
  else
    echo
    echo "== configure (limit ${LIMIT}s, $((SECONDS - START))s elapsed)"
    t0=$SECONDS
    configure
    configured=$?
    if [ $configured -eq 0 ]; then record configure ok $((SECONDS - t0)) ""
    elif [ $configured -eq 124 ] || [ $configured -eq 137 ]; then record configure "timed out" $((SECONDS - t0)) "stopped after ${LIMIT}s"
    else record configure failed $((SECONDS - t0)) "$(tail -n 1 "$RAW/configure.why" 2>/dev/null)"
    fi
    pack
  fi
  if [ "$configured" -ne 0 ]; then
    for s in build bench-110M bench-TinyLlama-1.1B build-tests tests; do record "$s" skipped 0 "not configured"; done
  elif stage build 330 build_peftlab; then
    stage bench-110M 120 bench_110m
    stage bench-TinyLlama-1.1B 180 bench_1b
    if [ "${PEFTLAB_GPU_CHECK_TESTS:-1}" = 0 ]; then
      record build-tests skipped 0 "PEFTLAB_GPU_CHECK_TESTS=0"
      record tests skipped 0 "PEFTLAB_GPU_CHECK_TESTS=0"
    elif stage build-tests 300 build_tests; then stage tests 200 run_tests
    else record tests skipped 0 "peftlab_tests not built"
    fi
  else
    for s in bench-110M bench-TinyLlama-1.1B build-tests tests; do record "$s" skipped 0 "peftlab not built"; done
  fi
fi

pack
failed=$(awk -F'\t' 'NR > 1 && ($2 == "failed" || $2 == "timed out") {printf "%s ", $1}' "$RAW/stages.tsv")
echo
echo "gpu_check: done in $((SECONDS - START))s; files in $OUT: gpu_check.log, summary.md, results.json, raw.tar.gz"
cat "$OUT/summary.md" 2>/dev/null || echo "gpu_check: no summary.md (see summary.err in raw.tar.gz)"
if [ -n "$failed" ]; then
  echo "gpu_check: failed or timed out: $failed"
  exit 1
fi
