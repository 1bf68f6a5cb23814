"""``anasim devices list|plot|fit``: the device library."""

from __future__ import annotations

from pathlib import Path

import click

from ._util import friendly


@click.group()
def devices():
    """List, plot and fit device I-V models."""


@devices.command("list")
@friendly
def list_():
    """List every device model: bundled and your own."""
    from anasim.devices import registry, user_device_dir

    click.echo(
        f"{'name':<14} {'kind':<5} {'range (V)':<13} {'unit':<5} {'A/unit':<7} {'fit':<7} {'rms':<9} description"
    )
    for name, d in registry().items():
        err = d.provenance.get("fit_error", {})
        rng = f"{d.v_range[0]:g}..{d.v_range[1]:g}"
        method = d.provenance.get("fit_method", "-")
        click.echo(
            f"{name:<14} {d.kind:<5} {rng:<13} {d.unit:<5} {d.amps_per_unit:<7.0e} {method:<7} "
            f"{err.get('rms', 0):<9.3g} {d.description}"
        )
    click.echo(f"(your own devices: {user_device_dir()})")


@devices.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="PNG file [NAME.png].")
@click.option("--data", type=click.Path(dir_okay=False), help="Raw sweep CSV to overlay.")
@friendly
def plot(name, output, data):
    """Plot device NAME (data vs fit when --data is given)."""
    from anasim.devices import get_device
    from anasim.devices.ivdata import read_iv_csv
    from anasim.devices.plots import plot_device
    from anasim.outputs import check_outputs

    model = get_device(name)
    output = output or f"{model.name}.png"
    check_outputs([(f"--data {data}", data)], [(f"-o {output}", output, "-o")])
    sweep = read_iv_csv(data) if data else None
    out = plot_device(model, output, sweep)
    click.echo(f"wrote {out}")


@devices.command()
@click.argument("csv", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name for the new device (a-z, 0-9, _).")
@click.option("--method", type=click.Choice(["pwl", "smooth"]), default="pwl", show_default=True)
@click.option(
    "--grid", type=float, default=None, help="Knot spacing in volts [pwl: the data's own points; smooth: 0.025]."
)
@click.option("--unit", default="a.u.", show_default=True, help="Current unit of the CSV.")
@click.option("--amps-per-unit", type=float, default=1e-6, show_default=True, help="Amperes per unit of current.")
@click.option("--force", is_flag=True, help="Replace an existing device of that name.")
@friendly
def fit(csv, name, method, grid, unit, amps_per_unit, force):
    """Fit a measured I-V sweep in CSV and store it where 'devices list' finds it."""
    from anasim.devices import registry, user_device_dir
    from anasim.devices.fitting import check_sweep_file, fit_device
    from anasim.devices.ivdata import read_iv_csv
    from anasim.outputs import check_outputs

    name = name.strip().lower()
    known = registry()
    dest = user_device_dir() / f"{name}.json"
    check_outputs([(f"the sweep {csv}", csv)], [(f"the device model {dest}", dest, "--name")])
    if name in known and (not dest.exists() or not force):
        raise click.ClickException(f"device {name!r} exists already; choose another --name (or --force for your own)")
    if check_sweep_file(csv) > 1_000_000:  # reading takes about 15 s per 25 MB: say what is going on
        click.echo(f"reading {csv} ({Path(csv).stat().st_size / 1e6:.0f} MB)...", err=True)
    sweep = read_iv_csv(csv)
    if len(sweep.v) > 50_000:
        click.echo(f"fitting {len(sweep.v):,} points ({method})...", err=True)
    model, rep = fit_device(sweep, name, method, grid, unit, amps_per_unit, description=f"fitted from {Path(csv).name}")
    model.save(dest)
    click.echo(
        f"{name}: {method} fit, {len(model.knots_v)} knots, RMS {rep.rms:.4g}, max {rep.max_abs:.4g} {unit} -> {dest}"
    )


@devices.command()
@click.option(
    "-o", "--output", type=click.Path(file_okay=False), default="netlists/devices", show_default=True, help="Folder."
)
@friendly
def export(output):
    """Write every device model (bundled and your own) as an ngspice .subckt (<name>.lib) and a
    Verilog-A module (<name>.va, compile it with openvaf-r for any OSDI simulator), each with an
    area parameter."""
    from anasim.library import export_devices

    for path in export_devices(output, user=True):
        click.echo(f"wrote {path}")
