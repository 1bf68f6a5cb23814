"""CPU seconds of the benchmark's finished child processes (anasim, its workers and simulators):
anasim's own clock of them (:func:`anasim.sim.live.children_cpu`)."""

from anasim.sim.live import children_cpu

__all__ = ["children_cpu"]
