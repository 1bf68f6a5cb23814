"""VACASK's tuning: part sizes and sweep settings for the batched and transient runners.

Where it sits: as :mod:`anasim.sim.ngspice.tuning` for ngspice, one :class:`~anasim.sim.run.Tuning`
from the settings every engine shares (:mod:`anasim.sim.tuning`: sweep tolerances, the factored
devices, the switch lag) and this engine's own part sizes.
"""

from __future__ import annotations

from ..run import Tuning
from ..tuning import FAST_SWEEP, SWEEP, SWITCH_LAG, factor_devices

# Nonlinear elements per part: ngspice's 2,000, measured not to matter on VACASK (issue 31; CPU
# seconds of the vacask processes, --jobs 1, two passes): the digits demo [64,16,10] on 360 test
# images 0.19-0.24 s and a wired 64-row tile (digits [64,32,10], --tile 64,64 --wire-r 1, 10
# images) 0.60-0.66 s at every size of 500, 1,000, 2,000, 4,000 and 8,000, within the passes'
# spread. Linear elements per part: 100,000, where ngspice's 25,000 cut the [196,64,10] shared
# mapping's linear crossbar (37,632 VCCS) in two decks that each parsed the same 588-wide sample
# list and elaborated it at every sweep point: a Monte Carlo realization (area, op-amp gain and
# offset, 1,000 images, in one process, load 1) took 5.49 CPU s against 6.77 (VACASK 4.50 against
# 5.33, anasim 0.99 against 1.44). The same parts elsewhere: digits [64,16,10] and a wired 64-row
# Fashion-MNIST tile (20 images: 33.7 against 33.7 CPU s).
PART_ELEMENTS = 2000
PART_LINEAR = 100000

# A wired tile's Newton iteration: its mesh refactored, the devices evaluated, the solve
# (benchmarks/newton.py, newton.json: Fashion-MNIST [784,64,10], 1 ohm; 6.4 + 2.1 ms at 64 rows,
# 74.5 + 12.2 at 128, 224 + 31 at 256); a point takes at least two, these tiles 3.7-4.2.
MESH_COST = "64 rows: about 0.008 s, 128 rows: 0.09 s, 256 rows: 0.26 s an iteration"
TUNING = Tuning(PART_ELEMENTS, PART_LINEAR, SWEEP, FAST_SWEEP, {}, factor_devices, SWITCH_LAG, MESH_COST)
