"""The bundled device models (``*.json``) and the raw sweeps they are fitted from (``sweeps/``).

This folder installs as the data package ``anasim.device_models``; :mod:`anasim.devices` reads it
with :mod:`importlib.resources`, so the models are found in a checkout and in an installed wheel.
"""
