"""Stage 1: normalize report text while keeping every character mappable to the original.

Reports arrive with ragged whitespace, bullets, "1." / "2)" numbering, de-identification tokens
(``XXXX``) and typographic punctuation. Later stages (sections, sentences, matching) are simpler
and faster on a canonical form, but graphs must point back into the user's text, so every edit is
recorded as a segment and :meth:`Normalized.to_original` maps offsets back. A hard wrap inside a
sentence (the next line goes on in lower case) becomes a space, so a sentence is not cut at it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

from radlabel.sections import is_header_line, starts_with_header

__all__ = ["Normalized", "normalize"]

# One alternation, one pass: each named group says how to rewrite its match. Order matters
# (earlier alternatives win at the same position).
_PATTERN = re.compile(
    r"""
    # cheap guard: a plain space starts a match only before more space, a bullet, "(" or a digit
    (?=[^\S\ ]|\ [\s(\d\-*\u2022\u00b7\u25aa\u25e6\u2023\u200b]
       |[\-*\u2022\u00b7\u25aa\u25e6\u2023(\dX.;\u2026\u2018-\u2033\u2212\u00a0\u2000-\u200b\u3000\u00ad\u200c\u200d\u2060\ufeff\uff01-\uff5e])
    (?:(?P<item>^[ \t]*(?:[-*\u2022\u00b7\u25aa\u25e6\u2023]|\(?\d{1,2}[.)](?!\d))(?:[ \t]+|(?=[A-Z])))  # bullet / number opening the text ("1.No", "-No" too)
    |(?P<inum>(?<=[.:;])[ \t]+\(?\d{1,2}[.)](?![\d.])[ \t]+(?=[A-Za-z]))      # ". 2. Next item" inline numbering
    |(?P<nl>[ \t]*(?:\r\n?|\n)[ \t\r\n\f\v]*                                 # newlines (+ blank lines)
        (?:(?:[-*\u2022\u00b7\u25aa\u25e6\u2023]|\(?\d{1,2}[.)](?!\d))(?:[ \t]+|(?=[A-Z])))?)  # + a bullet / number opening the line
    |(?P<ws>[ \t\f\v\u00a0\u2000-\u200b\u3000]{2,}|[\t\f\v\u00a0\u2000-\u200b\u3000])  # odd/multiple spaces
    |(?P<deid>\bX{2,}\b)                                                      # de-identification token
    |(?P<dots>(?:\.{2,}|\u2026)+)                                             # ellipses
    |(?P<glue>(?<=[a-z])\.(?=[A-Z][a-z]))                                     # "apex.There" -> "apex. There"
    |(?P<semi>(?<=[A-Za-z]);(?=[A-Za-z]))                                     # "pneumothorax;small" -> "; small"
    |(?P<punct>[\u2018\u2019\u201a\u201b\u2032\u201c\u201d\u201e\u2033\u2010-\u2015\u2212])  # typographic
    |(?P<invisible>[\u00ad\u200c\u200d\u2060\ufeff]+)                           # soft hyphen, joiners, BOM
    |(?P<wide>[\uff01-\uff5e]))                                               # fullwidth ASCII
    """,
    re.VERBOSE,
)

# spaCy's tokenizer strips prefixes/suffixes one character at a time, which is quadratic on a long
# run without spaces ("((((..."); such runs are cut every _MAX_RUN characters (a space is inserted).
_MAX_RUN = 100
_LONG_RUN = re.compile(rf"\S{{{_MAX_RUN + 1}}}")
_PATTERN_LONG = re.compile(rf"(?P<long>\S{{{_MAX_RUN}}}(?=\S))|" + _PATTERN.pattern, re.VERBOSE)

_PUNCT = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2212": "-",
}


def _rewrite(m: re.Match) -> str:
    kind = m.lastgroup
    if kind == "long":
        return m.group() + " "
    if kind == "item":
        # A list item starts a new sentence; the newline before it already says so.
        return ""
    if kind == "inum":
        return "\n"
    if kind == "nl":
        if not _continues(m):
            return "\n"
        before = m.string[max(m.start() - 2, 0):m.start()]
        # "age-\nindeterminate": a word hyphenated at the wrap is one word again
        return "" if len(before) == 2 and before[0].isalpha() and before[1] == "-" else " "
    if kind == "ws":
        return " "
    if kind == "deid":
        return "XXXX"
    if kind == "dots":
        # a full stop; "opacity...concerning" gets the space it needs to stay two words
        after = m.string[m.end():m.end() + 1]
        return "." if after.isspace() or not after else ". "
    if kind == "glue":
        return ". "
    if kind == "semi":
        return "; "
    if kind == "invisible":
        return ""
    if kind == "wide":
        return chr(ord(m.group()) - 0xFEE0)
    ch = m.group()
    return _PUNCT.get(ch, "-")


# A line ending in one of these words goes on in the next line ("concerning for\npneumonia").
_GOES_ON = frozenset(
    "a an the of for with without to in on at by from into over within along and or nor but is are was were be "
    "been as than that which this these there no not may might could can would should has have had its their "
    "very more most less both either mild mildly small moderate moderately large right left bilateral upper "
    "lower middle mid new increased decreased minimal slightly likely possibly probably concerning suspicious "
    "consistent compatible suggestive representing due secondary related versus vs "
    # verbs that need their object: "may represent\natelectasis", "cannot exclude\npneumonia"
    "represent represents reflect reflects reflecting indicate indicates indicating exclude suggest suggests "
    "suggesting include includes including favor favoring cannot pleural pulmonary focal airspace".split()
)
_CONTINUATIONS = frozenset("or nor and/or versus vs".split())
_ABBREVIATION = re.compile(r"[A-Z]{2,}\b")
WRAP_WIDTH = 50  # a text whose longest line is at least this long may be wrapped at a fixed width


def _continues(m: re.Match) -> bool:
    """True for a hard wrap inside a sentence: one line break (no blank line, bullet or number), the next
    line goes on in lower case (or in an all-caps report, or with an abbreviation after a phrase that cannot end
    there) and is no header, and this line either stops mid-phrase ("concerning
    for\npneumonia") or fills the text's width ("...the right lower lobe\nopacity" in a report wrapped at
    78 columns). A list of short lines, one finding each ("no pneumothorax\nsmall effusion"), keeps its breaks."""
    nl = m.group()
    if nl.count("\n") + nl.count("\r") - nl.count("\r\n") != 1 or nl.strip():
        return False
    rest = m.string[m.end():m.end() + 40]
    if starts_with_header(rest):
        return False
    text = m.string
    line = text[max(text.rfind("\n", 0, m.start()), text.rfind("\r", 0, m.start())) + 1:m.start()]
    if is_header_line(line):  # "IMPRESSION\nnormal"
        return False
    words = line.split()
    mid_phrase = bool(words) and (words[-1].lower() in _GOES_ON or words[-1].endswith("-"))
    if not rest[:1].islower():
        # an all-caps report ("NO PLEURAL EFFUSION OR\nPNEUMOTHORAX", or a line that fills its width), or an
        # abbreviation after a phrase that cannot end there ("no evidence of\nPTX"); after a comma, capitals
        # may start the next item of a list ("No pneumothorax,\nETT in good position")
        shouting = rest[:1].isupper() and not any(c.islower() for c in line)
        if not shouting:
            return mid_phrase and _ABBREVIATION.match(rest) is not None
    elif words[-1:] and words[-1].endswith(","):
        return True
    elif rest.split(" ", 1)[0] in _CONTINUATIONS:
        return True  # "No effusion\nor pneumothorax": a line cannot start with "or"
    if mid_phrase:
        return True
    width = _longest_line(text)
    return width >= WRAP_WIDTH and len(line.rstrip()) >= 0.75 * width


@lru_cache(maxsize=1)
def _longest_line(text: str) -> int:
    return max(len(line.rstrip()) for line in re.split(r"\r\n?|\n", text))


@dataclass
class Normalized:
    """Normalized text plus the segments needed to map offsets back to ``original``."""

    text: str
    original: str
    # Parallel lists, one entry per segment: start in `text`, start in `original`, length in
    # `original` (-1 for copied segments, whose lengths are equal on both sides).
    _norm_starts: list[int] = field(default_factory=list, repr=False)
    _orig_starts: list[int] = field(default_factory=list, repr=False)
    _orig_lens: list[int] = field(default_factory=list, repr=False)

    def to_original(self, pos: int, end: bool = False) -> int:
        """Map a character offset in ``text`` to ``original``; ``end`` for an exclusive end, which stops
        before characters the normalization dropped there ("Small\u00ad" ends at "l")."""
        if not self._norm_starts:
            return pos
        i = bisect_right(self._norm_starts, pos) - 1
        if i < 0:
            return pos
        if end and i > 0 and self._norm_starts[i - 1] == pos == self._norm_starts[i]:
            return self._orig_starts[i - 1]  # segment i - 1 was dropped: end before it
        delta = pos - self._norm_starts[i]
        olen = self._orig_lens[i]
        if olen < 0:
            return self._orig_starts[i] + delta
        if delta and pos >= len(self.text):
            # the end of a rewrite that ends the text ("\r\n" -> "\n", "  " -> " "): the whole original;
            # earlier rewrites get this from the next segment's start
            return self._orig_starts[i] + olen
        return self._orig_starts[i] + min(delta, olen)


def normalize(text: str) -> Normalized:
    """Return the canonical form of ``text`` with an offset map to the original string."""
    pieces: list[str] = []
    norm_starts: list[int] = []
    orig_starts: list[int] = []
    orig_lens: list[int] = []
    npos = 0
    last = 0
    pattern = _PATTERN_LONG if _LONG_RUN.search(text) else _PATTERN
    for m in pattern.finditer(text):
        s, e = m.span()
        rep = _rewrite(m)
        if rep == text[s:e]:
            continue
        if s > last:
            norm_starts.append(npos)
            orig_starts.append(last)
            orig_lens.append(-1)
            pieces.append(text[last:s])
            npos += s - last
        norm_starts.append(npos)
        orig_starts.append(s)
        orig_lens.append(e - s)
        pieces.append(rep)
        npos += len(rep)
        last = e
    if not norm_starts:
        return Normalized(text, text)
    if last < len(text):
        norm_starts.append(npos)
        orig_starts.append(last)
        orig_lens.append(-1)
        pieces.append(text[last:])
    return Normalized("".join(pieces), text, norm_starts, orig_starts, orig_lens)
