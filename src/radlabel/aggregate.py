"""Stage 8: collapse a report graph into one value per schema class.

``1`` present, ``0`` absent, ``-1`` uncertain, NaN not mentioned; positive beats uncertain beats
absent. Hypothetical mentions ("evaluate for pneumonia", "may represent atelectasis or pneumonia")
never count for their class, nor do caveats, what the exam may miss ("radiographs are insensitive for rib
fractures"), which do not keep a report from No Finding either. No Finding follows CheXpert: ``1`` only when no pathology class is
present or uncertain (classes in ``no_finding_ignore``, e.g. Support Devices, excepted), no other
finding outside the schema (granuloma, scoliosis, ...) is asserted and nothing is raised as a
possibility; otherwise blank.
"""

from __future__ import annotations

import math

from radlabel.graph import ReportGraph
from radlabel.schema import Schema

__all__ = ["aggregate", "LABEL_VALUE"]

LABEL_VALUE = {"OBS-DP": 1.0, "OBS-U": -1.0, "OBS-DA": 0.0}
# Rank used to combine mentions: positive > uncertain > absent.
_RANK = {1.0: 3, -1.0: 2, 0.0: 1}


def aggregate(graph: ReportGraph, schema: Schema) -> dict[str, float]:
    """Every ``schema.class_names`` entry -> 1.0 / 0.0 / -1.0 / nan."""
    values: dict[str, float] = {}
    other_finding = False  # a finding without a class value that still keeps the report from No Finding
    strict = schema.no_finding_rule == "strict"
    for e in graph.entities:
        value = LABEL_VALUE.get(e.label)
        if value is None:
            continue
        if e.assertion == "caveat":  # "radiographs are insensitive for rib fractures": what the exam may miss
            continue
        if e.assertion == "hypothetical":
            # "may represent atelectasis or pneumonia": no label, but not a normal report either (under the
            # CheXpert rule only when the alternatives are the schema's classes, which that labeler calls -1)
            other_finding = other_finding or (not e.modifier and (strict or bool(e.classes)))
            continue
        if not e.classes:
            if value != 0.0 and not e.modifier and strict:
                other_finding = True
            continue
        for c in e.classes:
            old = values.get(c)
            if old is None or _RANK[value] > _RANK[old]:
                values[c] = value
    out = {name: values.get(name, math.nan) for name in schema.class_names}
    # "Right lower lobe atelectasis. The left lung is clear." / "clear except for atelectasis" / "otherwise clear":
    # a normal statement about the rest does not deny the parent of a finding reported present or uncertain
    # (Lung Opacity over Atelectasis). The parent is left blank, not filled from the child.
    parent = schema.parent_of
    for name, value in values.items():
        up = parent.get(name) if value != 0.0 else None
        while up is not None:
            if out.get(up) == 0.0:
                out[up] = math.nan
            up = parent.get(up)
    if schema.no_finding:
        ignore = set(schema.no_finding_ignore) | {schema.no_finding}
        found = any(v in (1.0, -1.0) for k, v in values.items() if k not in ignore and k in out)
        out[schema.no_finding] = math.nan if (found or other_finding) else 1.0
    return out
