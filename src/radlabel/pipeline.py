"""The report pipeline: normalize -> sections -> sentences -> mentions -> assertion -> relations ->
graph -> labels. Everything that can be compiled (phrase matchers, regexes) is built once in
``Pipeline.__init__``; ``parse`` is a few linear passes over the report.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.attrs import IDX
from spacy.symbols import ORTH

from radlabel.aggregate import aggregate
from radlabel.assertion import ABSENT as S_ABSENT
from radlabel.assertion import CAVEAT, HYPOTHETICAL, PRESENT, UNCERTAIN, ContextEngine
from radlabel.errors import RadlabelError
from radlabel.graph import Entity, ReportGraph
from radlabel.mentions import ABSENT, ANATOMY, MODIFIER, MentionMatcher
from radlabel.normalize import normalize
from radlabel.relations import BARE_HEDGES, MODIFY, PLACE_MODIFIERS, find_relations
from radlabel.schema import Schema, load_schema, schema_cache_key
from radlabel.sections import SECTION_NAMES, check_sections, find_sections
from radlabel.sentences import split_sentences

__all__ = ["Pipeline", "parse", "get_pipeline", "SECTION_NAMES"]

log = logging.getLogger(__name__)

_ORTH_IDX = [ORTH, IDX]
_STATUS_LABEL = {PRESENT: "OBS-DP", S_ABSENT: "OBS-DA", UNCERTAIN: "OBS-U", HYPOTHETICAL: "OBS-U", CAVEAT: "OBS-U"}


def _negated_suggestions(doc, mentions, msent, links, lsent, status: dict, absent: set) -> set[int]:
    """Diagnoses that a negated finding would have suggested are absent too ("no focal consolidation concerning
    for pneumonia", "no nodules suspicious for malignancy": NegBio passes the negation on), not uncertain.
    Only a linking phrase right after the negated finding counts: a bare hedge after a comma is a new clause
    ("no pneumothorax, likely atelectasis"), and a finding present before it in the sentence is the one that
    suggests ("opacity without effusion, concerning for pneumonia")."""
    out = set()
    starts = [m.start for m in mentions]
    for t, ts in zip(links, lsent, strict=True):
        if t.end - t.start == 1 and doc[t.start].lower_ in BARE_HEDGES:
            continue
        k = bisect_left(starts, t.start) - 1
        while k >= 0 and mentions[k].kind == MODIFIER:
            k -= 1
        if k < 0 or k not in absent or msent[k] != ts or t.start - mentions[k].end > 1 \
                or any(doc[i].is_punct for i in range(mentions[k].end, t.start)):
            continue
        j = k - 1
        while j >= 0 and msent[j] == ts and status.get(j) not in (PRESENT, UNCERTAIN):
            j -= 1
        if j >= 0 and msent[j] == ts:
            continue  # "opacity without effusion concerning for pneumonia": the opacity is what suggests it
        b = bisect_left(starts, t.end)
        while b < len(mentions) and mentions[b].kind in (MODIFIER, ANATOMY):
            b += 1
        if b < len(mentions) and msent[b] == ts and mentions[b].start - t.end <= 2 \
                and status.get(b) in (UNCERTAIN, HYPOTHETICAL):
            status[b] = S_ABSENT
            out.add(b)
    return out


@lru_cache(maxsize=1)
def _blank_nlp():
    nlp = spacy.blank("en")
    nlp.max_length = 10**9  # the tokenizer is linear; we only ever call make_doc
    rules = {k: v for k, v in nlp.tokenizer.rules.items() if k not in _WORDS_NOT_ABBREVIATIONS}
    nlp.tokenizer.rules = _with_case_variants(rules)
    return nlp


_LINE_BREAKS = str.maketrans({"\u2028": "\n", "\u2029": "\n", "\x85": "\n"})

# spaCy keeps US state abbreviations whole ("Mass." for Massachusetts): in a report they are words ending a
# sentence, and "IMPRESSION: Mass." lost its finding (read as No Finding)
_WORDS_NOT_ABBREVIATIONS = frozenset({"Mass.", "Ill.", "Wash.", "Miss."})


def _with_case_variants(rules: dict) -> dict:
    """spaCy's English exceptions split "cannot", "can't", "isn't" and keep "vs." whole, but not "CANNOT",
    "CAN'T", "ISN'T" or "VS.": all-caps reports lost their negations and hedges. Adds the upper-case and
    capitalised spelling of each lower-case exception, cut into the same pieces."""
    out = dict(rules)
    for text, pieces in rules.items():
        if text != text.lower() or not any(c.isalpha() for c in text):
            continue
        for variant in (text.upper(), text[:1].upper() + text[1:]):
            if variant in out or len(variant) != len(text):
                continue
            cut, i = [], 0
            for piece in pieces:
                n = len(piece[ORTH])
                cut.append({**piece, ORTH: variant[i : i + n]})
                i += n
            out[variant] = cut
    return out


@lru_cache(maxsize=16)
def _mention_matcher(schema: Schema) -> MentionMatcher:
    # Compiling ~20k phrases is the slow part of a Pipeline; share it across section choices.
    nlp = _blank_nlp()
    # class-less findings count only for a strict No Finding: otherwise they would cost ~110 MB for nothing
    strict = schema.no_finding is not None and schema.no_finding_rule == "strict"
    background = tuple(load_schema(name) for name in schema.other_findings_from) if strict else ()
    return MentionMatcher(nlp.vocab, schema, nlp.tokenizer, background=background)


@lru_cache(maxsize=1)
def _context_engine() -> ContextEngine:
    nlp = _blank_nlp()
    return ContextEngine(nlp.vocab, nlp.tokenizer)


class Pipeline:
    """Report text -> :class:`ReportGraph` -> labels for one schema and a choice of sections."""

    def __init__(self, schema: str | Path | Schema = "chexpert", sections=("findings", "impression")):
        self.schema: Schema = load_schema(schema)
        self.sections: tuple[str, ...] | None = check_sections(sections)
        self._make_doc = _blank_nlp().make_doc
        self._mentions = _mention_matcher(self.schema)
        self._context = _context_engine()
        log.debug("Pipeline ready: schema=%s sections=%s", self.schema.name, self.sections)

    def __reduce__(self):
        # Rebuild from (schema, sections) in the receiving process instead of pickling matchers and vocab.
        return (Pipeline, (self.schema, self.sections))

    def __repr__(self) -> str:
        return f"Pipeline(schema={self.schema.name!r}, sections={self.sections!r})"

    def label(self, text: str) -> dict[str, float]:
        """Class name -> 1.0 / 0.0 / -1.0 / nan for one report."""
        return aggregate(self.parse(text), self.schema)

    def parse(self, text: str) -> ReportGraph:
        """The graph of one report (entities only from the selected sections)."""
        if not isinstance(text, str):
            raise RadlabelError(f"A report must be a str, not {type(text).__name__}.")
        text = str(text)  # a str subclass (numpy's str_) is what spaCy's tokenizer refuses
        # Unicode line and paragraph separators (and NEL) are line breaks: sections are found by lines. One
        # character for one keeps every offset (and an ASCII report, nearly all, has none: translate costs ~2 %).
        norm = normalize(text if text.isascii() else text.translate(_LINE_BREAKS))
        ntext = norm.text
        to_orig = norm.to_original
        secs = find_sections(ntext)
        sections: dict[str, list[list[int]]] = {}
        for s in secs:
            sections.setdefault(s.name, []).append([to_orig(s.start), to_orig(s.end, end=True)])
        wanted = self.sections
        sent_spans: list[tuple[int, int]] = []
        sent_section: list[str] = []
        for s in secs:
            if wanted is None or s.name in wanted:
                for span in split_sentences(ntext, s.start, s.end):
                    sent_spans.append(span)
                    sent_section.append(s.name)
        doc = self._make_doc(ntext)
        graph_sentences = [[to_orig(a), to_orig(b, end=True)] for a, b in sent_spans]
        # each token's text and character start, read from the doc's arrays once: a Token object per look-up
        # is what costs
        strings = doc.vocab.strings
        orth_idx = doc.to_array(_ORTH_IDX).tolist()
        doc_tokens = [strings[orth] for orth, _ in orth_idx]
        tok_start = [idx for _, idx in orth_idx]
        if not sent_spans or not doc_tokens:
            return ReportGraph(text, _tokens(doc_tokens)[0], [], sections, graph_sentences)
        sent_starts = [a for a, _ in sent_spans]

        def sentence_of(first: int, end: int) -> int:
            """Sentence index of a token span, or -1 when it is outside the analysed sentences."""
            k = bisect_right(sent_starts, tok_start[first]) - 1
            if k < 0:
                return -1
            return k if tok_start[end - 1] + len(doc_tokens[end - 1]) <= sent_spans[k][1] else -1

        def in_sentences(items: list) -> tuple[list, list[int]]:
            """The mentions / triggers inside the analysed sentences, and the sentence of each."""
            kept, sents = [], []
            for t in items:
                k = sentence_of(t.start, t.end)
                if k >= 0:
                    kept.append(t)
                    sents.append(k)
            return kept, sents

        mentions, msent = in_sentences(self._mentions(doc))
        if not mentions:
            return ReportGraph(text, _tokens(doc_tokens)[0], [], sections, graph_sentences)
        found, found_links = self._context.triggers_and_links(doc, ntext)
        triggers, tsent = in_sentences(found)
        links, lsent = in_sentences(found_links)
        obs_idx = [i for i, m in enumerate(mentions) if m.kind not in (ANATOMY, MODIFIER, ABSENT)]
        # "cardiomegaly, pulmonary vascularity within normal limits": that trigger is the unmention's own
        unmentions = [(m.start, m.end) for m in mentions if m.kind == ABSENT]
        owned: frozenset[int] = frozenset()
        if unmentions:  # triggers are in start order: each unmention's lie in one slice of them
            starts = [t.start for t in triggers]
            owned = frozenset(k for a, b in unmentions for k in range(bisect_left(starts, a), bisect_left(starts, b))
                              if triggers[k].end <= b)
        statuses = self._context.assign([mentions[i] for i in obs_idx], [msent[i] for i in obs_idx], triggers, tsent,
                                        doc, owned)
        status = dict(zip(obs_idx, statuses, strict=True))
        tokens, remap = _tokens(doc_tokens)
        absent = {i for i, st in status.items() if st == S_ABSENT} | {i for i, m in enumerate(mentions) if m.kind == ABSENT}
        if links and absent:
            absent |= _negated_suggestions(doc, mentions, msent, links, lsent, status, absent)
        # the sentences that may list alternatives ("or", "versus"; any sentence when a "/" may join two)
        alternatives = None if "/" in ntext else {k for t, k in zip(triggers, tsent, strict=True)
                                                  if ("alternative",) in t.roles}
        rels = find_relations(mentions, msent, links, lsent, doc, absent=absent, alternatives=alternatives)
        # a modifier that qualifies nothing ("lateral" of "PA and lateral views", "acute" of "no acute findings")
        # is no entity: alone it would read as a present observation
        modifying = {src for src, rel, _ in rels if rel == MODIFY}
        kept = [i for i, m in enumerate(mentions) if m.kind != MODIFIER or i in modifying]
        ids = {i: str(n + 1) for n, i in enumerate(kept)}
        entity_of: dict[int, Entity] = {}
        entities = []
        for i in kept:
            m = mentions[i]
            if m.kind == ANATOMY:
                label, assertion = "ANAT-DP", ""
            elif m.kind == ABSENT:
                label, assertion = "OBS-DA", S_ABSENT
            elif m.kind == MODIFIER:
                label, assertion = "OBS-DP", ""
            else:
                assertion = status[i]
                label = _STATUS_LABEL[assertion]
            s_ix = remap[m.start] if remap else m.start
            e_ix = remap[m.end - 1] if remap else m.end - 1
            entity_of[i] = Entity(
                id=ids[i], tokens=" ".join(tokens[s_ix : e_ix + 1]), label=label, start_ix=s_ix, end_ix=e_ix,
                char_start=to_orig(tok_start[m.start]),
                char_end=to_orig(tok_start[m.end - 1] + len(doc_tokens[m.end - 1]), end=True),
                section=sent_section[msent[i]], sentence=msent[i], relations=[],
                classes=m.classes, modifier=m.kind == MODIFIER, assertion=assertion,
            )
            entities.append(entity_of[i])
        for src, rel, tgt in rels:
            entity_of[src].relations.append((rel, ids[tgt]))
            if rel == MODIFY:
                # A modifier shares the assertion of what it modifies ("no new effusion"); a side or position
                # of a place is anatomy ("the left seventh rib"), as RadGraph labels it, but "stable" of "stable
                # cardiomediastinal silhouette" stays an observation.
                target = entity_of[tgt].label
                if target != "ANAT-DP" or entity_of[src].tokens.lower() in PLACE_MODIFIERS:
                    entity_of[src].label = target
        return ReportGraph(text, tokens, entities, sections, graph_sentences)


def _tokens(texts: list[str]) -> tuple[list[str], list[int] | None]:
    """The doc's token texts without whitespace tokens, and the doc-index -> token-index map when they differ."""
    if not any(map(str.isspace, texts)):
        return texts, None
    remap, out = [], []
    for t in texts:
        remap.append(len(out))
        if not t.isspace():
            out.append(t)
    return out, remap


@lru_cache(maxsize=16)
def _cached(key, sections, schema) -> Pipeline:
    return Pipeline(schema, sections)


def get_pipeline(schema: str | Path | Schema = "chexpert", sections=("findings", "impression")) -> Pipeline:
    """A Pipeline shared per (schema, sections): compiling matchers is the expensive part."""
    key_sections = sections if sections is None or isinstance(sections, str) else tuple(sections)
    try:
        return _cached(schema_cache_key(schema), key_sections, schema)
    except TypeError:  # unhashable input: build it uncached (and let validation explain)
        return Pipeline(schema, sections)


def parse(text: str, schema: str | Path | Schema = "chexpert", sections=("findings", "impression")) -> ReportGraph:
    """Parse one report with a cached :class:`Pipeline`."""
    return get_pipeline(schema, sections).parse(text)
