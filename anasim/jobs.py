"""What a run reads, checked before any work: the verified checkpoint (:class:`Network`,
:func:`load`), the :class:`Job` (samples, hardware options, settings, where results go), and the
settings, options and dataset of a simulation or Monte Carlo (:func:`prepare`). Each check refuses
bad input naming it: outputs that would overwrite inputs, a dataset the model cannot read, an
analysis the engine does not run, a ``--netlist`` of another model or engine.

Where it sits: the first step of :mod:`anasim.pipeline` (compile, simulate, Monte Carlo) and of
:mod:`anasim.comparator`; nothing here runs an engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import sidecar
from .checkpoint import load_checkpoint
from .data import load_dataset
from .errors import AnasimError
from .families import FAMILIES, Family, SimSettings, family_of, make_options
from .outputs import check_outputs, json_outputs
from .sim.engine import get_engine, require

# Hardware the time-multiplexed transient adds unless told otherwise: 1 pF lines, 100 MHz op-amps.
TRAN_DEFAULTS = {"line_cap": 1e-12, "gbw": 1e8}


@dataclass(frozen=True)
class Job:
    """What a simulation or a Monte Carlo reads and writes, besides the checkpoint: its samples
    (dataset, split, how many), the family's hardware ``options`` (None: its defaults), how to
    simulate (:class:`SimSettings`), and where runs and results go."""

    dataset: str | None = None  # None: the checkpoint's own
    samples: int = 1000
    split: str = "test"
    options: dict | None = None
    settings: SimSettings | None = None
    data_dir: str | Path | None = None
    run_dir: str | Path | None = None  # the engine's run folders (None: a temporary one)
    json_out: str | Path | None = None  # the results file (and .npz, or a Monte Carlo's .mc folder)


def job_of(job: Job | None, fields: dict) -> Job:
    """``job`` (default: all defaults) with ``fields`` (a library caller's keywords) set."""
    return replace(job or Job(), **fields)


@dataclass(frozen=True)
class Network:
    """A verified checkpoint: its dict, the model in float64 (eval mode) and its family."""

    path: Path
    ckpt: dict
    model: torch.nn.Module
    family: Family
    sha256: str  # of the file, read once when it was loaded

    @property
    def digest(self) -> str:
        """The first 16 hex digits of the sha256: what netlist headers and summaries show."""
        return self.sha256[:16]


def load(path: str | Path) -> Network:
    """The checkpoint at ``path``, verified and read with weights only (:mod:`anasim.checkpoint`)."""
    ckpt, model = load_checkpoint(path)
    sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return Network(Path(path), ckpt, model.double(), family_of(model), sha256)


def fit_options(net: Network, opts, data_dir=None, data=None):
    """``opts`` fitted to the checkpoint's training data where its family fits any (TD-KAN
    ``--swing``); the data is loaded only then (``data``: already loaded, when it is that set)."""
    if net.family.fit is None:
        return opts

    def train_inputs():
        name = net.ckpt.get("dataset", {}).get("name")
        if name is None:
            raise AnasimError(f"{net.path.name} records no dataset, and --swing is fitted on its training data")
        return (data if data is not None and data.name == name else load_dataset(name, data_dir)).x_train

    return net.family.fit(net.model, opts, train_inputs)


def check_sim_outputs(net: Network, job: Job, mc: bool = False) -> None:
    """Refuse, before any work, outputs of a simulation that would overwrite its checkpoint or
    netlist or each other: --json, what goes beside it (.npz arrays, a Monte Carlo's .mc folder), --run-dir."""
    settings, json_out, run_dir = job.settings, job.json_out, job.run_dir
    inputs = [(f"the checkpoint {net.path}", net.path)]
    if settings is not None and settings.netlist is not None:
        inputs.append((f"the netlist {settings.netlist}", settings.netlist))
    outputs = [] if run_dir is None else [(f"--run-dir {run_dir}", run_dir, "--run-dir")]
    outputs += json_outputs(json_out, ".mc" if mc else ".npz", "Monte Carlo folder" if mc else "arrays")
    check_outputs(inputs, outputs)


def settings_for(family: Family, settings: SimSettings, given: dict) -> tuple[SimSettings, dict | None]:
    """Check the settings against the family; the option defaults the analysis implies."""
    if settings.analysis is not None and settings.analysis not in family.analyses:
        raise AnasimError(
            f"--analysis {settings.analysis}: a {family.title} runs {' or '.join(family.analyses)} only; drop --analysis"
        )
    analysis = settings.analysis or family.analyses[0]
    if family.analyses == ("tran",) and (settings.whole or settings.netlist is not None):
        raise AnasimError(f"--whole and --netlist apply to crossbar models; a {family.title} runs layer by layer")
    for key in ("line_cap", "gbw"):
        if key in given and analysis != "tran":
            raise AnasimError(
                f"--{key.replace('_', '-')} applies to --analysis tran (DC has no poles or line charging)"
            )
    return replace(settings, analysis=analysis), (TRAN_DEFAULTS if analysis == "tran" else None)


def prepare(net: Network, job: Job):
    """Settings, family options and dataset of a simulation, checked before any work."""
    dataset, samples, options, settings, data_dir = job.dataset, job.samples, job.options, job.settings, job.data_dir
    if samples < 1:
        raise AnasimError("--samples must be at least 1")
    given = dict(options or {})
    settings, defaults = settings_for(net.family, settings or SimSettings(), given)
    opts = make_options(net.family, given, FAMILIES, defaults)
    trained = net.ckpt["dataset"]["name"]
    if dataset is None and trained.startswith("control-"):  # a controller's data is its plant's closed loop
        # (control simulate names the plants it has; this layer does not look them up)
        plant = trained[len("control-") :]
        raise AnasimError(
            f"{net.path.name} is a controller for the {plant} plant: simulate its closed loop with "
            f"'anasim control simulate {net.path.name}'"
        )
    data = check_data(net, load_dataset(dataset or trained, data_dir))
    return settings, fit_options(net, opts, data_dir, data), data


def check_data(net: Network, data):
    """Refuse a dataset the model cannot read: another input width or task (or fewer classes)."""
    trained, dims = net.ckpt.get("dataset", {}).get("name", "?"), net.ckpt["config"]["dims"]
    fix = f"drop --dataset to simulate on {trained}, or give a model trained on {data.name}"
    if data.n_features != dims[0]:
        raise AnasimError(
            f"--dataset {data.name} has {data.n_features} input features but {net.path.name} was trained on "
            f"{trained} with {dims[0]}; {fix}"
        )
    task = net.ckpt.get("dataset", {}).get("task", data.task)
    if task != data.task:
        raise AnasimError(f"--dataset {data.name} is a {data.task} set but {net.path.name} does {task}; {fix}")
    if data.task == "classification" and int(data.y_train.max()) + 1 > dims[-1]:
        raise AnasimError(
            f"--dataset {data.name} has {int(data.y_train.max()) + 1} classes but {net.path.name} has {dims[-1]} "
            f"outputs; {fix}"
        )
    return data


def check_engine(settings: SimSettings, name=None) -> None:
    """Refuse, before any work, an analysis the engine (default: the active one) does not run,
    naming the ones that do."""
    name = get_engine().name if name is None else name
    require("tran" if settings.analysis == "tran" else "dc-sweep", f"--analysis {settings.analysis}", name)
    if settings.power_samples or settings.analysis == "tran":
        require("static-power", "the static power (--power-samples, or a transient's power)", name)


def check_netlist(net: Network, path) -> sidecar.Sidecar:
    """A --netlist must be an ``anasim compile`` deck of this very checkpoint, as compiled, for the
    engine that runs it: its sidecar says so (another model's netlist would run and give a wrong
    accuracy with exit 0). Its text is never read back; the sidecar is returned."""
    redo = f"compile one with 'anasim compile {net.path} -o {Path(path).name}'"
    card = sidecar.read(path, redo)
    if card.model_sha256 != net.sha256:
        raise AnasimError(
            f"--netlist {path} was compiled from model {card.model} sha256 {card.model_sha256[:16]}, but "
            f"{net.path.name} has sha256 {net.digest}; {redo}, or simulate the checkpoint it came from"
        )
    if card.runs_alone:
        run = "ngspice -b" if card.engine == "ngspice" else card.engine
        raise AnasimError(
            f"--netlist {path} was compiled with --stimulus {card.stimulus}: it holds its own analysis (anasim "
            f"writes the analysis); compile it without --stimulus to simulate it with anasim ('anasim compile "
            f"{net.path} -o {Path(path).name}'), or run it alone with {run} {path}"
        )
    if card.engine != get_engine().name:
        raise AnasimError(
            f"--netlist {path} is a deck for {card.engine} ({sidecar.path_of(path).name}), and this run's engine is "
            f"{get_engine().name}: simulate it with --engine {card.engine}, or compile one with --engine "
            f"{get_engine().name}"
        )
    return card
