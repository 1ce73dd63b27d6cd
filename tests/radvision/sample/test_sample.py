import numpy as np
from PIL import Image

from radvision.data.table import validate_table
from radvision.sample import load_nih_sample, sample_root


def test_bundled_nih_sample_is_small_valid_and_patient_disjoint():
    t = load_nih_sample()
    validate_table(t)
    assert 100 <= len(t) <= 140 and len(t.classes) == 14
    counts = t.frame["split"].value_counts().to_dict()
    assert counts["train"] > 80 and counts["valid"] > 25
    per_patient = t.frame.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()
    assert (t.labels().sum(axis=0) > 0).sum() >= 10  # most findings are represented
    total = sum(p.stat().st_size for p in sample_root().rglob("*") if p.is_file())
    assert total < 1_000_000
    img = Image.open(t.frame["path"][0])
    assert img.size == (64, 64)
    assert len(load_nih_sample(split="valid")) == counts["valid"]
    assert load_nih_sample(classes=["No Finding"]).labels().sum() > 0
    assert not np.isnan(t.labels()).any()
