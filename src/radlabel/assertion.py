"""Stage 5: assertion status (present / absent / uncertain / hypothetical) with a ConText-style engine.

The trigger lexicon is data (``rules/context.yaml``). Triggers are found with one PhraseMatcher
pass; then each observation looks outward from its own span, nearest trigger first, within the
sentence and a token window, stopping at terminators ("but", "however", ";") and pseudo-triggers
("no change in"). The nearest trigger whose direction reaches the observation decides. Walking
outward with bounded windows keeps the cost linear in the report length.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from radlabel.errors import RadlabelError
from radlabel.mentions import Mention, expand_phrase

__all__ = [
    "PRESENT", "ABSENT", "UNCERTAIN", "HYPOTHETICAL", "Trigger", "ContextEngine", "load_context_rules",
]

PRESENT, ABSENT, UNCERTAIN, HYPOTHETICAL = "present", "absent", "uncertain", "hypothetical"
_CATEGORY_STATUS = {"negation": ABSENT, "uncertain": UNCERTAIN, "hypothetical": HYPOTHETICAL}
_DIRECTIONS = ("pre", "post", "both")
_RULES = Path(__file__).resolve().parent / "rules" / "context.yaml"


@dataclass(slots=True)
class Trigger:
    """A matched trigger phrase: tokens ``[start, end)`` and its roles, e.g. ``("negation", "pre")``."""

    start: int
    end: int
    roles: frozenset


@cache
def load_context_rules(path: str | None = None) -> dict:
    """Parse and check the trigger lexicon (default: the packaged ``rules/context.yaml``)."""
    p = Path(path) if path else _RULES
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RadlabelError(f"Context rules file {p} cannot be read as YAML ({exc.__class__.__name__}).") from exc
    if not isinstance(data, dict):
        raise RadlabelError(f"Context rules file {p} must be a mapping of categories.")
    for cat in _CATEGORY_STATUS:
        block = data.get(cat) or {}
        if not isinstance(block, dict) or set(block) - set(_DIRECTIONS):
            raise RadlabelError(
                f"Category {cat!r} in {p} must map directions ({', '.join(_DIRECTIONS)}) to phrase lists."
            )
    return data


class ContextEngine:
    """Finds triggers in a Doc and assigns an assertion status to each observation mention."""

    def __init__(self, vocab: Vocab, tokenizer, rules: dict | None = None):
        rules = load_context_rules() if rules is None else rules
        window = rules.get("window") or {}
        self.window = {d: int(window.get(d, default)) for d, default in (("pre", 14), ("post", 8), ("both", 4))}
        roles: dict[str, set[tuple]] = {}

        def add(patterns, role: tuple) -> None:
            for pattern in patterns or ():
                for phrase in expand_phrase(pattern):
                    roles.setdefault(phrase.lower(), set()).add(role)

        for cat in _CATEGORY_STATUS:
            for direction, patterns in (rules.get(cat) or {}).items():
                add(patterns, (cat, direction))
        add(rules.get("pseudo"), ("pseudo",))
        add(rules.get("terminate"), ("terminate",))
        add(rules.get("suggestive"), ("suggestive",))
        self.matcher = PhraseMatcher(vocab, attr="LOWER")
        self._roles: dict[int, frozenset] = {}
        groups: dict[frozenset, list[str]] = {}
        for phrase, r in roles.items():
            groups.setdefault(frozenset(r), []).append(phrase)
        for i, (r, plist) in enumerate(groups.items()):
            key = f"context_{i}"
            self._roles[vocab.strings.add(key)] = r
            self.matcher.add(key, list(tokenizer.pipe(plist)))

    def triggers(self, doc: Doc) -> list[Trigger]:
        """Non-overlapping triggers (longest first), in token order."""
        found = [Trigger(s, e, self._roles[mid]) for mid, s, e in self.matcher(doc)]
        found.sort(key=lambda t: (t.start - t.end, t.start))
        taken: set[int] = set()
        keep = []
        for t in found:
            r = range(t.start, t.end)
            if any(i in taken for i in r):
                continue
            taken.update(r)
            keep.append(t)
        keep.sort(key=lambda t: t.start)
        return keep

    def assign(
        self, mentions: list[Mention], sent_of: list[int], triggers: list[Trigger], trig_sent: list[int]
    ) -> list[str]:
        """Status of each mention; ``sent_of`` / ``trig_sent`` give each item's sentence number."""
        starts = [t.start for t in triggers]
        out = []
        wpre, wpost, wboth = self.window["pre"], self.window["post"], self.window["both"]
        for m, sent in zip(mentions, sent_of, strict=True):
            best: tuple[int, int, str] | None = None  # (distance, side, status)
            # Walk backwards: triggers ending at or before the mention start.
            i = bisect_left(starts, m.start) - 1
            while i >= 0:
                t = triggers[i]
                if trig_sent[i] != sent:
                    break
                if t.end > m.start:  # overlaps the mention: not a trigger for it
                    i -= 1
                    continue
                dist = m.start - t.end
                if dist > wpre:
                    break
                status = _status(t.roles, ("pre",) if dist > wboth else ("pre", "both"))
                if status:
                    if best is None:
                        best = (dist, 0, status)
                    if status == HYPOTHETICAL:
                        # "if there is concern for fracture": a hypothetical frame wins over nearer triggers.
                        best = (dist, 0, status)
                        break
                if ("terminate",) in t.roles or ("pseudo",) in t.roles:
                    break
                i -= 1
            # Walk forwards: triggers starting at or after the mention end.
            if best is not None and best[2] == HYPOTHETICAL:
                out.append(HYPOTHETICAL)
                continue
            j = bisect_left(starts, m.end)
            while j < len(triggers):
                t = triggers[j]
                if trig_sent[j] != sent:
                    break
                dist = t.start - m.end
                if dist > wpost or (best is not None and dist >= best[0]):
                    break
                status = _status(t.roles, ("post",) if dist > wboth else ("post", "both"))
                if status:
                    best = (dist, 1, status)
                    break
                if ("terminate",) in t.roles or ("pseudo",) in t.roles or _opens_scope(t.roles):
                    # "opacity may represent atelectasis versus ...": a forward trigger governs what follows it.
                    break
                j += 1
            out.append(best[2] if best else PRESENT)
        return out


def _status(roles: frozenset, directions: tuple[str, ...]) -> str | None:
    """The status a trigger gives in the allowed directions (uncertainty outranks negation)."""
    for cat in ("uncertain", "negation", "hypothetical"):
        for d in directions:
            if (cat, d) in roles:
                return _CATEGORY_STATUS[cat]
    return None


def _opens_scope(roles: frozenset) -> bool:
    """True for triggers that govern the words after them ("may represent", "no")."""
    return any(len(r) == 2 and r[1] == "pre" for r in roles)
