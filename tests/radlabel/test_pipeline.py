import math
import random
import time

import pytest

from radlabel.errors import RadlabelError
from radlabel.graph import ReportGraph
from radlabel.pipeline import Pipeline, get_pipeline, parse


@pytest.fixture(scope="module")
def chex():
    return get_pipeline("chexpert")


def value(pipe, text, cls):
    return pipe.label(text)[cls]


@pytest.mark.parametrize(
    ("text", "cls", "expected"),
    [
        ("No evidence of pneumothorax.", "Pneumothorax", 0.0),
        ("Heart size is normal.", "Cardiomegaly", 0.0),
        ("Lungs are clear.", "Lung Opacity", 0.0),
        ("Cannot exclude pneumonia.", "Pneumonia", -1.0),
        ("Opacity may represent atelectasis.", "Atelectasis", -1.0),
        ("Atelectasis versus pneumonia.", "Atelectasis", -1.0),
        ("Atelectasis versus pneumonia.", "Pneumonia", -1.0),
        ("? effusion", "Pleural Effusion", -1.0),
        ("No new effusion.", "Pleural Effusion", -1.0),
        ("Resolved pneumothorax.", "Pneumothorax", 0.0),
        ("Mild cardiomegaly.", "Cardiomegaly", 1.0),
        ("Small left pleural effusion.", "Pleural Effusion", 1.0),
        ("Old healed right rib fractures.", "Fracture", 1.0),
        ("Left chest port with tip in the SVC.", "Support Devices", 1.0),
        ("Stable calcified granuloma.", "Lung Lesion", math.nan),
    ],
)
def test_required_assertions(chex, text, cls, expected):
    got = value(chex, text, cls)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_indication_is_ignored(chex):
    out = chex.label("INDICATION: Evaluate for pneumonia.\nFINDINGS: Lungs are clear.")
    assert math.isnan(out["Pneumonia"]) and out["No Finding"] == 1.0
    hist = chex.label("HISTORY: pneumonia, effusion.\nIMPRESSION: Normal chest.")
    assert math.isnan(hist["Pneumonia"]) and math.isnan(hist["Pleural Effusion"])


def test_sections_option():
    text = "INDICATION: pneumothorax.\nFINDINGS: Normal."
    assert Pipeline(sections=None).label(text)["Pneumothorax"] == 1.0
    assert Pipeline(sections="indication").label(text)["Pneumothorax"] == 1.0
    assert math.isnan(Pipeline(sections=["Findings"]).label(text)["Pneumothorax"])


def test_graph_example(chex):
    g = chex.parse("Increased right lower lobe opacity, concerning for infection. No evidence of pneumothorax.")
    by = {e.tokens: e for e in g.entities}
    opacity, anat, inc, inf, ptx = (by[k] for k in (
        "opacity", "right lower lobe", "Increased", "infection", "pneumothorax"))
    assert opacity.label == "OBS-DP" and anat.label == "ANAT-DP"
    assert ("located_at", anat.id) in opacity.relations
    assert ("suggestive_of", inf.id) in opacity.relations
    assert ("modify", opacity.id) in inc.relations and inc.modifier
    assert inf.label == "OBS-U" and ptx.label == "OBS-DA"
    assert ptx.sentence == 1 and ptx.section == "findings"
    assert g.text[ptx.char_start : ptx.char_end] == "pneumothorax"
    assert g.tokens[opacity.start_ix] == "opacity"
    back = ReportGraph.from_radgraph(g.to_radgraph())
    assert [e.label for e in back.entities] == [e.label for e in g.entities]


def test_offsets_survive_normalization(chex):
    text = "FINDINGS:\n   1.  Small   XXXXX   effusion.\n\n 2) No\tpneumothorax."
    g = chex.parse(text)
    for e in g.entities:
        assert " ".join(text[e.char_start : e.char_end].split()).lower() == e.tokens.lower()


def test_chestxray14_schema():
    out = get_pipeline("chestxray14").label("Emphysema. Small right effusion. Apical pleural thickening.")
    assert out["Emphysema"] == 1.0 and out["Effusion"] == 1.0 and out["Pleural_Thickening"] == 1.0
    assert math.isnan(out["No Finding"])


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\ufffd", "FINDINGS:", "?!.;:", "XXXX XXXX"])
def test_degenerate_inputs(chex, text):
    g = chex.parse(text)
    assert isinstance(g, ReportGraph)
    assert set(chex.label(text)) == set(chex.schema.class_names)


def test_garbage_megabyte_is_linear(chex):
    rng = random.Random(0)
    words = ["no", "effusion", "pneumonia", "?", "may", "right", "lobe", "clear", ",", "XXXX", "\n", "not", "seen"]
    small = " ".join(rng.choice(words) for _ in range(20_000))
    big = small * 10  # ~ 1 MB of text, one long run with few sentence ends
    t0 = time.perf_counter()
    chex.parse(small)
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = chex.parse(big)
    t_big = time.perf_counter() - t0
    assert len(g.entities) > 1000
    assert t_big < 25 * max(t_small, 0.05)  # ~10x input -> ~10x time, not 100x


def test_errors_and_cache():
    with pytest.raises(RadlabelError, match="must be a str"):
        get_pipeline().parse(None)
    with pytest.raises(RadlabelError, match="Unknown section 'findigns'.*Did you mean 'findings'"):
        Pipeline(sections=["findigns"])
    with pytest.raises(RadlabelError, match="sections is empty"):
        Pipeline(sections=[])
    with pytest.raises(RadlabelError, match="Unknown schema"):
        get_pipeline("nope")
    assert get_pipeline("chexpert") is get_pipeline("chexpert", ["findings", "impression"])
    assert parse("No effusion.").entities[0].label == "OBS-DA"
