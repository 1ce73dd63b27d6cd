"""Stage 4: find observation, anatomy and modifier mentions with one spaCy PhraseMatcher pass.

Phrases come from the schema (class mentions, unmentions, absent phrases) and from the
schema-independent lexicon in ``rules/lexicon.yaml`` (anatomy, modifiers, other findings,
misspellings). Patterns such as ``"(heart|cardiac silhouette) (is)? enlarged"`` are expanded once,
at init, into plain phrases, with plurals and misspellings added, so matching is a single hash
lookup pass over the tokens (case-insensitive, ``attr="LOWER"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from radlabel.errors import RadlabelError
from radlabel.phrases import expand_phrase
from radlabel.schema import Schema

__all__ = ["Mention", "MentionMatcher", "expand_phrase", "load_lexicon", "non_overlapping", "plural", "select_longest"]

RULES_DIR = Path(__file__).resolve().parent / "rules"

# Kinds, strongest first: when spans of equal length overlap, the stronger kind is kept.
OBSERVATION, ABSENT, OTHER, ANATOMY, MODIFIER = "observation", "absent", "other", "anatomy", "modifier"
_PRIORITY = {ABSENT: 0, OBSERVATION: 1, OTHER: 2, ANATOMY: 3, MODIFIER: 4}
# Findings that describe what is seen rather than name a cause: a comma list after one is its differential
# ("left basilar opacity, atelectasis, edema, or pneumonia"), not a list of alternatives it belongs to.
DESCRIPTIVE = frozenset("opacity opacities opacification opacifications density densities haziness blunting "
                        "shadow shadowing lucency lucencies abnormality abnormalities".split())


@dataclass(slots=True)
class Mention:
    """A matched span: tokens ``[start, end)`` of the doc, its kind and the classes it counts for."""

    start: int
    end: int
    kind: str
    classes: tuple[str, ...] = ()


def plural(word: str) -> str | None:
    """A regular English plural for a noun-like word, or None when none should be guessed."""
    if len(word) < 4 or not word.isalpha():
        return None
    if word.endswith("sis"):
        return word[:-3] + "ses"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return None
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


@cache
def load_lexicon(path: str | None = None) -> dict:
    """The anatomy / modifier / other-finding / misspelling lexicon (``rules/lexicon.yaml``)."""
    p = Path(path) if path else RULES_DIR / "lexicon.yaml"
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RadlabelError(f"Lexicon file {p} cannot be read as YAML ({exc.__class__.__name__}).") from exc
    if not isinstance(data, dict):
        raise RadlabelError(f"Lexicon file {p} must be a mapping.")
    return data


_NOT = re.compile(r"(?<=[a-z]) not\b")


def contracted(phrase: str) -> str:
    """The phrase with "not" after a word written as spaCy splits a contraction: "is not seen" -> "isn't seen"
    (tokens "is", "n't", "seen"); "n't" is no "not" to the matchers."""
    return _NOT.sub("n't", phrase)


def _variants(phrase: str, misspellings: dict[str, list[str]], add_plural: bool) -> set[str]:
    phrase = phrase.lower()
    out = {phrase}
    words = phrase.split(" ")
    if add_plural:
        p = plural(words[-1])
        if p:
            out.add(" ".join([*words[:-1], p]))
    for variant in list(out):
        vw = variant.split(" ")
        for i, w in enumerate(vw):
            for wrong in misspellings.get(w, ()):
                out.add(" ".join([*vw[:i], wrong, *vw[i + 1 :]]))
    return out | {contracted(v) for v in out}  # "heart is not enlarged" also as "heart isn't enlarged"


def add_phrases(matcher: PhraseMatcher, key: str, phrases: list[str], tokenizer, chunk: int = 1000) -> None:
    """Add phrases under one key a thousand at a time: a Doc per phrase for all of them at once (tens of
    thousands in a schema) left each process about 60 MB larger for good."""
    for i in range(0, len(phrases), chunk):
        matcher.add(key, list(tokenizer.pipe(phrases[i : i + chunk])))


def select_longest(spans: list[Mention]) -> list[Mention]:
    """Non-overlapping spans, longest first (then by kind priority, then leftmost), in text order."""
    if not spans:
        return []
    keep = non_overlapping(spans, key=lambda m: (m.start - m.end, _PRIORITY.get(m.kind, 9), m.start))[0]
    keep.sort(key=lambda m: m.start)
    return keep


def non_overlapping(spans: list, key) -> tuple[list, set[int]]:
    """Spans (anything with token ``start`` / ``end``) taken best first by `key`, each skipped when it
    overlaps one already taken; the kept spans, in that order, and the tokens they cover."""
    taken: set[int] = set()
    keep = []
    for m in sorted(spans, key=key):
        r = range(m.start, m.end)
        if not taken.isdisjoint(r):  # in C: about twice as fast as any() over the range
            continue
        taken.update(r)
        keep.append(m)
    return keep, taken


class MentionMatcher:
    """Compiles a schema + lexicon into one PhraseMatcher; calling it on a Doc gives mentions."""

    def __init__(self, vocab: Vocab, schema: Schema, tokenizer, lexicon: dict | None = None,
                 background: Sequence[Schema] = ()):
        """`background`: schemas whose classes count as other findings here (see `Schema.other_findings_from`), but
        the classes this schema names and those in their own `no_finding_ignore`; where a background mention
        overlaps one of this schema's findings, the schema's wins."""
        lex = load_lexicon() if lexicon is None else lexicon
        misspell = {str(k).lower(): [str(v).lower() for v in vs] for k, vs in (lex.get("misspellings") or {}).items()}
        # phrase -> (kind, classes); unmentions kept apart because they only subtract classes.
        phrases: dict[str, tuple[str, set[str]]] = {}
        unmentions: dict[str, set[str]] = {}

        def add(into: dict, kind: str, patterns, cls: str | None, add_plural: bool) -> None:
            for pattern in patterns:
                for phrase in expand_phrase(pattern):
                    for v in _variants(phrase, misspell, add_plural):
                        old = into.get(v)
                        if old is None or _PRIORITY[kind] < _PRIORITY[old[0]]:
                            into[v] = (kind, {cls} if cls else set())
                        elif old[0] == kind and cls:
                            old[1].add(cls)

        def add_unmentions(into: dict, patterns, cls: str) -> None:
            for pattern in patterns:
                for phrase in expand_phrase(pattern):
                    for v in _variants(phrase, misspell, True):
                        into.setdefault(v, set()).add(cls)

        for spec in schema.classes:
            add(phrases, OBSERVATION, spec.mentions, spec.name, True)
            add(phrases, ABSENT, spec.absent_phrases, spec.name, False)
            add_unmentions(unmentions, spec.unmentions, spec.name)
        add(phrases, OTHER, lex.get("other_findings") or (), None, True)
        add(phrases, ABSENT, lex.get("absent_other_findings") or (), None, False)  # a schema's own absent phrase keeps its class
        add(phrases, ANATOMY, lex.get("anatomy") or (), None, True)
        add(phrases, MODIFIER, lex.get("modifiers") or (), None, False)
        # Background classes keep their own names ("chexpert:Cardiomegaly") only so that their unmentions subtract
        # from them alone; __call__ turns what survives into classless other findings.
        bg_phrases: dict[str, tuple[str, set[str]]] = {}
        bg_unmentions: dict[str, set[str]] = {}
        own_names = {c.name for c in schema.classes} | {schema.no_finding}
        for other in background:
            for spec in other.classes:
                # devices do not make a study abnormal; a class the schema names is the schema's to define
                if spec.name in other.no_finding_ignore or spec.name in own_names:
                    continue
                tag = f"{other.name}:{spec.name}"
                add(bg_phrases, OBSERVATION, spec.mentions, tag, True)
                add(bg_phrases, ABSENT, spec.absent_phrases, tag, False)
                add_unmentions(bg_unmentions, spec.unmentions, tag)

        self.matcher = PhraseMatcher(vocab, attr="LOWER")
        # match id -> (kind, classes, from a background schema)
        self._keys: dict[int, tuple[str, tuple[str, ...], bool]] = {}
        groups: dict[tuple[str, tuple[str, ...], bool], list[str]] = {}
        for phrase, (kind, classes) in phrases.items():
            groups.setdefault((kind, tuple(sorted(classes)), False), []).append(phrase)
        for phrase, classes in unmentions.items():
            groups.setdefault(("unmention", tuple(sorted(classes)), False), []).append(phrase)
        # all of them, even a phrase the schema has too: what the schema's own unmentions take away from its class
        # ("subsegmental atelectasis" is not my Collapse) is still a finding; __call__ drops a background mention
        # only where one of the schema's own findings survives
        for phrase, (kind, classes) in bg_phrases.items():
            groups.setdefault((kind, tuple(sorted(classes)), True), []).append(phrase)
        for phrase, classes in bg_unmentions.items():
            groups.setdefault(("unmention", tuple(sorted(classes)), True), []).append(phrase)
        order = {c.name: i for i, c in enumerate(schema.classes)}
        for (kind, classes, bg), plist in groups.items():
            if not bg:
                classes = tuple(sorted(classes, key=order.__getitem__))
            key = f"{'background ' if bg else ''}{kind}|{'|'.join(classes)}"
            mid = vocab.strings.add(key)
            self._keys[mid] = (kind, classes, bg)
            add_phrases(self.matcher, key, plist, tokenizer)

    def __call__(self, doc: Doc) -> list[Mention]:
        """Non-overlapping mentions in token order."""
        cands: list[Mention] = []
        unm: list[tuple[int, int, tuple[str, ...]]] = []
        bg_cands: list[Mention] = []
        bg_unm: list[tuple[int, int, tuple[str, ...]]] = []
        keys = self._keys
        for mid, s, e in self.matcher(doc):
            kind, classes, bg = keys[mid]
            if kind == "unmention":
                (bg_unm if bg else unm).append((s, e, classes))
            else:
                (bg_cands if bg else cands).append(Mention(s, e, kind, classes))
        if unm:
            cands = _subtract(cands, unm)
        if bg_cands:
            cands.extend(_background_findings(bg_cands, bg_unm, cands))
        return select_longest(cands)


def _background_findings(bg_cands: list[Mention], bg_unm: list, cands: list[Mention]) -> list[Mention]:
    """Background mentions as classless other findings (or absent phrases), except where they overlap the schema's
    own findings: "pleural effusion" from chexpert must not swallow a schema's own "effusion"."""
    if bg_unm:
        bg_cands = _subtract(bg_cands, bg_unm)
    own = set()
    for m in cands:
        if m.kind in (OBSERVATION, ABSENT, OTHER):
            own.update(range(m.start, m.end))
    return [Mention(m.start, m.end, OTHER if m.kind == OBSERVATION else ABSENT)
            for m in bg_cands if own.isdisjoint(range(m.start, m.end))]


def _subtract(cands: list[Mention], unm: list[tuple[int, int, tuple[str, ...]]]) -> list[Mention]:
    """Remove unmentioned classes from overlapping observations; drop those left with none."""
    cover: dict[int, set[str]] = {}
    for s, e, ucls in unm:
        for i in range(s, e):
            cover.setdefault(i, set()).update(ucls)
    out = []
    for m in cands:
        if m.kind in (OBSERVATION, ABSENT):
            removed: set[str] = set()
            for i in range(m.start, m.end):
                removed |= cover.get(i, set())
            if removed:
                m.classes = tuple(c for c in m.classes if c not in removed)
                if not m.classes:
                    continue
        out.append(m)
    return out
