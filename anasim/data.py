"""Datasets: real data into standardized tensors with deterministic splits (feeds train and simulate).

* ``digits``: scikit-learn's bundled 8x8 digits (the small default; no download).
* ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (IDX files), 28x28.
* ``mnist``: IDX files in a folder the user gives (``--data-dir``), resized to 14x14 as in the paper.

Preprocessing, recorded in checkpoints: pixels scaled to 0..1, optional 2x2 area resize, then
standardized with the training split's mean and std; regression sets (``friedman``, ``diabetes``)
are min-max scaled instead, as in the KirchhoffNet paper. Splits come from a fixed permutation, so
the same (dataset, split) always gives the same samples, whatever the training seed.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DataError

if TYPE_CHECKING:  # torch loads only when a dataset does: `anasim --help` stays fast
    import torch

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("digits", "fashion-mnist", "mnist", "friedman", "diabetes")
REGRESSION = ("friedman", "diabetes")
SPLIT_SEED = 20240601
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor  # [N, D] standardized
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    preprocessing: dict = field(default_factory=dict)
    task: str = "classification"  # or "regression" (targets [N, 1], min-max scaled)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples of one split; "all" is test, then validation, then training samples."""
        if which == "all":
            import torch

            parts = [self.split(w) for w in ("test", "val", "train")]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if which not in ("train", "val", "test"):
            raise DataError(f"split {which!r}: use train, val, test or all")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), as used by MNIST and Fashion-MNIST."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read IDX file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != need:
        raise DataError(f"{path}: IDX header says {dims} ({need} bytes) but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find_idx(folder: Path, stem: str, hint: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: missing {stem}[.gz]; {hint}")


def _load_idx_set(folder: Path, hint: str) -> tuple[np.ndarray, ...]:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; {hint}")
    xs = read_idx(_find_idx(folder, "train-images-idx3-ubyte", hint))
    ys = read_idx(_find_idx(folder, "train-labels-idx1-ubyte", hint))
    xt = read_idx(_find_idx(folder, "t10k-images-idx3-ubyte", hint))
    yt = read_idx(_find_idx(folder, "t10k-labels-idx1-ubyte", hint))
    if len(xs) != len(ys) or len(xt) != len(yt):
        raise DataError(f"{folder}: image and label counts differ")
    return xs, ys, xt, yt


def _area_resize(x: np.ndarray, size: int) -> np.ndarray:
    import torch

    t = torch.as_tensor(x, dtype=torch.float32).unsqueeze(1)  # [N, 1, H, W]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="area").squeeze(1).numpy()


def _split_indices(n: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _finish(name, x_tr, y_tr, x_va, y_va, x_te, y_te, pre) -> Dataset:
    mean, std = float(x_tr.mean()), float(x_tr.std())
    pre = {**pre, "mean": mean, "std": std, "split_seed": SPLIT_SEED}
    pre["sizes"] = {"train": len(x_tr), "val": len(x_va), "test": len(x_te)}

    import torch

    def prep(x):
        return torch.as_tensor((x.reshape(len(x), -1) - mean) / std, dtype=torch.float32)

    def lab(y):
        return torch.as_tensor(np.asarray(y, dtype=np.int64))

    return Dataset(name, prep(x_tr), lab(y_tr), prep(x_va), lab(y_va), prep(x_te), lab(y_te), pre)


def _regression(name: str) -> Dataset:
    """Friedman #1 or diabetes as in the KirchhoffNet paper's code: features and target min-max
    scaled to [0, 1] with the training split's range, so losses compare with its Table I.

    Friedman #1: scikit-learn's generator, 4,096 samples, 5 features, no noise, 40% test;
    diabetes: 30% test. An eighth of the remaining samples is held out for validation.
    """
    import torch
    from sklearn.datasets import load_diabetes, make_friedman1

    if name == "friedman":
        x, y = make_friedman1(n_samples=4096, n_features=5, noise=0.0, random_state=42)
        source = "scikit-learn make_friedman1(n_samples=4096, n_features=5, noise=0, random_state=42)"
        n_test = round(0.4 * len(x))
    else:
        x, y = load_diabetes(return_X_y=True)
        source = "scikit-learn load_diabetes"
        n_test = round(0.3 * len(x))
    rest, test = _split_indices(len(x), n_test)
    tr, va = _split_indices(len(rest), len(rest) // 8)
    tr, va = rest[tr], rest[va]
    xlo, xhi = x[tr].min(0), x[tr].max(0)
    ylo, yhi = float(y[tr].min()), float(y[tr].max())

    def fx(idx):
        return torch.as_tensor((x[idx] - xlo) / (xhi - xlo), dtype=torch.float32)

    def fy(idx):
        return torch.as_tensor((y[idx, None] - ylo) / (yhi - ylo), dtype=torch.float32)

    pre = {
        "source": source,
        "scaling": "min-max to [0, 1] (training split)",
        "feature_min": xlo.tolist(),
        "feature_max": xhi.tolist(),
        "target_min": ylo,
        "target_max": yhi,
    }
    pre |= {"split_seed": SPLIT_SEED, "sizes": {"train": len(tr), "val": len(va), "test": len(test)}}
    return Dataset(name, fx(tr), fy(tr), fx(va), fy(va), fx(test), fy(test), pre, task="regression")


def load_dataset(name: str, data_dir: str | Path | None = None, resize: int | None = None) -> Dataset:
    """Load ``name`` with its deterministic train/val/test split, standardized."""
    name = (name or "").lower()
    if name in REGRESSION:
        return _regression(name)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.images.astype(np.float32) / 16.0, d.target
        rest, test = _split_indices(len(x), 360)
        tr, va = _split_indices(len(rest), 144)
        tr, va = rest[tr], rest[va]
        pre = {"source": "scikit-learn load_digits", "pixel_scale": 1 / 16.0, "shape": [8, 8]}
        return _finish("digits", x[tr], y[tr], x[va], y[va], x[test], y[test], pre)
    if name in ("fashion-mnist", "mnist"):
        if name == "fashion-mnist":
            folder = Path(data_dir) if data_dir else FASHION_DIR
            hint = "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data-dir"
            size = resize or 28
        else:
            if not data_dir:
                raise DataError("MNIST is not bundled: pass --data-dir FOLDER holding the four MNIST IDX files")
            folder, size = Path(data_dir), resize or 14
            hint = "the folder must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz allowed)"
        xs, ys, xt, yt = _load_idx_set(folder, hint)
        xs, xt = xs.astype(np.float32) / 255.0, xt.astype(np.float32) / 255.0
        if size != xs.shape[1]:
            xs, xt = _area_resize(xs, size), _area_resize(xt, size)
        tr, va = _split_indices(len(xs), len(xs) // 12)
        pre = {"source": str(folder), "pixel_scale": 1 / 255.0, "shape": [size, size], "resize": "area"}
        return _finish(name, xs[tr], ys[tr], xs[va], ys[va], xt, yt, pre)
    raise DataError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
