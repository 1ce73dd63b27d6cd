import itertools
import math

from radlabel.aggregate import aggregate
from radlabel.graph import Entity, ReportGraph
from radlabel.schema import load_schema

CHEX = load_schema("chexpert")


_IDS = itertools.count(1)


def ent(label, classes=(), assertion="", modifier=False):
    return Entity(str(next(_IDS)), "x", label, 0, 0, 0, 1, "findings", 0, [], tuple(classes), modifier, assertion)


def labels(*entities, schema=CHEX):
    return aggregate(ReportGraph("x", ["x"], list(entities)), schema)


def test_positive_beats_uncertain_beats_absent():
    out = labels(ent("OBS-DA", ["Edema"]), ent("OBS-U", ["Edema"]), ent("OBS-DP", ["Edema"]),
                 ent("OBS-DA", ["Atelectasis"]), ent("OBS-U", ["Atelectasis"]), ent("OBS-DA", ["Fracture"]))
    assert out["Edema"] == 1.0 and out["Atelectasis"] == -1.0 and out["Fracture"] == 0.0
    assert math.isnan(out["Pneumonia"])
    assert list(out) == CHEX.class_names


def test_a_parent_denied_beside_a_present_or_uncertain_child_is_blank_not_zero():
    """"Right lower lobe atelectasis. The left lung is clear." gave Lung Opacity 0 beside Atelectasis 1."""
    out = labels(ent("OBS-DP", ["Atelectasis"]), ent("OBS-DA", ["Lung Opacity"]))
    assert out["Atelectasis"] == 1.0 and math.isnan(out["Lung Opacity"])
    assert math.isnan(labels(ent("OBS-U", ["Cardiomegaly"]), ent("OBS-DA", ["Enlarged Cardiomediastinum"]))[
        "Enlarged Cardiomediastinum"])
    denied = labels(ent("OBS-DA", ["Atelectasis"]), ent("OBS-DA", ["Lung Opacity"]), ent("OBS-DP", ["Edema"]))
    assert denied["Atelectasis"] == 0.0 and math.isnan(denied["Lung Opacity"])
    assert labels(ent("OBS-DA", ["Atelectasis"]), ent("OBS-DA", ["Lung Opacity"]))["Lung Opacity"] == 0.0


def test_no_finding_rules():
    assert labels()["No Finding"] == 1.0
    assert labels(ent("OBS-DA", ["Edema"]))["No Finding"] == 1.0
    assert labels(ent("OBS-DP", ["Support Devices"]))["No Finding"] == 1.0
    assert math.isnan(labels(ent("OBS-U", ["Edema"]))["No Finding"])
    assert math.isnan(labels(ent("OBS-DP", [], "present"))["No Finding"])  # e.g. a granuloma
    assert labels(ent("OBS-DA", [], "absent"))["No Finding"] == 1.0
    assert labels(ent("OBS-DP", [], modifier=True), ent("ANAT-DP"))["No Finding"] == 1.0


def test_hypothetical_is_not_a_label_but_not_normal_either():
    # "may represent atelectasis or pneumonia": no class value, yet the report is not "No Finding".
    out = labels(ent("OBS-U", ["Pneumonia"], "hypothetical"))
    assert math.isnan(out["Pneumonia"]) and math.isnan(out["No Finding"])
    out = labels(ent("OBS-U", ["Pneumonia"], "hypothetical"), ent("OBS-DA", ["Pneumonia"], "absent"))
    assert out["Pneumonia"] == 0.0
    assert labels(ent("OBS-U", [], "hypothetical", modifier=True))["No Finding"] == 1.0


def test_other_schema_and_unknown_classes():
    nih = load_schema("chestxray14")
    out = labels(ent("OBS-DP", ["Effusion"]), ent("OBS-DP", ["Not A Class"]), schema=nih)
    assert out["Effusion"] == 1.0 and "Not A Class" not in out and math.isnan(out["No Finding"])
