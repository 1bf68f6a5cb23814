"""The simulate step: circuit IR + inputs -> ngspice -> :class:`~anasim.sim.ngspice.SimResult`.
``ngspice`` runs decks (the one subprocess call), ``batch`` runs DC sample sweeps and layer
chains, ``tran`` time-multiplexed transients and static power. No torch."""
