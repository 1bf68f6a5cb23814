"""Training: dataset + model config -> checkpoint (the first step of the flow).

Adam (or AdamW) with a cosine learning-rate schedule, early stopping on validation accuracy (classification) or MSE (regression) with
the best weights restored, a progress bar, and a checkpoint written whenever validation improves,
so an interrupted run still leaves its best model on disk.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import save_checkpoint
from .data import Dataset, load_dataset
from .errors import AnasimError, Interrupted
from .families import check_config, count_params, family_named
from .progress import Progress
from .results import check_writable


@dataclass
class TrainOptions:
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    patience: int = 8
    seed: int = 0
    device: str | None = None  # default: cuda when available
    # torch CPU threads. 1 by default: torch's default (all cores) was 30x slower here on digits
    # (24 s vs 0.8 s) and 6x on Fashion-MNIST under load, and float sums, so results, change with it
    threads: int | None = 1
    progress: bool = True

    def check(self) -> TrainOptions:
        """Every number usable, or an error naming the option: an inf learning rate trains to NaN
        weights, which every later command refuses."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise AnasimError(f"--lr {self.lr!r}: give a finite learning rate > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise AnasimError(f"--weight-decay {self.weight_decay!r}: give a finite weight decay >= 0")
        for flag, value, least in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 2),
                                   ("--patience", self.patience, 1), ("--seed", self.seed, 0),
                                   ("--threads", 1 if self.threads is None else self.threads, 1)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                # seeds: numpy's generators take no negative seed (the control data draws from numpy)
                raise AnasimError(f"{flag} {value!r}: give a whole number >= {least}")
        return self


def pick_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AnasimError("--device cuda: no CUDA device is available here; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise AnasimError(f"--device {name!r}: use cpu or cuda")
    return torch.device(name)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> float:
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for s in range(0, len(x), batch):
        correct += (model(x[s : s + batch].to(dev)).argmax(1).cpu() == y[s : s + batch]).sum().item()
    return correct / max(1, len(x))


@torch.no_grad()
def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> float:
    model.eval()
    dev = next(model.parameters()).device
    total = sum(
        ((model(x[s : s + batch].to(dev)).cpu() - y[s : s + batch]) ** 2).sum().item() for s in range(0, len(x), batch)
    )
    return total / max(1, y.numel())


def score(model, data: Dataset, split: str) -> float:
    """Higher is better: accuracy for classification, minus the MSE for regression."""
    x, y = data.split(split)
    return accuracy(model, x, y) if data.task == "classification" else -mse(model, x, y)


def layer_widths(dims: list[int] | None, data: Dataset) -> list[int]:
    """``dims`` checked against the data (inputs = its features, outputs = its classes or targets);
    None: [features, 16, outputs]."""
    outs = int(data.y_train.max()) + 1 if data.task == "classification" else int(data.y_train.shape[1])
    if dims is None:
        return [data.n_features, 16, outs]
    given = ",".join(map(str, dims))
    fixed = ",".join(map(str, [data.n_features, *dims[1:-1], outs]))
    what = f"{outs} classes" if data.task == "classification" else f"{outs} target(s)"
    if dims[0] != data.n_features:
        raise AnasimError(
            f"--dims {given}: {data.name} has {data.n_features} input features, so the first width must be "
            f"{data.n_features}; use --dims {fixed}"
        )
    if dims[-1] != outs:
        raise AnasimError(
            f"--dims {given}: {data.name} has {what}, so the last width must be {outs}; use --dims {fixed}"
        )
    return list(dims)


def train_model(config: dict, data: Dataset, opts: TrainOptions, out: Path | None = None, extra: dict | None = None):
    """Train a model of ``config`` on ``data``; returns (model, metrics). Writes ``out`` as it
    improves; ``extra`` joins the final metrics (and the checkpoint's), e.g. how the data was made."""
    opts.check()
    if out is not None:
        check_writable(out, "-o", "checkpoint")  # before training, not after its first epoch
    torch.manual_seed(opts.seed)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    family = family_named(config.get("arch"))
    config = check_config({**config, "dims": layer_widths(config.get("dims"), data)}, "")  # before any allocation
    config = family.prepare(config, data)
    model = family.build(config).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps = opts.epochs * math.ceil(len(data.x_train) / opts.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    gen = torch.Generator().manual_seed(opts.seed)
    loss_fn = nn.CrossEntropyLoss() if data.task == "classification" else nn.MSELoss()
    best = (-math.inf, None, 0)  # (validation score, state, epoch)
    key = "accuracy" if data.task == "classification" else "loss"

    def report(value: float) -> float:
        return value if data.task == "classification" else -value

    dataset_info = {"name": data.name, "task": data.task, "preprocessing": data.preprocessing}
    metrics: dict = {}
    t0 = time.perf_counter()
    # a bar on a terminal, a line per tenth of the epochs in a log (not hundreds of \r frames)
    bar = Progress(opts.epochs, "train", "epochs") if opts.progress else None
    try:
        for epoch in range(opts.epochs):
            model.train()
            perm = torch.randperm(len(data.x_train), generator=gen)
            total = 0.0
            for s in range(0, len(perm), opts.batch_size):
                idx = perm[s : s + opts.batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb, yb = data.x_train[idx].to(device), data.y_train[idx].to(device)
                loss = loss_fn(model(xb), yb)
                optim.zero_grad()
                loss.backward()
                optim.step()
                family.project(model)  # parameters back within hardware limits (TD-KAN row drive)
                sched.step()
                total += loss.item() * len(idx)
            val = score(model, data, "val")
            if bar is not None:
                bar.update(1, f"loss {total / len(perm):.4g}, val {report(val):.4g}")
            if val > best[0]:
                best = (val, copy.deepcopy(model.state_dict()), epoch + 1)
                if out is not None:
                    metrics = {f"val_{key}": report(val), "epochs": epoch + 1, "best_epoch": epoch + 1, "partial": True}
                    save_checkpoint(out, model, config, dataset_info, metrics)
            elif epoch + 1 - best[2] >= opts.patience:
                break
    except KeyboardInterrupt:
        raise Interrupted(f"training interrupted; the best model so far is in {out}") from None
    finally:
        if bar is not None:
            bar.close()
    model.load_state_dict(best[1])
    metrics = {
        f"val_{key}": report(best[0]),
        f"test_{key}": report(score(model, data, "test")),
        "epochs": epoch + 1,
        "best_epoch": best[2],
        "train_time_s": round(time.perf_counter() - t0, 2),
        "params": count_params(model),
        "options": {k: v for k, v in vars(opts).items() if k != "progress"},
        **(extra or {}),
    }
    if out is not None:
        save_checkpoint(out, model.cpu(), config, dataset_info, metrics)
    return model, metrics


def train(config: dict, dataset: str, opts: TrainOptions, out: Path | None, data_dir=None):
    """Load ``dataset`` and train; the library call behind ``anasim train``."""
    data = load_dataset(dataset, data_dir)
    return train_model(config, data, opts, out)
