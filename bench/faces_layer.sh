#!/usr/bin/env bash
# Issue 7, beyond the paper: a finished faces run's weights, exported with a consistency
# layer it did not train with (python -m pan_tf.export --consistency=…), and evaluated
# like any faces run. No training: the row's time is the base run's.
#
#   bash bench/faces_layer.sh runs/faces_v5/pan pan_ibp backproject_smooth
#
# Exports BASE/export/NAME/ (next to BASE/export/pan/, which stays as it is) and writes
# RUNS/NAME/ (RUNS defaults to BASE's folder): command, wall_seconds (BASE's) and
# eval_{bicubic,pipeline}.*.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1 name=$2 consistency=$3
out=${RUNS:-$(dirname "$base")}/$name
[ -e "$out" ] && { echo "$out exists: pick another name" >&2; exit 2; }
mkdir -p "$out"
cmd=(python -m pan_tf.export --workdir="$base" --consistency="$consistency" --model_name="$name")
echo "${cmd[*]}" > "$out/command"
"${cmd[@]}" > "$out/export.log" 2>&1
[ -f "$base/wall_seconds" ] && cp "$base/wall_seconds" "$out/"
bash bench/faces_eval.sh "$out" "$base/export/$name"
echo "$name:"; cat "$out/eval_bicubic.md"
