"""VACASK's tuning: part sizes and sweep settings for the batched and transient runners.

Where it sits: as :mod:`anasim.sim.ngspice.tuning` for ngspice, one :class:`~anasim.sim.run.Tuning`.
The sweep tolerances are ngspice's (the same outputs to well within the comparator's 1e-3 of the
range, and the two engines agree to 1e-6 of it); the factored devices of the runner's
rewritten circuits are ngspice's rewrite too (one curve per row and curve, a linear VCCS per
device: the same equations in any engine). Part sizes: measured in benchmarks/engines.py.
"""

from __future__ import annotations

from ..ngspice.tuning import FAST_SWEEP, SWEEP, SWITCH_LAG, factor_devices
from ..run import Tuning

# VACASK parses and sets up a deck several times faster than ngspice 39 and solves with KLU:
# parts as large as ngspice's serve it as well (benchmarks/engines.py).
PART_ELEMENTS = 2000
PART_LINEAR = 25000

TUNING = Tuning(PART_ELEMENTS, PART_LINEAR, SWEEP, FAST_SWEEP, {}, factor_devices, SWITCH_LAG)
