"""Reference models: the paper's parameter counts and the layer equation."""

import pytest
import torch

from anasim.families import build_model, count_params
from anasim.families.mlp.model import DeviceMLP
from anasim.families.tdkan.model import TDKAN


@pytest.mark.parametrize(
    "dims, bases, expected",
    [
        ([196, 64, 10], ["a21", "z21"], 26_570),  # paper Table 1, MNIST, 2 bases
        ([196, 64, 10], ["a21", "z21", "zaz21"], 39_754),  # MNIST, 3 bases
        ([784, 256, 10], ["a21", "z21"], 407_306),  # Fashion-MNIST, 2 bases
        ([784, 256, 10], ["a21", "z21", "zaz21"], 610_570),  # Fashion-MNIST, 3 bases
    ],
)
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_tdkan_parameter_counts_match_paper(dims, bases, expected, norm):
    assert count_params(TDKAN(dims, bases, norm=norm)) == expected


@pytest.mark.parametrize("act", ["rtd", "a21", "emosfet", "relu", "sigmoid"])
def test_mlp_parameter_count_matches_paper(act):
    assert count_params(DeviceMLP([196, 64, 10], act)) == 13_258
    assert count_params(DeviceMLP([784, 256, 10], act)) == 203_530


def test_tdkan_layer_is_equation_2():
    torch.manual_seed(0)
    model = TDKAN([3, 2], ["a21", "z21"]).double().eval()
    layer = model.layers[0]
    z = torch.randn(4, 3, dtype=torch.float64)
    v = (model.in_offset + model.in_gain * z).clamp(0, 1.25)  # clip into the common range
    out = model(z)
    for b in range(4):
        for j in range(2):
            ref = layer.bias[j].item()
            for i in range(3):
                for k, dev in enumerate(layer.bases):
                    ref += layer.coeffs[i, j, k].item() * dev.current([v[b, i].item()])[0]
            assert out[b, j].item() == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_sigmoid_mapping_stays_in_range_with_unit_slope():
    model = TDKAN([2, 2], ["a21"], mapping="sigmoid")
    x = torch.tensor([[-100.0, 0.65]], requires_grad=True)
    from anasim.families.tdkan.model import map_input

    u = map_input(x, model.v_range, "sigmoid")
    u[0, 1].backward()
    assert 0 <= u.min() and u.max() <= 1.3
    assert x.grad[0, 1].item() == pytest.approx(1.0, abs=1e-6)  # slope 1 at mid-range


def test_noise_options():
    torch.manual_seed(0)
    model = build_model({"arch": "tdkan", "dims": [8, 4, 3], "bases": ["a21"], "train_noise": 0.1})
    z = torch.randn(16, 8)
    model.eval()
    clean = model(z)
    model.set_eval_noise(0.2)  # eq. 6: multiplicative coefficient noise at evaluation
    assert not torch.allclose(model(z), clean)
    model.set_eval_noise(0.0)
    assert torch.equal(model(z), clean)
    model.train()
    torch.manual_seed(1)
    a = model.layers[0].effective_coeffs()
    assert not torch.equal(a, model.layers[0].coeffs)  # eq. 3: additive noise while training
