"""Stage 6: RadGraph relations between mentions of one sentence.

* ``located_at``: observation -> the nearest anatomy within a few tokens ("opacity in the right
  lower lobe", "right lower lobe opacity"), not across another observation, a clause joint ("and",
  "with", ";") or, for an anatomy before the observation, a comma ("effusion at the left base,
  opacity at the right base"); an anatomy right before the next observation is that one's
  ("effusion, right lower lobe opacity").
* ``modify``: modifier -> the observation it qualifies ("small left effusion", "increased ...
  opacity", "right [lung is clear]"); skipping over anatomy and other modifiers; else the adjacent anatomy.
* ``suggestive_of``: observation -> observation across a linking phrase ("opacity, concerning for
  infection"; "consistent with", "may represent"), and each alternative listed after it ("atelectasis,
  aspiration, or pneumonia"), not a separate finding joined by "and"; a finding given as absent suggests nothing.
  A differential after a comma ("opacity, atelectasis versus pneumonia") is suggested by the finding before
  it; alternatives never suggest each other.

Every search looks only a bounded number of mentions away, so the cost stays linear.
"""

from __future__ import annotations

from bisect import bisect_left

from spacy.tokens import Doc

from radlabel.assertion import Trigger, side_closing_place
from radlabel.mentions import ABSENT, ANATOMY, DESCRIPTIVE, MODIFIER, OBSERVATION, OTHER, Mention

__all__ = ["BARE_HEDGES", "find_relations", "LOCATED_AT", "MODIFY", "SUGGESTIVE_OF"]

LOCATED_AT, MODIFY, SUGGESTIVE_OF = "located_at", "modify", "suggestive_of"
_OBS = (OBSERVATION, OTHER)
LOCATION_GAP = 4  # tokens allowed between an observation and its anatomy ("in the left")
_DIFFERENTIAL_REACH = 8  # tokens from a finding to the differential after its comma (places between included)
_MEASURE_GAP = 4  # more when a distance stands between ("ETT tip is 4 cm above the carina")
MODIFIER_GAP = 2  # free tokens allowed between a modifier and what it modifies
LINK_GAP = 6  # tokens allowed on each side of a suggestive_of phrase
_LIST_WORDS = frozenset({",", "and", "or", "/", "and/or", "versus", "vs", "vs."})
_PLACE_WORDS = frozenset({"in", "at", "within", "along", "over", "throughout", "near"})
_SIDES = frozenset({"right", "left", "upper", "lower", "middle", "mid"})
_JOINTS = frozenset({";", "and", "with", "but", "or", "while", "whereas", "although", "plus"})
_ALTERNATIVE = frozenset({"or", "/", "and/or", "versus", "vs", "vs."})
BARE_HEDGES = frozenset({"likely", "probably", "possibly", "presumably"})  # a one-word link that is also a hedge
_RANKING = BARE_HEDGES | {"less", "more", "most", "atypical"}  # "atelectasis or less likely pneumonia", "or atypical pneumonia"
_WHOLE_LIST_LINKS = frozenset({"consistent", "compatible", "suggestive", "in", "findings"})  # "in keeping with"
_HEDGE_GAP = _PLACE_WORDS | {",", "the", "of"}  # what may lie between a finding and a bare hedge that links it
# The lexicon's laterality / position modifiers (its last `modifiers` line): on a place they are anatomy
# ("the left seventh rib"); other modifiers stay observations ("stable cardiomediastinal silhouette").
PLACE_MODIFIERS = frozenset(
    "right left bilateral bilaterally unilateral lower upper middle basilar bibasilar biapical apical basal "
    "peripheral central dependent posterior anterior lateral medial".split())
# Nouns no mention covers that a modifier before them qualifies ("lateral view", "no significant change in",
# "without acute cardiopulmonary findings"): such a modifier qualifies no finding.
_OWN_HEADS = frozenset(
    "view views projection projections radiograph radiographs film films image images study exam examination "
    "change changes difference finding findings process abnormality abnormalities".split())
_PHRASE_ENDS = frozenset("from since to with in of on at and or than compared the a an".split())


def find_relations(
    mentions: list[Mention], sent_of: list[int], links: list[Trigger], link_sent: list[int],
    doc: Doc | None = None, absent: frozenset[int] | set[int] = frozenset(), alternatives: set[int] | None = None,
) -> list[tuple[int, str, int]]:
    """Relations as ``(source_index, relation, target_index)`` into ``mentions`` (in token order), each once.

    ``links``: the phrases that link two observations ("concerning for"; the second list of
    ``ContextEngine.triggers_and_links``), ``link_sent`` their sentences. ``doc``: the tokens the mentions
    index, to see commas and clause joints between them. ``absent``: indices of observations asserted
    absent, which suggest nothing ("no pneumothorax, likely atelectasis"). ``alternatives``: the sentences
    with an "or" / "versus" / "/" (None: any may have one), the only ones searched for differentials.
    """
    rels: list[tuple[int, str, int]] = []
    n = len(mentions)
    for i, m in enumerate(mentions):
        if m.kind in _OBS:
            j = _nearest_anatomy(mentions, sent_of, i, doc)
            if j is not None:
                rels.append((i, LOCATED_AT, j))
                # "atelectasis in the right lower lobe and left lower lobe", "right lower lobe and left lower lobe opacities"
                listed = _listed(mentions, sent_of, j, doc, (ANATOMY,), step=1 if j > i else -1)
                if j < i and listed and _finding_just_before(mentions, sent_of, listed[-1]):
                    listed = []  # "effusion at the right base and left lower lobe atelectasis": the base is taken
                rels.extend((i, LOCATED_AT, k) for k in listed)
        elif m.kind == MODIFIER:
            j = _modified(mentions, sent_of, i, n, doc)
            if j is not None:
                rels.append((i, MODIFY, j))
    if links:
        starts = [m.start for m in mentions]
        for t, ts in zip(links, link_sent, strict=True):
            k = bisect_left(starts, t.end)
            a = _obs_before(mentions, sent_of, k - 1, t.start, ts)
            if a is None or a in absent or not _hedge_reaches(mentions, doc, a, t):
                continue
            b = _obs_after(mentions, sent_of, k, t.end, ts)
            if b is not None:
                sources = [a]
                if doc is not None and any(doc[i].lower_ == "," for i in range(mentions[a].end, t.start)) \
                        and doc[t.start].lower_ in _WHOLE_LIST_LINKS:
                    # "edema and effusions, consistent with CHF": the comma puts the whole list before it
                    sources += [k for k in _listed(mentions, sent_of, a, doc, _OBS, step=-1) if k not in absent]
                targets = [b, *_alternatives(mentions, sent_of, b, doc)]  # "may represent A, B, or C": each
                rels.extend((src, SUGGESTIVE_OF, c) for src in sources for c in targets)
    if doc is not None and (alternatives is None or alternatives):  # most sentences list no alternatives
        rels.extend(_differentials(mentions, sent_of, doc, absent, rels, alternatives))
    # two links can name one pair; RadGraph has no duplicate edges
    return list(dict.fromkeys(rels))


def _differentials(mentions: list[Mention], sent_of: list[int], doc: Doc, absent: frozenset[int] | set[int],
                   rels: list[tuple[int, str, int]], sentences: set[int] | None) -> list[tuple[int, str, int]]:
    """A finding followed, after a comma, by alternatives it may be ("opacity, atelectasis versus pneumonia",
    "left basilar opacity, atelectasis or pneumonia") suggests each of them. The alternatives themselves are
    not linked to each other: one is no evidence for the other."""
    out: list[tuple[int, str, int]] = []
    suggested = {t for _, rel, t in rels if rel == SUGGESTIVE_OF}
    for b in range(1, len(mentions)):
        if mentions[b].kind not in _OBS or (sentences is not None and sent_of[b] not in sentences):
            continue
        a = b - 1
        while a >= 0 and sent_of[a] == sent_of[b] and mentions[a].kind in (MODIFIER, ANATOMY):
            a -= 1
        if a < 0 or sent_of[a] != sent_of[b] or mentions[a].kind not in _OBS or a in absent or a in suggested:
            continue  # "opacity could represent atelectasis, edema, or pneumonia": atelectasis is one of them
        if mentions[b].start - mentions[a].end > _DIFFERENTIAL_REACH:
            continue
        if doc[mentions[a].end - 1].lower_ not in DESCRIPTIVE and b in _alternatives(mentions, sent_of, a, doc):
            continue  # "atelectasis, aspiration, or pneumonia": one list of alternatives, no evidence among them
        gap = [doc[k].lower_ for k in range(mentions[a].end, mentions[b].start)
               if not any(mentions[j].start <= k < mentions[j].end for j in range(a + 1, b))]
        if gap not in ([","], ["-"], [",", "likely"], [",", "probably"], [",", "possibly"]):
            continue
        alts = _alternatives(mentions, sent_of, b, doc)
        if alts:
            out.extend((a, SUGGESTIVE_OF, c) for c in [b, *alts])
            suggested.update([b, *alts])
    return out


def _hedge_reaches(mentions: list[Mention], doc: Doc | None, a: int, link: Trigger) -> bool:
    """False when `link` is a bare hedge ("likely") that does not follow finding `a` closely: it hedges
    what comes next ("cardiomegaly and likely effusion", "pneumothorax is not seen, likely atelectasis").
    Only commas and places may come between ("opacity at the left base, likely atelectasis")."""
    if doc is None or link.end - link.start != 1 or doc[link.start].lower_ not in BARE_HEDGES:
        return True
    words = {i: doc[i].lower_ for i in range(mentions[a].end, link.start)}
    j = a + 1
    while j < len(mentions) and mentions[j].end <= link.start:
        for i in range(mentions[j].start, mentions[j].end):
            words.pop(i, None)
        j += 1
    return all(w in _HEDGE_GAP for w in words.values())


def _alternatives(mentions: list[Mention], sent_of: list[int], b: int, doc: Doc | None) -> list[int]:
    """The observations listed as alternatives after observation `b`: "or", "versus", "and/or" ("atelectasis
    or small effusion", "atelectasis or less likely pneumonia"), and commas when an "or" closes the list
    ("atelectasis, aspiration, or pneumonia", words that are no mention included). A finding joined by "and"
    is a separate one ("pneumonia and small effusions"), so the list stops there."""
    out: list[int] = []
    if doc is None:
        return out
    pending: list[int] = []  # items after commas only, kept once an "or" follows
    words: list[str] = []  # the words since the last item, modifiers and ranking words left out
    edge, k = mentions[b].end, b + 1
    while k < len(mentions) and sent_of[k] == sent_of[b]:
        o = mentions[k]
        words += [doc[j].lower_ for j in range(edge, o.start) if doc[j].lower_ not in _RANKING]
        edge = o.end
        if o.kind != MODIFIER:
            kind = _list_gap(words) if o.kind in _OBS else None
            if kind is None:
                break
            pending.append(k)
            if kind == "or":
                out += pending
                pending = []
            words = []
        k += 1
    return out


def _list_gap(words: list[str]) -> str | None:
    """How two items of a list are joined: "or" (an alternative word among `words`), "," (commas only) or
    None (not a list of alternatives: "and", a clause, nothing). Up to two words that are no mention may
    stand between commas ("atelectasis, aspiration, or pneumonia")."""
    if not words or words[0] not in _LIST_WORDS or words[-1] not in _LIST_WORDS:
        return None
    run = 0
    for w in words:
        run = 0 if w in _LIST_WORDS else run + 1
        if run > 2 or (run and (not w.isalpha() or w in _JOINTS)):
            return None
    if any(w in _ALTERNATIVE for w in words):
        return "or"
    return None if "and" in words else ","


def _listed(mentions: list[Mention], sent_of: list[int], i: int, doc: Doc | None, kinds, step: int = 1) -> list[int]:
    """The mentions of `kinds` listed right after (`step` 1) or before (-1) mention `i` ("A, B, or C",
    "A and B"): only list words (",", "and", "or") and modifiers between them."""
    out: list[int] = []
    if doc is None:
        return out
    edge = mentions[i].end if step > 0 else mentions[i].start  # where the words still to check begin
    joined = False  # a list word since the last item ("or" in "atelectasis or small effusion")
    k = i + step
    while 0 <= k < len(mentions) and sent_of[k] == sent_of[i]:
        o = mentions[k]
        a, b = (edge, o.start) if step > 0 else (o.end, edge)
        gap = [doc[j].lower_ for j in range(a, b)]
        if any(w not in _LIST_WORDS for w in gap):
            break
        joined = joined or bool(gap)
        edge = o.end if step > 0 else o.start
        if o.kind != MODIFIER:
            if o.kind not in kinds or not joined:
                break
            if step > 0 and o.kind == ANATOMY and _owned_by_next(mentions, sent_of, k):
                break  # "effusion at the right base and left lower lobe atelectasis"
            out.append(k)
            joined = False
        k += step
    return out


def _owned_by_next(mentions: list[Mention], sent_of: list[int], k: int) -> bool:
    """True when an observation follows anatomy `k` directly ("right lower lobe opacity")."""
    nxt = mentions[k + 1] if k + 1 < len(mentions) and sent_of[k + 1] == sent_of[k] else None
    return nxt is not None and nxt.kind in _OBS and nxt.start == mentions[k].end


def _finding_just_before(mentions: list[Mention], sent_of: list[int], k: int) -> bool:
    """True when an observation lies a few tokens before mention `k` (modifiers skipped)."""
    start, j = mentions[k].start, k - 1
    while j >= 0 and sent_of[j] == sent_of[k] and start - mentions[j].end <= LOCATION_GAP:
        if mentions[j].kind in _OBS:
            return True
        if mentions[j].kind != MODIFIER:
            return False
        j -= 1
    return False


def _nearest_anatomy(mentions: list[Mention], sent_of: list[int], i: int, doc: Doc | None) -> int | None:
    m, sent = mentions[i], sent_of[i]
    best: tuple[int, int] | None = None
    # After the observation ("opacity in the right lower lobe"); stop at the next observation.
    k = i + 1
    while k < len(mentions) and sent_of[k] == sent:
        o = mentions[k]
        gap = o.start - m.end
        if gap > LOCATION_GAP and not (gap <= LOCATION_GAP + _MEASURE_GAP and doc is not None
                                       and (_measured(doc, m.end, o.start) or _placing(doc, m.end, o.start))):
            break
        if o.kind in _OBS or o.kind == ABSENT:
            break
        if o.kind == ANATOMY:
            # not the next finding's own place ("effusion, right lower lobe opacity")
            if not _owned_by_next(mentions, sent_of, k) and not _crosses(doc, m.end, o.start):
                best = (o.start - m.end, k)
            break
        k += 1
    # Before it ("right lower lobe opacity"); preferred when closer.
    k = i - 1
    while k >= 0 and sent_of[k] == sent:
        o = mentions[k]
        if m.start - o.end > LOCATION_GAP or o.kind in _OBS or o.kind == ABSENT:
            break
        if o.kind == ANATOMY:
            # a place fronted at the clause start reaches over its comma ("In the left lower lobe, there is ...")
            ok = not _crosses(doc, o.end, m.start, comma=True) or (
                not _crosses(doc, o.end, m.start) and _fronted(mentions, sent_of, k, doc))
            if (best is None or m.start - o.end <= best[0]) and ok:
                best = (m.start - o.end, k)
            break
        k -= 1
    return None if best is None else best[1]


def _measured(doc: Doc, start: int, end: int) -> bool:
    """True when a distance stands between two mentions ("tip is 4 cm above the carina")."""
    return any(doc[i].lower_ in ("cm", "mm", "centimeters", "millimeters") for i in range(start, min(end, len(doc))))


# Words of a placing predicate that may stand between a finding and its place ("consolidation is again seen in
# the left lower lobe", "catheter tip terminates in the mid SVC", "pneumonia cannot be excluded in the ...")
_PLACING = frozenset({
    "is", "are", "was", "were", "again", "also", "still", "now", "seen", "noted", "present", "identified",
    "visualized", "demonstrated", "redemonstrated", "tip", "tips", "terminates", "terminating", "ends", "ending",
    "projects", "projecting", "courses", "coursing", "extends", "extending", "lies", "cannot", "can", "n't", "not",
    "be", "excluded", "in", "at", "within", "over", "into", "to", "the", "level", "of", "mid", "low", "high",
    "distal", "proximal", "expected", "region", "its", "junction"})


def _placing(doc: Doc, start: int, end: int) -> bool:
    """True when only the words of a placing predicate stand between two mentions."""
    return all(doc[i].lower_ in _PLACING or _with_its_tip(doc, i) for i in range(start, min(end, len(doc))))


def _fronted(mentions: list[Mention], sent_of: list[int], k: int, doc: Doc | None) -> bool:
    """True when anatomy `k` (or the "and" list it ends) opens its clause after a preposition ("At the left
    base, atelectasis"; "in the left lower lobe and lingula, there is ...")."""
    if doc is None:
        return False
    listed = _listed(mentions, sent_of, k, doc, (ANATOMY,), step=-1)
    i = mentions[listed[-1] if listed else k].start - 1
    if i >= 0 and doc[i].lower_ == "the":
        i -= 1
    if i < 0 or doc[i].lower_ not in _PLACE_WORDS:
        return False
    return i == 0 or doc[i - 1].is_space or doc[i - 1].text in (".", ";", ":")


def _crosses(doc: Doc | None, start: int, end: int, comma: bool = False) -> bool:
    """True when the tokens [start, end) hold a clause joint ("and", "with", ";"), or a comma if asked."""
    if doc is None:
        return False
    for i in range(start, end):
        w = doc[i].lower_
        if _sides_joined(doc, i) or _with_its_tip(doc, i):
            continue  # "at the right and left lung bases" is one place; "catheter with tip in the SVC" one device
        if w in _JOINTS or (comma and w == ","):
            return True
    return False


def _with_its_tip(doc: Doc, i: int) -> bool:
    """True when token `i` is the "with" of "with (its / the) (distal) tip": the place that follows is the device's."""
    if doc[i].lower_ != "with":
        return False
    words = [doc[k].lower_ for k in range(i + 1, min(i + 4, len(doc)))]
    while words and words[0] in ("its", "the", "distal"):
        words.pop(0)
    return bool(words) and words[0] in ("tip", "tips")


def _sides_joined(doc: Doc, i: int) -> bool:
    """True when token `i` is an "and" between two side words ("right and left")."""
    return doc[i].lower_ == "and" and 0 < i < len(doc) - 1 and doc[i - 1].lower_ in _SIDES \
        and doc[i + 1].lower_ in _SIDES


def _modified(mentions: list[Mention], sent_of: list[int], i: int, n: int, doc: Doc | None = None) -> int | None:
    m, sent = mentions[i], sent_of[i]
    if doc is not None and _place_of_the_finding_before(doc, m):
        before = _obs_before(mentions, sent_of, i - 1, m.start, sent)  # "no effusion on the left, small right ..."
        if before is not None:  # else a fronted place: "On the left, small pleural effusion."
            return before
    nxt = mentions[i + 1] if i + 1 < n and sent_of[i + 1] == sent else None
    if doc is not None and nxt is not None and nxt.kind == ANATOMY and nxt.start == m.end + 1 \
            and _sides_joined(doc, m.end):
        return i + 1  # "right and left lower lobe opacities": a side of the place, not of the finding
    if doc is not None:
        limit = nxt.start if nxt is not None else len(doc)
        if limit > m.end and _heads_its_own_noun(doc, m.end, limit):  # most modifiers touch their mention
            return None
    free = 0
    prev_end = m.end
    first_anatomy = None
    k = i + 1
    while k < n and sent_of[k] == sent:
        o = mentions[k]
        free += o.start - prev_end
        if free > MODIFIER_GAP:
            break
        if o.kind in _OBS:
            return k
        if o.kind == ANATOMY and first_anatomy is None:
            first_anatomy = k
        elif o.kind == ABSENT:
            return k  # "the right lung is clear": the side of what is absent
        prev_end = o.end
        k += 1
    if first_anatomy is not None and mentions[first_anatomy].start - m.end <= MODIFIER_GAP:
        return first_anatomy
    # "effusion is small": the observation just before.
    k = i - 1
    while k >= 0 and sent_of[k] == sent and m.start - mentions[k].end <= MODIFIER_GAP:
        if mentions[k].kind in _OBS:
            return k
        if mentions[k].kind not in (MODIFIER,):
            break
        k -= 1
    return None


def _heads_its_own_noun(doc: Doc, end: int, limit: int) -> bool:
    """A modifier ending at ``end`` qualifies a noun of its own before the next mention (at ``limit``)."""
    for k in range(end, min(limit, end + MODIFIER_GAP + 1)):
        word = doc[k].lower_
        if word in _OWN_HEADS:
            return True
        if not word.isalpha() or word in _PHRASE_ENDS:
            return False  # "unchanged from the prior exam": the exam is not what is unchanged
    return False


def _place_of_the_finding_before(doc: Doc, m: Mention) -> bool:
    """A side that closes a place phrase ("on the left," / "at the right."): it qualifies the finding before it,
    not the next one."""
    if m.end - m.start != 1 or not side_closing_place(doc, m.start):
        return False
    return m.end == len(doc) or doc[m.end].is_punct or doc[m.end].lower_ in _JOINTS


def _obs_before(mentions: list[Mention], sent_of: list[int], k: int, limit: int, sent: int) -> int | None:
    while k >= 0 and sent_of[k] == sent and limit - mentions[k].end <= LINK_GAP:
        if mentions[k].end <= limit and mentions[k].kind in _OBS:
            return k
        k -= 1
    return None


def _obs_after(mentions: list[Mention], sent_of: list[int], k: int, limit: int, sent: int) -> int | None:
    while k < len(mentions) and sent_of[k] == sent and mentions[k].start - limit <= LINK_GAP:
        if mentions[k].kind in _OBS:
            return k
        k += 1
    return None
