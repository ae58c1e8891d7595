"""Column-aligned plain-text tables for the terminal reports (estimate, compare, check,
sweep): one renderer, so every table pads and aligns the same way."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
               left: Collection[int] = (), footer: Sequence[str] | None = None) -> list[str]:
    """Lines of a table: header, a dash rule, the rows, and (when given) a second rule
    and the footer.  Columns are as wide as their widest cell; columns in *left* are
    left-justified (names), the rest right-justified (numbers)."""
    body = [*rows, *([footer] if footer is not None else [])]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = line(["-" * w for w in widths])
    out = [line(headers), rule, *(line(r) for r in rows)]
    if footer is not None:
        out += [rule, line(footer)]
    return out
