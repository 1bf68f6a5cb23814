"""The simulate step: circuit IR + inputs -> ngspice -> :class:`~anasim.sim.ngspice.SimResult`.
``ngspice`` runs decks (the one subprocess call), ``batch`` runs DC sample sweeps and layer
chains, ``tran`` time-multiplexed transients and static power, ``shared`` a Python plant and a
circuit in lock-step through libngspice (closed loops). No torch."""
