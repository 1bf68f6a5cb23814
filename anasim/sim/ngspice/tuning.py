"""ngspice's tuning: what was measured to run fastest on it, as one :class:`~anasim.sim.run.Tuning`.

Where it sits: the batched runner (:mod:`anasim.sim.batch`) and the transient runner split
circuits into parts of ``part_elements`` and ``part_linear`` (:func:`anasim.sim.partition.split`)
and sweep samples with this engine's ``sweep_extra`` options; the sweep tolerances, the factored
devices and the switch lag are every engine's (:mod:`anasim.sim.tuning`). All measured on
ngspice 39 (Sparse 1.3) unless said otherwise."""

from __future__ import annotations

from ..run import Tuning
from ..tuning import FAST_SWEEP, SWEEP, SWITCH_LAG, factor_devices

# Nonlinear elements per part, plus 2 per input (each part parses every input's stimulus again,
# so wide inputs pay for bigger parts). Digits edge [196,64,10] (2,000 + 392): 1,500-2,500 ran
# within 5% of each other, 3,500 twice as slow (ngspice's per-element data falls out of the 1 MB
# L2 cache). Fashion-MNIST edge [784,256,10] layer 0, 1/2/3/4 outputs per part (1,176 tables
# each): 479/355/304/436 ms per sample on one core; 2,000 + 1,568 gives 3.
PART_ELEMENTS = 2000
# Linear elements per part: a device MLP's crossbar is resistors, 200,704 in Fashion-MNIST
# [784,256,10]'s first layer and only 256 nonlinear activations. In one deck ngspice 39 spent
# half its time reordering that matrix (100 samples, one core: 61 s); in parts of about 25,000
# resistors 17.5 s, of 10,000 18.3 s, of 4,000 22.1 s (each part parses the stimulus again).
# A TD-KAN column holds about ten linear elements, so this bound never cuts its parts. A
# shared-mapping crossbar of VCCS cells has no fill, and its parts all parse its rows' stimulus:
# [196,64,10] layer 0 (37,632 cells, 1,000 samples) in one deck took 4.1-4.6 s against 5.9-6.3 s
# in two, run alone, but a realization of its Monte Carlo was no faster with two workers running
# at once (1.03x the time, median of 4 pairs: the big deck's data contend for the cache).
PART_LINEAR = 25000
# gminsteps 100: when an operating point fails (a sample re-run alone), SPICE3's gmin stepping in
# 100 decades instead of ngspice's dynamic stepping, which fails on saturated op-amps (--rails)
# with linear devices; a point that converges directly does not use it, so outputs are unchanged.
SWEEP_EXTRA = {"ngspice": {"gminsteps": 100}}
# A wired tile's mesh factored per Newton iteration (ngspice 46, KLU; Fashion-MNIST [784,64,10],
# 1 ohm: physical.py cost, physical.json), and a VACASK iteration of the same tiles (newton.json).
MESH_COST = (
    "64 rows: about 0.08 s, 128 rows: 1 s, 256 rows: 13 s an iteration; VACASK (--engine vacask) "
    "takes about 0.008, 0.09 and 0.26 s"
)
TUNING = Tuning(PART_ELEMENTS, PART_LINEAR, SWEEP, FAST_SWEEP, SWEEP_EXTRA, factor_devices, SWITCH_LAG, MESH_COST)
