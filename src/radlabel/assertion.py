"""Stage 5: assertion status (present / absent / uncertain / hypothetical / caveat), ConText-style.

The trigger lexicon is data (``rules/context.yaml``). Triggers are found with one PhraseMatcher
pass; then each observation looks outward from its own span, nearest trigger first, within the
sentence and a token window, stopping at terminators ("but", "however", ";") and pseudo-triggers
("no change in"). The nearest trigger whose direction reaches the observation decides. Walking
outward with bounded windows keeps the cost linear in the report length.

Hedges come in three strengths, following what both gold codings of the IU reports (MeSH
curators, NegBio) count as a finding. Strong ones ("probable", "atelectasis versus scar") and
single weak ones ("may represent atelectasis", "cannot exclude pneumonia", "? effusion") are
``uncertain``, as in CheXpert. A weak hedge over a list of alternatives ("may represent atelectasis
or infiltrate", "question of pneumonia and/or effusion") and a differential ("differential
includes", "alternatively", "less likely") only raise possibilities: ``hypothetical``, which the
aggregator does not count.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from itertools import product
from pathlib import Path

import yaml
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from radlabel.errors import RadlabelError
from radlabel.mentions import DESCRIPTIVE, Mention, add_phrases, contracted, expand_phrase, non_overlapping

__all__ = [
    "PRESENT", "ABSENT", "UNCERTAIN", "HYPOTHETICAL", "CAVEAT", "Trigger", "ContextEngine", "load_context_rules",
]

PRESENT, ABSENT, UNCERTAIN, HYPOTHETICAL = "present", "absent", "uncertain", "hypothetical"
# hypothetical by a limit of the exam ("radiographs are insensitive for rib fractures", "fractures may not be
# demonstrated"): no value, and unlike a differential it does not keep the report from No Finding
CAVEAT = "caveat"
_CATEGORY_STATUS = {
    "negation": ABSENT, "uncertain": UNCERTAIN, "possible": UNCERTAIN, "speculative": HYPOTHETICAL,
    "hypothetical": HYPOTHETICAL, "limitation": HYPOTHETICAL,
}
_DIRECTIONS = ("pre", "post", "both")
_CLAUSE_BREAK = frozenset({("clause_break",)})
_CLAUSE_END = ("clause_end",)
_LINK = frozenset({("suggestive",)})
_END_REACH = 6  # how far before a "present" word its clause's comma may lie
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
                    for variant in {b for p in _shorthands(phrase.lower()) for v in (p, contracted(p))
                                    for b in (v, _british(v))}:
                        roles.setdefault(variant, set()).add(role)

        for cat in _CATEGORY_STATUS:
            for direction, patterns in (rules.get(cat) or {}).items():
                add(patterns, (cat, direction))
        add(rules.get("pseudo"), ("pseudo",))
        add(rules.get("terminate"), ("terminate",))
        add(rules.get("terminate_pre"), ("terminate_pre",))
        add(rules.get("suggestive"), ("suggestive",))
        add(rules.get("alternative"), ("alternative",))
        add(rules.get("aside"), ("aside",))
        breaks = rules.get("clause_break") or {}
        for join in breaks.get("joins") or ():
            for start in breaks.get("starts") or ():
                roles.setdefault(f"{join} {start}".lower(), set()).add(("clause_break",))
        add(breaks.get("ends"), _CLAUSE_END)
        inner = rules.get("inner") or {}
        self._inner = {str(w).lower(): _CATEGORY_STATUS[cat] for cat in ("possible", "uncertain")
                       for w in inner.get(cat) or ()}
        self._end_joins = frozenset(j.lower() for j in breaks.get("joins") or ()) - {"and"}
        self._break_starts = frozenset(str(w).lower() for w in breaks.get("starts") or ())
        self.matcher = PhraseMatcher(vocab, attr="LOWER")
        self._roles: dict[int, frozenset] = {}  # the roles that decide a status, "suggestive" set apart
        self._link_ids: set[int] = set()  # phrases that link two observations
        groups: dict[frozenset, list[str]] = {}
        for phrase, r in roles.items():
            groups.setdefault(frozenset(r), []).append(phrase)
        for i, (r, plist) in enumerate(groups.items()):
            key = f"context_{i}"
            mid = vocab.strings.add(key)
            self._roles[mid] = r - _LINK
            if r & _LINK:
                self._link_ids.add(mid)
            add_phrases(self.matcher, key, plist, tokenizer)

    def triggers(self, doc: Doc) -> list[Trigger]:
        """Non-overlapping triggers (longest first), in token order, and the clause breaks between them."""
        return self.triggers_and_links(doc)[0]

    def triggers_and_links(self, doc: Doc, text: str | None = None) -> tuple[list[Trigger], list[Trigger]]:
        """The triggers, and apart from them the phrases that link two observations ("concerning for"):
        a link never hides a hedge it overlaps ("likely representing" is both), nor the other way round.
        ``text``: the doc's text when the caller has it (``doc.text`` rebuilds it from the tokens)."""
        found, breaks, links = [], [], []
        for mid, s, e in self.matcher(doc):
            roles = self._roles[mid]
            if mid in self._link_ids:
                links.append(Trigger(s, e, _LINK))
            if not roles:
                continue
            if roles == _CLAUSE_BREAK:
                # not inside a word ("non-enlarged") nor inside one phrase ("no right and left effusions"); a
                # place that ends a phrase is no such adjective ("no pneumothorax on the left, small right ...")
                if _stands_alone(doc, s) and not (s and doc[s - 1].lower_ in self._break_starts
                                                  and not side_closing_place(doc, s - 1)):
                    breaks.append(s)
            else:
                found.append(Trigger(s, e, roles))
        keep, taken = _longest_first(found)
        breaks.extend(_measured_items(doc, doc.text if text is None else text))
        ends = [t for t in keep if _CLAUSE_END in t.roles]
        if ends:
            breaks.extend(self._present_breaks(doc, ends, taken))
        breaks = [i for i in breaks if not _shared_object(doc, i, keep)]
        # the break is the joining token alone, so a finding that starts at the next word ("small effusion")
        # does not overlap it
        keep.extend(Trigger(i, i + 1, _CLAUSE_BREAK) for i in set(breaks) if i not in taken)
        keep.sort(key=lambda t: t.start)
        return keep, sorted(_longest_first(links)[0], key=lambda t: t.start)

    def _present_breaks(self, doc: Doc, ends: list[Trigger], taken: set[int]) -> list[int]:
        """Breaks at the comma before a finding that a present word follows ("no effusion, pneumonia present"),
        unless that comma continues a list ("no consolidation, edema, effusion, pneumothorax is seen")."""
        out = []
        for t in ends:
            join = self._join_before(doc, t.start, taken)
            # a word between ("effusion, present on the prior study" is an aside) and no list before it
            if join is not None and join < t.start - 1 and self._join_before(doc, join, taken) is None:
                out.append(join)
        return out

    def _join_before(self, doc: Doc, pos: int, taken: set[int]) -> int | None:
        """The nearest comma or free-standing dash in the `_END_REACH` tokens before `pos`, stopping at a
        trigger, other punctuation (a full stop, semicolon) or a line."""
        for i in range(pos - 1, max(pos - 1 - _END_REACH, -1), -1):
            tok = doc[i]
            if tok.lower_ in self._end_joins and _stands_alone(doc, i):
                return i
            if i in taken or tok.is_punct or tok.is_space:
                return None
        return None

    def assign(
        self, mentions: list[Mention], sent_of: list[int], triggers: list[Trigger], trig_sent: list[int],
        doc: Doc | None = None, owned: frozenset[int] = frozenset(),
    ) -> list[str]:
        """Status of each mention; ``sent_of`` / ``trig_sent`` give each item's sentence number. With the
        ``doc``, a trigger after the mention's own clause (a verb, then "and" or another finding) is not its.
        ``owned`` holds the indices of triggers inside another finding's own phrase ("pulmonary vascularity
        within normal limits"): they say nothing of a finding before them."""
        starts = [t.start for t in triggers]
        mstarts = [m.start for m in mentions]
        alt_starts: dict[int, list[int]] = {}  # per sentence, the "or"s: most findings have none near them
        for t, ts in zip(triggers, trig_sent, strict=True):
            if ("alternative",) in t.roles:
                alt_starts.setdefault(ts, []).append(t.start)
        out = []
        wpre, wpost, wboth = self.window["pre"], self.window["post"], self.window["both"]
        for mi, (m, sent) in enumerate(zip(mentions, sent_of, strict=True)):
            best: tuple[int, int, str, frozenset] | None = None  # (distance, side, status, trigger roles)
            weak = False  # the deciding trigger is a weak hedge ("may represent")
            nearest_alt = False  # the nearest trigger links alternatives ("versus")
            saw_alt = False  # an alternative link ("or") lies between the deciding trigger and the mention
            alt_back = False  # ... or anywhere before the mention in its clause
            framed = False  # a pseudo trigger ("no significant change in") frames the mention's clause
            # Walk backwards: triggers ending at or before the mention start.
            i = bisect_left(starts, m.start) - 1
            while i >= 0:
                t = triggers[i]
                if trig_sent[i] != sent:
                    break
                if t.end > m.start:  # overlaps the mention: not a trigger for it
                    if t.start < m.start and (("terminate",) in t.roles or ("terminate_pre",) in t.roles):
                        break  # but a scope still ends there: "no PTX post right subclavian line placement"
                    i -= 1
                    continue
                dist = m.start - t.end
                if dist > wpre and (dist > _LIST_REACH * wpre or dist - _listed_tokens(
                        doc, mentions, mstarts, t.end, m.start) > _LIST_OTHER_WORDS):
                    break  # past the window only over a list of findings ("no A, B, C, ... or H")
                dirs = ("pre",) if dist > wboth else ("pre", "both")
                status = _status(t.roles, dirs)
                if (status or dist > wpre) and doc is not None and _new_clause_between(doc, t.end, m.start, m.end):
                    break  # "no A, B, or C, and patchy opacity", "no A, B, and there is cardiomegaly"
                if status and doc is not None and _ends_the_clause_before(doc, t, m, mentions, sent_of, mi):
                    break  # "pneumothorax resolved, effusion persists": "resolved" is the pneumothorax's
                if status:
                    hedge = _has(t.roles, "possible", dirs) or _has(t.roles, "speculative", dirs)
                    if best is None:
                        best, weak = (dist, 0, status, t.roles), hedge
                        nearest_alt = ("alternative",) in t.roles
                    elif hedge and nearest_alt and best[2] == UNCERTAIN:
                        # "may represent infiltrate versus atelectasis": the weak hedge governs the list.
                        best, weak, saw_alt = (dist, 0, status, t.roles), True, True
                    if status == HYPOTHETICAL and not _has(t.roles, "speculative", dirs):
                        # "if there is concern for fracture": a hypothetical frame wins over nearer triggers.
                        best, weak = (dist, 0, status, t.roles), False
                        break
                if ("terminate",) in t.roles or ("terminate_pre",) in t.roles or ("pseudo",) in t.roles:
                    framed = ("pseudo",) in t.roles
                    break
                if t.roles is _CLAUSE_BREAK and not (
                    alt_back or self._alternative_follows(m, sent, starts, triggers, trig_sent)
                ):
                    break  # "no pneumothorax, small effusion": the effusion has its own clause (no "or" list)
                if ("alternative",) in t.roles:
                    alt_back = True
                    saw_alt = saw_alt or best is None
                i -= 1
            if best is not None and best[2] == HYPOTHETICAL:
                out.append(_hypothetical(best[3]))
                continue
            # Walk forwards: triggers starting at or after the mention end.
            j = bisect_left(starts, m.end)
            # the next finding in the sentence: a clause break before it hands later triggers to it
            nxt = mentions[mi + 1].start if mi + 1 < len(mentions) and sent_of[mi + 1] == sent else None
            past_break = False
            while j < len(triggers):
                t = triggers[j]
                if trig_sent[j] != sent:
                    break
                dist = t.start - m.end
                if dist > wpost or (best is not None and dist >= best[0]):
                    break
                if j in owned:  # "cardiomegaly, pulmonary vascularity within normal limits": the unmention's own
                    j += 1
                    continue
                dirs = ("post",) if dist > wboth else ("post", "both")
                status = _status(t.roles, dirs)
                if status and past_break and nxt is not None and nxt < t.start and not (
                        doc is not None and doc[t.start].lower_ in _PLURAL_VERBS
                        and any(doc[i].lower_ in _LIST_ENDS for i in range(m.end, t.start))):
                    # "pneumonia, small effusion is not seen": the trigger is the effusion's; a plural verb is
                    # the whole list's ("right effusion and left pneumothorax have resolved")
                    break
                if status and doc is not None and nxt is not None and nxt < t.start \
                        and not _listed_after_comma(doc, mentions, sent_of, mi) and _comma_clause(doc, m.end, nxt, t):
                    break  # "right effusion, pneumothorax is not seen": the trigger is the pneumothorax's
                if status and nxt is not None and nxt < t.start and (
                        not _status(t.roles, ("post",)) or _has(t.roles, "speculative", ("pre",))):
                    # "opacity, atelectasis versus pneumonia" / "... atelectasis favored over pneumonia": a
                    # comparison is about the findings beside it, not the opacity they explain
                    break
                if status and doc is not None and _clause_closed(doc, m.start, t.start, nxt):
                    break  # "the right effusion has increased, and the left has resolved"
                if status and nxt == t.end and _has(t.roles, "speculative", ("pre",)) \
                        and not _has(t.roles, "uncertain", ("post",)):
                    break  # "atelectasis, less likely pneumonia": the disfavour is on the pneumonia alone
                if status == UNCERTAIN and nxt == t.end and _opens_scope(t.roles) \
                        and not _has(t.roles, "speculative", ("pre",)):
                    break  # "opacity is likely atelectasis": the hedge is on the diagnosis, not the opacity
                if status and weak and ("alternative",) in t.roles:
                    saw_alt = True  # "may represent infiltrate versus atelectasis": the hedge still governs
                    break
                if status:
                    best, weak = (dist, 1, status, t.roles), _has(t.roles, "possible", dirs)
                    # "atelectasis or infiltrate cannot be ruled out": the hedge covers the list before it.
                    saw_alt = saw_alt or alt_back
                    break
                if t.start == m.end and doc is not None and doc[t.start].text == ":" and t.end == t.start + 1 \
                        and not _value_goes_on(doc, t.end):
                    j += 1  # a templated "Pneumothorax: absent": the value after the colon is the finding's
                    continue
                if ("terminate",) in t.roles or ("pseudo",) in t.roles or _opens_scope(t.roles):
                    # "opacity may represent atelectasis versus ...": a forward trigger governs what follows it.
                    break
                # "effusion, present on the prior study, has resolved": an aside with no finding of its own
                # does not cut the finding off from its trigger
                past_break = past_break or t.roles is _CLAUSE_BREAK
                if ("alternative",) in t.roles:
                    saw_alt = True
                j += 1
            if weak and best[2] == UNCERTAIN and (
                saw_alt or self._alternative_follows(m, sent, starts, triggers, trig_sent)
            ):
                # "may represent atelectasis or infiltrate", "atelectasis or infiltrate cannot be ruled
                # out": a weak hedge over alternatives raises possibilities, not findings.
                out.append(HYPOTHETICAL)
                continue
            if best is None and doc is not None:  # "the heart is likely enlarged": a hedge in the mention's phrase
                inner = self._inner_status(doc, m)
                if inner is None and not framed and sent in alt_starts and _near(alt_starts[sent], m) \
                        and _or_joined(doc, mentions, sent_of, mi, starts, triggers):
                    # "atelectasis or pneumonia": an open differential, like "versus" (as the CheXpert labeler's
                    # conj:or rule); "no significant change in effusion or atelectasis" keeps both
                    inner = UNCERTAIN
                if inner is None and not framed and _slash_joined(doc, mentions, sent_of, mi):
                    inner = UNCERTAIN  # "atelectasis/pneumonia" is written for "atelectasis or pneumonia"
                out.append(inner or PRESENT)
                continue
            out.append(PRESENT if best is None else _hypothetical(best[3]) if best[2] == HYPOTHETICAL else best[2])
        return out

    def _inner_status(self, doc: Doc, m: Mention) -> str | None:
        """The status a hedge word inside the mention's own phrase gives it ("the heart is likely enlarged")."""
        for i in range(m.start, m.end) if m.end - m.start > 1 else ():  # "borderline enlarged heart" too
            status = self._inner.get(doc[i].lower_)
            if status:
                return status
        return None

    def _alternative_follows(self, m: Mention, sent: int, starts: list[int], triggers: list[Trigger],
                             trig_sent: list[int]) -> bool:
        """True when "or" / "versus" follows the mention within its clause ("atelectasis or infiltrate")."""
        j, reach = bisect_left(starts, m.end), m.end + self.window["post"]
        while j < len(triggers) and trig_sent[j] == sent and triggers[j].start <= reach:
            roles = triggers[j].roles
            if ("alternative",) in roles:
                return True
            if ("terminate",) in roles or ("pseudo",) in roles or _opens_scope(roles):
                return False
            j += 1
        return False


def _near(alt_starts: list[int], m: Mention) -> bool:
    """Whether an "or" lies within reach of an "A, B, C, or D" list around mention `m`."""
    i = bisect_left(alt_starts, m.start - 4 * _OR_GAP)
    return i < len(alt_starts) and alt_starts[i] <= m.end + 4 * _OR_GAP


# Diagnoses a slash offers as alternatives for one opacity ("atelectasis/pneumonia"). Elsewhere a slash often
# means "and" ("effusions/atelectasis", "cardiomegaly/CHF") or names a finding and its kind ("opacities/
# atelectasis": the opacity is there), so it joins only these, of two classes (one class names it either way).
_SLASH_ALTERNATIVES = frozenset({"Atelectasis", "Pneumonia", "Consolidation", "Edema"})


def _slash_joined(doc: Doc, mentions: list[Mention], sent_of: list[int], mi: int) -> bool:
    """True when a slash stands right between mention `mi` and the finding before or after it, both diagnoses
    of `_SLASH_ALTERNATIVES` and of different classes ("atelectasis/pneumonia")."""
    def joined(a: Mention, b: Mention) -> bool:
        return (b.start == a.end + 1 and doc[a.end].text == "/" and bool(a.classes) and bool(b.classes)
                and set(a.classes) != set(b.classes) and set(a.classes) | set(b.classes) <= _SLASH_ALTERNATIVES)

    m = mentions[mi]
    return (mi > 0 and sent_of[mi - 1] == sent_of[mi] and joined(mentions[mi - 1], m)) or (
        mi + 1 < len(mentions) and sent_of[mi + 1] == sent_of[mi] and joined(m, mentions[mi + 1]))


def _or_joined(doc: Doc, mentions: list[Mention], sent_of: list[int], mi: int, starts: list[int],
               triggers: list[Trigger]) -> bool:
    """True when "or" / "and/or" joins mention `mi` to the finding before or after it in its sentence, with only
    a few plain words between ("atelectasis or pneumonia", "effusion at the left base or scarring"), or `mi`
    opens a comma list that ", or" closes ("atelectasis, aspiration, or pneumonia")."""
    def gap(a: Mention, b: Mention) -> str | None:
        """How two findings are joined: "or", "," (a comma alone) or None (too far, another frame, the same class:
        "ETT or NG tube" and "mass or nodule" name their class either way)."""
        if b.start - a.end > _OR_GAP or (a.classes and set(a.classes) == set(b.classes)):
            return None
        tokens = [doc[i] for i in range(a.end, b.start)]
        if any((t.is_punct and t.text != ",") or t.is_space for t in tokens):
            return None
        words = [t.lower_ for t in tokens]
        j = bisect_left(starts, a.end)
        alternative = None
        while j < len(triggers) and triggers[j].start < b.start:
            roles = triggers[j].roles
            if alternative is not None and _has(roles, "speculative", ("pre",)):
                j += 1  # "atelectasis or less likely pneumonia": the second is disfavoured, the first one of two
                continue
            if ("alternative",) not in roles or _status(roles, ("pre", "post", "both")):
                return None  # "versus" and hedges decide for themselves; anything else is another frame
            alternative = triggers[j].start
            j += 1
        if alternative is None:
            return "," if words == [","] else None
        if doc[alternative - 1].lower_ == ",":
            return ", or"  # a list's closing ", or" ("atelectasis, aspiration, or pneumonia")
        return "or" if "," not in words else None  # "cardiomegaly, aspiration or pneumonia" is no list of three

    def same(k: int) -> bool:
        return 0 <= k < len(mentions) and sent_of[k] == sent_of[mi]

    m = mentions[mi]
    if same(mi - 1) and gap(mentions[mi - 1], mentions[mi]) in ("or", ", or"):
        return True
    if doc[m.end - 1].lower_ in DESCRIPTIVE and same(mi + 1) and gap(m, mentions[mi + 1]) == ",":
        return False  # "left basilar opacity, atelectasis, edema, or pneumonia": the list is the opacity's
    k = mi  # forward along a comma list to its closing ", or"
    while same(k + 1) and k - mi < 4:
        kind = gap(mentions[k], mentions[k + 1])
        if kind == ", or" or (kind == "or" and k == mi):
            return True
        if kind != ",":
            return False
        k += 1
    return False


_OR_GAP = 6  # tokens between two findings an "or" may join: "effusion at the right base or atelectasis"


def _ends_the_clause_before(doc: Doc, t: Trigger, m: Mention, mentions: list[Mention], sent_of: list[int],
                            mi: int) -> bool:
    """True when trigger `t`, which can also look back, follows the previous finding straight away and a comma
    then parts it from mention `m`: "pneumothorax resolved, effusion persists" (the effusion is not resolved)."""
    k = mi - 1
    if k < 0 or sent_of[k] != sent_of[mi] or not _status(t.roles, ("post",)):
        return False
    prev = mentions[k]
    return t.start - 1 <= prev.end <= t.start and any(doc[i].lower_ == "," for i in range(t.end, m.start))


def _shared_object(doc: Doc, i: int, triggers: list[Trigger]) -> bool:
    """True when the "and" at `i` joins two objects of one resolution or removal ("resolution of the right
    effusion and left atelectasis", "removal of the ETT and right PICC"): no new clause starts there."""
    if doc[i].lower_ != "and" or i + 1 >= len(doc) or doc[i + 1].lower_ not in _SHARED_STARTS:
        return False
    before = [t for t in triggers if t.end <= i and i - t.end <= _SHARED_REACH]
    if not before:
        return False
    t = max(before, key=lambda b: b.end)  # the nearest (the triggers are not in text order yet)
    if any(doc[k].is_punct or doc[k].is_space for k in range(t.end, i)):
        return False
    words = {doc[k].lower_ for k in range(t.start, t.end)}
    if not words & _RESOLUTION_WORDS or (words & _REMOVAL_WORDS and doc[i + 1].lower_ in _SIZE_WORDS):
        return False  # "removal of the chest tube and small pneumothorax": a pneumothorax is not removed
    if any(doc[k].lower_ in _REMAINING for k in range(i + 1, min(i + 4, len(doc)))):
        return False  # "resolution of pneumothorax and small residual effusion": that one is still there
    # the second object has no verb of its own: "resolution of edema and the heart is enlarged" is two clauses
    k = i + 1
    while k < len(doc) and not (doc[k].is_punct or doc[k].is_space or doc[k].lower_ in _CLAUSE_JOINS):
        if doc[k].lower_ in _OWN_VERBS:
            return False
        k += 1
    return True


_SHARED_REACH = 10  # tokens from "resolution of" to the "and"
_SIZE_WORDS = frozenset("mild small minimal trace tiny slight moderate large".split())
_SHARED_STARTS = frozenset("the right left bilateral bibasilar bibasal".split()) | _SIZE_WORDS
_REMOVAL_WORDS = frozenset("removal removed".split())
_RESOLUTION_WORDS = frozenset("resolution resolved resolving clearing cleared resection excision resected".split()) \
    | _REMOVAL_WORDS
_CLAUSE_JOINS = frozenset("and or but with while whereas".split())
_REMAINING = frozenset("residual persistent persisting remaining enlarging increasing new worsening".split())
_OWN_VERBS = frozenset("is are was were has have had remains remain remained persist persists persisted persisting "
                       "continues continue measures measure appears appear seems seem courses terminates "
                       "projects".split())  # a verb of the second object's own clause


def _value_goes_on(doc: Doc, start: int) -> bool:
    """True when the value after a colon has a comma before its sentence ends ("Effusion: resolved on the
    right, persistent on the left"): one word of it does not speak for the finding."""
    for i in range(start, min(start + 20, len(doc))):
        if doc[i].text == ",":
            return True
        if doc[i].text in (".", ";") or doc[i].is_space:
            return False
    return False


def _listed_after_comma(doc: Doc, mentions: list[Mention], sent_of: list[int], mi: int) -> bool:
    """True when mention `mi` follows another finding after a comma: the middle of a list ("consolidation,
    effusion, pneumothorax: none"), which a comma clause does not part from the rest."""
    k = mi - 1
    if k < 0 or sent_of[k] != sent_of[mi] or mentions[mi].start - mentions[k].end > 3:
        return False
    return any(doc[i].text == "," for i in range(mentions[k].end, mentions[mi].start))


def _comma_clause(doc: Doc, start: int, nxt: int, t: Trigger) -> bool:
    """True when a comma, and no "and" / "or", parts the finding ending at `start` from the next one (at `nxt`)
    and no plural verb joins them up to the trigger `t`: "cardiomegaly, edema resolved" is two statements;
    "effusion, edema and pneumothorax are not seen" and "effusion, pneumothorax have resolved" are one list."""
    if doc[t.start].text == ":" or doc[t.start - 1].text == ":":
        return False  # "effusion, pneumothorax: none": a templated list shares its value
    gap = [doc[i].lower_ for i in range(start, t.end)]
    if "," in gap[nxt - start + 1:t.start - start]:
        return False  # "opacity at the left base, atelectasis, has resolved": an aside naming the finding
    return "," in gap[:nxt - start] and not any(w in _LIST_ENDS or w in _PLURAL_VERBS for w in gap)


_LIST_ENDS = frozenset({"and", "or", "nor", "and/or"})
_PLURAL_VERBS = frozenset({"have", "are", "were"})
_CLAUSE_VERBS = frozenset({"is", "are", "was", "were", "has", "have", "had", "remains", "remain", "persists",
                           "persist", "measures"})


def _clause_closed(doc: Doc, start: int, end: int, nxt: int | None) -> bool:
    """True when the words from `start` to `end` hold a verb and, after it, the next finding (at `nxt`) or an "and"
    that starts a new clause: the finding's own clause is done ("is larger and the left pneumothorax has resolved";
    the phrase may hold the verb: "the heart remains enlarged and the edema is gone"), so a trigger at `end` is
    another clause's. After "and", a verb, modal or hedge goes on with the same subject ("has decreased and has
    resolved", "is enlarged and is likely exaggerated by technique"). A list ("pneumonia and effusion have
    resolved") has no verb of its own."""
    verb = False
    for i in range(start, end):
        word = doc[i].lower_
        if verb and (i == nxt or (word == "and" and not _goes_on(doc, i + 1))):
            return True
        verb = verb or word in _CLAUSE_VERBS
    return False


def _goes_on(doc: Doc, i: int) -> bool:
    """The words from token `i` go on with the subject before them: a verb, modal or hedge, perhaps after an adverb
    ("and now has resolved"; not "and now the left has resolved")."""
    while i < len(doc) and doc[i].lower_ in _ADVERBS:
        i += 1
    return i < len(doc) and doc[i].lower_ in _GOES_ON


_GOES_ON = _CLAUSE_VERBS | {"may", "might", "could", "can", "likely", "probably", "possibly", "appears", "appear"}
_ADVERBS = frozenset({"now", "also", "since", "then", "still"})


_IZE = re.compile(r"(?<=[a-z]{3})iz(e|es|ed|ing|ation|ations)\b")


def _british(phrase: str) -> str:
    """The British spelling of a trigger's -ize words ("not visualized" -> "not visualised", "characterization")."""
    return _IZE.sub(r"is\1", phrase)


def _longest_first(found: list[Trigger]) -> tuple[list[Trigger], set[int]]:
    """Non-overlapping triggers, the longest (then leftmost) kept first, and the tokens they take."""
    return non_overlapping(found, key=lambda t: (t.start - t.end, t.start))


# Dictation shorthand: every rule written with "without" also reads "w/o" (one token, or three as spaCy
# splits "W/o"), and "with" beside it "w/" ("atelectasis w/ or w/o pneumonia", "w/o interval change").
_SHORTHAND = {"without": ("without", "w/o", "w / o"), "with": ("with", "w/", "w /")}


def _shorthands(phrase: str) -> set[str]:
    words = phrase.split()
    if "without" not in words:
        return {phrase}
    return {" ".join(p) for p in product(*(_SHORTHAND.get(w, (w,)) for w in words))}


_UNITS = frozenset({"cm", "mm", "centimeter", "centimeters", "millimeter", "millimeters"})
_COMMA_MEASURE = re.compile(r",\s*\d[\d.]*\s*(?:cm|mm|centimet|millimet)", re.IGNORECASE)


def _measured_items(doc: Doc, text: str) -> list[int]:
    """Commas before a measured finding start its own clause, as a size word does ("no consolidation, 2 cm nodule
    in the right upper lobe"); most reports measure nothing, so the text is checked first."""
    if _COMMA_MEASURE.search(text) is None:
        return []
    return [i for i in range(len(doc) - 2) if doc[i].text == "," and doc[i + 1].like_num
            and doc[i + 2].lower_ in _UNITS]


_PLACE_OPENERS = frozenset({"on", "at", "in", "within", "along", "over", "throughout", "near", "or", "and"})


def side_closing_place(doc: Doc, i: int) -> bool:
    """Token `i` is the side of "on / at / in (or / and) the left": a place that ends its phrase and belongs
    to the finding before it, not an adjective of the next one ("resolution of the small, left effusion" is
    one finding). Shared by the clause breaks here and the modifier links of `radlabel.relations`."""
    return (doc[i].lower_ in ("left", "right") and i > 1 and doc[i - 1].lower_ == "the"
            and doc[i - 2].lower_ in _PLACE_OPENERS)


def _stands_alone(doc: Doc, i: int) -> bool:
    """False for a hyphen inside a word ("right-sided", "air-space"): no space on either side."""
    return doc[i].text != "-" or bool(doc[i].whitespace_) or (i > 0 and bool(doc[i - 1].whitespace_))


_LIST_JOINS = frozenset({",", "or", "and", "nor", "/", "and/or"})
_LIST_OTHER_WORDS = 4  # words beside findings and joins that a list may hold ("focal", "suspicious")
_LIST_REACH = 2  # ... and a list extends a negation's window at most this many times over


def _listed_tokens(doc: Doc | None, mentions: list[Mention], mstarts: list[int], start: int, end: int) -> int:
    """How many tokens in [start, end) are findings (`mentions`, sorted, starting at `mstarts`) or the commas
    and "or"s that join them."""
    first = max(0, bisect_left(mstarts, start) - 1)
    last = bisect_left(mstarts, end)
    covered = sum(max(0, min(m.end, end) - max(m.start, start)) for m in mentions[first:last])
    if doc is not None:
        covered += sum(doc[i].lower_ in _LIST_JOINS for i in range(start, end))
    return covered


def _new_clause_between(doc: Doc, start: int, end: int, own_end: int) -> bool:
    """True when a ", and" in [start, end) starts a new clause rather than the last item of a list, so a trigger
    before it does not reach the finding at [end, own_end): an "or" already closed the list ("no A, B, or C, and
    patchy opacity"; not "no focal or multifocal consolidation, ..., and fracture"), or the finding comes with a
    verb or a description of its own ("..., and there is cardiomegaly", "..., and cardiomegaly is again noted",
    "..., and cardiomegaly, unchanged"). "No consolidation, effusion, ..., and acute fracture" is one list."""
    commas_since_or = None
    for i in range(start, end):
        word = doc[i].lower_
        if word == "and" and i > start and doc[i - 1].text == ",":
            if commas_since_or is not None and commas_since_or <= 1:
                return True
            if any(doc[k].lower_ in _STATING for k in range(i + 1, own_end)) or _described(doc, own_end):
                return True
        if word in ("or", "nor"):
            commas_since_or = 0
        elif word == "," and commas_since_or is not None:
            commas_since_or += 1
    return False


def _described(doc: Doc, i: int) -> bool:
    """The words from token `i` (just after a finding) say something about it: "is again noted", ", unchanged",
    "which has increased", "in good position"."""
    if i < len(doc) and doc[i].text == ",":
        i += 1
    if i >= len(doc):
        return False
    word = doc[i].lower_
    return word in _STATING or word in _DESCRIBING or (
        word == "in" and i + 1 < len(doc) and doc[i + 1].lower_ in _IN_POSITION)


_STATING = _CLAUSE_VERBS | {"appears", "appear", "seems", "seem"}
_DESCRIBING = frozenset({"which", "that", "unchanged", "stable", "intact", "again"})
_IN_POSITION = frozenset({"place", "good", "satisfactory", "standard", "appropriate", "expected", "unchanged"})


# The role lookups below take a trigger's (hashable) role set and run for every trigger-mention
# pair; there are only a few dozen distinct role sets, so memoizing them is a cheap ~10% speed-up.
@cache
def _status(roles: frozenset, directions: tuple[str, ...]) -> str | None:
    """The status a trigger gives in the allowed directions (hedges outrank negation)."""
    for cat in ("speculative", "possible", "uncertain", "negation", "hypothetical", "limitation"):
        if _has(roles, cat, directions):
            return _CATEGORY_STATUS[cat]
    return None


@cache
def _hypothetical(roles: frozenset) -> str:
    """CAVEAT when the deciding trigger is a limit of the exam, else HYPOTHETICAL."""
    return CAVEAT if _has(roles, "limitation", _DIRECTIONS) else HYPOTHETICAL


@cache
def _has(roles: frozenset, category: str, directions: tuple[str, ...]) -> bool:
    return any((category, d) in roles for d in directions)


@cache
def _opens_scope(roles: frozenset) -> bool:
    """True for triggers that govern the words after them ("may represent", "no")."""
    return any(len(r) == 2 and r[1] == "pre" for r in roles)
