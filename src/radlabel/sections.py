"""Stage 2: split a (normalized) report into named sections.

Headers are recognised at the start of a line or after a sentence end, followed by a colon
("FINDINGS:", "Clinical history:"). Each header maps to a canonical name so that callers can select
``sections=("findings", "impression")``. A report without any header counts as findings; text
before the first header counts as findings too unless the report has its own findings section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CANONICAL", "Section", "find_sections", "canonical_section", "is_header_line", "starts_with_header"]

# Header wording -> canonical section name.
CANONICAL: dict[str, str] = {
    "findings": "findings", "finding": "findings", "report": "findings", "body": "findings",
    "impression": "impression", "impressions": "impression", "conclusion": "impression",
    "conclusions": "impression", "summary": "impression", "opinion": "impression",
    "diagnosis": "impression", "assessment": "impression",
    "indication": "indication", "indications": "indication", "reason for exam": "indication",
    "reason for examination": "indication", "reason for study": "indication",
    "reason": "indication", "clinical indication": "indication",
    "history": "history", "clinical history": "history", "clinical information": "history",
    "clinical data": "history", "clinical details": "history", "clinical": "history",
    "medical history": "history", "hx": "history",
    "comparison": "comparison", "comparisons": "comparison", "prior": "comparison",
    "prior studies": "comparison", "compared": "comparison",
    "technique": "technique", "procedure": "technique", "views": "technique", "view": "technique",
    "exam": "examination", "examination": "examination", "study": "examination",
    "type of study": "examination",
    "recommendation": "recommendation", "recommendations": "recommendation",
    # MIMIC-CXR writes "RECOMMENDATION(S):"
    "recommendation(s)": "recommendation", "finding(s)": "findings", "impression(s)": "impression",
    "indication(s)": "indication", "comparison(s)": "comparison",
    "addendum": "addendum", "notification": "notification", "wet read": "wet_read",
}

_NAMES = "|".join(sorted((re.escape(k).replace(r"\ ", r"[ \t]+") for k in CANONICAL), key=len, reverse=True))
# Matched against the few characters before each colon: a header starts the text, a line, or
# follows a sentence end. Scanning colons first keeps this cheap on long reports.
_ENDS = "\n.;?!"  # "INDICATION: r/o pneumonia? FINDINGS: ..." : a question ends a sentence too
_BEFORE_COLON = re.compile(r"(?:^|[" + _ENDS + r"])[ \t]*(?P<name>" + _NAMES + r")[ \t]*$", re.IGNORECASE)
_LOOKBACK = 40
# A header alone on its line, without a colon ("FINDINGS\nThe lungs are clear.").
_BARE = re.compile(r"^[ \t]*(?P<name>" + _NAMES + r")[ \t]*$", re.IGNORECASE | re.MULTILINE)
_LEADING = re.compile(r"[ \t]*(?:" + _NAMES + r")[ \t]*(?::|\r?\n|$)", re.IGNORECASE)
_ONLY = re.compile(r"[ \t]*(?:" + _NAMES + r")[ \t]*:?[ \t]*", re.IGNORECASE)


def starts_with_header(text: str) -> bool:
    """True when ``text`` opens with a section header ("findings: ...", or "impression" alone on its line)."""
    return _LEADING.match(text) is not None


def is_header_line(line: str) -> bool:
    """True when ``line`` holds a section header and nothing else ("IMPRESSION", "Findings:")."""
    return _ONLY.fullmatch(line) is not None


@dataclass(frozen=True, slots=True)
class Section:
    """A section: canonical name, header text, and content span [start, end) in the input text."""

    name: str
    header: str
    start: int
    end: int


def canonical_section(name: str) -> str:
    """Canonical name for a header or a user's section name ("Impressions" -> "impression")."""
    key = " ".join(name.lower().split())
    return CANONICAL.get(key, key)


def find_sections(text: str) -> list[Section]:
    """Sections of ``text`` in order; they cover the text from the first content character."""
    heads: list[tuple[int, int, str]] = []  # (name start, content start, header text)
    pos = text.find(":")
    while pos >= 0:
        lo = max(0, pos - _LOOKBACK)
        m = _BEFORE_COLON.search(text, lo, pos)
        if m is not None and (m.start() > lo or lo == 0 or text[m.start()] in _ENDS):
            heads.append((m.start("name"), pos + 1, m.group("name")))
        pos = text.find(":", pos + 1)
    if "\n" in text:
        heads.extend((m.start("name"), m.end(), m.group("name")) for m in _BARE.finditer(text))
        heads.sort()
    if not heads:
        return [Section("findings", "", 0, len(text))] if text else []
    out: list[Section] = []
    has_findings = any(canonical_section(h[2]) == "findings" for h in heads)
    first = heads[0][0]
    if text[:first].strip():
        out.append(Section("preamble" if has_findings else "findings", "", 0, first))
    for i, (_, start, header) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        out.append(Section(canonical_section(header), header, start, end))
    return out
