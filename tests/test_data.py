"""Datasets: IDX reading, deterministic splits, preprocessing."""

import gzip
import struct

import numpy as np
import pytest
import torch

from anasim.data import load_dataset, read_idx
from anasim.errors import DataError


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 24)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


def test_digits_split_is_deterministic():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (1293, 144, 360)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert abs(a.x_train.mean().item()) < 1e-5 and a.x_train.std().item() == pytest.approx(1.0, abs=1e-3)


def test_mnist_from_user_folder_is_resized_to_14(fake_mnist):
    d = load_dataset("mnist", fake_mnist)
    assert d.n_features == 196 and len(d.x_test) == 24 and len(d.x_train) + len(d.x_val) == 120
    assert d.preprocessing["shape"] == [14, 14]


def test_area_resize_is_2x2_mean(fake_mnist):
    raw = read_idx(fake_mnist / "t10k-images-idx3-ubyte.gz").astype(np.float64) / 255
    d = load_dataset("mnist", fake_mnist)
    pre = d.preprocessing
    ref = raw[0].reshape(14, 2, 14, 2).mean(axis=(1, 3)).reshape(-1)
    np.testing.assert_allclose(d.x_test[0].numpy() * pre["std"] + pre["mean"], ref, atol=1e-5)


def test_fashion_mnist_from_debian_package():
    d = load_dataset("fashion-mnist")
    assert (len(d.x_train), len(d.x_val), len(d.x_test), d.n_features) == (55000, 5000, 10000, 784)


@pytest.mark.parametrize(
    "name, kwargs, needle",
    [
        ("mnist", {}, "pass --data-dir"),
        ("mnist", {"data_dir": "/nonexistent"}, "no such folder"),
        ("fashion-mnist", {"data_dir": "/nonexistent"}, "dataset-fashion-mnist"),
        ("cifar", {}, "valid datasets: digits, fashion-mnist, mnist"),
    ],
)
def test_missing_data_errors(name, kwargs, needle):
    with pytest.raises(DataError, match=needle):
        load_dataset(name, **kwargs)


def test_truncated_idx_file(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 4)
    with pytest.raises(DataError, match="holds 4 bytes"):
        read_idx(p)
