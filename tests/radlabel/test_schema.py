import pytest

from radlabel.errors import RadlabelError
from radlabel.schema import Schema, list_schemas, load_schema, schema_from_dict

CHEXPERT = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]
NIH = [
    "No Finding", "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]


def test_builtin_schemas():
    assert list_schemas() == ["chestxray14", "chexpert"]
    chex = load_schema("chexpert")
    assert chex.class_names == CHEXPERT
    assert chex.no_finding_ignore == ("Support Devices",)
    for child in ("Edema", "Consolidation", "Pneumonia", "Atelectasis", "Lung Lesion"):
        assert chex.parent_of[child] == "Lung Opacity"
    assert chex.parent_of["Lung Opacity"] is None
    assert chex.parent_of is chex.parent_of  # built once per schema
    assert load_schema("chestxray14").class_names == NIH
    assert load_schema(chex) is chex
    assert chex.other_findings_from == load_schema("chestxray14").other_findings_from == ()


def test_other_findings_from_defaults_to_the_builtins_and_is_checked():
    base = {"name": "s", "classes": [{"name": "A", "mentions": ["a"]}]}
    assert schema_from_dict(base).other_findings_from == ("chexpert", "chestxray14")
    assert schema_from_dict({**base, "other_findings_from": []}).other_findings_from == ()
    assert schema_from_dict({**base, "other_findings_from": ["chestxray14"]}).other_findings_from == ("chestxray14",)
    with pytest.raises(RadlabelError, match="names 'chexpret', which is not a built-in schema; choose from chestxray14, chexpert"):
        schema_from_dict({**base, "other_findings_from": ["chexpret"]}, source="s.yaml")
    with pytest.raises(RadlabelError, match="must be a list of built-in schema names"):
        schema_from_dict({**base, "other_findings_from": "chexpert"}, source="s.yaml")


def test_unknown_name_suggests_close_match():
    with pytest.raises(RadlabelError, match=r"Unknown schema 'chexpret'.*chestxray14, chexpert.*\.yaml.*'chexpert'"):
        load_schema("chexpret")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RadlabelError, match="does not exist"):
        load_schema(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RadlabelError, match="not valid YAML"):
        load_schema(bad)


def test_a_key_given_twice_is_named(tmp_path):
    p = tmp_path / "twice.yaml"
    p.write_text("name: mine\nclasses:\n  - name: Edema\n    mentions: [edema]\n    mentions: [chf]\n")
    with pytest.raises(RadlabelError, match=r"key 'mentions' twice \(lines 4 and 5\)"):
        load_schema(p)


def test_user_yaml_roundtrip(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(
        "name: mine\nno_finding: Normal\nclasses:\n"
        "  - name: Effusion\n    mentions: [effusion]\n    unmentions: [pericardial effusion]\n"
        "  - name: Small Effusion\n    mentions: [small effusion]\n    parent: Effusion\n"
    )
    s = load_schema(str(p))
    assert isinstance(s, Schema) and s.class_names == ["Normal", "Effusion", "Small Effusion"]
    assert s.classes[0].unmentions == ("pericardial effusion",)
    assert s.classes[1].parent == "Effusion"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"classes": [{"name": "A", "mentions": ["a"]}]}, "missing the required key 'name'"),
        ({"name": "x", "classes": []}, "'classes'.*non-empty list"),
        ({"name": "x", "classes": [{"name": "A"}]}, "'mentions'"),
        ({"name": "x", "classes": [{"name": "A", "mentions": "a"}]}, "A.mentions.*list of non-empty strings"),
        ({"name": "x", "classes": [{"name": "A", "mentions": ["a"]}, {"name": "A", "mentions": ["b"]}]},
         "appears more than once"),
        ({"name": "x", "classes": [{"name": "A", "mentions": ["a"], "parent": "B"}]}, "unknown parent 'B'"),
        ({"name": "x", "classes": [{"name": "A", "mentions": ["a"], "mentoins": []}]}, "did you mean 'mentions'"),
        ({"name": "x", "classs": []}, "did you mean 'classes'"),
        ({"name": "x", "no_finding_ignore": ["Z"], "classes": [{"name": "A", "mentions": ["a"]}]}, "unknown class 'Z'"),
        ("just text", "must be a mapping"),
    ],
)
def test_validation_errors_name_the_key(data, message):
    with pytest.raises(RadlabelError, match=message):
        schema_from_dict(data, source="s.yaml")


def test_wrong_type_argument():
    with pytest.raises(RadlabelError, match="built-in name"):
        load_schema(42)


def test_the_schema_example_in_the_docs_loads_and_labels(tmp_path):
    import re
    from pathlib import Path

    from radlabel.pipeline import Pipeline

    doc = (Path(__file__).resolve().parents[2] / "docs" / "labeler.md").read_text(encoding="utf-8")
    example = re.search(r"## Schemas.*?```yaml\n(.*?)```", doc, re.DOTALL).group(1)
    (tmp_path / "my_schema.yaml").write_text(example, encoding="utf-8")
    schema = load_schema(tmp_path / "my_schema.yaml")  # it named a class it did not define
    assert "Support Devices" in schema.class_names
    labels = Pipeline(schema).label("Chest tube in place. No pneumothorax.")
    assert labels["Support Devices"] == 1.0 and labels["Pneumothorax"] == 0.0 and labels["No Finding"] == 1.0


@pytest.mark.parametrize(("classes", "message"), [
    ([{"name": "A", "mentions": ["(foo"]}], r"Key 'A.mentions' in schema s.yaml: .*unbalanced"),
    ([{"name": "A", "mentions": ["a"], "absent_phrases": ["no (a"]}], r"Key 'A.absent_phrases' in schema s.yaml"),
    ([{"name": "A", "mentions": []}], r"Key 'A.mentions' in schema s.yaml must list at least one phrase"),
    ([{"name": "A", "mentions": ["a"], "parent": "A"}], r"parent cycle: A -> A"),
    ([{"name": "A", "mentions": ["a"], "parent": "B"}, {"name": "B", "mentions": ["b"], "parent": "A"}],
     r"parent cycle: A -> B -> A"),
])
def test_schema_phrase_and_parent_errors_name_the_key_and_file(classes, message):
    with pytest.raises(RadlabelError, match=message):
        schema_from_dict({"name": "s", "classes": classes}, source="s.yaml")


def test_a_class_named_error_is_reserved(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nclasses:\n  - name: error\n    mentions: [effusion]\n")
    with pytest.raises(RadlabelError, match="'error' .* reserved for the labels' status column"):
        load_schema(path)


def test_no_finding_named_error_is_reserved_and_its_name_is_stripped():
    classes = [{"name": "A", "mentions": ["a"]}]
    with pytest.raises(RadlabelError, match="'no_finding' .* names 'error', which is reserved"):
        schema_from_dict({"name": "s", "classes": classes, "no_finding": "error"}, source="s.yaml")
    assert schema_from_dict({"name": "s", "classes": classes, "no_finding": " Normal "}).no_finding == "Normal"
