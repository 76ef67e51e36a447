#!/usr/bin/env bash
# Issue 7: evaluate an exported model's x4 version on the 50 held-out faces
# (../shared/data/faces256/00250-00299) with bicubic and with pipeline-degraded inputs.
#
#   bash bench/faces_eval.sh OUT_DIR MODEL_DIR
#
# Writes OUT_DIR/eval_{bicubic,pipeline}.{json,md,png,log}. bench/faces_experiment.sh and
# bench/faces_layer.sh call it; bench/faces_table.py reads what it writes. LABEL=x2
# evaluates the x2 version instead (at its own size), e.g. for a run stopped with
# --stop_kimg at the end of its x2 stage.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 model=$2 label=${LABEL:-x4}
held_out='../shared/data/faces256/002[5-9][0-9].png'
for lr in bicubic pipeline; do
  python -m pan_tf.evaluate --model="$model" --label="$label" --hr_dir="$held_out" \
    --scale="${label#x}" --degrade=$lr --report="$out/eval_$lr" > "$out/eval_$lr.log" 2>&1
done
