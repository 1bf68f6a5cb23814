"""Devices: where a physical nonlinearity enters anasim, before any circuit exists.

I-V sweeps (``ivdata``) are fitted (``fitting``) into device models (``models``: pwl tables or
whitelisted expressions, ``expr``), bundled with anasim (``bundled``) or the user's own; they
become Verilog-A modules (``veriloga``, compiled by ``openvaf``) and plots (``plots``). Circuits
(:mod:`anasim.circuit`) and families read a model through the names below.
"""

from .models import (
    FORMAT,
    DeviceModel,
    bundled_dir,
    bundled_models,
    check_name,
    embedded,
    get_device,
    load_device_file,
    load_user_device,
    parse_bases,
    registry,
    sweeps_dir,
    user_device_dir,
)

__all__ = [
    "FORMAT",
    "DeviceModel",
    "bundled_dir",
    "bundled_models",
    "check_name",
    "embedded",
    "get_device",
    "load_device_file",
    "load_user_device",
    "parse_bases",
    "registry",
    "sweeps_dir",
    "user_device_dir",
]
