"""``--swing`` (TD-KAN): feedback resistors and difference gains fitted so that every op-amp output
stays within the swing on the training data, the scale undone by the next layer's clippers and
by the comparison; checked against the unscaled circuit, the held-out count against numpy, and
rails at the swing against no rails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from anasim.errors import AnasimError
from anasim.families import FAMILIES, SimSettings
from anasim.families.base import make_options
from anasim.families.tdkan.lower import lower, swing_scales
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.families.tdkan.swing import fit, node_voltages, peaks
from anasim.sim.driver import simulate


def run_tdkan(model, z, opts, settings, run_dir):  # the family's plan through the one driver
    return simulate(FAMILIES["tdkan"].plan(model, z, opts, settings), settings, run_dir)


EXAMPLE = Path(__file__).resolve().parent.parent / "netlists" / "examples" / "digits_tdkan.pt"


def trained(bases=("a21", "z21"), dims=(10, 6, 3), seed=5):
    """A TD-KAN with BatchNorm statistics from one batch, and 40 standardized inputs."""
    torch.manual_seed(seed)
    model = TDKAN(list(dims), list(bases)).double()
    model.train()
    model(torch.randn(64, dims[0], dtype=torch.float64))
    model.eval()
    return model, torch.randn(40, dims[0], dtype=torch.float64)


def swung(model, z, opts: TdkanOptions, fraction: float) -> TdkanOptions:
    """``opts`` with a swing at ``fraction`` of the smallest TIA peak, fitted on ``z``: every
    layer is scaled."""
    swing = fraction * min(p[0] for p in peaks(model, opts, z))
    return fit(model, replace(opts, swing=swing), lambda: z)


@pytest.mark.parametrize("opts", [TdkanOptions(), TdkanOptions(tile=(4, 4)), TdkanOptions(mapping="shared")])
def test_the_fit_adds_currents_as_the_model_does(opts):
    # the numpy node voltages' last outputs are the model's outputs (no quantization): 1e-12 of
    # the range, float64 sums in another order
    model, z = trained()
    v = node_voltages(model, opts, z)
    with torch.no_grad():
        ref = model(z).numpy()
    assert np.abs(v[-1]["out"] - ref).max() <= 1e-12 * np.ptp(ref)
    assert all(np.abs(layer["tia"]).max() > 0 for layer in v)
    assert (np.abs(v[0]["sense"]).max(initial=0.0) > 0) == (opts.mapping == "shared")


@pytest.mark.parametrize(
    "opts",
    [
        TdkanOptions(),
        TdkanOptions(tile=(4, 4)),
        TdkanOptions(tile=(4, 4), wire_r=1.0),
        TdkanOptions(mapping="shared"),
        TdkanOptions(mapping="shared", r_sense=1e6),  # sense TIAs at 2.8 V: scaled too
    ],
    ids=["edge", "tiles", "tiles+wires", "shared", "shared+sense"],
)
def test_swing_fitted_circuit_equals_the_unscaled_one(opts, tmp_path):
    # ideal op-amps (gain 1e9): the swing-fitted circuit's outputs, divided by its output scale,
    # equal the nominal circuit's to 1e-6 of the range (two solves of 1e9-gain circuits agree
    # to about 1e-7 of it, see test_physical); and on the samples it was fitted to, no op-amp
    # output goes beyond the swing (1e-5 relative: SWING_TOL) while the nominal ones do
    model, z = trained()
    opts = swung(model, z, opts, 0.5)
    nominal = replace(opts, swing=None, swing_peaks=None)
    assert all(a < 1 and out < 1 for a, out, _ in swing_scales(opts, 2))  # every layer scaled down
    assert all(sense < 1 for *_, sense in swing_scales(opts, 2)) == (opts.r_sense > 1e5)
    free = run_tdkan(model, z, nominal, SimSettings(jobs=1), tmp_path / "free")
    res = run_tdkan(model, z, opts, SimSettings(jobs=1), tmp_path / "swing")
    assert not free.failed and not res.failed
    assert np.abs(res.outputs - free.outputs).max() <= 1e-6 * np.ptp(free.outputs)
    sw = res.extra["swing"]
    # the fit assumes ideal wires: with --wire-r the outputs move by the wires' error (see
    # test_physical), which here takes some samples beyond the swing by up to 1e-3 of it
    tol = 1e-3 if opts.wire_r > 0 else 1e-5
    assert sw["samples_checked"] == len(z) and (sw["samples_outside"] == 0 or opts.wire_r > 0)
    assert 0.99 * opts.swing < sw["max_abs_v"] <= opts.swing * (1 + tol)  # the fit is tight, not loose
    assert sw["output_scale"] == swing_scales(opts, 2)[-1][1] < 1


def test_whole_network_deck_gives_the_same_outputs(tmp_path):
    # the whole swing-fitted network in one deck (where no op-amp output is read): the same
    # outputs as stage by stage, 1e-6 of the range, and the held-out check says it did not run
    model, z = trained()
    opts = swung(model, z, TdkanOptions(), 0.5)
    stages = run_tdkan(model, z[:10], opts, SimSettings(jobs=1), tmp_path / "s")
    whole = run_tdkan(model, z[:10], opts, SimSettings(jobs=1, whole=True), tmp_path / "w")
    assert np.abs(whole.outputs - stages.outputs).max() <= 1e-6 * np.ptp(stages.outputs)
    assert whole.extra["swing"]["held_out"].startswith("not checked")


def test_held_out_samples_beyond_the_swing_are_counted(tmp_path):
    # fitted on 5 samples, run on the 35 others (19 of them go beyond): the runner's count of
    # samples with an op-amp output beyond the swing equals the count from the numpy node
    # voltages of the scaled circuit (ideal op-amps; none lies within 1e-3 of the swing, where
    # the two might round differently: checked below)
    model, z = trained()
    opts, held = swung(model, z[:5], TdkanOptions(), 0.5), z[5:]
    res = run_tdkan(model, held, opts, SimSettings(jobs=1), tmp_path)
    scales = swing_scales(opts, 2)
    worst = np.zeros(len(held))
    for v, (a, out, _) in zip(node_voltages(model, opts, held), scales):
        worst = np.maximum(worst, np.abs(v["tia"]).max(axis=(1, 2, 3)) * a)
        worst = np.maximum(worst, np.abs(v["out"]).max(axis=1) * out)
    assert (np.abs(worst / opts.swing - 1) > 1e-3).all()
    want = np.flatnonzero(worst > opts.swing)
    sw = res.extra["swing"]
    assert 0 < len(want) < len(held)  # the check can fail both ways
    assert sw["samples_outside"] == len(want) and sw["outside"] == want.tolist()
    assert sw["max_abs_v"] == pytest.approx(worst.max(), rel=1e-6)  # 1e9-gain op-amps: about 1e-7


def test_rails_at_the_swing_change_nothing_but_rails_below_the_peaks_do(tmp_path):
    # op-amp gain 1e6 (rails need 1e7 or less). Rails 10% above the swing of a fitted circuit:
    # the same outputs as without rails to 1e-4 of the range (a tanh output at x of its rails
    # has its loop gain cut by 1 - x^2 >= 0.17 here, so the virtual grounds move by up to 6x
    # their 1e-6 of an output). Rails exactly at the swing leave the sample at the fitted peak
    # on tanh's asymptote: here ngspice found no operating point for it (README).
    # The same rails on the nominal circuit, whose outputs go beyond them: outputs more than 1%
    # of the range off, or samples that fail (a saturated TIA loses its virtual ground)
    model, z = trained()
    opts = replace(swung(model, z, TdkanOptions(opamp_gain=1e6), 0.5), opamp_gain=1e6)
    z = z[:8]  # failing samples are re-run alone, each through ngspice's gmin and source stepping: slow
    free = run_tdkan(model, z, opts, SimSettings(jobs=1), tmp_path / "free")
    railed = run_tdkan(model, z, replace(opts, rails=1.1 * opts.swing), SimSettings(jobs=1), tmp_path / "rails")
    assert not railed.failed and np.abs(railed.outputs - free.outputs).max() <= 1e-4 * np.ptp(free.outputs)
    nominal = replace(opts, swing=None, swing_peaks=None, rails=opts.swing)
    hurt = run_tdkan(model, z, nominal, SimSettings(jobs=1), tmp_path / "hurt")
    ok = np.isfinite(hurt.outputs).all(axis=1)
    assert hurt.failed or np.abs(hurt.outputs[ok] - free.outputs[ok]).max() > 0.01 * np.ptp(free.outputs)


@pytest.mark.parametrize(
    "opts, needle",
    [
        (TdkanOptions(swing=0.0), "--swing 0.0"),
        (TdkanOptions(swing=-1.0), "--swing -1.0"),
        (TdkanOptions(swing=float("nan")), "--swing nan"),
        (TdkanOptions(swing=float("inf")), "--swing inf"),
        (TdkanOptions(swing=5.0, rails=4.0, opamp_gain=1e6), "--rails 4 is below --swing 5"),
        (TdkanOptions(swing_peaks=((1.0, 1.0, 0.0),)), "give --swing too"),
        (TdkanOptions(swing=5.0, swing_peaks=((1.0, float("nan"), 0.0),)), "three finite peak voltages"),
    ],
)
def test_bad_swing_is_refused(opts, needle):
    with pytest.raises(AnasimError, match=needle):
        opts.check()


def test_swing_needs_the_training_data_and_a_tdkan():
    model, _ = trained()
    with pytest.raises(AnasimError, match="--swing is fitted on the model's training data"):
        lower(model, TdkanOptions(swing=1.0))
    with pytest.raises(AnasimError, match="--swing applies to TD-KAN models"):
        make_options(FAMILIES["mlp"], {"swing": 1.0}, FAMILIES)


def test_a_compiled_swing_netlist_is_compared_at_the_models_scale(tmp_path):
    # compile --swing, then simulate --netlist without --swing: the deck's header gives the output
    # scale, so the comparison is the model's (100% agreement, 1e-4 of the range at gain 1e6)
    from anasim.pipeline import compare, compile_network, load

    net = load(EXAMPLE)
    deck = tmp_path / "swing.cir"
    compile_network(net, deck, {"swing": 4.0, "opamp_gain": 1e6})
    text = deck.read_text()
    assert "swing 4.0, swing_peaks ((" in text and "* output scale 0." in text
    result = compare(net, samples=20, options={"opamp_gain": 1e6}, settings=SimSettings(jobs=1, netlist=deck))
    m = result.metrics()
    assert m["argmax_agreement"] == 1.0 and m["max_error_rel_range"] <= 1e-4
    assert 0 < result.info["swing"]["output_scale"] < 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--swing", "5", "--rails", "4", "--opamp-gain", "1e6"], "--rails 4 is below --swing 5"),
        (["--swing", "-2"], "--swing -2.0: give the op-amps' output swing in volts"),
        (["--swing", "inf"], "--swing inf"),
    ],
)
def test_cli_refuses_a_bad_swing(args, needle):
    # before any work: one line on stderr, exit status 1, no traceback
    from click.testing import CliRunner

    from anasim_cli.main import cli

    for command in ("simulate", "compile"):
        res = CliRunner().invoke(cli, [command, str(EXAMPLE), *args])
        assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output
