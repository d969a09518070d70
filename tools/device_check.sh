#!/usr/bin/env bash
# device_check.sh: prove the TensorRT path on a Jetson or a GPU server, and write a
# report to attach to an issue.
#
# On the workstation (TensorFlow, Keras), write the TensorRT-ready files for the
# device's TensorRT (each command prints the device-side lines and exits 1, since
# the workstation builds no engine):
#   edgedet export --model M --target trt --trt-version 10.3.0 --out to_device
#   edgedet export --model M --target trt --trt-version 10.3.0 --precision fp16 --out to_device
#   edgedet export --model M --target trt --trt-version 10.3.0 --precision int8 \
#       --calib-data calib/ --out to_device
# Copy to_device/ to the device (edgedet's device install + TensorRT there; see the
# README), then run:
#   tools/device_check.sh to_device [--stem M] [--out report] [--batch 1,4] [--runs 50]
# It builds FP32, FP16 and INT8 engines with `edgedet engine`, checks each against the
# workstation's float32 reference saved in the parity bundle (<stem>_parity) with
# `edgedet parity --reference`, benchmarks them with `edgedet benchmark`, and writes
# REPORT.md plus every log into the report folder and report.tar.gz next to it.
# --dry-run prints the commands without running them (no TensorRT needed).
set -uo pipefail

usage() {
  cat >&2 <<'EOF'
usage: tools/device_check.sh DIR [--stem NAME] [--out REPORT_DIR] [--batch SIZES]
                             [--runs N] [--shapes MIN,OPT,MAX] [--dry-run]
  DIR      folder written by `edgedet export --target trt` on the workstation
  --stem   artifact base name (default: the one <stem>_trt.onnx in DIR)
  --out    report folder (default: device-report); must not exist
  --batch  benchmark batch sizes (default: 1,4)
  --runs   timed runs per batch size (default: 50)
  --shapes engine optimization profile (default: 1x32x32,1x480x480,4x1080x1920)
  --dry-run  print the commands instead of running them
EOF
  exit 2
}

dir="" stem="" out="device-report" batch="1,4" runs="50"
shapes="1x32x32,1x480x480,4x1080x1920" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stem) [ $# -ge 2 ] || usage; stem="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --batch) [ $# -ge 2 ] || usage; batch="$2"; shift 2 ;;
    --runs) [ $# -ge 2 ] || usage; runs="$2"; shift 2 ;;
    --shapes) [ $# -ge 2 ] || usage; shapes="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) [ -z "$dir" ] || { echo "error: one DIR only (got '$dir' and '$1')" >&2; usage; }
       dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "error: DIR is missing" >&2; usage; }
[ -d "$dir" ] || { echo "error: '$dir' is not a folder" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "error: --runs must be a positive integer, got '$runs'" >&2; exit 2; }
[[ "$batch" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "error: --batch must be like 1,4, got '$batch'" >&2; exit 2; }
if [ -z "$stem" ]; then
  found=()
  for f in "$dir"/*_trt.onnx; do
    [ -e "$f" ] || continue
    name="$(basename "$f" _trt.onnx)"
    case "$name" in *_fp16|*_int8|*_int8_fp32) continue ;; esac
    found+=("$name")
  done
  [ ${#found[@]} -eq 1 ] || { echo "error: expected one <stem>_trt.onnx in '$dir' (found ${#found[@]}); pass --stem" >&2; exit 2; }
  stem="${found[0]}"
fi
bundle="$dir/${stem}_parity"
[ -f "$dir/${stem}_trt.onnx" ] || { echo "error: '$dir/${stem}_trt.onnx' is missing (edgedet export --target trt)" >&2; exit 2; }
[ -f "$bundle/reference.json" ] || { echo "error: parity bundle '$bundle' is missing (edgedet export --target trt writes it)" >&2; exit 2; }
if [ -e "$out" ] && [ "$dry" -eq 0 ]; then
  echo "error: '$out' exists; choose another --out" >&2; exit 2
fi

engines="$out/engines"
status=0
declare -a summary=()

run() {  # run LABEL CMD...: runs (or prints) a command, logs it, records its exit code
  local label="$1"; shift
  echo "+ $*"
  if [ "$dry" -eq 1 ]; then summary+=("| $label | (dry run) | \`$*\` |"); return 0; fi
  "$@" >"$out/logs/$label.log" 2>&1
  local rc=$?
  summary+=("| $label | $rc | \`$*\` |")
  [ $rc -eq 0 ] || { status=1; echo "  FAILED ($rc): see $out/logs/$label.log" >&2; tail -5 "$out/logs/$label.log" >&2; }
  return $rc
}

if [ "$dry" -eq 0 ]; then
  mkdir -p "$engines" "$out/logs"
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "machine: $(uname -a)"
    [ -f /etc/nv_tegra_release ] && echo "jetson: $(head -1 /etc/nv_tegra_release)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader | sed 's/^/gpu: /'
    echo "python: $(python3 --version 2>&1)"
    python3 -c 'import tensorrt; print("tensorrt:", tensorrt.__version__)' 2>&1
    python3 -c 'import onnxruntime as o; print("onnxruntime:", o.__version__, o.get_available_providers())' 2>&1
    echo "edgedet: $(edgedet --version 2>&1)"
  } >"$out/environment.txt"
  cat "$out/environment.txt"
fi

# Which ONNX each precision is built from (see `edgedet engine --help`).
built=()
for precision in fp32 fp16 int8; do
  case "$precision" in
    fp32) onnx="$dir/${stem}_trt.onnx" ;;
    fp16) onnx="$dir/${stem}_fp16_trt.onnx" ;;
    int8) onnx="$dir/${stem}_int8_trt.onnx" ;;
  esac
  if [ ! -f "$onnx" ]; then
    echo "skip $precision: $onnx is missing (export it with --precision $precision)"
    summary+=("| engine-$precision | skipped | $(basename "$onnx") missing |")
    continue
  fi
  engine="$engines/${stem}_$precision.engine"
  if run "engine-$precision" edgedet engine "$onnx" --precision "$precision" \
       --trt-shapes "$shapes" --timing-cache "$engines/timing.cache" --out "$engine"; then
    built+=("$engine")
  fi
done

if [ ${#built[@]} -gt 0 ] || [ "$dry" -eq 1 ]; then
  [ "$dry" -eq 1 ] && built=("$engines/${stem}_fp32.engine" "$engines/${stem}_fp16.engine" "$engines/${stem}_int8.engine")
  run parity edgedet parity --reference "$bundle" "${built[@]}" "$dir/${stem}_trt.onnx" \
    --out "$out/parity"
  run benchmark edgedet benchmark "${built[@]}" "$dir/${stem}_trt.onnx" --images "$bundle/images" \
    --batch "$batch" --runs "$runs" --out "$out/benchmark"
else
  echo "no engine was built: nothing to compare" >&2
  status=1
fi

[ "$dry" -eq 1 ] && exit 0
{
  echo "# edgedet device check: $stem"
  echo
  echo '```'; cat "$out/environment.txt"; echo '```'
  echo
  echo "| step | exit code | command |"
  echo "| ---- | --------- | ------- |"
  printf '%s\n' "${summary[@]}"
  echo
  echo "## Parity (engines and the TensorRT-ready ONNX vs the workstation's float32 reference)"
  echo
  [ -f "$out/parity/parity.md" ] && cat "$out/parity/parity.md" || tail -20 "$out/logs/parity.log"
  echo
  echo "## Benchmark"
  echo
  echo '```'; sed -n '/^artifact/,$p' "$out/logs/benchmark.log"; echo '```'
} >"$out/REPORT.md"
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "report: $out/REPORT.md; attach $out.tar.gz"
exit $status
