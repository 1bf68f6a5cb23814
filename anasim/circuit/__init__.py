"""The circuit half of the flow: typed IR (``ir``), stimulus and analyses (``stimulus``), shared
blocks (``blocks``) and the runner's exact rewrites (``partition``); an engine's writer turns them
into its dialect (:mod:`anasim.sim.engine`). Imports nothing but ``anasim.errors``, numpy and
scipy (a Run asks the engine, late, for its solver): no torch, so Monte Carlo workers and the
runner stay light."""
