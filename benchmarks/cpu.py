"""CPU seconds of the benchmark's finished child processes (anasim, its workers and simulators)."""

import resource


def children_cpu() -> float:
    """User + system seconds of every waited-for child so far: a difference around a run is its CPU."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
