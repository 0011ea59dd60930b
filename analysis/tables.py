"""Tables of analysis results, rendered as aligned text, CSV or Markdown.

A Table keeps raw values (int, float, str, None, an `Interval`, or an `Estimate`: a value with its
interval), so CSV carries full precision while text and Markdown show rounded numbers.  Column formats: a format spec for floats (".4g",
".6f", ...) or "%" for proportions shown as percentages (0.8125 -> 81.2, 0.00015 -> 0.015).  An Interval cell is shown
as "[lo, hi]" and becomes two CSV columns NAME_lo, NAME_hi; an Estimate "v [lo, hi]", three columns.
Text output fits the terminal (`layout`: column groups stacked, cells wrapped; `terminal_width`).
"""
from __future__ import annotations

import csv
import io
import math
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from badminima.engine.store.paths import write_text

#: narrowest width tables are laid out for (a smaller terminal still gets this width)
MIN_WIDTH = 40


def terminal_width(width: int | None = None) -> int:
    """The width to lay text out for: `width` if given, else the terminal's (COLUMNS, then the
    terminal of stdout, else 80 when output goes to a file or pipe); never below MIN_WIDTH."""
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    return max(int(width), MIN_WIDTH)


def wrap(text: str, width: int | None = None, indent: str = "", subsequent: str | None = None) -> str:
    """A paragraph wrapped to the terminal width (words never split; existing line breaks kept)."""
    w = terminal_width(width)
    out = []
    for para in str(text).split("\n"):
        out += textwrap.wrap(para, w, initial_indent=indent,
                             subsequent_indent=indent if subsequent is None else subsequent,
                             break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(out)


def layout(head: list[str], body: list[list[str]], *, left=None, width: int | None = None, keep: int = 1,
           sep: str = "  ", rule: str = "-") -> list[str]:
    """Aligned text lines of a table that fit `width` columns (default: the terminal's).

    head: column titles (a title may have several lines, "a\nb"); body: rows of cell text; left: per
    column, left-aligned (text) or right-aligned (numbers).  A table wider than `width` is cut into
    column groups stacked one under the other, each repeating the first `keep` columns (the row
    labels) so every group reads on its own; a cell still too wide is wrapped onto several lines."""
    width = terminal_width(width)
    n = len(head)
    left = list(left) if left is not None else [False] * n
    heads = [h.split("\n") for h in head]
    full = [max([len(x) for x in heads[i]] + [len(r[i]) for r in body]) for i in range(n)]
    keep = min(keep, n - 1) if n > 1 else 0

    def span(cols):
        return sum(full[i] for i in cols) + len(sep) * max(len(cols) - 1, 0)

    # the kept columns take at most half the width (their cells wrap beyond that)
    key_cols = list(range(keep))
    cap = dict.fromkeys(range(n), None)
    while key_cols and span(key_cols) > width // 2:
        i = max(key_cols, key=lambda j: full[j])
        cap[i] = max(6, full[i] - (span(key_cols) - width // 2))
        full[i] = cap[i]
    room = width - (span(key_cols) + len(sep) if key_cols else 0)
    groups, cur = [], []
    for i in range(keep, n):
        if cur and span(cur) + len(sep) + full[i] > room:
            groups.append(cur)
            cur = []
        if full[i] > room:                   # one column alone is too wide: wrap its cells
            cap[i] = full[i] = max(6, room)
        cur.append(i)
    groups.append(cur)

    def cell_lines(text: str, i: int) -> list[str]:
        if cap[i] is None or len(text) <= cap[i]:
            return [text]
        return textwrap.wrap(text, cap[i], break_long_words=True) or [""]

    def row_lines(cells: list[list[str]], cols: list[int]) -> list[str]:
        height = max(len(c) for c in cells)
        out = []
        for k in range(height):
            parts = []
            for c, i in zip(cells, cols):
                t = c[k] if k < len(c) else ""
                parts.append(t.ljust(full[i]) if left[i] else t.rjust(full[i]))
            out.append(sep.join(parts).rstrip())
        return out

    lines: list[str] = []
    for g, grp in enumerate(groups):
        cols = key_cols + grp
        if g:
            lines.append("")
        head_cells = [[x for h in heads[i] for x in cell_lines(h, i)] for i in cols]
        hl = max(len(c) for c in head_cells)
        lines += row_lines([[""] * (hl - len(c)) + c for c in head_cells], cols)
        if rule:            # "----  ----", or "----|----" under a " | " separator
            lines.append((sep.replace(" ", rule) if sep.strip() else sep).join(rule * full[i] for i in cols))
        for r in body:
            lines += row_lines([cell_lines(r[i], i) for i in cols], cols)
    return lines


@dataclass(frozen=True)
class Interval:
    """A closed interval [lo, hi] (e.g. a 95% confidence interval)."""
    lo: float
    hi: float

    def __contains__(self, x) -> bool:
        return self.lo <= x <= self.hi


@dataclass(frozen=True)
class Estimate:
    """A value with its interval, shown in one cell as "value [lo, hi]" (CSV: NAME, NAME_lo, NAME_hi)."""
    value: float
    ci: Interval


def format_value(v, fmt: str = ".4g") -> str:
    """One cell as text: '%' -> percentage with one decimal; floats by `fmt`; NaN/None -> '-'."""
    if v is None:
        return "-"
    if isinstance(v, Estimate):
        return f"{format_value(v.value, fmt)} {format_value(v.ci, fmt)}"
    if isinstance(v, Interval):
        return f"[{format_value(v.lo, fmt)}, {format_value(v.hi, fmt)}]"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float) or hasattr(v, "dtype"):
        v = float(v)
        if math.isnan(v):
            return "-"
        if fmt == "%":          # one decimal; two significant digits below 0.1% so rare outcomes stay visible
            pct = 100.0 * v
            return f"{pct:.2g}" if 0 < abs(pct) < 0.05 else f"{pct:.1f}"
        return format(v, fmt)
    return str(v)


@dataclass
class Table:
    """Rows of raw values under named columns; `formats` maps a column to its float format."""
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    title: str = ""
    formats: dict[str, str] = field(default_factory=dict)

    def add(self, *values) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))

    def _header(self) -> list[str]:
        return [f"{c} (%)" if self.formats.get(c) == "%" else c for c in self.columns]

    def _cells(self) -> list[list[str]]:
        return [[format_value(v, self.formats.get(c, ".4g")) for c, v in zip(self.columns, row)]
                for row in self.rows]

    def text(self, width: int | None = None) -> str:
        """Aligned plain text fitting `width` columns (default: the terminal's; see `layout`): text
        columns left-aligned, numbers right-aligned; a wide table is cut into column groups that
        repeat the first column."""
        left = [all(isinstance(r[i], str) for r in self.rows) and bool(self.rows) for i in range(len(self.columns))]
        out = [wrap(self.title, width)] if self.title else []
        out += layout(self._header(), self._cells(), left=left, width=width)
        return "\n".join(out)

    def markdown(self) -> str:
        """A GitHub-flavoured Markdown table (pipes in values escaped)."""
        head, body = self._header(), self._cells()
        esc = [[c.replace("|", "\\|") for c in r] for r in [head] + body]
        left = [all(isinstance(r[i], str) for r in self.rows) and bool(self.rows) for i in range(len(head))]
        out = [f"**{self.title}**", ""] if self.title else []
        out.append("| " + " | ".join(esc[0]) + " |")
        out.append("|" + "|".join(":---" if lf else "---:" for lf in left) + "|")
        out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
        return "\n".join(out)

    def csv(self) -> str:
        """CSV with full-precision numbers; Interval columns split into NAME_lo, NAME_hi, Estimate columns
        into NAME, NAME_lo, NAME_hi."""
        est = [any(isinstance(r[i], Estimate) for r in self.rows) for i in range(len(self.columns))]
        split = [any(isinstance(r[i], Interval) for r in self.rows) for i in range(len(self.columns))]
        head = []
        for c, s, e in zip(self.columns, split, est):
            head += [c, f"{c}_lo", f"{c}_hi"] if e else [f"{c}_lo", f"{c}_hi"] if s else [c]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        for row in self.rows:
            out = []
            for v, s, e in zip(row, split, est):
                if e:
                    out += ([repr(float(v.value)), repr(float(v.ci.lo)), repr(float(v.ci.hi))]
                            if isinstance(v, Estimate) else ["", "", ""])
                elif s:
                    out += [repr(float(v.lo)), repr(float(v.hi))] if isinstance(v, Interval) else ["", ""]
                elif v is None or (isinstance(v, float) and math.isnan(v)):
                    out.append("")
                elif isinstance(v, float) or (hasattr(v, "dtype") and v.dtype.kind == "f"):
                    out.append(repr(float(v)))
                else:
                    out.append(str(v))
            w.writerow(out)
        return buf.getvalue()

    def write(self, path) -> Path:
        """Write by extension: .csv, .md, anything else as text."""
        path = Path(path)
        ext = path.suffix.lower()
        body = self.csv() if ext == ".csv" else self.markdown() + "\n" if ext == ".md" else self.text() + "\n"
        write_text(path, body)
        return path


__all__ = ["Interval", "Estimate", "Table", "format_value", "layout", "terminal_width", "wrap", "MIN_WIDTH"]
