#!/usr/bin/env bash
# Compiles a Vosk model's lookahead decoding graph into one static graph, graph/HCLG.fst,
# which Vosk uses instead when it is present.
#
# Why: a lookahead model (graph/HCLr.fst + graph/Gr.fst) is composed lazily by every
# recognizer while it listens. That made decoding about four times slower. It also made a
# recognizer's words depend on what it had heard before. The static graph has the same
# acoustic model, lexicon and language model and gives the same words, read-only and shared.
#
# Usage: compile-graph.sh MODEL_DIR
# Idempotent. Needs Debian's libfst-tools and OpenFst's base plugins (libfst22-plugins-base on
# Debian 12); takes about 2 minutes and 3.2 GB of memory for the default model. Writes 1 GB.
set -euo pipefail

model=${1:?usage: compile-graph.sh MODEL_DIR}
graph="$model/graph"
[ -f "$graph/HCLG.fst" ] && exit 0
# A model that already has a static graph, or no graph we know how to compose.
[ -f "$graph/HCLr.fst" ] && [ -f "$graph/Gr.fst" ] && [ -f "$graph/disambig_tid.int" ] || exit 0

# OpenFst opens the lookahead and n-gram FST types as plugins from the library path.
lookahead_plugin=$(find /usr/lib -name olabel_lookahead-fst.so -print -quit)
[ -n "$lookahead_plugin" ] || { echo "compile-graph: OpenFst's lookahead plugin is not installed" >&2; exit 1; }
export LD_LIBRARY_PATH="$(dirname "$lookahead_plugin")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# One compilation at a time (two provisioning runs at once wait for each other); what a
# compilation cut short left behind goes first.
exec 9>"$graph/.compile.lock"
flock 9
[ -f "$graph/HCLG.fst" ] && exit 0
rm -rf "$graph"/.compile.*/
work=$(mktemp -d "$graph/.compile.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The word list goes to words.txt, where Vosk reads it for a static graph.
fstsymbols --save_osymbols="$work/words.txt" --clear_isymbols --clear_osymbols \
  "$graph/Gr.fst" "$work/G.fst"
# Disambiguation symbols become epsilons, as Vosk's lazy composition makes them.
awk '{ print $1, 0 }' "$graph/disambig_tid.int" >"$work/disambiguation.pairs"
fstcompose "$graph/HCLr.fst" "$work/G.fst" \
  | fstrelabel --relabel_ipairs="$work/disambiguation.pairs" \
  | fstconvert --fst_type=const - "$work/HCLG.fst"
[ -f "$graph/words.txt" ] || mv "$work/words.txt" "$graph/words.txt"
# Last, so that a compilation cut short leaves the model as it was.
mv "$work/HCLG.fst" "$graph/HCLG.fst"
