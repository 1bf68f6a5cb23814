"""Self-describing checkpoints: the ``model.pt`` that starts the compile/simulate flow.

A checkpoint is a plain dict (loadable with ``torch.load(..., weights_only=True)``): format and
version, the model config, the device models used (their fit hashes, and the models themselves,
table or expression, so that a checkpoint compiles on a machine without the device files), the
state dict, the dataset with its preprocessing, and the metrics. Loading checks all of it and
refuses a file of another format or version, unknown or changed devices, NaN/inf weights and a row
drive beyond its DAC limits; it warns when the local registry holds another fit under a device's
name, and uses its own.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .devices import DeviceModel, embedded, get_device, registry
from .errors import AnasimError, AnasimWarning, CheckpointError, DeviceError
from .families import check_config, count_params, family_named
from .outputs import atomic_write

FORMAT = "anasim-checkpoint"
VERSION = 1


def device_ids(config: dict) -> dict[str, str]:
    return {n: get_device(n).fit_hash for n in family_named(config.get("arch")).devices(config)}


def save_checkpoint(path: str | Path, model: nn.Module, config: dict, dataset: dict, metrics: dict) -> Path:
    path = Path(path)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "anasim_version": __version__,
        "config": config,
        "devices": device_ids(config),
        "device_models": {n: get_device(n).to_dict() for n in device_ids(config)},
        "params": count_params(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": dataset,
        "metrics": metrics,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnasimError(f"{path}: cannot write checkpoint: {exc.strerror or exc}; choose a writable -o") from None
    # a Python file: torch.save(path) raises RuntimeError, not OSError; a Ctrl-C or a full disk
    # mid-write leaves the previous checkpoint whole
    return atomic_write(path, lambda fh: torch.save(ckpt, fh), "free space or choose another -o", "checkpoint")


def embedded_devices(path: Path, ckpt: dict) -> dict[str, DeviceModel]:
    """The device models a checkpoint carries, checked against its recorded fit hashes; a warning
    when the local registry has another fit under the same name (the checkpoint's own is used)."""
    models, local = {}, registry()
    for name, d in ckpt.get("device_models", {}).items():
        try:
            dev = DeviceModel.from_dict(d, f"{path}: embedded device {name!r}")
        except DeviceError as exc:
            raise CheckpointError(str(exc)) from None
        if dev.name != name:  # the key is what the config names; the model is what reaches the netlist
            raise CheckpointError(f"{path}: embedded device {name!r} is named {dev.name!r}; the checkpoint is damaged")
        recorded = ckpt["devices"].get(name)
        if dev.fit_hash != recorded:
            raise CheckpointError(
                f"{path}: device {name!r} has changed since training (fit hash {recorded}, embedded model "
                f"{dev.fit_hash}); the checkpoint is damaged: retrain"
            )
        if name in local and not local[name].same_fit(dev):
            warnings.warn(
                f"{path}: your device {name!r} (fit {local[name].fit_hash}) is not the one this model was trained "
                f"with (fit {dev.fit_hash}); using the checkpoint's own",
                AnasimWarning,
                stacklevel=3,
            )
        models[name] = dev
    return models


def load_checkpoint(path: str | Path) -> tuple[dict, nn.Module]:
    """Read and verify a checkpoint; returns (checkpoint dict, model in eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign files; all mean the same here
        # torch's own text is not passed on: for a pickle it advises weights_only=False, which
        # would let the file run code
        raise CheckpointError(
            f"{path}: not an anasim checkpoint (no weights-only PyTorch file: {type(exc).__name__}); "
            "give a model.pt written by 'anasim train'"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an anasim checkpoint (no 'format': '{FORMAT}' entry)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {ckpt.get('version')!r}, this anasim reads version {VERSION}; "
            "retrain with this anasim version"
        )
    for key in ("config", "state_dict", "devices"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no {key!r} field")
    for key in ("state_dict", "devices", "device_models"):
        if not isinstance(ckpt.get(key, {}), dict):
            raise CheckpointError(f"{path}: checkpoint field {key!r} is a {type(ckpt[key]).__name__}, not a mapping")
    if not all(isinstance(t, torch.Tensor) for t in ckpt["state_dict"].values()):
        raise CheckpointError(f"{path}: the state_dict holds values that are not tensors; the checkpoint is damaged")
    check_config(ckpt["config"], f"{path}: ")  # before the model is built: no allocation from crafted sizes
    own = embedded_devices(path, ckpt)
    for name, fit_hash in ckpt["devices"].items():
        if name in own:
            continue
        dev = get_device(name)  # checkpoints written before devices were embedded
        if dev.fit_hash != fit_hash:
            raise CheckpointError(
                f"{path}: device {name!r} has changed since training (fit hash {fit_hash}, now {dev.fit_hash}); "
                "retrain, or restore the device model it was trained with"
            )
    for key, tensor in ckpt["state_dict"].items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weight {key!r} holds NaN or inf values; the model cannot be used")
    family = family_named(ckpt["config"].get("arch"))
    with embedded(own):
        model = family.build(ckpt["config"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the architecture: {str(exc)[:300]}") from None
    for err in family.limit_errors(model)[:1]:  # parameters with hardware limits (the TD-KAN row drive)
        raise CheckpointError(f"{path}: {err}")
    model.eval()
    return ckpt, model


def summary(ckpt: dict) -> dict:
    """The fields of ``anasim info --json``."""
    cfg, metrics = ckpt["config"], ckpt.get("metrics", {})
    return {
        "arch": cfg["arch"],
        "dims": list(cfg["dims"]),
        "bases": list(cfg.get("bases", [])),
        "activation": cfg.get("activation"),
        "norm": cfg.get("norm"),
        "mapping": cfg.get("mapping"),
        "params": ckpt.get("params"),
        "test_accuracy": metrics.get("test_accuracy"),
        "val_accuracy": metrics.get("val_accuracy"),
        "test_loss": metrics.get("test_loss"),
        "nodes": cfg.get("nodes"),
        "topology": cfg.get("topology", "fc") if "nodes" in cfg else None,
        "branch": cfg.get("branch"),
        "dataset": ckpt.get("dataset", {}).get("name"),
        "devices": ckpt["devices"],
        "epochs": metrics.get("epochs"),
        "train_time_s": metrics.get("train_time_s"),
        "anasim_version": ckpt.get("anasim_version"),
    }
