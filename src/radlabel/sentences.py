"""Stage 3: fast rule-based sentence splitting tuned to radiology reports.

A sentence ends at ". ! ?" followed by whitespace (unless the period belongs to a known abbreviation
or a decimal number) or at a line break. Normalization already turned list numbering into line
breaks, so "1. ... 2. ..." items become sentences. One regex pass, no per-character Python.
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

# Abbreviations whose period does not end a sentence (lower-cased, without the period).
_ABBREV = (
    "dr mr mrs ms vs approx appt e.g i.e etc fig cf st mt ap pa lat resp incl min max "
    "hx dx tx sx fx pt pts prox dist ant post sup inf l r"
).split()

_LOOKBEHINDS = "".join(
    r"(?<!\b(?:" + "|".join(re.escape(a) for a in _ABBREV if len(a) == n) + "))"
    for n in sorted({len(a) for a in _ABBREV})
)
_SPLIT = re.compile(
    r"(?:(?=[.!?])(?<=[^\s.!?0-9])" + _LOOKBEHINDS + r"[.!?]+[\"')\]]*(?=\s)"
    r"|(?=\.)(?<=[0-9])\.(?=\s+[A-Z])"
    r"|\n)",
    re.IGNORECASE,
)

_WORD = re.compile(r"\w")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` within ``text[start:end]``, trimmed of surrounding spaces."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SPLIT.finditer(text, start, end):
        _add(text, pos, m.end(), spans)
        pos = m.end()
    _add(text, pos, end, spans)
    return spans


def _add(text: str, s: int, e: int, spans: list[tuple[int, int]]) -> None:
    chunk = text[s:e]
    stripped = chunk.strip()
    if not _WORD.search(stripped):
        return
    lead = len(chunk) - len(chunk.lstrip())
    spans.append((s + lead, s + lead + len(stripped)))
