#!/usr/bin/env bash
# The main job end to end on the bundled default (scikit-learn digits), as `make demo` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ANASIM=.venv/bin/anasim
OUT=${OUT:-out/demo}
mkdir -p "$OUT"
echo "== 1. train a small TD-KAN [64,16,10] with bases a21,z21 on digits"
$ANASIM train --dataset digits --dims 64,16,10 --bases a21,z21 --epochs 60 --seed 0 --threads 1 -o "$OUT/digits.pt"
echo "== 2. what the checkpoint holds"
$ANASIM info "$OUT/digits.pt"
echo "== 3. compile it into an ngspice crossbar netlist"
$ANASIM compile "$OUT/digits.pt" -o "$OUT/digits.cir"
echo "== 4. simulate all 360 digits test images in ngspice and compare with PyTorch, sample by sample"
$ANASIM simulate "$OUT/digits.pt" --samples 360 --json "$OUT/digits_sim.json"
