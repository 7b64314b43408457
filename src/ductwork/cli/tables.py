"""Tables of the CLI whose cells show recorded data as it is.

Rich reads every string cell, title and caption of a table as markup, so a value that holds
square brackets was taken for styling: a task's error ``bad value [/x]``, a variable ``a[/b]``
or a pool's description ended the command with ``MarkupError`` (``runs show``, ``variables
list``, ``audit list`` for as long as the entry was kept), and one such as ``r[red]x`` (a run
id) was shown as ``rx``, an id that names nothing. ``DataTable`` shows plain strings as
they are; only ``Markup`` (a state's colour, ``output.styled``) is read as markup.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ductwork.cli.markup import Markup


def shown_as_is(value: Any) -> Any:
    """``value`` as a table shows it: a plain string as its own text, anything else unchanged."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return Text(value)
    return value


class DataTable(Table):
    """A ``rich.table.Table`` whose plain-string cells, title and caption are not markup."""

    def __init__(self, *headers: Any, title: Any = None, caption: Any = None, **kwargs: Any) -> None:
        super().__init__(*headers, title=shown_as_is(title), caption=shown_as_is(caption), **kwargs)

    def add_row(self, *renderables: Any, style: Any = None, end_section: bool = False) -> None:
        super().add_row(*(shown_as_is(r) for r in renderables), style=style, end_section=end_section)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("title", "caption"):  # set after the table is made (a run's "not shown" caption)
            value = shown_as_is(value)
        super().__setattr__(name, value)


def run_table(flow_id: str, run_id: str, state: Markup, *headers: Any, sep: str = " ", **kwargs: Any) -> DataTable:
    """A table of a run's tasks, titled with the flow, the run and its state (``styled``). A
    title is cut at the table's width, so a table narrower than it (a few short task ids) broke
    the run id over two lines (``manual__2026-12-07T10:35:12.631282+`` / ``00:00``), and the id
    that ``runs show`` and ``tasks logs`` want could not be copied: the table is as wide as its
    title (within the terminal's width)."""
    title = Markup(f"{escape(flow_id)}{sep}{escape(run_id)}{sep}[{state}]")
    width = Text.from_markup(title).cell_len
    return DataTable(*headers, title=title, title_justify="left", min_width=width, **kwargs)
