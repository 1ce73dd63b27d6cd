"""Stage 7: the RadGraph-style report graph and its conversions (networkx, RadGraph JSON).

Entities use RadGraph labels: ``ANAT-DP`` (anatomy), ``OBS-DP`` (observation present), ``OBS-U``
(uncertain), ``OBS-DA`` (absent); relations are ``located_at``, ``modify`` and ``suggestive_of``.
Token indices are inclusive at both ends, as in RadGraph; character offsets point into ``text``
(the original report).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from radlabel.errors import RadlabelError

if TYPE_CHECKING:
    import networkx as nx

# The stdlib fallback of compact_json, with the same output: compact, non-ASCII kept as is; graphs hold only
# plain dicts and lists, so no cycle check is needed.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def compact_json(obj: Any) -> str:
    """Compact JSON text (non-ASCII kept as is). orjson encodes a report graph in 3 us where the stdlib takes
    28 us, about 8% of labelling a report with its graph; what orjson refuses (an int beyond 64 bits, a lone
    surrogate) goes through the stdlib."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(obj)

__all__ = ["Entity", "ReportGraph", "LABELS", "RELATIONS"]

LABELS = ("ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA")
RELATIONS = ("located_at", "modify", "suggestive_of")
_LETTER = re.compile(r"[^\W\d_]")  # a letter of any script


@dataclass(slots=True)  # about 11 per report: slots make them faster to build and smaller
class Entity:
    """One RadGraph entity; ``classes`` are the schema classes an observation counts for."""

    id: str
    tokens: str
    label: str
    start_ix: int
    end_ix: int
    char_start: int
    char_end: int
    section: str | None
    sentence: int
    relations: list[tuple[str, str]] = field(default_factory=list)
    classes: tuple[str, ...] = ()
    modifier: bool = False
    # present / absent / uncertain / hypothetical / caveat for observations ("" for anatomy); hypothetical
    # mentions ("evaluate for pneumonia") are labelled OBS-U but never counted as labels, nor are caveats
    # ("radiographs are insensitive for rib fractures"), which also leave a normal report No Finding.
    assertion: str = ""


# the optional entity fields of radlabel's own JSON, with the types `Entity` gives them
_OPTIONAL_FIELDS = {"tokens": ((str,), "text"), "char_start": ((int,), "an integer"),
                    "char_end": ((int,), "an integer"), "section": ((str, type(None)), "text or null"),
                    "classes": ((list, tuple), "a list of class names"), "modifier": ((bool,), "true or false"),
                    "assertion": ((str,), "text")}


def _check_fields(eid: Any, raw: dict[str, Any]) -> None:
    """A RadlabelError naming the first optional field of entity ``eid`` that has the wrong type."""
    for key, (kinds, what) in _OPTIONAL_FIELDS.items():
        value = raw.get(key)
        if key not in raw or (isinstance(value, kinds) and not (kinds == (int,) and isinstance(value, bool))):
            continue
        raise RadlabelError(f"Entity {eid!r} has {key!r} {value!r}; it must be {what}.")
    if not all(isinstance(c, str) for c in raw.get("classes", ())):
        raise RadlabelError(f"Entity {eid!r} has 'classes' {raw['classes']!r}; it must be a list of class names.")


@dataclass
class ReportGraph:
    """Entities and relations of one report.

    ``sections`` maps a section name to its ``[start, end]`` character spans in ``text``;
    ``sentences`` lists the ``[start, end]`` spans of the sentences that were analysed.
    """

    text: str
    tokens: list[str]
    entities: list[Entity]
    sections: dict = field(default_factory=dict)
    sentences: list = field(default_factory=list)

    def has_words(self) -> bool:
        """True when an analysed sentence holds a letter (not only headers, punctuation or numbers)."""
        return any(_LETTER.search(self.text, a, b) for a, b in self.sentences)

    def entity(self, entity_id: str) -> Entity:
        """The entity with this id (RadlabelError when absent)."""
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise RadlabelError(f"No entity with id {entity_id!r}; ids are {[e.id for e in self.entities]}.")

    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph: one node per entity id (entity fields as attributes), edges carry ``relation``.

        Attributes are plain text, numbers and booleans, so ``nx.write_graphml`` / ``write_gexf`` take the
        graph as it is: ``classes`` is one ``"; "``-joined string ("" for none), and a field that is None
        (no section, no offsets in imported RadGraph data) is left out."""
        import networkx as nx  # only this conversion needs it; a corpus run's parent process never does

        g = nx.DiGraph()
        for e in self.entities:
            fields = dict(
                tokens=e.tokens, label=e.label, start_ix=e.start_ix, end_ix=e.end_ix, char_start=e.char_start,
                char_end=e.char_end, section=e.section, sentence=e.sentence, classes="; ".join(e.classes),
                modifier=e.modifier, assertion=e.assertion,
            )
            g.add_node(e.id, **{k: v for k, v in fields.items() if v is not None})
        for e in self.entities:
            for rel, target in e.relations:
                g.add_edge(e.id, target, relation=rel)
        return g

    def to_radgraph(self) -> dict:
        """The RadGraph JSON dict: ``{"text", "entities": {id: {tokens, label, start_ix, end_ix, relations}}}``."""
        return {
            "text": " ".join(self.tokens),
            "entities": {
                e.id: {
                    "tokens": e.tokens, "label": e.label, "start_ix": e.start_ix, "end_ix": e.end_ix,
                    "relations": [[r, t] for r, t in e.relations],
                }
                for e in self.entities
            },
        }

    def to_json(self) -> str:
        """One JSON line: the RadGraph dict plus radlabel extras (classes, sections, offsets)."""
        d = self.to_radgraph()
        for e in self.entities:
            d["entities"][e.id].update(
                classes=list(e.classes), section=e.section, sentence=e.sentence, char_start=e.char_start,
                char_end=e.char_end, modifier=e.modifier, assertion=e.assertion,
            )
        d["report"] = self.text
        d["sections"] = self.sections
        d["sentences"] = self.sentences
        return compact_json(d)

    @classmethod
    def from_radgraph(cls, d: dict[str, Any]) -> ReportGraph:
        """Build a graph from a RadGraph dict (also accepts ``to_json`` output and ``labeler_1`` nesting)."""
        if not isinstance(d, dict):
            raise RadlabelError("A RadGraph document must be a dict with 'text' and 'entities'.")
        if "entities" not in d and isinstance(d.get("labeler_1"), dict):
            d = {**d, **d["labeler_1"]}
        if "text" not in d or "entities" not in d:
            missing = [k for k in ("text", "entities") if k not in d]
            raise RadlabelError(f"A RadGraph document needs the keys 'text' and 'entities'; missing {missing}.")
        for key, kinds, what in (("text", (str,), "text"), ("report", (str,), "text"),
                                 ("sections", (dict,), "a dict of section name -> [start, end] spans"),
                                 ("sentences", (list,), "a list of [start, end] spans")):
            if key in d and not isinstance(d[key], kinds):
                raise RadlabelError(f"The RadGraph document's {key!r} must be {what}, not {type(d[key]).__name__}.")
        tokens = d["text"].split(" ") if d["text"] else []
        # Character offsets of each token in the space-joined text.
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t) + 1
        if not isinstance(d["entities"], dict):
            raise RadlabelError(
                f"'entities' must be a dict of entity id -> entity, not {type(d['entities']).__name__}."
            )
        entities = []
        for eid, raw in d["entities"].items():
            if not isinstance(raw, dict):
                raise RadlabelError(f"Entity {eid!r} must be a dict, not {type(raw).__name__}.")
            s, e, label = raw.get("start_ix"), raw.get("end_ix"), raw.get("label")
            # bool is an int subclass; a float such as 0.7 would be truncated silently
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (s, e)) or label is None:
                raise RadlabelError(f"Entity {eid!r} needs integer 'start_ix', 'end_ix' and a 'label'.")
            if label not in LABELS:
                raise RadlabelError(f"Entity {eid!r} has label {label!r}; valid labels are {', '.join(LABELS)}.")
            if not 0 <= s <= e < len(tokens):
                raise RadlabelError(f"Entity {eid!r} spans tokens {s}..{e}, outside the {len(tokens)} tokens.")
            sentence = raw.get("sentence", 0)
            if not isinstance(sentence, int) or isinstance(sentence, bool):
                raise RadlabelError(f"Entity {eid!r} has 'sentence' {sentence!r}; it must be an integer.")
            relations = raw.get("relations", [])
            if not isinstance(relations, list):
                raise RadlabelError(f"Entity {eid!r} has 'relations' {relations!r}; it must be a list.")
            for rel in relations:
                if not isinstance(rel, (list, tuple)) or len(rel) != 2:
                    raise RadlabelError(f"Entity {eid!r} has relation {rel!r}; a relation is [name, target id].")
                if rel[0] not in RELATIONS:
                    raise RadlabelError(
                        f"Entity {eid!r} has relation {rel[0]!r}; valid relations are {', '.join(RELATIONS)}."
                    )
            _check_fields(eid, raw)
            cs = raw.get("char_start", offsets[s])
            ce = raw.get("char_end", offsets[e] + len(tokens[e]))
            entities.append(
                Entity(
                    id=str(eid), tokens=raw.get("tokens", " ".join(tokens[s : e + 1])), label=label,
                    start_ix=s, end_ix=e, char_start=cs, char_end=ce, section=raw.get("section"),
                    sentence=sentence, relations=[(r, str(t)) for r, t in relations],
                    classes=tuple(raw.get("classes", ())), modifier=bool(raw.get("modifier", False)),
                    assertion=raw.get("assertion", ""),
                )
            )
        ids = {e.id for e in entities}
        for e in entities:
            for r, t in e.relations:
                if t not in ids:
                    raise RadlabelError(f"Entity {e.id!r} has a {r!r} relation to unknown entity {t!r}.")
        text = d.get("report", d["text"])
        return cls(
            text=text, tokens=tokens, entities=entities, sections=d.get("sections", {}),
            sentences=d.get("sentences", []),
        )
