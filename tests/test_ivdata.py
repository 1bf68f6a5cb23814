"""Reading and validating raw I-V sweeps."""

import numpy as np
import pytest

from anasim.devices.ivdata import read_iv_csv
from anasim.errors import DataError


def test_reads_shared_sweep(cmtd_dir):
    sweep = read_iv_csv(cmtd_dir / "a21.csv")
    assert len(sweep.v) == 27
    assert sweep.v_range == (0.0, 1.3)
    # peak of the armchair device as the data README states: ~2.79 at 0.35 V (tolerance 0.01)
    low = sweep.v < 0.6
    assert abs(sweep.i[low].max() - 2.79) < 0.01 and sweep.v[low][sweep.i[low].argmax()] == pytest.approx(0.35)


def test_reads_segment_layout(tmp_path):
    p = tmp_path / "seg.csv"
    p.write_text("v0,v1,i0,i1\n0,0.5,0,1\n0.5,1,1,0.25\n")
    sweep = read_iv_csv(p)
    np.testing.assert_allclose(sweep.v, [0, 0.5, 1], atol=0)
    np.testing.assert_allclose(sweep.i, [0, 1, 0.25], atol=0)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x,y\n0,0\n0.1,1\n0.1,2\n", ":4: bias 0.1 does not increase"),
        ("x,y\n0,0\n0.2,1\n0.1,2\n", ":4: bias 0.1 does not increase"),
        ("x,y\n0,0\n0.1,nan\n0.2,2\n", ":3: current value 'nan' is not finite"),
        ("x,y\n0,0\n0.1,abc\n0.2,2\n", ":3: current value 'abc' is not a number"),
        ("x,y\n0,0\n0.1,1\n", "2 data points; at least 3"),
        ("x,y\n0,0,5\n0.1,1,5\n0.2,2,5\n", ":2: expected 2 columns"),
        ("", "file is empty"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError) as exc:
        read_iv_csv(p)
    assert str(p) in str(exc.value) and needle in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such I-V file"):
        read_iv_csv(tmp_path / "nope.csv")
