"""The circuit half of the flow: typed IR (``ir``), stimulus and analyses (``stimulus``), shared
blocks (``blocks``) and the ngspice writer (``netlist``). Imports nothing but ``anasim.errors``
and numpy: no torch, so Monte Carlo workers and the runner stay light."""
