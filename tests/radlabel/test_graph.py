import json
import re

import networkx as nx
import pytest

import radlabel
from radlabel.errors import RadlabelError
from radlabel.graph import Entity, ReportGraph, compact_json

RADGRAPH = {
    "text": "Small left effusion . No pneumothorax .",
    "entities": {
        "1": {"tokens": "Small", "label": "OBS-DP", "start_ix": 0, "end_ix": 0, "relations": [["modify", "3"]]},
        "2": {"tokens": "left", "label": "ANAT-DP", "start_ix": 1, "end_ix": 1, "relations": []},
        "3": {"tokens": "effusion", "label": "OBS-DP", "start_ix": 2, "end_ix": 2, "relations": [["located_at", "2"]]},
        "4": {"tokens": "pneumothorax", "label": "OBS-DA", "start_ix": 5, "end_ix": 5, "relations": []},
    },
}


def test_from_and_to_radgraph_roundtrip():
    g = ReportGraph.from_radgraph(RADGRAPH)
    assert g.tokens[2] == "effusion"
    assert g.entity("3").relations == [("located_at", "2")]
    assert g.entity("4").char_start == len("Small left effusion . No ")
    assert g.to_radgraph() == RADGRAPH


def test_labeler_nesting_is_accepted():
    g = ReportGraph.from_radgraph({"labeler_1": RADGRAPH, "data_split": "dev"})
    assert len(g.entities) == 4


def test_networkx():
    d = ReportGraph.from_radgraph(RADGRAPH).to_networkx()
    assert isinstance(d, nx.DiGraph)
    assert d.nodes["3"]["label"] == "OBS-DP"
    assert d.edges["1", "3"]["relation"] == "modify"
    assert d.edges["3", "2"]["relation"] == "located_at"


def test_networkx_graphs_write_to_graphml_and_gexf(tmp_path):
    g = radlabel.parse("Small left pleural effusion. No pneumothorax.").to_networkx()
    classes = {n: a["classes"] for n, a in g.nodes(data=True)}
    assert "Pleural Effusion" in classes.values() and "" in classes.values()  # was a tuple: writers refused it
    nx.write_graphml(g, tmp_path / "g.graphml")
    nx.write_gexf(g, tmp_path / "g.gexf")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert dict(back.nodes(data=True)) == dict(g.nodes(data=True))
    assert back.edges(data=True) and dict(back.edges) == dict(g.edges)
    imported = ReportGraph.from_radgraph(RADGRAPH).to_networkx()  # RadGraph data carries no offsets or section
    nx.write_graphml(imported, tmp_path / "imported.graphml")


def test_to_json_is_one_line_with_extras():
    e = Entity("1", "effusion", "OBS-U", 0, 0, 2, 10, "findings", 0, [], ("Pleural Effusion",), False, "uncertain")
    g = ReportGraph("? effusion", ["?", "effusion"], [e], {"findings": [[0, 10]]}, [[0, 10]])
    line = g.to_json()
    assert "\n" not in line
    d = json.loads(line)
    assert d["entities"]["1"]["classes"] == ["Pleural Effusion"] and d["report"] == "? effusion"
    back = ReportGraph.from_radgraph(d)
    assert back.entities == [e] and back.text == "? effusion" and back.sections == {"findings": [[0, 10]]}


@pytest.mark.parametrize(
    "obj",
    [
        {"text": "Ödem — kein Erguss", "n": [1, -2, True, None], "s": {"findings": [[0, 3]]}},
        "tab\there\nand \x1f control \u2028 line",
        2**70,  # beyond 64 bits: orjson refuses, the stdlib fallback writes it
        "cut emoji \ud83d",  # a lone surrogate: orjson refuses it too
    ],
)
def test_compact_json_matches_the_stdlib(obj):
    assert compact_json(obj) == json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"text": "a"}, "missing"),
        ({"text": "a", "entities": {"1": {"label": "OBS-X", "start_ix": 0, "end_ix": 0}}}, "valid labels"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 3}}}, "outside"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 0,
                                          "relations": [["modify", "9"]]}}}, "unknown entity"),
        ([1, 2], "must be a dict"),
        ({"text": "a", "entities": [{"label": "OBS-DP", "start_ix": 0, "end_ix": 0}]}, "'entities' must be a dict"),
        ({"text": "a", "entities": {"1": "OBS-DP"}}, "Entity '1' must be a dict"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0.7, "end_ix": 0}}}, "integer 'start_ix'"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 0, "sentence": None}}},
         "Entity '1' has 'sentence' None"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 0,
                                          "relations": [["modify", "1", "x"]]}}}, "a relation is"),
        ({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 0,
                                          "relations": [["causes", "1"]]}}}, "valid relations are"),
        # ill-typed fields were taken as they came (an int text failed with AttributeError)
        ({"text": 5, "entities": {}}, "'text' must be text, not int"),
        ({"text": "a", "report": ["a"], "entities": {}}, "'report' must be text, not list"),
        ({"text": "a", "entities": {}, "sections": [[0, 1]]}, "'sections' must be a dict"),
        ({"text": "a", "entities": {}, "sentences": "0-1"}, "'sentences' must be a list"),
        *[({"text": "a", "entities": {"1": {"label": "OBS-DP", "start_ix": 0, "end_ix": 0, key: value}}},
           re.escape(f"Entity '1' has '{key}' {value!r}; it must be")) for key, value in
          (("tokens", 5), ("char_start", "0"), ("char_end", True), ("section", 3), ("classes", "Edema"),
           ("classes", [1]), ("modifier", "no"), ("assertion", None))],
    ],
)
def test_bad_radgraph(doc, message):
    with pytest.raises(RadlabelError, match=message):
        ReportGraph.from_radgraph(doc)


def test_entity_lookup_error():
    with pytest.raises(RadlabelError, match="No entity"):
        ReportGraph.from_radgraph(RADGRAPH).entity("99")
