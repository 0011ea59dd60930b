"""Tables of analysis results, rendered as aligned text, CSV or Markdown.

A Table keeps raw values (int, float, str, None, or an `Interval`), so CSV carries full precision
while text and Markdown show rounded numbers.  Column formats: a format spec for floats (".4g",
".6f", ...) or "%" for proportions shown as percentages (0.8125 -> 81.2, 0.00015 -> 0.015).  An Interval cell is shown
as "[lo, hi]" and becomes two CSV columns NAME_lo, NAME_hi.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Interval:
    """A closed interval [lo, hi] (e.g. a 95% confidence interval)."""
    lo: float
    hi: float

    def __contains__(self, x) -> bool:
        return self.lo <= x <= self.hi


def format_value(v, fmt: str = ".4g") -> str:
    """One cell as text: '%' -> percentage with one decimal; floats by `fmt`; NaN/None -> '-'."""
    if v is None:
        return "-"
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

    def text(self) -> str:
        """Aligned plain text; text columns left-aligned, numbers right-aligned."""
        head, body = self._header(), self._cells()
        width = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(head)]
        left = [all(isinstance(r[i], str) for r in self.rows) and bool(self.rows) for i in range(len(head))]

        def line(cells):
            return "  ".join(c.ljust(w) if lf else c.rjust(w) for c, w, lf in zip(cells, width, left)).rstrip()
        out = [self.title] if self.title else []
        out += [line(head), "  ".join("-" * w for w in width)] + [line(r) for r in body]
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
        """CSV with full-precision numbers; Interval columns split into NAME_lo, NAME_hi."""
        split = [any(isinstance(r[i], Interval) for r in self.rows) for i in range(len(self.columns))]
        head = []
        for c, s in zip(self.columns, split):
            head += [f"{c}_lo", f"{c}_hi"] if s else [c]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        for row in self.rows:
            out = []
            for v, s in zip(row, split):
                if s:
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
        path.write_text(body)
        return path


__all__ = ["Interval", "Table", "format_value"]
