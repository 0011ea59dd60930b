"""`badminima verify` for reading: the engine's checks (engine/paper/checks.py) as a wrapped text table,
a Markdown table or JSON, each closed by the count of every verdict."""
from __future__ import annotations

import json
import math
import textwrap
from dataclasses import asdict
from fractions import Fraction

import mpmath
import numpy as np

from badminima.analysis.tables import terminal_width
from badminima.engine.paper.checks import MP_TEXT_DIGITS, VERDICTS, Check, summary


def column_widths(widths, total: int) -> tuple[int, ...]:
    """`widths` (with two spaces between columns) shrunk in proportion to fit `total` columns, no
    column narrower than 8; unchanged where they fit."""
    need = sum(widths) + 2 * (len(widths) - 1)
    if need <= total:
        return tuple(widths)
    room = max(total - 2 * (len(widths) - 1), 8 * len(widths))
    out = [max(8, int(w * room / sum(widths))) for w in widths]
    out[out.index(max(out))] -= max(sum(out) - room, 0)
    return tuple(out)


def format_checks(checks: list[Check], widths=(40, 16, 52, 18), notes: bool = True, width: int | None = None) -> str:
    """Text table: claim | paper | computed | verdict, wrapped, with the note indented below each row; the
    columns shrink to fit `width` (default: the terminal's)."""
    head = ("claim", "paper", "computed", "verdict")
    widths = column_widths(widths, terminal_width(width))

    def block(cells):
        cols = [textwrap.wrap(str(c), w) or [""] for c, w in zip(cells, widths)]
        n = max(len(c) for c in cols)
        return ["  ".join((col[i] if i < len(col) else "").ljust(w) for col, w in zip(cols, widths)).rstrip()
                for i in range(n)]
    lines = block(head) + ["  ".join("-" * w for w in widths)]
    section = None
    for c in checks:
        if c.section != section:
            section = c.section
            lines.append(f"[{section}]")
        lines += block((c.claim, c.paper, c.computed, c.verdict))
        if notes and c.note:
            lines += textwrap.wrap(c.note, sum(widths) + 2 * len(widths) - 6,
                                   initial_indent="    note: ", subsequent_indent="          ")
    s = summary(checks)
    lines.append("")
    lines.append(f"{len(checks)} checks: " + ", ".join(f"{v} {k}" for k, v in s.items() if v))
    return "\n".join(lines)


def format_markdown(checks: list[Check]) -> str:
    """Markdown table (README)."""
    esc = lambda s: str(s).replace("|", "\\|")   # noqa: E731
    out = ["| section | claim | paper | computed | verdict |", "|---|---|---|---|---|"]
    out += [f"| {esc(c.section)} | {esc(c.claim)} | {esc(c.paper)} | {esc(c.computed)} | {esc(c.verdict)} |"
            for c in checks]
    return "\n".join(out)


def _jsonable(v):
    """A check's values with numpy, mpmath, Fraction and non-finite floats made JSON-safe."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, mpmath.mpf):
        return mpmath.nstr(v, MP_TEXT_DIGITS)
    if isinstance(v, Fraction):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def checks_json(checks: list[Check]) -> str:
    """Every check, the count of each verdict and the verdicts' names as JSON (`verify --json`)."""
    return json.dumps({"checks": [_jsonable(asdict(c)) for c in checks], "summary": summary(checks),
                       "verdicts": list(VERDICTS)}, indent=1)


__all__ = ["format_checks", "format_markdown", "checks_json"]
