"""Monte Carlo: circuit non-idealities as seeded transforms of the circuit IR, and their fan-out.

``variations`` (the registry and one realization's :class:`~anasim.montecarlo.variations.Perturbation`),
``realizations`` (``run``: the reference, the settings record, realizations fanned out and their
rows), ``batch`` (realizations sharing one engine process where the engine reruns), ``fanout``
(local processes or Dask workers) and ``summary`` (rows into the summary record). Names resolve
on first use, so that a family importing ``variations`` does not import the runs above it.
"""

_API = {"MonteCarlo": "realizations", "run": "realizations", "VARIATIONS": "variations", "Perturbation": "variations"}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'anasim.montecarlo' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
