"""Device-MLP hardware options (the ``lower`` step's input for ``arch: mlp``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import AnasimError


@dataclass(frozen=True)
class MlpOptions:
    opamp_gain: float = 1e9  # open-loop gain of every op-amp (1e9: ideal virtual ground)
    r_diff: float = 10e3  # difference-amplifier resistors; the largest crossbar conductance is 1 / r_diff
    gbw: float | None = None  # op-amp gain-bandwidth (Hz): one pole at gbw / gain; None: no pole

    def check(self) -> MlpOptions:
        for flag, value in (("--opamp-gain", self.opamp_gain), ("r_diff", self.r_diff)):
            if not (math.isfinite(value) and value > 0):
                raise AnasimError(f"{flag} {value!r}: give a finite number > 0")
        if self.gbw is not None and self.gbw <= 0:
            raise AnasimError("the op-amp gain-bandwidth must be > 0")
        return self
