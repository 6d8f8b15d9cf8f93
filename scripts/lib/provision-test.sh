#!/usr/bin/env bash
# Installs what the tests and the recognizer benchmark need on top of provision.sh's: ffmpeg (the
# tests' odd audio formats), Debian's Chromium and its WebDriver (the Swagger UI and console
# browser tests, with Korean fonts for the console's screenshots), Firefox ESR and geckodriver
# (built from crates.io: Debian does not package it) for the console in Firefox,
# Prometheus's promtool (the strict check of /trd/metrics, taken from Debian's prometheus package
# into $TRD_CACHE/promtool: installing the package would start a Prometheus server on machines
# with systemd), a Python virtual environment of API checkers and real clients (with the `vosk`
# package and `websockets` the reference vosk-server runs on), and the reference `vosk` Python
# CLI (scripts/bench-recognizer compares with it).
# Idempotent. Like provision.sh it can be executed or sourced (`provision_test`, then
# `steps_wait`); it assumes provision.sh's steps ran first.
set -euo pipefail

PROVISION_TEST_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$PROVISION_TEST_LIB/provision.sh"

# The API checkers: an OpenAPI validator, schemathesis, a Prometheus text parser, Selenium.
TEST_TOOLS="$TRD_CACHE/test-tools"
TEST_REQUIREMENTS="schemathesis==4.32.5 openapi-spec-validator==0.9.0 prometheus-client==0.26.0 selenium==4.51.0 speechmatics-python==5.0.0.post1 speechmatics-batch==1.1.0 openai==3.57.0 websockets==12.0 speechmatics-rt==1.2.1 vosk==$VOSK_VERSION"
PROMTOOL="$TRD_CACHE/promtool/promtool"
# Firefox's WebDriver: Debian does not package it; Mozilla publishes it as a crate.
GECKODRIVER_VERSION=0.37.1
GECKODRIVER="$TRD_CACHE/geckodriver/bin/geckodriver"

test_packages() {
  command -v ffmpeg >/dev/null || echo ffmpeg
  command -v chromium >/dev/null || echo chromium
  command -v chromedriver >/dev/null || echo chromium-driver
  # Korean glyphs for the console's screenshots of Korean transcripts.
  [ -d /usr/share/fonts/truetype/nanum ] || echo fonts-nanum
  # The console's check in Firefox.
  command -v firefox-esr >/dev/null || command -v firefox >/dev/null || echo firefox-esr
  python3 -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv
}

promtool_missing() { [ ! -x "$PROMTOOL" ] && ! command -v promtool >/dev/null; }

# Debian packages, then promtool out of Debian's prometheus package.
install_test_packages() {
  local tmp
  if [ $# -gt 0 ]; then
    apt_install "$@"
  else
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  promtool_missing || return 0
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download prometheus)
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$(dirname "$PROMTOOL")"
  mv "$tmp/x/usr/bin/promtool" "$PROMTOOL"
  rm -rf "$tmp"
}

build_geckodriver() {
  # In cargo install's own target directory, as provision.sh builds the database server: a
  # shared CARGO_TARGET_DIR would make it and the workspace build wait for each other's lock.
  env -u CARGO_TARGET_DIR cargo install --quiet --locked geckodriver \
    --version "$GECKODRIVER_VERSION" --root "$TRD_CACHE/geckodriver"
}

install_test_tools() {
  rm -rf "$TEST_TOOLS"
  python3 -m venv "$TEST_TOOLS"
  # shellcheck disable=SC2086
  "$TEST_TOOLS/bin/pip" install -q $TEST_REQUIREMENTS
  echo "$TEST_REQUIREMENTS" >"$TEST_TOOLS/.ready"
}

provision_test() {
  STEPS_TAG=provision-test STEPS_TOTAL=4 STEPS_LOGS="$TRD_CACHE/logs"
  local packages
  packages=$(test_packages | xargs)
  local what=${packages:+Debian packages: $packages}
  promtool_missing && what="${what:+$what, }promtool"
  [ -z "$what" ] || step_start 1 "installing $what (about 2 min)" install_test_packages $packages
  if ! python3 -c 'import vosk' 2>/dev/null; then
    step_start 2 "installing the vosk Python package, the benchmark's reference CLI (under 1 min)" \
      pip install -q "vosk==$VOSK_VERSION"
  fi
  if [ "$(cat "$TEST_TOOLS/.ready" 2>/dev/null)" != "$TEST_REQUIREMENTS" ]; then
    # python3-venv may be among the packages.
    python3 -c 'import venv, ensurepip' 2>/dev/null || steps_wait 1
    step_start 3 "installing the test tools ($TEST_REQUIREMENTS) (about 1 min)" install_test_tools
  fi
  if ! "$GECKODRIVER" --version 2>/dev/null | grep -q "^geckodriver $GECKODRIVER_VERSION "; then
    step_start 4 "building geckodriver $GECKODRIVER_VERSION, Firefox's WebDriver (about 2 min)" \
      build_geckodriver
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  provision_test
  steps_wait
fi
