"""VACASK's tuning: part sizes and sweep settings for the batched and transient runners.

Where it sits: as :mod:`anasim.sim.ngspice.tuning` for ngspice, one :class:`~anasim.sim.run.Tuning`.
The sweep tolerances are ngspice's (the same outputs to well within the comparator's 1e-3 of the
range, and the two engines agree to 1e-6 of it); the factored devices of the runner's
rewritten circuits are ngspice's rewrite too (one curve per row and curve, a linear VCCS per
device: the same equations in any engine). Part sizes: ngspice's, not measured on VACASK yet.
"""

from __future__ import annotations

from ..ngspice.tuning import FAST_SWEEP, SWEEP, SWITCH_LAG, factor_devices
from ..run import Tuning

# ngspice's part sizes (anasim/sim/ngspice/tuning.py): not measured on VACASK, which solves with
# KLU and orders the large wired meshes better (a 128-row tile in 5.6 CPU s against ngspice 46's 37.7)
PART_ELEMENTS = 2000
PART_LINEAR = 25000

TUNING = Tuning(PART_ELEMENTS, PART_LINEAR, SWEEP, FAST_SWEEP, {}, factor_devices, SWITCH_LAG)
