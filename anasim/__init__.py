"""anasim: compile analog neural networks into ngspice circuits and check them against PyTorch.

The public API (names resolve on first use, so ``import anasim`` stays light)::

    net = anasim.load("model.pt")                   # verified checkpoint, model in float64
    circuit = anasim.lower(net, mapping="shared")   # typed circuit IR of the whole network
    anasim.netlist(circuit, "layer.cir")            # ngspice deck
    result = anasim.simulate(net, x)                # SimResult: outputs, failed, run_dir
    report = anasim.compare(net, samples=100)       # Comparison: metrics(), rows(), to_dict()
"""

__version__ = "0.2.0"

_API = {
    "load": "pipeline",
    "lower": "pipeline",
    "simulate": "pipeline",
    "compare": "pipeline",
    "compile_network": "pipeline",
    "monte_carlo": "pipeline",
    "Job": "pipeline",
    "Network": "pipeline",
    "netlist": "sim.engine",
    "Circuit": "circuit.ir",
    "SimResult": "sim.run",
    "SimSettings": "sim.plan",
    "Comparison": "metrics",
    "FAMILIES": "families",
    "AnasimError": "errors",
    "SimError": "errors",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'anasim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
