#!/usr/bin/env bash
# Issue 7: a faces run that branches off another at one of its checkpoints. It shares the
# base run's first IMAGES images (its checkpoint and the stages exported by then), trains on
# with extra flags through bench/faces_experiment.sh (so a NAME that script knows, e.g.
# nonoise, brings its flags too). The data stream and the training noise are functions of
# (seed, images shown), so when the flags only change what happens after IMAGES (e.g.
# --grow_init, which acts at the SR stages), the branch is the full run those flags would
# give, minus the base run's time up to IMAGES.
#
#   bash bench/faces_branch.sh runs/faces_v5/pan 75008 pan_growid --grow_init=identity
#
# Writes RUNS/NAME (RUNS defaults to the base run's folder): train.log, command,
# wall_seconds_from_IMAGES, eval_{bicubic,pipeline}.*, stages.txt (bench/faces_stages.py).
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1 images=$2 name=$3; shift 3
ckpt=$base/checkpoints/ckpt-$images
[ -f "$ckpt.index" ] || { echo "no checkpoint $ckpt" >&2; exit 2; }
workdir=${RUNS:-$(dirname "$base")}/$name
[ -e "$workdir" ] && { echo "$workdir exists: pick another name" >&2; exit 2; }
mkdir -p "$workdir/checkpoints" "$workdir/export/pan"
cp "$ckpt".* "$workdir/checkpoints/"
printf 'model_checkpoint_path: "ckpt-%s"\nall_model_checkpoint_paths: "ckpt-%s"\n' \
  "$images" "$images" > "$workdir/checkpoints/checkpoint"
for version in "$base"/export/pan/*/; do        # the base run's stages finished by then
  seen=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['images_seen'])" \
         "$version/assets/stage.json")
  [ "$seen" -le "$images" ] && cp -r "$version" "$workdir/export/pan/"
done
# Training, the command file, the wall time and both evaluations as for any faces run.
RUNS=$(dirname "$workdir") WALL_FILE=wall_seconds_from_$images \
  bash bench/faces_experiment.sh "$name" --checkpoint_kimg=5 --keep_checkpoints=30 "$@"
echo "# branched off $ckpt" >> "$workdir/command"
python bench/faces_stages.py "$workdir" --all_checkpoints > "$workdir/stages.txt" 2>&1
