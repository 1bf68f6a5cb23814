"""Helpers shared by the command modules: error translation, tables."""

from __future__ import annotations

import functools

import click


def friendly(fn):
    """Turn anasim's expected errors into click errors (message + nonzero exit, no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from anasim.errors import AnasimError

        try:
            return fn(*args, **kwargs)
        except AnasimError as exc:
            err = click.ClickException(str(exc))
            err.exit_code = getattr(exc, "exit_code", 1)  # 130 after Ctrl-C, as shells expect
            raise err from None
        except OSError as exc:  # a full disk where no results file is written (decks, logs): one line
            from anasim.outputs import NO_SPACE

            if exc.errno not in NO_SPACE:
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            raise click.ClickException(
                f"no space left on device{where}; free space and run the command again"
            ) from None
        except KeyboardInterrupt:  # a Ctrl-C the library did not turn into Interrupted (e.g. a second one)
            err = click.ClickException("interrupted")
            err.exit_code = 130
            raise err from None

    return wrapper


def table(rows) -> None:
    for k, v in rows:
        click.echo(f"{k:<20} {v}")
