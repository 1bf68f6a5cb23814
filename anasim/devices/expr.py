"""A tiny expression language for analytic device models (RTD, E-MOSFET, user formulas).

One expression string with named constants is evaluated by torch (for training) and printed as
an ngspice B-source expression (for the netlist), so the two can never drift apart. Only a
whitelisted grammar is accepted: numbers, the variable ``V``, declared constants, + - * /, unary
minus and the functions in ``FUNCTIONS``. Anything else is rejected, which also keeps arbitrary
text out of netlists.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import DeviceError

if TYPE_CHECKING:  # torch is imported on the first evaluation: rendering an expression into a
    import torch  # netlist needs none (a Monte Carlo worker runs circuits without torch)

# name -> (torch implementation, its path under torch; ngspice template). softplus is written out
# for ngspice because ngspice has none; it evaluates in double precision where exp() of the RTD's
# arguments is finite.
FUNCTIONS: dict[str, tuple[str, str]] = {
    "exp": ("exp", "exp({0})"),
    "ln": ("log", "ln({0})"),
    "atan": ("atan", "atan({0})"),
    "tanh": ("tanh", "tanh({0})"),
    "sqrt": ("sqrt", "sqrt({0})"),
    "softplus": ("nn.functional.softplus", "ln(1+exp({0}))"),
    "max": ("maximum", "max({0},{1})"),
    "min": ("minimum", "min({0},{1})"),
}
CONSTANTS = {"pi": math.pi}
ARITY = {name: len(set(re.findall(r"\{(\d)\}", spice))) for name, (_, spice) in FUNCTIONS.items()}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _check(node: ast.AST, names: set[str], source: str) -> None:
    if isinstance(node, ast.Expression):
        return _check(node.body, names, source)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, names, source)
        return _check(node.right, names, source)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _check(node.operand, names, source)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if not math.isfinite(node.value):  # 1e999 parses as inf
            raise DeviceError(f"expression {source!r}: the number {ast.get_source_segment(source, node)} is not finite")
        return None
    if isinstance(node, ast.Name):
        if node.id == "V" or node.id in names or node.id in CONSTANTS:
            return None
        raise DeviceError(f"expression {source!r}: unknown name {node.id!r}; use V or a declared constant")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        want = ARITY[node.func.id]
        if len(node.args) != want or node.keywords:
            raise DeviceError(
                f"expression {source!r}: {node.func.id}() takes {want} argument{'s' if want > 1 else ''}, "
                f"given {len(node.args) + len(node.keywords)}"
            )
        for arg in node.args:
            _check(arg, names, source)
        return None
    raise DeviceError(
        f"expression {source!r}: unsupported syntax {ast.dump(node)[:60]}; "
        f"allowed: numbers, V, constants, + - * /, and {', '.join(FUNCTIONS)}"
    )


class Expr:
    """A parsed, validated expression of ``V`` and named constants."""

    def __init__(self, source: str, constants: Mapping[str, float]):
        for name, value in constants.items():
            if not name.isidentifier() or not math.isfinite(float(value)):
                raise DeviceError(f"expression constant {name!r}={value!r} must be a finite number")
        self.source = source
        self.constants = {k: float(v) for k, v in constants.items()}
        try:
            self._tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise DeviceError(f"expression {source!r} does not parse: {exc.msg}") from None
        _check(self._tree, set(self.constants), source)

    def torch(self, v: torch.Tensor) -> torch.Tensor:
        return self._eval(self._tree.body, v)

    def _eval(self, node: ast.AST, v: torch.Tensor):
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, v), self._eval(node.right, v)
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            return a / b
        if isinstance(node, ast.UnaryOp):
            return -self._eval(node.operand, v)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id == "V":
                return v
            return self.constants.get(node.id, CONSTANTS.get(node.id))
        import torch

        fn = torch
        for part in FUNCTIONS[node.func.id][0].split("."):
            fn = getattr(fn, part)
        args = [self._eval(a, v) for a in node.args]
        args = [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=v.dtype) for a in args]
        return fn(*args)

    def spice(self, v: str) -> str:
        """The expression in ngspice syntax with ``V`` replaced by the node expression ``v``."""
        return self.render(v, {name: spice for name, (_, spice) in FUNCTIONS.items()}, repr)

    def render(self, v: str, templates: Mapping[str, str], number: Callable[[float], str]) -> str:
        """The expression as text of another language (ngspice, Verilog-A): ``V`` replaced by
        ``v``, each function by its ``templates`` entry, each number (declared constants inlined)
        by ``number(float)``; every operation in parentheses, so no precedence rule can differ."""
        return self._render(self._tree.body, v, templates, number)

    def _render(self, node: ast.AST, v: str, templates: Mapping[str, str], number) -> str:
        if isinstance(node, ast.BinOp):
            left, right = (self._render(n, v, templates, number) for n in (node.left, node.right))
            return f"({left}{_BINOPS[type(node.op)]}{right})"
        if isinstance(node, ast.UnaryOp):
            return f"(-{self._render(node.operand, v, templates, number)})"
        if isinstance(node, ast.Constant):
            return number(float(node.value))
        if isinstance(node, ast.Name):
            if node.id == "V":
                return v
            return number(self.constants.get(node.id, CONSTANTS.get(node.id)))
        args = [self._render(a, v, templates, number) for a in node.args]
        return templates[node.func.id].format(*args)
