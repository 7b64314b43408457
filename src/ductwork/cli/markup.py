"""Which strings the CLI shows as Rich markup: only those it wrote as such.

A module of its own, with no imports, so that ``cli.output`` (every command's) and
``cli.tables`` (the commands that draw tables) can both name it without importing each other.
"""

from __future__ import annotations


class Markup(str):
    """Text written as Rich markup on purpose (a state's colour, ``output.styled``), which
    ``tables.DataTable`` renders as markup; every other string it shows as it is."""
