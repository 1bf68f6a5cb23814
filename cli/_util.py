"""Helpers shared by the command modules: error translation."""

from __future__ import annotations

import functools

import click

from anasim.errors import AnasimError


def friendly(fn):
    """Turn anasim's expected errors into click errors (message + nonzero exit, no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AnasimError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper
