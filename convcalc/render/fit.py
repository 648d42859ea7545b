"""Tables that fit the console's width without ever cutting a number.

Text columns (layer names, prose) fold onto more lines; every other column keeps its whole
width. When the table is still too wide, whole columns go, lowest priority first, and one
line under the table names them and how to see them. Rendered at print time, so the width
is the console's (a terminal's columns, or a test's Console(width=60)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOLD_MIN = 12  # a folding column is never narrower than this (or its longest cell)


@dataclass(frozen=True)
class Column:
    """header; justify; fold: may wrap onto more lines; drop: the order in which columns go
    when the table is too wide (1 first, columns of one rank together; 0 never)."""

    header: str
    justify: str = "right"
    fold: bool = False
    drop: int = 0
    style: str | None = None


@dataclass
class FittedTable:
    """A rich renderable: `columns`, `rows` (str cells are rich markup, or Text), and the
    keyword arguments of rich.table.Table (title, box, ...)."""

    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    how_to_see: str = "see them in a wider terminal or with --format json"

    def add_row(self, *cells) -> None:
        self.rows.append(list(cells))

    def fit(self, width: int):
        """(a rich Table, or None when not even the kept columns fit; headers of the dropped
        columns) for a console `width` wide."""
        kept = list(range(len(self.columns)))
        ranks = sorted({c.drop for c in self.columns if c.drop})  # one rank goes at once
        while self._width(kept) > width and ranks:
            rank = ranks.pop(0)
            kept = [i for i in kept if self.columns[i].drop != rank]
        dropped = [c.header for i, c in enumerate(self.columns) if i not in kept]
        if self._width(kept) > width:  # one record per row, every cell folded: none is cut
            return None, []
        return self._table(kept), dropped

    def __rich_console__(self, console, options):
        from rich.text import Text
        table, dropped = self.fit(options.max_width)
        if table is None:
            yield from self._records()
            return
        yield table
        if dropped:
            yield Text(f"not shown at {options.max_width} columns: {', '.join(dropped)} "
                       f"({self.how_to_see})", style="dim")

    def _records(self):
        """The last resort for very long cells: a row as lines 'header: value', folded."""
        from rich.text import Text
        title = self.options.get("title")
        if title:
            yield Text(str(title), style="italic", no_wrap=False, overflow="fold")
        for row in self.rows:
            for column, cell in zip(self.columns, row):
                text = Text.from_markup(cell) if isinstance(cell, str) else cell.copy()
                line = Text(f"{column.header}: " if column.header else "", style="bold")
                line.append_text(text)
                line.no_wrap, line.overflow = False, "fold"
                yield line
            yield Text("")

    # -- widths ------------------------------------------------------------------------------

    def _natural(self, index: int) -> int:
        cells = [self.columns[index].header] + [row[index] for row in self.rows]
        return max((_cell_width(cell) for cell in cells), default=1)

    def _floor(self, index: int) -> int:
        natural = self._natural(index)
        return min(natural, FOLD_MIN) if self.columns[index].fold else natural

    def _width(self, kept: list[int]) -> int:
        """The table's width with its folding columns at their narrowest."""
        from rich.console import Console
        from rich.measure import Measurement
        probe = Console(width=10**6, file=_Null())
        table = self._table(kept, fixed=True)
        return Measurement.get(probe, probe.options, table).maximum

    def _table(self, kept: list[int], fixed: bool = False):
        from rich.table import Table
        table = Table(**self.options)
        for index in kept:
            column, natural = self.columns[index], self._natural(index)
            width = self._floor(index) if fixed or not column.fold else None
            table.add_column(column.header, justify=column.justify, overflow="fold",
                             no_wrap=not column.fold, width=width, style=column.style,
                             min_width=self._floor(index) if column.fold else None,
                             max_width=natural if column.fold else None)
        for row in self.rows:
            table.add_row(*(row[i] for i in kept))
        return table


def _cell_width(cell) -> int:
    from rich.text import Text
    text = Text.from_markup(cell) if isinstance(cell, str) else cell
    return max((line.cell_len for line in text.split("\n")), default=0) if text.plain else 0


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
