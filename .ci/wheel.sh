#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh virtual environment
# in a temporary folder outside the checkout, and run the main commands there (issue 29, item 1).
# Nothing from the checkout is on the path: the commands run from the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/anasim-wheel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
step() { echo "== wheel: $*"; }

step "build"
.venv/bin/pip wheel -q --no-deps --no-build-isolation -w "$TMP/dist" . 2>&1 | grep -v -i warning || true
WHEEL=$(ls "$TMP"/dist/anasim-*.whl)
step "install $(basename "$WHEEL") into a fresh venv in $TMP"
"$PY" -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q "$WHEEL" 2>&1 | grep -v -i warning || true

cd "$TMP"  # away from the checkout: nothing of it can be imported from here
A="$TMP/venv/bin/anasim"
"$TMP/venv/bin/python" - <<'PY'
import anasim, anasim.pipeline, anasim.devices
where = anasim.__file__
assert "/venv/" in where, f"anasim imported from {where}, not the installed wheel"
print("imported from", where, "| device models in", anasim.devices.bundled_dir())
PY
step "anasim --help"; "$A" --help >/dev/null
step "anasim devices list"; "$A" devices list
step "train 3 epochs on digits"
"$A" train --dataset digits --dims 64,8,10 --epochs 3 --seed 0 --threads 1 -o "$TMP/digits.pt" 2>/dev/null
step "simulate 20 samples in ngspice"
"$A" simulate "$TMP/digits.pt" --samples 20 --json "$TMP/sim.json"
"$TMP/venv/bin/python" -c "import json,sys; d=json.load(open(sys.argv[1])); print('wheel: circuit accuracy', d.get('circuit_accuracy', d.get('accuracy')))" "$TMP/sim.json"
step "compile, then simulate the netlist through its sidecar"
"$A" compile "$TMP/digits.pt" -o "$TMP/digits.cir"
test -f "$TMP/digits.cir.json"
"$A" simulate "$TMP/digits.pt" --netlist "$TMP/digits.cir" --samples 5
echo "wheel: passed"
