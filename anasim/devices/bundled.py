"""How the bundled device models in ``device_models/`` are made (run once; tests re-check it).

``python -m anasim.devices.bundled [SWEEPS]`` refits the four cold-metal tunnel diodes from their
DFT-NEGF sweeps (default: the copy shipped in ``device_models/sweeps/cmtd_dft_negf``, with its
provenance in ``sweeps/README.md``): a plain ``pwl`` on the sweep's own 0.05 V grid and a
``*_smooth`` smoothing-spline variant. It also writes the analytic RTD (paper eq. 4, and with b
scaled by 10) and E-MOSFET (eq. 5) models.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DeviceError
from .fitting import fit_device
from .ivdata import read_iv_csv
from .models import DeviceModel, bundled_dir, load_device_file, sweeps_dir

CMTD = {
    "a21": "cold-metal tunnel diode, armchair, 21 A barrier (N-type NDR)",
    "z21": "cold-metal tunnel diode, zigzag, 21 A barrier (Lambda-type)",
    "z15": "cold-metal tunnel diode, zigzag, 15 A barrier (NDR with second rise)",
    "zaz21": "cold-metal tunnel diode, zig-arm-zig hybrid, 21 A barrier",
}
# The sweeps state no unit: 1 unit is taken as 1 uA per device of unit area (recorded, changeable).
CMTD_AMPS_PER_UNIT = 1e-6

K_B, Q_E = 1.380649e-23, 1.602176634e-19
VT_300K = K_B * 300.0 / Q_E

RTD_EXPR = "a*(softplus(alpha+eta*V)-softplus(alpha-eta*V))*(pi/2+atan((c-n1*V)/d))+h*(exp(gamma*V)-1)"


def rtd(b_scale: float = 1.0) -> DeviceModel:
    """Paper eq. 4 at T = 300 K, currents in mA; ln((1+e^x)/(1+e^y)) as softplus(x)-softplus(y)."""
    a, b, c, d, n1, n2, h = 3.9, 0.5 * b_scale, 0.0874, 0.0073, 0.0352, 0.0031, 36.7
    name = "rtd" if b_scale == 1.0 else f"rtd_b{b_scale:g}".replace(".", "p")
    return DeviceModel(
        name=name,
        kind="expr",
        v_range=(0.0, 4.0),
        unit="mA",
        amps_per_unit=1e-3,
        expr=RTD_EXPR,
        constants={
            "a": a,
            "alpha": (b - c) / VT_300K,
            "eta": n1 / VT_300K,
            "gamma": n2 / VT_300K,
            "c": c,
            "d": d,
            "n1": n1,
            "h": h,
        },
        description=f"resonant tunnelling diode, paper eq. 4 (b = {b:g} V)",
        provenance={
            "source": "KANalogue/TD-KAN paper eq. 4, constants of Ortega-Piwonka et al. 2021",
            "fit_method": "analytic",
            "fit_error": {"rms": 0.0, "max_abs": 0.0},
            "parameters": {"T_K": 300, "a_A": 0.0039, "b_V": b, "c_V": c, "d_V": d, "n1": n1, "n2": n2, "h_A": 0.0367},
            "current_scale": "1 mA = 1e-3 A per unit area",
        },
    )


def emosfet() -> DeviceModel:
    return DeviceModel(
        name="emosfet",
        kind="expr",
        v_range=(0.0, 3.0),
        unit="mA",
        amps_per_unit=1e-3,
        expr="k*max(V-vth,0)*max(V-vth,0)",
        constants={"k": 6.17, "vth": 1.0},
        description="enhancement-mode MOSFET 2N7002 transfer curve, paper eq. 5",
        provenance={
            "source": "KANalogue/TD-KAN paper eq. 5 (2N7002 datasheet)",
            "fit_method": "analytic",
            "fit_error": {"rms": 0.0, "max_abs": 0.0},
            "parameters": {"K_mA_per_V2": 6.17, "Vth_V": 1.0},
            "current_scale": "1 mA = 1e-3 A per unit area",
        },
    )


def build(src_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    src_dir, out_dir = Path(src_dir or sweeps_dir()), Path(out_dir or bundled_dir())
    written = []
    for name, desc in CMTD.items():
        sweep = read_iv_csv(src_dir / f"{name}.csv")
        for method, suffix in (("pwl", ""), ("smooth", "_smooth")):
            model, _ = fit_device(
                sweep, name + suffix, method=method, amps_per_unit=CMTD_AMPS_PER_UNIT, description=desc
            )
            written.append(keep_or_save(model, out_dir))
    for model in (rtd(), rtd(10.0), emosfet()):
        written.append(keep_or_save(model, out_dir))
    return written


def keep_or_save(model: DeviceModel, out_dir: Path) -> Path:
    """Write ``model`` unless the file there holds the same model: one that differs only in the
    sign of a zero current (machines differ there) keeps the shipped file and its fit hash."""
    path = out_dir / f"{model.name}.json"
    try:
        # == on the dicts: -0.0 equals 0.0, every other field (description, provenance) must match
        if path.is_file() and load_device_file(path).to_dict() == model.to_dict():
            return path
    except DeviceError:
        pass
    return model.save(path)


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
