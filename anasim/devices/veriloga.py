"""Verilog-A text for anasim's device curves: the device library any Verilog-A/OSDI simulator loads.

Where it sits in the flow: a device model (:class:`~anasim.devices.DeviceModel`, a pwl table or
an expression of :mod:`anasim.devices.expr`) -> this module (Verilog-A text) -> :mod:`anasim.devices.openvaf`
(``openvaf-r`` compiles it to an ``.osdi`` file, cached) -> a simulator that loads OSDI (ngspice
``pre_osdi``, VACASK ``load``). Engine-neutral: nothing here knows a simulator's netlist dialect.

Each curve is a module ``NAME(a, k)`` with one instance parameter ``area`` (unit-area devices);
the current from ``a`` to ``k`` is ``area * amps_per_unit * I(V(a, k))``, as in the ngspice
library (``netlists/devices/*.lib``). The curve equals anasim's torch curve
(:meth:`DeviceModel.torch_current`): a pwl table is linear between its knots with the very float
operations torch does (``y0 + slope * (v - x0)``, the slopes worked out in float64 as torch does)
and flat beyond its end points (torch clamps ``v`` into the knots: below the first knot its
current, above the last the last segment's value at the last knot); an expression is printed
from its checked tree, ``softplus`` as torch computes it (``x`` above 20, else ``log1p(exp(x))``).
Module names are checked identifiers that are no Verilog-A keyword; every number is a finite
float's shortest repr; comment text is printable ASCII without the preprocessor's backtick.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from ..errors import DeviceError
from .expr import FUNCTIONS, Expr

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Verilog-AMS keywords, the standard functions, the disciplines and natures of disciplines.vams,
# and the names a module here declares itself: none of them may name a module.
RESERVED = frozenset(
    """above abs absdelay absdelta abstol access acos acosh ac_stim aliasparam always analog analysis
    and asin asinh assert assign atan atan2 atanh begin branch buf bufif0 bufif1 case casex casez ceil
    cell cmos config connect connectmodule connectrules continuous cos cosh cross ddt ddt_nature ddx
    deassign default defparam design disable discipline discrete domain driver_update edge else end
    endcase endconfig endconnectrules enddiscipline endfunction endgenerate endmodule endnature
    endparamset endprimitive endspecify endtable endtask event exclude exp final_step flicker_noise
    floor flow for force forever fork from function generate genvar ground highz0 highz1 hypot idt
    idtmod idt_nature if ifnone incdir include inf initial initial_step inout input instance integer
    join laplace_nd laplace_np laplace_zd laplace_zp large last_crossing liblist library limexp ln
    localparam log macromodule max medium merged min module nand nature negedge net_resolution nmos
    noise_table noise_table_log nor noshowcancelled not notif0 notif1 or output parameter paramset
    pmos posedge potential pow primitive pull0 pull1 pulldown pullup pulsestyle_ondetect
    pulsestyle_onevent rcmos real realtime reg release repeat resolveto rnmos rpmos rtran rtranif0
    rtranif1 scalared sin sinh showcancelled signed slew small specify specparam split sqrt string
    strong0 strong1 supply0 supply1 table tan tanh task time timer tran tranif0 tranif1 transition
    tri tri0 tri1 triand trior trireg units unsigned use uwire vectored wait wand weak0 weak1 while
    white_noise wire wone wor wreal xnor xor zi_nd zi_np zi_zd zi_zp
    electrical voltage current magnetic thermal kinematic kinematic_v rotational rotational_omega
    Current Voltage Flux Charge Magneto_Motive_Force Temperature Power Position Velocity Force
    a k v y area anasim_softplus""".split()
)

# Verilog-A for each function of anasim.devices.expr (log() is base 10 in Verilog-A: ln is the natural one)
TEMPLATES = {
    "exp": "exp({0})",
    "ln": "ln({0})",
    "atan": "atan({0})",
    "tanh": "tanh({0})",
    "sqrt": "sqrt({0})",
    "softplus": "anasim_softplus({0})",
    "max": "max({0}, {1})",
    "min": "min({0}, {1})",
}
assert set(TEMPLATES) == set(FUNCTIONS), "every function of anasim.devices.expr needs its Verilog-A form"

# torch.nn.functional.softplus (beta 1, threshold 20): x above the threshold, else log1p(exp(x)),
# log1p by Goldberg's identity (exact to a few ulp where 1 + u rounds; ln(1 + u) is not)
SOFTPLUS = """\
  analog function real anasim_softplus;
    input x;
    real x, u, w;
    begin
      if (x > 20.0) anasim_softplus = x;
      else begin
        u = exp(x);
        w = 1.0 + u;
        if (w == 1.0) anasim_softplus = u;
        else anasim_softplus = ln(w) * u / (w - 1.0);
      end
    end
  endfunction"""


def module_name(name: str) -> str:
    """``name`` as a Verilog-A module name: lower case letters, digits and '_' (anything else
    becomes '_'), starting with a letter, no keyword (those get '_dev' appended)."""
    text = re.sub(r"[^a-z0-9_]", "_", str(name).strip().lower())
    if not text or not text[0].isalpha():
        text = "d_" + text
    text = text[:60]
    if text in RESERVED:
        text += "_dev"
    if not _IDENT.match(text):  # cannot happen after the above; the last word before any text is written
        raise DeviceError(f"device name {name!r} gives no Verilog-A module name")
    return text


def number(x: float) -> str:
    """A finite float as a Verilog-A real literal: its shortest exact repr, negative ones in parentheses."""
    x = float(x)
    if not math.isfinite(x):
        raise DeviceError(f"{x!r} is not a finite number: a Verilog-A module cannot hold it")
    text = repr(x)  # a float's repr always has a '.' or an exponent: never an integer literal (1/2 is 0)
    return f"({text})" if text.startswith("-") else text


def comment(text: str) -> str:
    """One '//' comment line: printable ASCII, no backtick or backslash (the preprocessor's)."""
    return "// " + re.sub(r"[^ -~]|[`\\]", "?", str(text)).strip()[:4000]


def pwl_lines(xs: Sequence[float], ys: Sequence[float], v: str = "v", y: str = "y", indent: str = "    ") -> list[str]:
    """Statements setting ``y`` to the pwl table (xs, ys) at ``v``, as torch evaluates it: flat
    beyond the end points, ``y0 + slope * (v - x0)`` on the segment (x0, x1] (a balanced tree of
    comparisons, so a lookup takes log2(knots) of them)."""
    xs, ys = [float(t) for t in xs], [float(t) for t in ys]
    if len(xs) < 2 or len(xs) != len(ys) or any(b <= a for a, b in zip(xs, xs[1:])):
        raise DeviceError("a pwl table needs >= 2 knots of strictly increasing bias and one current each")
    for t in xs + ys:
        number(t)  # finite, or the error
    slopes = [(ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) for j in range(len(xs) - 1)]
    n = len(xs) - 1
    top = ys[n - 1] + slopes[n - 1] * (xs[n] - xs[n - 1])  # torch at the clamped last knot, bit for bit

    def segment(j: int) -> str:
        return f"{y} = {number(ys[j])} + {number(slopes[j])} * ({v} - {number(xs[j])});"

    def tree(lo: int, hi: int, pad: str) -> list[str]:
        if lo == hi:
            return [pad + segment(lo)]
        mid = (lo + hi) // 2  # segments lo..mid cover v <= xs[mid + 1]
        return [
            f"{pad}if ({v} <= {number(xs[mid + 1])}) begin",
            *tree(lo, mid, pad + "  "),
            f"{pad}end else begin",
            *tree(mid + 1, hi, pad + "  "),
            f"{pad}end",
        ]

    return [
        f"{indent}if ({v} <= {number(xs[0])}) {y} = {number(ys[0])};",
        f"{indent}else if ({v} >= {number(xs[n])}) {y} = {number(top)};",
        f"{indent}else begin",
        *tree(0, n - 1, indent + "  "),
        f"{indent}end",
    ]


def expr_lines(expr: Expr, v: str = "v", y: str = "y", indent: str = "    ") -> list[str]:
    """The statement setting ``y`` to the expression at ``v``, printed from its checked tree."""
    return [f"{indent}{y} = {expr.render(v, TEMPLATES, number)};"]


def module(name: str, body: list[str], amps_per_unit: float, comments: Iterable[str] = ()) -> str:
    """A two-terminal module ``name(a, k)``: ``I(a, k) = area * amps_per_unit * y`` with ``y`` set
    by the statements ``body`` from ``v = V(a, k)``."""
    name = module_name(name)
    if not (math.isfinite(float(amps_per_unit)) and float(amps_per_unit) > 0):
        raise DeviceError(f"module {name}: amps_per_unit {amps_per_unit!r} must be a positive number")
    uses_softplus = any("anasim_softplus(" in line for line in body)
    return "\n".join(
        [
            *(comment(c) for c in comments),
            f"module {name}(a, k);",
            "  inout a, k;",
            "  electrical a, k;",
            '  (* type="instance" *) parameter real area = 1.0 from [0:inf);',
            *([SOFTPLUS] if uses_softplus else []),
            "  real v, y;",
            "  analog begin",
            "    v = V(a, k);",
            *body,
            f"    I(a, k) <+ area * {number(amps_per_unit)} * y;",
            "  end",
            "endmodule",
            "",
        ]
    )


def device_module(device, name: str | None = None, comments: Iterable[str] = ()) -> str:
    """The module of a :class:`~anasim.devices.DeviceModel` (named ``name``, default its own name)."""
    if device.kind == "pwl":
        body = pwl_lines(device.knots_v, device.knots_i)
    else:
        body = expr_lines(Expr(device.expr, device.constants))
    return module(name or device.name, body, device.amps_per_unit, comments)


def source(modules: Iterable[str], comments: Iterable[str] = ()) -> str:
    """A Verilog-A file of ``modules`` (texts from :func:`module`): one compiles to one .osdi."""
    modules = list(modules)
    names = [m.split("module ", 1)[1].split("(", 1)[0] for m in modules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DeviceError(f"Verilog-A modules named twice: {', '.join(twice)}")
    head = [*(comment(c) for c in comments), '`include "disciplines.vams"', ""]
    return "\n".join(head) + "\n" + "\n".join(modules)


def module_names(text: str) -> list[tuple[int, str]]:
    """(line number, name) of each module in a Verilog-A text, to name the one a compiler error is in."""
    found = []
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^module ([a-z][a-z0-9_]*)\(", line)
        if m:
            found.append((no, m.group(1)))
    return found
