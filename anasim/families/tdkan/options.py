"""TD-KAN hardware options: how a trained TD-KAN becomes a crossbar (the ``lower`` step's input)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import AnasimError

MAPPINGS = ("clip", "sigmoid")  # the input clipper: hard clip, or unit-slope sigmoid
NORMS = ("batch", "layer", "none")
MAX_RAILS_GAIN = 1e7  # the largest op-amp gain with which --rails converges (see check)


@dataclass(frozen=True)
class TdkanOptions:
    mapping: str = "edge"  # "edge" (one device per edge and basis) or "shared" (one per input and basis)
    crossbar: str = "vccs"  # shared mapping: cells as conductances into ideal virtual grounds, or "resistor"
    area_max: float = 10.0  # the largest device, in units of the unit-area device
    levels: int | None = None  # quantize areas to this many levels in [0, area_max]
    area_min: float = 0.0  # smallest device that can be made: smaller areas go to 0 or area_min, the nearer
    opamp_gain: float = 1e9  # open-loop gain of every op-amp (1e9: ideal virtual ground)
    r_diff: float = 10e3  # resistors of the difference amplifier (ohms)
    r_sense: float = 10e3  # shared mapping: feedback of each per-(input, basis) TIA (ohms)
    line_cap: float = 0.0  # parasitic capacitance of every row and column line to ground (F)
    gbw: float | None = None  # op-amp gain-bandwidth (Hz): one pole at gbw / gain; None: no pole
    wire_r: float = 0.0  # edge mapping: resistance of each row and column line segment (ohms)
    # edge mapping: (rows, column lines) of one crossbar tile; None: one tile per layer. An output
    # takes two column lines (its + and - columns), so a tile holds cols // 2 outputs.
    tile: tuple[int, int] | None = None
    rails: float | None = None  # op-amp outputs saturate smoothly (tanh) at +-rails volts; None: no rails
    # --swing: every op-amp output stays within +-swing volts on the training data: the compiler
    # scales each layer's feedback resistors and difference gain (never up) and the next layer's
    # clippers undo the scale (see lower.swing_scales); None: the nominal design
    swing: float | None = None
    # what --swing is fitted to: per layer, the largest |TIA output|, |difference-amplifier output|
    # and |sense-TIA output| (shared mapping; 0 for edge) in volts of the nominal circuit on the
    # training data (filled in by the pipeline, see swing.peaks; recorded in the netlist header)
    swing_peaks: tuple[tuple[float, float, float], ...] | None = None

    def check(self) -> TdkanOptions:
        if self.crossbar not in ("vccs", "resistor"):
            raise AnasimError(f"crossbar {self.crossbar!r}: use vccs or resistor")
        if self.mapping not in ("edge", "shared"):
            raise AnasimError(f"mapping {self.mapping!r}: use edge or shared")
        if self.crossbar == "resistor" and self.mapping != "shared":
            raise AnasimError("--crossbar resistor applies to the shared mapping only: add --mapping shared or drop it")
        for flag, value in (("--area-max", self.area_max), ("--opamp-gain", self.opamp_gain),
                            ("r_diff", self.r_diff), ("r_sense", self.r_sense)):  # fmt: skip
            if not (math.isfinite(value) and value > 0):
                raise AnasimError(f"{flag} {value!r}: give a finite number > 0")
        if self.line_cap < 0 or (self.gbw is not None and self.gbw <= 0):
            raise AnasimError("line capacitance must be >= 0 and the op-amp gain-bandwidth > 0")
        if not (math.isfinite(self.wire_r) and self.wire_r >= 0):
            raise AnasimError(f"--wire-r {self.wire_r!r}: give a finite resistance >= 0 ohms per line segment")
        if self.wire_r > 0 and self.mapping == "shared":
            raise AnasimError(
                "--wire-r needs the edge mapping: in the shared mapping a crossbar cell stands for a device that "
                "sits elsewhere (one per input and basis, behind a sense TIA), so there is no line the devices' "
                "currents flow along; drop --mapping shared"
            )
        if not (math.isfinite(self.area_min) and 0 <= self.area_min <= self.area_max):
            raise AnasimError(f"--area-min {self.area_min!r}: give an area between 0 and --area-max ({self.area_max})")
        if self.tile is not None:
            if len(self.tile) != 2 or not all(isinstance(t, int) for t in self.tile):
                raise AnasimError(f"--tile {self.tile!r}: give ROWS,COLS as two integers, e.g. --tile 64,64")
            if self.tile[0] < 1 or self.tile[1] < 2 or self.tile[1] % 2:
                raise AnasimError(
                    f"--tile {self.tile[0]},{self.tile[1]}: a tile needs at least 1 row and 2 column lines, an even "
                    "number of them (each output takes a + and a - column)"
                )
            if self.mapping == "shared":
                raise AnasimError(
                    "--tile needs the edge mapping: the shared mapping's crossbar cells stand for devices that sit "
                    "elsewhere, so there is no physical array to cut; drop --mapping shared"
                )
        if self.rails is not None and not (math.isfinite(self.rails) and self.rails > 0):
            raise AnasimError(f"--rails {self.rails!r}: give the op-amps' output limit in volts, a finite number > 0")
        if self.rails is not None and self.opamp_gain > MAX_RAILS_GAIN:
            # measured on the digits TD-KAN, rails 100 V never reached: 23 of 100 samples fail at gain 1e9, none at 1e7
            raise AnasimError(
                f"--rails needs a finite op-amp gain: give --opamp-gain {MAX_RAILS_GAIN:g} or less (now "
                f"{self.opamp_gain:g}). The saturating output's linear region is rails / gain wide, nanovolts at 1e9, "
                "and ngspice's Newton iterations fail there"
            )
        if self.swing is not None:
            if not (isinstance(self.swing, int | float) and math.isfinite(self.swing) and self.swing > 0):
                raise AnasimError(
                    f"--swing {self.swing!r}: give the op-amps' output swing in volts, a finite number > 0"
                )
            if self.rails is not None and self.rails < self.swing:
                raise AnasimError(
                    f"--rails {self.rails:g} is below --swing {self.swing:g}: outputs fitted to the swing would "
                    "saturate; give rails at or above the swing (or a smaller --swing)"
                )
        if self.swing_peaks is not None:
            if self.swing is None:
                raise AnasimError("swing_peaks are what --swing is fitted to: give --swing too")
            peaks = [p for layer in self.swing_peaks for p in layer]
            if any(len(layer) != 3 for layer in self.swing_peaks) or not all(
                math.isfinite(p) and p >= 0 for p in peaks
            ):
                raise AnasimError(
                    f"swing_peaks {self.swing_peaks!r}: give three finite peak voltages >= 0 per layer (TIA, "
                    "difference amplifier, sense TIA)"
                )
        if self.levels is not None and self.levels < 2:
            raise AnasimError(f"levels {self.levels}: need at least 2 area levels")
        return self
