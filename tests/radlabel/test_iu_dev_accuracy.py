"""Accuracy guard on the Indiana University dev reports (Open-i), scored by the shared tool.

Skips when ``../shared`` (beside the checkout) is absent. The floors are the dev macro F1 reached
when the rules were tuned, minus a 0.02 margin; per-class floors guard classes with >= 10 positives.
"""

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from radlabel.pipeline import get_pipeline

SHARED = Path(__file__).resolve().parents[3] / "shared"
TOOL = SHARED / "tools" / "score_iu_dev.py"
FLOORS = {"mesh": 0.937 - 0.02, "negbio": 0.925 - 0.02}
CLASS_FLOOR = 0.6 - 0.02  # the target: no class with >= 10 positives below 0.6

pytestmark = pytest.mark.skipif(not TOOL.is_file(), reason="shared IU dev data not available")


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("score_iu_dev", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def predictions(reports: pd.DataFrame, schema: str) -> pd.DataFrame:
    pipe = get_pipeline(schema)
    rows = []
    for uid, text in zip(reports.uid, reports.report, strict=True):
        labels = pipe.label(text)
        rows.append({"uid": uid, **{k: (math.nan if v != v else v) for k, v in labels.items()}})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("schema", "gold"), [("chexpert", "mesh"), ("chestxray14", "negbio")])
def test_dev_macro_f1(tool, schema, gold):
    reports = tool.load("dev")
    scores = tool.score(reports, predictions(reports, schema), True, gold)
    assert scores["macro_f1"] >= FLOORS[gold], scores
    weak = {c: v["f1"] for c, v in scores.items() if c != "macro_f1" and v["n"] >= 10 and v["f1"] < CLASS_FLOOR}
    assert not weak, weak
