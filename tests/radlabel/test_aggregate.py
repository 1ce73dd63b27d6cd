import itertools
import math

import pytest

from radlabel.aggregate import aggregate
from radlabel.errors import RadlabelError
from radlabel.graph import Entity, ReportGraph
from radlabel.schema import load_schema, schema_from_dict, with_no_finding_rule

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


def test_the_chexpert_no_finding_rule_counts_only_the_schemas_classes():
    chexpert = with_no_finding_rule(CHEX, "chexpert")
    assert CHEX.no_finding_rule == "strict" and chexpert.no_finding_rule == "chexpert"
    hernia = ent("OBS-DP", [], "present")  # a finding no class names: strict blocks No Finding, chexpert does not
    assert math.isnan(labels(hernia)["No Finding"])
    assert labels(hernia, schema=chexpert)["No Finding"] == 1.0
    # alternatives the schema names are uncertain to the CheXpert labeler: they still block; unnamed ones do not
    assert math.isnan(labels(ent("OBS-U", ["Pneumonia"], "hypothetical"), schema=chexpert)["No Finding"])
    assert labels(ent("OBS-U", [], "hypothetical"), schema=chexpert)["No Finding"] == 1.0
    assert math.isnan(labels(ent("OBS-U", ["Edema"]), schema=chexpert)["No Finding"])
    assert with_no_finding_rule(CHEX, None) is CHEX


def test_no_finding_rule_in_a_schema_file_and_bad_values():
    data = {"name": "s", "no_finding": "Normal", "no_finding_rule": "chexpert", "classes": [{"name": "A", "mentions": ["a"]}]}
    assert schema_from_dict(data).no_finding_rule == "chexpert"
    with pytest.raises(RadlabelError, match="no_finding_rule.*one of strict, chexpert, not 'loose'"):
        schema_from_dict({**data, "no_finding_rule": "loose"})
    with pytest.raises(RadlabelError, match="no_finding must be one of strict, chexpert"):
        with_no_finding_rule(CHEX, "CheXpert")
