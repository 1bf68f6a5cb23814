#!/usr/bin/env bash
# The end-to-end gate CI runs after the tests: a digits TD-KAN trained for a few epochs, compiled,
# simulated on all 1,797 digits, a Monte Carlo of 20 realizations, a KirchhoffNet on Friedman #1,
# and one report per model; the report prints its table into the log and fails on its gates. The digits
# and KirchhoffNet simulations run on both engines (ngspice and VACASK) and the reports gate their agreement.
set -euo pipefail
cd "$(dirname "$0")/.."
ANASIM=${ANASIM:-.venv/bin/anasim}
OUT=${OUT:-out/e2e}
rm -rf "$OUT"  # a Monte Carlo refuses to overwrite an earlier one's rows
mkdir -p "$OUT"
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }

step "digits TD-KAN [64,16,10] a21+z21, 20 epochs"
$ANASIM train --dataset digits --dims 64,16,10 --bases a21,z21 --epochs 20 --seed 0 --threads 1 -o "$OUT/digits.pt" 2>/dev/null
step "compile"
$ANASIM compile "$OUT/digits.pt" -o "$OUT/digits.cir"
step "simulate all 1,797 digits (ideal op-amps) against torch, on ngspice and VACASK"
$ANASIM simulate "$OUT/digits.pt" --split all --samples 1797 --engine ngspice,vacask --json "$OUT/digits_sim.json"
step "Monte Carlo: 20 realizations of 5% device-area mismatch on the 360 test images"
$ANASIM simulate "$OUT/digits.pt" --mc 20 --vary area=0.05 --samples 360 --json "$OUT/digits_mc.json" 2>/dev/null
step "KirchhoffNet-s on Friedman #1 (168 parameters), 10 epochs"
$ANASIM train --arch kirchhoffnet --dataset friedman --nodes 7 --repeat 2 --branch relu --epochs 10 --lr 1e-2 \
    --batch-size 64 --patience 400 --train-tol 1e-5 --threads 1 -o "$OUT/kn.pt" 2>/dev/null
step "KirchhoffNet: 200 test samples, ngspice and VACASK transients against torchdiffeq"
$ANASIM simulate "$OUT/kn.pt" --samples 200 --engine ngspice,vacask --json "$OUT/kn_sim.json" 2>/dev/null

step "report: digits TD-KAN (gates: agreement >= 99.5%, accuracy drop <= 0.5 points, engines within 1e-6 of the range)"
$ANASIM report "$OUT/digits_sim.json" "$OUT/digits_mc.json" -o "$OUT/report/digits" \
    --gate agreement=0.995 --gate accuracy-drop=0.5 --gate engines=1e-6
step "report: KirchhoffNet (gates: circuit loss within 1% of the reference loss, engines within 1e-6 of the range)"
$ANASIM report "$OUT/kn_sim.json" -o "$OUT/report/kirchhoffnet" --gate loss-ratio=1.01 --gate engines=1e-6
