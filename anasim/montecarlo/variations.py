"""Monte Carlo non-idealities: a seeded transform of the circuit IR (never of netlist text).

``VARIATIONS`` is the registry: each name has a unit, a meaning, the families it applies to,
the elements it perturbs (a type, or a group the lowering declared) and how. A
:class:`Perturbation` holds one realization's sigmas; the driver (:mod:`anasim.sim.driver`)
calls it on every circuit of a family's plan, with the key naming the stage (``stage0``,
``layer2``, ``whole``). Its draws come from
``SeedSequence([seed, realization, crc32(key), v])`` for variation number v, so a realization
does not depend on workers, their order or a resume; adding a variation leaves the others'
draws unchanged; and every sigma of a sweep scales the same normal draws (common random numbers).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..circuit.ir import VCCS, Branch, Capacitor, Circuit, Device, OpAmp, Resistor
from ..errors import AnasimError
from ..memo import ByIdentity

CROSSBARS = ("tdkan", "mlp")
NOISE_DISTS = ("gauss", "binary", "uniform")


@dataclass(frozen=True)
class Variation:
    name: str
    unit: str
    meaning: str
    families: tuple[str, ...]
    select: Callable[[Circuit], list[int]]  # indices of the elements it perturbs
    draw: Callable  # (rng, sigma, n, dist) -> n values
    apply: Callable  # (element, values) -> element
    # multiplies the current of each element it varies (a device's area or scale, a cell's
    # conductance): a device the runner's rewrites made a linear VCCS of its current takes it
    # as its gain (Perturbation.rewritten)
    linear: bool = False
    # a linear variation's ``apply`` as field arithmetic: element type -> (field, "*" or "/") by
    # the factor (tests/test_lane.py checks it against ``apply``), for the Monte Carlo lane
    # that scales arrays of fields instead of building elements (anasim/montecarlo/lane.py)
    fields: dict | None = None


def _of_type(*types) -> Callable:
    return lambda c: [i for i, e in enumerate(c.elements) if isinstance(e, types)]


def _in_group(group: str) -> Callable:
    def select(c: Circuit) -> list[int]:
        members = set(c.group(group))
        return [i for i, e in enumerate(c.elements) if e.name in members]

    return select


def _gain_resistors(c: Circuit) -> list[int]:
    cells = set(c.group("coefficients")) | set(c.group("wires"))  # the feedback and difference resistors
    return [i for i, e in enumerate(c.elements) if isinstance(e, Resistor) and e.name not in cells]


def truncated(rng, sigma, n, dist=None) -> np.ndarray:
    """1 + sigma z, z standard normal redrawn wherever the factor would not be positive."""
    f = 1 + sigma * rng.standard_normal(n)
    while (bad := f <= 0).any():
        f[bad] = 1 + sigma * rng.standard_normal(int(bad.sum()))
    return f


def normal(rng, sigma, n, dist=None) -> np.ndarray:
    return sigma * rng.standard_normal(n)


def lognormal(rng, sigma, n, dist=None) -> np.ndarray:
    return np.exp(sigma * rng.standard_normal(n))


def eq6(rng, sigma, n, dist="binary") -> np.ndarray:
    """The TD-KAN paper's eq. 6 factor 1 + delta: binary +-sigma (its code's default), gauss
    N(0, sigma^2) or uniform on [-sigma, sigma]. Not truncated: a factor below 0 flips the sign."""
    if dist == "binary":
        return 1 + sigma * (2.0 * rng.integers(0, 2, n) - 1)
    if dist == "uniform":
        return 1 + rng.uniform(-sigma, sigma, n)
    return 1 + sigma * rng.standard_normal(n)


def _device(e: Device, area: float = 1.0, scale: float = 1.0) -> Device:
    # positional, not replace(): 5x faster on the 10^4-10^5 devices of a realization (x * 1.0 == x)
    return Device(e.name, e.p, e.n, e.curve, e.area * area, e.scale * scale, e.shift)


def scale_coefficient(e, f):
    """Multiply the coefficient an element realizes by f: device area, cell conductance."""
    # positional, not replace(): 4x faster on the 10^4-10^5 cells of a realization
    if isinstance(e, Device):
        return _device(e, area=f)
    if isinstance(e, Resistor):
        return Resistor(e.name, e.p, e.n, e.value / f)
    if isinstance(e, VCCS):
        return VCCS(e.name, e.p, e.n, e.cp, e.cn, e.gain * f)
    raise AnasimError(f"{e.name}: a {type(e).__name__} cannot carry a coefficient")


# scale_coefficient's arithmetic; a device's own current scale (iv-scale)
COEFFICIENT_FIELDS = {Device: ("area", "*"), Resistor: ("value", "/"), VCCS: ("gain", "*")}
DEVICE_SCALE_FIELDS = {Device: ("scale", "*")}


def _per_theta(e: Branch, f: np.ndarray) -> Branch:
    return replace(e, theta=tuple(t * float(x) for t, x in zip(e.theta, f)))


VARIATIONS: dict[str, Variation] = {
    v.name: v
    for v in (
        Variation(
            "area", "relative sigma", "device area mismatch per device (Gaussian, truncated to positive areas); "
            "TD-KAN: the device of each coefficient, in the shared mapping the crossbar cell standing for it "
            "(exact with ideal virtual grounds); device MLP: the activation devices",
            CROSSBARS, _in_group("areas"), truncated, scale_coefficient, linear=True, fields=COEFFICIENT_FIELDS,
        ),
        Variation(
            "iv-scale", "relative sigma", "current scale of every device (Gaussian, truncated to positive); "
            "in the shared mapping each (input, basis) device is shared by all its coefficients",
            CROSSBARS, _of_type(Device), truncated, lambda e, f: _device(e, scale=f), linear=True,
            fields=DEVICE_SCALE_FIELDS,
        ),
        Variation(
            "iv-shift", "V", "bias shift of every device: I(V - shift), shift ~ N(0, sigma^2)",
            CROSSBARS, _of_type(Device), normal, lambda e, d: replace(e, shift=e.shift + d),
        ),
        Variation(
            "coeff", "relative sigma", "the TD-KAN paper's eq. 6, Theta (1 + delta) on every coefficient element "
            "(MLP: every weight resistor), delta from --noise-dist",
            CROSSBARS, _in_group("coefficients"), eq6, scale_coefficient, linear=True, fields=COEFFICIENT_FIELDS,
        ),
        Variation(
            "opamp-gain", "log sigma", "open-loop gain of every op-amp: nominal (--opamp-gain) x exp(sigma z)",
            CROSSBARS, _of_type(OpAmp), lognormal, lambda e, f: replace(e, gain=e.gain * f),
        ),
        Variation(
            "opamp-offset", "V", "input offset voltage of every op-amp, N(0, sigma^2)",
            CROSSBARS, _of_type(OpAmp), normal, lambda e, d: replace(e, offset=e.offset + d),
        ),
        Variation(
            "rf", "relative sigma", "tolerance of every resistor outside the crossbar cells: TIA feedback, "
            "sense and difference-amplifier resistors (Gaussian, truncated to positive)",
            CROSSBARS, _gain_resistors, truncated, lambda e, f: replace(e, value=e.value * f),
        ),
        Variation(
            "cap", "relative sigma", "capacitor mismatch of every node capacitor (Gaussian, truncated to positive)",
            ("kirchhoffnet",), _of_type(Capacitor), truncated, lambda e, f: replace(e, value=e.value * f),
        ),
        Variation(
            "theta", "relative sigma", "branch parameter mismatch: every theta x (1 + sigma z)",
            ("kirchhoffnet",), _of_type(Branch), truncated, _per_theta,
        ),
    )
}  # fmt: skip


def describe() -> list[tuple[str, str, str, str]]:
    """(name, unit, families, meaning) rows for ``--list-variations``."""
    return [(v.name, v.unit, ",".join(v.families), v.meaning) for v in VARIATIONS.values()]


def _listing() -> str:
    return ", ".join(f"{v.name} ({v.unit})" for v in VARIATIONS.values())


def parse_sigma(text: str, family: str | None = None) -> tuple[str, float]:
    """``NAME=SIGMA`` checked against the registry (and the checkpoint's family)."""
    name, eq, value = str(text).partition("=")
    name = name.strip()
    if name not in VARIATIONS:
        raise AnasimError(f"--vary {text!r}: unknown variation {name!r}; use one of {_listing()}")
    try:
        sigma = float(value) if eq else float("nan")
    except ValueError:
        sigma = float("nan")
    if not np.isfinite(sigma) or sigma < 0:
        raise AnasimError(f"--vary {text!r}: give {name}=SIGMA with SIGMA a number >= 0 ({VARIATIONS[name].unit})")
    if family is not None and family not in VARIATIONS[name].families:
        raise AnasimError(
            f"--vary {name} applies to {', '.join(VARIATIONS[name].families)} models, not {family}; "
            f"variations of {family}: {', '.join(v.name for v in VARIATIONS.values() if family in v.families)}"
        )
    return name, sigma


def parse_sweep(text: str, family: str | None = None) -> tuple[str, tuple[float, ...]]:
    """``NAME=V1,V2,...`` (each value checked like ``--vary``)."""
    name, _, values = str(text).partition("=")
    sigmas = tuple(parse_sigma(f"{name}={v}", family)[1] for v in values.split(","))
    return name.strip(), sigmas


def coefficient_factors(nominal: list[Circuit], varied: list[Circuit]) -> dict[str, float]:
    """How much each coefficient element's coefficient was multiplied by: the draws read back
    from the circuits, for the torch model that gets the same ones (eq. 6 draw by draw)."""
    out = {}
    for c0, c1 in zip(nominal, varied):
        before = {e.name: e for e in c0.elements}
        members = set(c1.group("coefficients"))
        for e in c1.elements:
            if e.name in members:
                out[e.name] = _coefficient(e) / _coefficient(before[e.name])
    return out


def _coefficient(e) -> float:
    # a device's coefficient is its current: area times current scale (area and iv-scale draws)
    return e.area * e.scale if isinstance(e, Device) else 1.0 / e.value if isinstance(e, Resistor) else e.gain


def part_index(parts: list) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Element name -> (part, position) in the runner's ``parts`` of a circuit, and the names in
    more than one part (a held node's driver goes with every part that reads it)."""
    where: dict[str, tuple[int, int]] = {}
    twice = set()
    for p, part in enumerate(parts):
        for k, e in enumerate(part.circuit.elements):
            if where.setdefault(e.name, (p, k)) != (p, k):
                twice.add(e.name)
    return where, twice


def landing(v: Variation, orig, parts: list, where: dict, twice: set) -> tuple[int, int, str, str] | None:
    """Where a draw of linear ``v`` on the circuit's element ``orig`` lands in its rewritten
    ``parts`` (:func:`part_index` gives ``where`` and ``twice``): (part, position, field, "*" or
    "/"). The element itself, or the VCCS the rewrites made of a device (its gain is the device's
    current); None for an element in no part or in several, or of a kind the field arithmetic
    does not cover (a device merged into a table)."""
    at = where.get(orig.name)
    if at is None or orig.name in twice:
        return None
    e = parts[at[0]].circuit.elements[at[1]]
    if type(e) is type(orig):
        spec = (v.fields or {}).get(type(e))
    elif isinstance(orig, Device) and isinstance(e, VCCS):
        spec = ("gain", "*")
    else:
        spec = None
    return None if spec is None else (*at, *spec)


_SELECTED = ByIdentity(64)  # (circuit, variation) -> (chosen, sizes)


def _selection(v: Variation, circuit: Circuit) -> tuple[list[int], list[int] | None]:
    """The elements ``v`` varies in ``circuit`` and, where a branch takes one value per theta,
    the number of values of each (None: one each); made once per circuit object, as every
    realization of a worker draws on the same plan's circuits."""

    def make():
        chosen = v.select(circuit)
        sizes = [len(circuit.elements[i].theta) if isinstance(circuit.elements[i], Branch) else 1 for i in chosen]
        return chosen, sizes if any(s != 1 for s in sizes) else None

    return _SELECTED.get(circuit, make, v.name)


@dataclass(frozen=True)
class Perturbation:
    """One realization: ``sigmas`` (name, sigma) pairs in registry order; ``dist`` for coeff."""

    sigmas: tuple[tuple[str, float], ...]
    seed: int
    realization: int
    dist: str = "binary"

    def draws(self, circuit: Circuit, key: str):
        """(variation, indices of the elements it varies, their values) for every nonzero sigma,
        in registry order; a branch takes one value per theta (the rest one each)."""
        stage = zlib.crc32(key.encode())
        for name, sigma in self.sigmas:
            if sigma == 0:
                continue  # zero sigma leaves the circuit exactly as lowered
            v = VARIATIONS[name]
            index = list(VARIATIONS).index(name)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.realization, stage, index]))
            chosen, sizes = _selection(v, circuit)
            values = v.draw(rng, sigma, sum(sizes) if sizes else len(chosen), self.dist)
            yield v, chosen, np.split(values, np.cumsum(sizes)[:-1]) if sizes else values

    def __call__(self, circuit: Circuit, key: str) -> Circuit:
        elements = list(circuit.elements)
        for v, chosen, values in self.draws(circuit, key):
            for i, value in zip(chosen, values):
                elements[i] = v.apply(elements[i], value if isinstance(elements[i], Branch) else float(value))
        return replace(circuit, elements=tuple(elements))

    def linear(self) -> bool:
        """Whether every variation it draws is linear (:attr:`Variation.linear`)."""
        return all(VARIATIONS[name].linear for name, sigma in self.sigmas if sigma != 0)

    def rewritten(self, circuit: Circuit, key: str, parts: list) -> list | None:
        """``parts``, the runner's rewrites of the nominal ``circuit`` (:func:`anasim.sim.batch.fast_parts`),
        with this realization's draws for ``key`` applied to them; None where that is not the same
        as rewriting the perturbed circuit. It is the same, up to rounding, when every variation is
        linear and every element varied is in the parts once: as itself (the rewrites move a
        device to another column or scale its current, which a factor commutes with) or as the
        VCCS the rewrites made of a device, whose gain is the device's current per unit. A device
        merged into a table (or a nonlinear variation) gives None: the caller perturbs, then rewrites.
        Issue 31: the rewrites were 82% of a digits realization's Python."""
        if not self.linear():
            return None
        draws = list(self.draws(circuit, key))
        if not draws:
            return parts
        where, twice = part_index(parts)
        elements: dict[int, list] = {}
        for v, chosen, values in draws:
            for i, f in zip(chosen, values.tolist()):
                orig = circuit.elements[i]
                at = landing(v, orig, parts, where, twice)
                if at is None:
                    return None
                els = elements.get(at[0])
                if els is None:
                    els = elements[at[0]] = list(parts[at[0]].circuit.elements)
                e = els[at[1]]
                els[at[1]] = v.apply(e, f) if type(e) is type(orig) else VCCS(e.name, e.p, e.n, e.cp, e.cn, e.gain * f)
        return [
            part if p not in elements else replace(part, circuit=replace(part.circuit, elements=tuple(elements[p])))
            for p, part in enumerate(parts)
        ]
