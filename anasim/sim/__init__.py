"""The simulate step: circuit IR + inputs -> an engine -> :class:`~anasim.sim.run.SimResult`.

``engine`` is the seam: the :class:`~anasim.sim.engine.Engine` protocol and the ``ENGINES``
registry, the only module that imports an engine; ``ngspice/`` is the ngspice engine (writer,
process, tuning, lock-step through libngspice), and nothing outside it knows ngspice's files,
log or syntax. ``run`` holds what every engine shares (results, run folders, tuning); ``batch``
runs DC sample sweeps and layer chains, ``tran`` time-multiplexed transients and static power.
No torch."""
