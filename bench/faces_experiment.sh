#!/usr/bin/env bash
# Issue 7: train one variant of PAN on the CPU-scale faces config and evaluate its last
# stage on the 50 held-out faces (../shared/data/faces256/00250-00299), with bicubic and
# with pipeline-degraded inputs. One variant per call, one call at a time (clean timings):
#
#   bash bench/faces_experiment.sh pan            # the paper's method
#   bash bench/faces_experiment.sh nonprog        # --progressive=false (same wall-time budget)
#   bash bench/faces_experiment.sh l1             # --loss=l1
#   bash bench/faces_experiment.sh l2             # --loss=l2
#   bash bench/faces_experiment.sh nonoise        # --noise=false
#   bash bench/faces_experiment.sh NAME --flag=…  # any other variant
#
# CONFIG=configs/faces_x4_128_cpu.flags trains on another config (default faces_x4_cpu.flags).
# Writes runs/faces/NAME/{train.log,wall_seconds,command,machine,eval_bicubic.*,eval_pipeline.*}
# ($RUNS/NAME when RUNS is set; the wall time goes to $WALL_FILE if set, which
# bench/faces_branch.sh uses for a run that resumes another's checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift || true
case "$name" in
  pan) extra=() ;;
  nonprog) extra=(--progressive=false "--stop_kimg=${NONPROG_KIMG:-50}") ;;
  l1) extra=(--loss=l1) ;;
  l2) extra=(--loss=l2) ;;
  nonoise) extra=(--noise=false) ;;
  *) extra=() ;;
esac
extra+=("$@")
runs=${RUNS:-runs/faces}
workdir=$runs/$name
mkdir -p "$workdir"
cmd=(python -m pan_tf.train "--flagfile=${CONFIG:-configs/faces_x4_cpu.flags}" --workdir="$workdir" "${extra[@]}")
echo "${cmd[*]}" > "$workdir/command"
# The host, since wall times depend on it (round 9's AVX2-only EPYC ran 2.5-4.5x slower).
{ grep -m1 "model name" /proc/cpuinfo; echo "cores: $(nproc)"
  grep -m1 -ow avx512f /proc/cpuinfo || echo "no avx512f"; } > "$workdir/machine" 2>/dev/null || true
start=$(date +%s)
"${cmd[@]}" > "$workdir/train.log" 2>&1
wall_file=${WALL_FILE:-wall_seconds}
echo $(( $(date +%s) - start )) > "$workdir/$wall_file"
bash bench/faces_eval.sh "$workdir" "$workdir/export/pan"
echo "$name: $(cat "$workdir/$wall_file") s"; cat "$workdir/eval_bicubic.md"
