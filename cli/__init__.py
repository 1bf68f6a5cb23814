"""anasim's command-line interface (installed as the package ``anasim_cli``).

One thin module per command: each parses options and makes one library call. Expected errors
(:class:`anasim.errors.AnasimError`) become ``click.ClickException``: a message, exit code 1.
"""
