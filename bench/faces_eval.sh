#!/usr/bin/env bash
# Issue 7: evaluate an exported model's x4 version on the 50 held-out faces
# (../shared/data/faces256/00250-00299) with bicubic and with pipeline-degraded inputs.
#
#   bash bench/faces_eval.sh OUT_DIR MODEL_DIR
#
# Writes OUT_DIR/eval_{bicubic,pipeline}.{json,md,png,log}. bench/faces_experiment.sh and
# bench/faces_layer.sh call it; bench/faces_table.py reads what it writes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 model=$2
held_out='../shared/data/faces256/002[5-9][0-9].png'
for lr in bicubic pipeline; do
  python -m pan_tf.evaluate --model="$model" --label=x4 --hr_dir="$held_out" \
    --scale=4 --degrade=$lr --report="$out/eval_$lr" > "$out/eval_$lr.log" 2>&1
done
