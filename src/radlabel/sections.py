"""Stage 2: split a (normalized) report into named sections.

Headers are recognised at the start of a line or after a sentence end, followed by a colon
("FINDINGS:", "Clinical history:"), or in capitals after any word ("INDICATION: cough FINDINGS: ...").
Each header maps to a canonical name so that callers can select ``sections=("findings", "impression")``
(an ADDENDUM counts as impression). A report without any header counts as findings; text before the first
header counts as findings too unless the report has its own findings section; and in a report with no
findings header, what follows the first line of an indication, history, comparison, technique or
examination section is findings (its unheaded body).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from radlabel.errors import RadlabelError

__all__ = ["CANONICAL", "SECTION_NAMES", "Section", "check_sections", "find_sections", "canonical_section", "is_header_line",
           "starts_with_header"]

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
    "notification": "notification", "wet read": "wet_read",
    # an addendum amends the signed report's conclusion ("ADDENDUM: small right pneumothorax"), so it labels
    "addendum": "impression",
    "final impression": "impression", "impression/recommendation": "impression",
    "impression/recommendations": "impression", "impression and recommendation": "impression",
    "interpretation": "impression", "discussion": "impression",
    "findings/impression": "findings", "findings and impression": "findings", "final report": "findings",
    "results": "findings", "result": "findings", "observations": "findings",
    "clinical notes": "history", "clinical note": "history", "admitting diagnosis": "history",
    "order diagnosis": "indication", "clinical question": "indication", "reason for consult": "indication",
    "reason for referral": "indication", "indication for exam": "indication",
}
# Sections about the request, not the image: a report with no findings header goes on in
# findings after their first line ("INDICATION: Cough.\n\nRight pneumothorax.").
_REQUEST = frozenset({"indication", "history", "comparison", "technique", "examination"})

_NAMES = "|".join(sorted((re.escape(k).replace(r"\ ", r"[ \t]+") for k in CANONICAL), key=len, reverse=True))
# Matched against the few characters before each colon: a header starts the text, a line, or
# follows a sentence end. Scanning colons first keeps this cheap on long reports.
_ENDS = "\n.;?!"  # "INDICATION: r/o pneumonia? FINDINGS: ..." : a question ends a sentence too
_BEFORE_COLON = re.compile(r"(?:^|[" + _ENDS + r"])[ \t]*(?P<name>" + _NAMES + r")[ \t]*$", re.IGNORECASE)
_LOOKBACK = 40
# A header written in capitals may also follow a word on its line ("INDICATION: cough FINDINGS: ...").
_CAPS_BEFORE_COLON = re.compile(r"[ \t](?P<name>" + _NAMES + r")[ \t]*$", re.IGNORECASE)
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
        elif text[pos - 1:pos].isupper():  # cheap test first: a header in capitals ends in a capital
            m = _CAPS_BEFORE_COLON.search(text, lo, pos)
            if m is not None and m.group("name").isupper():
                heads.append((m.start("name"), pos + 1, m.group("name")))
        pos = text.find(":", pos + 1)
    if "\n" in text or len(text) <= _LOOKBACK:  # a short text may be a header alone ("IMPRESSION")
        heads.extend((m.start("name"), m.end(), m.group("name")) for m in _BARE.finditer(text))
        heads.sort()
    if not heads:
        return [Section("findings", "", 0, len(text))] if text else []
    out: list[Section] = []
    names = [canonical_section(h[2]) for h in heads]
    first = heads[0][0]
    if text[:first].strip():
        out.append(Section("preamble" if "findings" in names else "findings", "", 0, first))
    labelled = "findings" in names  # an impression alone leaves the body unheaded ("...\n\nIMPRESSION: As above.")
    for i, (_, start, header) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        name = names[i]
        cut = None if labelled or name not in _REQUEST else _body_start(text, start, end)
        if cut is None:
            out.append(Section(name, header, start, end))
        else:  # the unheaded body of a report that names no findings section
            out += [Section(name, header, start, cut), Section("findings", "", cut + 1, end)]
    return out


# A line of a request section that still speaks of the request: the patient, the question, earlier studies.
_REQUEST_LINE = re.compile(
    r"\b(?:prior|previous|history|hx|h/o|s/p|status post|evaluate|eval|assess|r/o|rule out|known|follow|f/u|"
    r"compar\w*|ct|mri|year[- ]old|y/?o)\b|\?|\d+/\d+", re.IGNORECASE)
# a line that opens with a joining word continues the one before ("75-year-old man\nwith pneumonia")
_GOES_ON = re.compile(r"\s*(?:\(|(?:with|and|or|of|for|in|to|on|at|who|which|that|from|after|since)\b)")


def _body_start(text: str, start: int, end: int) -> int | None:
    """Where the unheaded body begins in a request section ``text[start:end]``: the newline before the first
    line after the first that no longer speaks of the request ("Known right effusion, evaluate." stays)."""
    first = start
    while first < end and text[first].isspace():
        first += 1
    nl = text.find("\n", first, end)
    while nl >= 0:
        line_end = text.find("\n", nl + 1, end)
        line = text[nl + 1:line_end if line_end >= 0 else end]
        if line.strip() and not _GOES_ON.match(line) and not _REQUEST_LINE.search(line):
            return nl
        nl = line_end
    return None


SECTION_NAMES = sorted(set(CANONICAL.values()) | {"preamble"})


def check_sections(sections) -> tuple[str, ...] | None:
    """The canonical section names (None for the whole text); RadlabelError on unknown ones."""
    if sections is None or (isinstance(sections, str) and sections.strip().lower() == "all"):
        return None
    if isinstance(sections, str):
        sections = [s for s in sections.split(",") if s.strip()]
    if not isinstance(sections, Iterable):
        raise RadlabelError(f"sections must be None, 'all' or a list of section names, not {type(sections).__name__}.")
    out = []
    for s in sections:
        if not isinstance(s, str):
            raise RadlabelError(f"Section names must be strings; got {s!r}.")
        name = canonical_section(s)
        if name not in SECTION_NAMES:
            close = difflib.get_close_matches(name, SECTION_NAMES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RadlabelError(
                f"Unknown section {s!r}; valid sections are {', '.join(SECTION_NAMES)} or 'all'.{hint}"
            )
        out.append(name)
    if not out:
        raise RadlabelError("sections is empty; give at least one section name, or None / 'all' for the whole text.")
    return tuple(dict.fromkeys(out))
