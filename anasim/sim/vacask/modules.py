"""Verilog-A modules for what VACASK has no builtin for: device curves, tables, behavioural sources, branches.

Where it sits: the VACASK writer (:mod:`.writer`) asks :class:`Library` for the module and the
instance parameters of every element that is not a resistor, capacitor, independent or linear
controlled source; the library's Verilog-A text is compiled once by ``openvaf-r``
(:func:`anasim.devices.openvaf.compile_va`, cached by content hash) and loaded by the deck.

* A device (:class:`~anasim.circuit.ir.Device`) is an instance of its curve's module: the curve
  (a pwl table or an expression of ``x``) baked into the module, ``gain`` (area * amps per unit *
  scale) and ``shift`` its instance parameters: ``I(a, k) = gain * I(V(a, k) - shift)``, as
  ngspice's ``gain*iv(V(a,k)-shift)``. One module per curve.
* A table (:class:`~anasim.circuit.ir.Table`) is an instance of a module of its knots (baked),
  its currents instance parameters: one module per set of knots (the tables of a layer share them).
* Behavioural sources (clippers, tanh rails, activations, a factored device's curve) and
  KirchhoffNet branches are ngspice expression strings in the IR (``check_expr``'s grammar).
  Each is parsed with :mod:`ast` (never evaluated) and printed as Verilog-A: every number an
  instance parameter (except the knots of a ``pwl``, baked), every node voltage a port, so one
  module serves every element of the same expression template. An expression the translation
  does not know is refused naming its element.

Both ends of a device or table into a virtual ground of the circuit
(:attr:`~anasim.circuit.ir.Circuit.virtual_grounds`) are ports, the control is ``V(a)`` only,
as ngspice's ``I(V(p))``: a module variant (suffix ``_g``).

``pwl`` is evaluated as ngspice's: linear between the knots, the end segments extrapolated
(anasim's curve tables end in flat extra knots), ``y0 + (y1 - y0) * (v - x0) / (x1 - x0)`` on
the segment found by a balanced tree of comparisons (``x0 <= v < x1``).
"""

from __future__ import annotations

import ast
import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache

from ...circuit import expr as ex
from ...devices.veriloga import comment
from ...errors import AnasimError

# ngspice function -> (Verilog-A template, arguments); pwl and u are built by the printer
FUNCTIONS = {
    "exp": ("exp({0})", 1),
    "ln": ("ln({0})", 1),
    "log": ("ln({0})", 1),  # ngspice's log() in a B-source is the natural logarithm
    "log10": ("log({0})", 1),  # Verilog-A's log() is base 10
    "sqrt": ("sqrt({0})", 1),
    "abs": ("abs({0})", 1),
    "sin": ("sin({0})", 1),
    "cos": ("cos({0})", 1),
    "tan": ("tan({0})", 1),
    "atan": ("atan({0})", 1),
    "sinh": ("sinh({0})", 1),
    "cosh": ("cosh({0})", 1),
    "tanh": ("tanh({0})", 1),
    "max": ("max({0}, {1})", 2),
    "min": ("min({0}, {1})", 2),
    "pow": ("pow({0}, {1})", 2),
    "u": ("(({0}) > 0.0 ? 1.0 : 0.0)", 1),  # ngspice's unit step: 1 for x > 0, else 0
}
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def number(x: float) -> str:
    """A finite float as a Verilog-A real literal (its shortest exact repr, parenthesized when negative)."""
    text = repr(float(x))
    return f"({text})" if text.startswith("-") else text


class Untranslatable(AnasimError):
    """An expression the Verilog-A translation does not know."""


@dataclass
class _Printer:
    """Prints one parsed expression as Verilog-A: numbers become parameters ``k<i>`` unless
    ``bake``; voltage placeholders their port voltages; each ``pwl`` a tree of statements."""

    refs: dict[str, str]  # placeholder -> Verilog-A voltage
    variable: str | None = None  # the name standing for the curve's argument (x)
    bake: bool = False
    params: list[float] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)

    def param(self, value: float) -> str:
        if self.bake:
            return number(value)
        self.params.append(float(value))
        return f"k{len(self.params) - 1}"

    def expr(self, node: ast.AST) -> str:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return f"({self.expr(node.left)} {_OPS[type(node.op)]} {self.expr(node.right)})"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return f"pow({self.expr(node.left)}, {self.expr(node.right)})"
        if isinstance(node, ast.UnaryOp) and (value := _constant(node)) is not None:
            return self.param(value)  # a signed number is one parameter: one template whatever its sign
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.expr(node.operand)
            return f"(-{inner})" if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if not math.isfinite(node.value):
                raise Untranslatable(f"the number {node.value!r} is not finite")
            return self.param(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.refs:
                return self.refs[node.id]
            if node.id == "time":
                return "$abstime"
            if node.id == self.variable:
                return "x"
            raise Untranslatable(f"unknown name {node.id!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            if name == "pwl":
                return self.pwl(node.args)
            if name in FUNCTIONS and len(node.args) == FUNCTIONS[name][1]:
                return FUNCTIONS[name][0].format(*(self.expr(a) for a in node.args))
            raise Untranslatable(f"function {name}() with {len(node.args)} argument(s) has no Verilog-A form here")
        raise Untranslatable(f"unsupported syntax {ast.dump(node)[:60]}")

    def pwl(self, args: list[ast.AST]) -> str:
        """``pwl(v, x0, y0, x1, y1, ...)``: the knots baked, the values parameters (or baked)."""
        points = [_constant(a) for a in args[1:]]
        if len(args) < 5 or len(points) % 2 or None in points:
            raise Untranslatable("pwl() needs a control and two or more pairs of plain numbers")
        xs, ys = points[0::2], points[1::2]
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise Untranslatable("pwl() knots must rise strictly")
        k = len(self.temps) // 2
        arg, out = f"a{k}", f"w{k}"
        self.temps += [arg, out]
        self.statements.append(f"{arg} = {self.expr(args[0])};")
        self.statements += pwl_statements(xs, [self.param(y) for y in ys], arg, out)
        return out


def _constant(node: ast.AST) -> float | None:
    """A plain number, possibly negated (the knots of a pwl), or None."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * float(node.value)
    return None


def pwl_statements(xs, ys: list[str], v: str, out: str) -> list[str]:
    """Statements setting ``out`` to ngspice's pwl of (``xs`` numbers, ``ys`` Verilog-A terms) at
    ``v``: the segment [x_j, x_j+1) holding v (the first or last one beyond the ends), found by a
    balanced tree of comparisons."""
    n = len(xs) - 1  # segments

    def segment(j: int, pad: str) -> list[str]:
        dx = number(xs[j + 1] - xs[j])
        return [f"{pad}{out} = {ys[j]} + ({ys[j + 1]} - {ys[j]}) * ({v} - {number(xs[j])}) / {dx};"]

    def tree(lo: int, hi: int, pad: str) -> list[str]:
        if lo == hi:
            return segment(lo, pad)
        mid = (lo + hi + 1) // 2  # segments lo..mid-1 cover v < xs[mid]
        return [
            f"{pad}if ({v} < {number(xs[mid])}) begin",
            *tree(lo, mid - 1, pad + "  "),
            f"{pad}end else begin",
            *tree(mid, hi, pad + "  "),
            f"{pad}end",
        ]

    return tree(0, n - 1, "")


@dataclass(frozen=True)
class Use:
    """One element as an instance of a module: ``ports`` (circuit nodes, in the module's port
    order) and its instance parameters."""

    module: str
    ports: tuple[str, ...]
    params: tuple[tuple[str, float], ...]


def _name(prefix: str, text: str) -> str:
    return f"anasim_{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _module(name: str, ports: list[str], params: list[str], temps: list[str], body: list[str], about: str) -> str:
    lines = [comment(about), f"module {name}({', '.join(ports)});", f"  inout {', '.join(ports)};"]
    lines.append(f"  electrical {', '.join(ports)};")
    lines += [f'  (* type="instance" *) parameter real {p} = 0.0;' for p in params]
    if temps:
        lines.append(f"  real {', '.join(temps)};")
    lines += ["  analog begin", *(f"    {s}" for s in body), "  end", "endmodule", ""]
    return "\n".join(lines)


class Library:
    """The modules one circuit's elements need, each written once; :meth:`source` is the
    Verilog-A file to compile. ``owners`` maps a module to the first element that uses it (for a
    compiler error that names the element)."""

    def __init__(self):
        self.modules: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self._curves: dict[tuple, str] = {}
        self._tables: dict[tuple, str] = {}

    def _add(self, name: str, text: str, owner: str) -> str:
        if name not in self.modules:
            self.modules[name] = text
            self.owners[name] = owner
        return name

    def source(self) -> str:
        head = [
            comment("anasim: behavioural elements for VACASK, written by anasim"),
            '`include "disciplines.vams"',
            "",
        ]
        return "\n".join(head + [self.modules[n] for n in sorted(self.modules)])

    # --- devices: one module per curve ---------------------------------------------------------

    def device(self, e, curve, grounded: bool) -> Use:
        key = (curve.name, curve.body, grounded)
        name = self._curves.get(key)
        if name is None:
            refs: dict[str, str] = {}
            try:
                tree = ast.parse(curve.body, mode="eval").body
                printer = _Printer(refs, variable="x", bake=True)
                y = printer.expr(tree)
            except (SyntaxError, Untranslatable, RecursionError) as exc:
                raise AnasimError(
                    f"device {e.name}: curve {curve.name} cannot be written in Verilog-A for VACASK: {_why(exc)}"
                ) from None
            body = [f"x = {'V(a)' if grounded else 'V(a, k)'} - shift;", *printer.statements]
            body.append(f"I(a, k) <+ gain * ({y});")
            text_key = "\n".join(body)
            name = _name("d", text_key)
            about = f"curve {curve.name}: I(a, k) = gain * I(V({'a' if grounded else 'a, k'}) - shift)"
            self._add(name, _module(name, ["a", "k"], ["gain", "shift"], ["x", *printer.temps], body, about),
                      f"device {e.name} (curve {curve.name})")  # fmt: skip
            self._curves[key] = name
        gain = e.area * curve.amps_per_unit * e.scale
        return Use(name, (e.p, e.n), (("gain", gain), ("shift", e.shift)))

    # --- tables: one module per set of knots ---------------------------------------------------

    def table(self, e, grounded: bool) -> Use:
        xs, ys = e.table[0::2], e.table[1::2]
        key = (xs, grounded)
        name = self._tables.get(key)
        if name is None:
            if any(b <= a for a, b in zip(xs, xs[1:])):
                raise AnasimError(f"table {e.name}: its knots must rise strictly")
            params = [f"y{j}" for j in range(len(xs))]
            body = [f"x = {'V(a)' if grounded else 'V(a, k)'};", *pwl_statements(xs, params, "x", "y")]
            body.append("I(a, k) <+ y;")
            name = _name("t", "\n".join(body))
            self._add(name, _module(name, ["a", "k"], params, ["x", "y"], body, f"pwl table of {len(xs)} knots"),
                      f"table {e.name}")  # fmt: skip
            self._tables[key] = name
        return Use(name, (e.p, e.n), tuple((f"y{j}", y) for j, y in enumerate(ys)))

    # --- behavioural sources and branches: one module per expression template ------------------

    def expression(self, element: str, p: str, n: str, kind: str, expr) -> Use:
        """``kind`` I (current from p through the element to n) or V (V(p, n)) of ``expr``: a
        behavioural source's tree (:mod:`anasim.circuit.expr`) or a branch law (text with
        placeholder names, and the nodes they stand for: :func:`~.writer.branch_law`)."""
        try:
            name, text, nodes, values = _translate(kind, expr)
        except (SyntaxError, Untranslatable, RecursionError) as exc:
            shown = expr[0][:200] if isinstance(expr, tuple) else ex.show(expr)[:200]
            raise AnasimError(
                f"element {element}: the expression {shown!r} cannot be written in Verilog-A for VACASK: {_why(exc)}"
            ) from None
        self._add(name, text, f"element {element}")
        return Use(name, (p, n, *nodes), tuple((f"k{i}", v) for i, v in enumerate(values)))


def _syntax(e, voltage) -> ast.expr:
    """A tree of :mod:`anasim.circuit.expr` as the Python syntax tree the printer reads, each
    node voltage the placeholder name ``voltage(p, n)`` gives."""
    if isinstance(e, ex.Num):
        return ast.Constant(e.value)
    if isinstance(e, ex.V):
        return ast.Name(voltage(e.p, e.n or "0"))
    if isinstance(e, ex.Bin):
        op = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}[e.op]()
        return ast.BinOp(_syntax(e.a, voltage), op, _syntax(e.b, voltage))
    if isinstance(e, ex.Neg):
        return ast.UnaryOp(ast.USub(), _syntax(e.a, voltage))
    if isinstance(e, ex.Paren):
        return _syntax(e.a, voltage)
    if isinstance(e, ex.Call):
        return ast.Call(ast.Name(e.fn), [_syntax(a, voltage) for a in e.args], [])
    if isinstance(e, ex.Pwl):
        return ast.Call(ast.Name("pwl"), [_syntax(e.x, voltage), *map(ast.Constant, e.points)], [])
    raise Untranslatable(f"the expression node {type(e).__name__} has no Verilog-A form here")


# every deck of a Monte Carlo realization writes the same expressions again (its circuit is new,
# its behavioural sources mostly are not): translated once per process
@lru_cache(maxsize=8192)
def _translate(kind: str, expr) -> tuple[str, str, tuple[str, ...], tuple[float, ...]]:
    """(module name, module text, control nodes, parameter values) of ``expr`` (a tree, or a
    branch law: (text, ((placeholder, node), ...)))."""
    nodes: list[str] = []
    refs: dict[str, str] = {}

    def port(node: str) -> str:
        if node not in nodes:
            nodes.append(node)
        return f"c{nodes.index(node)}"

    def voltage(a: str, b: str) -> str:
        if a == "0" and b == "0":
            text = "0.0"
        elif b == "0":
            text = f"V({port(a)})"
        elif a == "0":
            text = f"(-V({port(b)}))"
        else:
            text = f"V({port(a)}, {port(b)})"
        key = f"anasim_v{len(refs)}"
        refs[key] = text
        return key

    if isinstance(expr, tuple):  # a branch law (:func:`~.writer.branch_law`): its voltages are placeholders

        class Voltages(ast.NodeTransformer):  # in the order they appear, as the ports of a tree
            def visit_Name(self, node):
                return ast.Name(voltage(controls[node.id], "0")) if node.id in controls else node

        text, controls = expr[0], dict(expr[1])
        tree = Voltages().visit(ast.parse(text, mode="eval").body)
    else:
        tree = _syntax(expr, voltage)
    printer = _Printer(refs)
    y = printer.expr(tree)
    contribution = "I(op, on)" if kind == "I" else "V(op, on)"
    body = [*printer.statements, f"{contribution} <+ {y};"]
    params = [f"k{i}" for i in range(len(printer.params))]
    name = _name("b", f"{len(nodes)}\n" + "\n".join(body))
    ports = ["op", "on", *(f"c{i}" for i in range(len(nodes)))]
    about = f"behavioural {kind} source, {len(nodes)} control node(s), {len(params)} parameter(s)"
    return name, _module(name, ports, params, printer.temps, body, about), tuple(nodes), tuple(printer.params)


def _why(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"it does not parse ({exc.msg})"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return str(exc)
