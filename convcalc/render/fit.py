"""Tables that fit the console's width without ever cutting a number.

Text columns (layer names, prose) fold onto more lines; every other column keeps its whole
width. When the table is still too wide, whole columns go, lowest priority first, and one
line under the table names them and how to see them. Rendered at print time, so the width
is the console's (a terminal's columns, or a test's Console(width=60)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOLD_MIN = 12  # a folding column is never narrower than this (or its longest cell)


class Literal(str):
    """A cell's text taken as it is: not rich markup ('[b]' shows as [b])."""


def _rich(cell):
    """A cell as rich takes it: a Literal becomes Text; markup strings and Text stay."""
    if type(cell) is Literal:
        from rich.text import Text
        return Text(cell)
    return cell


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
    """A rich renderable: `columns`, `rows` (str cells are rich markup; Literal or Text), and the
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
        kept, dropped = self._fit_columns(width)
        return (None, []) if kept is None else (self._table(kept), dropped)

    def _fit_columns(self, width: int) -> tuple[list[int] | None, list[str]]:
        """The indices of the columns kept at `width` (None: not even the last ones fit) and
        the headers of the dropped ones."""
        kept = list(range(len(self.columns)))
        ranks = sorted({c.drop for c in self.columns if c.drop})  # one rank goes at once
        while self._width(kept) > width and ranks:
            rank = ranks.pop(0)
            kept = [i for i in kept if self.columns[i].drop != rank]
        dropped = [c.header for i, c in enumerate(self.columns) if i not in kept]
        if self._width(kept) > width:  # one record per row, every cell folded: none is cut
            return None, []
        return kept, dropped

    def __rich_console__(self, console, options):
        from rich.text import Text
        kept, dropped = self._fit_columns(options.max_width)
        if kept is None:
            yield from self._records()
            return
        widths = [self._natural(i) for i in kept]
        if min(widths, default=0) > 0 and self._plain_cells() is not None and \
                self._layout_width(widths) <= options.max_width:
            yield from _plain_table(self, kept, console, options)
        else:
            yield self._table(kept)
        if dropped:
            import textwrap
            note = (f"not shown at {options.max_width} columns: {', '.join(dropped)} "
                    f"({self.how_to_see})")
            for line in textwrap.wrap(note, max(options.max_width, 40)):
                yield Text(line, style="dim")

    def _records(self):
        """The last resort for very long cells: a row as lines 'header: value', folded."""
        from rich.text import Text
        title = self.options.get("title")
        if title:
            yield Text(str(title), style="italic", no_wrap=False, overflow="fold")
        for row in self.rows:
            for column, cell in zip(self.columns, row):
                cell = _rich(cell)
                text = Text.from_markup(cell) if isinstance(cell, str) else cell.copy()
                line = Text(f"{column.header}: " if column.header else "", style="bold")
                line.append_text(text)
                line.no_wrap, line.overflow = False, "fold"
                yield line
            yield Text("")

    # -- widths ------------------------------------------------------------------------------

    def _natural(self, index: int) -> int:
        cache = self.__dict__.setdefault("_naturals", {})
        if (index, len(self.rows)) not in cache:
            plain = self._plain_cells()
            if plain is not None:
                widths = [_cell_len(row[index]) for row in plain]
            else:
                cells = [self.columns[index].header] + [row[index] for row in self.rows]
                widths = [_cell_width(cell) for cell in cells]
            cache[(index, len(self.rows))] = max(widths, default=1)
        return cache[(index, len(self.rows))]

    def _floor(self, index: int) -> int:
        natural = self._natural(index)
        return min(natural, FOLD_MIN) if self.columns[index].fold else natural

    def _plain_cells(self) -> list[list[str]] | None:
        """Every cell and header as plain text when the table can be drawn without rich's
        layout (plain one-line cells, default box, no styles); else None."""
        if self.__dict__.get("_plain", (None,))[0] != len(self.rows):
            self.__dict__["_plain"] = (len(self.rows), self._find_plain_cells())
        return self.__dict__["_plain"][1]

    def _find_plain_cells(self) -> list[list[str]] | None:
        box = self.options.get("box", "heavy_head")
        if (not set(self.options) <= PLAIN_OPTIONS or any(c.style for c in self.columns)
                or box is None or any(len(row) != len(self.columns) for row in self.rows)):
            return None
        styles: dict[tuple[int, int], str] = {}
        cells = []
        for row_index, row in enumerate([[c.header for c in self.columns], *self.rows]):
            texts = []
            for column_index, cell in enumerate(row):
                text, style = _plain(cell)
                if text is None or (style and not row_index):
                    return None
                if style:
                    styles[(row_index, column_index)] = style
                texts.append(text)
            cells.append(texts)
        self.__dict__["_styles"] = styles
        return cells

    def _layout_width(self, widths: list[int]) -> int:
        """The width rich gives a boxed table with these column widths: the padding (1 a
        side, none at the outer edges without pad_edge) and one rule between and around."""
        edges = 0 if self.options.get("pad_edge", True) else 2
        return sum(widths) + 3 * len(widths) + 1 - edges

    def _width(self, kept: list[int]) -> int:
        """The table's width with its folding columns at their narrowest."""
        if self._plain_cells() is not None:
            return self._layout_width([self._floor(i) for i in kept])
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
            table.add_row(*(_rich(row[i]) for i in kept))
        return table


def _cell_width(cell) -> int:
    from rich.text import Text
    plain, _ = _plain(cell)
    if plain is not None:
        return _cell_len(plain)
    cell = _rich(cell)
    text = Text.from_markup(cell) if isinstance(cell, str) else cell
    return max((line.cell_len for line in text.split("\n")), default=0) if text.plain else 0


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


# -- a fast path for plain tables -----------------------------------------------------------

def _cell_len(text: str) -> int:
    from rich.cells import cell_len
    return len(text) if text.isascii() else cell_len(text)


def _plain(cell) -> tuple[str | None, str | None]:
    """(text, style) of a one-line cell without spaces at its ends, whose text has one style
    throughout (None: no style); (None, None) for any other cell, which rich lays out."""
    from rich.text import Text
    style = None
    if type(cell) is Literal:
        text = cell
    elif isinstance(cell, str):
        if "[" in cell:
            try:
                cell = Text.from_markup(cell)
            except Exception:  # noqa: BLE001 - rich raises MarkupError; let it, in its path
                return None, None
        else:
            text = cell
    if isinstance(cell, Text):
        if type(cell) is not Text or cell.style or cell.justify is not None:
            return None, None
        text, spans = cell.plain, cell.spans
        if spans:
            if len(spans) != 1 or (spans[0].start, spans[0].end) != (0, len(text)) or not text:
                return None, None
            style = str(spans[0].style)
    if not text.isprintable() or text != text.strip():
        return None, None
    return text, style


PLAIN_OPTIONS = {"title", "title_justify", "header_style", "box", "pad_edge", "caption",
                 "caption_justify"}


def _plain_table(fitted: "FittedTable", kept: list[int], console, options):
    """The lines rich draws for this table (its box, padding 1 a side, bold header, columns
    at their natural widths) when every cell is one line of text in one style: written here
    directly, as rich lays out each cell on its own (about 1 ms a row), in the same segments
    (so the same bytes, escape codes included: tests/test_table_fit.py holds them equal)."""
    from rich import box as boxes
    from rich.segment import Segment
    from rich.style import Style

    cells, styles = fitted._plain_cells(), fitted.__dict__["_styles"]
    widths = [fitted._natural(i) for i in kept]
    justify = [fitted.columns[i].justify for i in kept]
    edge = fitted.options.get("pad_edge", True)
    pads = [(1 if position or edge else 0, 1 if position < len(kept) - 1 or edge else 0)
            for position in range(len(kept))]
    box = fitted.options.get("box", boxes.HEAVY_HEAD).substitute(options, safe=console.safe_box)
    padded = [w + left + right for w, (left, right) in zip(widths, pads)]
    annotation = options.update(width=fitted._layout_width(widths), highlight=False, height=None)
    title = fitted.options.get("title")
    if title:
        yield from console.render(console.render_str(title, style="table.title", highlight=False),
                                  annotation.update(justify=fitted.options.get("title_justify",
                                                                               "center")))
    header_style = console.get_style(fitted.options.get("header_style") or "table.header")
    yield Segment(box.get_top(padded) + "\n")
    yield Segment(box.head_left)
    for position, index in enumerate(kept):
        left, right = pads[position]
        if position:
            yield Segment(box.head_vertical)
        if left:
            yield Segment(" " * left, header_style)  # the segments rich writes: same escapes
        yield Segment(_justified(cells[0][index], widths[position], justify[position]),
                      header_style)
        if right:
            yield Segment(" " * right, header_style)
    yield Segment(box.head_right + "\n")
    yield Segment(box.get_row(padded, "head", edge=True) + "\n")
    plain = Style()
    lines: list[str] = []
    for row_index, row in enumerate(cells[1:], start=1):
        parts = [box.mid_left]
        for position, index in enumerate(kept):
            left, right = pads[position]
            if position:
                parts.append(box.mid_vertical)
            text = _justified(row[index], widths[position], justify[position])
            style = styles.get((row_index, index))
            if style is None:
                parts.append(" " * left + text + " " * right)
                continue
            core = row[index]
            before = text[:len(text) - len(text.lstrip(" "))]
            after = text[len(before) + len(core):]
            lines.append("".join(parts) + " " * left + before)
            yield Segment("\n".join(lines), plain)
            yield Segment(core, console.get_style(style))
            lines, parts = [], [after + " " * right]
        lines.append("".join(parts) + box.mid_right)
    if lines:
        yield Segment("\n".join(lines) + "\n", plain)
    yield Segment(box.get_bottom(padded) + "\n")
    caption = fitted.options.get("caption")
    if caption:
        yield from console.render(console.render_str(caption, style="table.caption",
                                                     highlight=False),
                                  annotation.update(justify=fitted.options.get("caption_justify",
                                                                               "center")))
def _justified(text: str, width: int, justify: str) -> str:
    gap = width - _cell_len(text)
    if justify == "right":
        return " " * gap + text
    if justify == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap
