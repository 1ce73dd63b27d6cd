import numpy as np
import pandas as pd
import pytest

from radvision.data.imbalance import (
    class_weights,
    downsample,
    pos_weight,
    sample_weights,
    weighted_sampler,
)
from radvision.data.table import LabelTable
from radvision.errors import RadvisionError

Y = np.array([[1, 0], [0, 0], [0, np.nan], [1, 1], [0, 0], [-1, 0]], dtype=np.float32)


def test_pos_weight_ignores_nan_and_uncertain():
    np.testing.assert_allclose(pos_weight(Y), [3 / 2, 4 / 1])
    np.testing.assert_allclose(pos_weight(Y, max_weight=2.0), [1.5, 2.0])
    assert pos_weight(np.zeros((3, 1)))[0] == 1.0  # no positives: neutral


def test_class_weights_favour_rare_classes():
    w = class_weights(Y)
    assert w.mean() == pytest.approx(1.0) and w[1] > w[0]
    soft = class_weights(Y, power=0.5)
    assert soft[1] / soft[0] < w[1] / w[0]


def test_a_class_without_positives_gets_the_mean_weight_and_a_named_warning(caplog):
    y = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 0], [1, 0, np.nan]], dtype=np.float32)
    w = class_weights(y, class_names=["A", "B", "C"])
    assert w.mean() == pytest.approx(1.0)
    assert w[1] == pytest.approx((w[0] + w[2]) / 2)  # not the largest: B has nothing to learn but "absent"
    assert w[2] / w[0] == pytest.approx((3 / 1) / (4 / 3))  # inverse positive rate, NaN not counted
    assert "(B)" in caplog.text and "mean weight" in caplog.text
    with pytest.raises(RadvisionError, match="2-D"):
        class_weights(np.zeros(3))


def test_sample_weights_and_sampler():
    y = np.array([[1, 0]] * 8 + [[0, 1]] * 2, dtype=np.float32)
    w = sample_weights(y)
    assert w.mean() == pytest.approx(1.0) and w[-1] == pytest.approx(4 * w[0])
    draws = np.array(list(weighted_sampler(y, num_samples=4000, seed=0)))
    frac_rare = np.isin(draws, [8, 9]).mean()
    assert 0.4 < frac_rare < 0.6  # balanced despite 20 % prevalence
    assert list(weighted_sampler(y, num_samples=50, seed=1)) == list(weighted_sampler(y, num_samples=50, seed=1))
    none = sample_weights(np.zeros((4, 2)))
    np.testing.assert_allclose(none, 1.0)


def test_rows_without_a_positive_count_as_no_finding_when_that_class_exists():
    y = np.array([[1, 0]] * 90 + [[0, 1]] * 5 + [[0, 0]] * 5, dtype=np.float32)  # 5 rows with no label at all
    alone = sample_weights(y)  # no "No Finding" column named: a group of their own, as heavy as a class
    assert alone[-1] == pytest.approx(alone[90])
    merged = sample_weights(y, class_names=["No Finding", "Effusion"])
    assert merged[-1] == pytest.approx(merged[0])  # drawn like the 95 normal images, not like a class
    table = LabelTable(pd.DataFrame(y, columns=["No Finding", "Effusion"]).assign(path="x"), ["No Finding", "Effusion"])
    np.testing.assert_allclose(sample_weights(table), merged)
    draws = np.array(list(weighted_sampler(y, num_samples=4000, seed=0, class_names=["No Finding", "Effusion"])))
    assert (draws >= 95).mean() < 0.05  # 5 unlabelled rows of 100: about 2.6 %, not about a third


def make(n_nf=100, n_eff=50, n_both=10):
    rows = [[1, 0, 0]] * n_nf + [[0, 1, 0]] * n_eff + [[0, 1, 1]] * n_both
    frame = pd.DataFrame(rows, columns=["No Finding", "Effusion", "Mass"], dtype="float32")
    frame.insert(0, "path", [f"/i/{i}.png" for i in range(len(rows))])
    frame["patient_id"] = [str(i) for i in range(len(rows))]
    return LabelTable(frame, ["No Finding", "Effusion", "Mass"])


def test_downsample_drops_only_single_positive_rows():
    t = make()
    out = downsample(t, {"No Finding": 0.91, "Effusion": 0.30}, seed=0)
    y = out.labels()
    assert (y[:, 0] == 1).sum() == 9
    assert ((y[:, 1] == 1) & (y[:, 2] == 0)).sum() == 35
    assert ((y[:, 1] == 1) & (y[:, 2] == 1)).sum() == 10  # multi-finding rows are kept
    idx = out.frame["path"].str.extract(r"(\d+)")[0].astype(int)
    assert idx.is_monotonic_increasing  # order kept
    same = downsample(t, {"No Finding": 0.5}, seed=7).frame["path"].tolist()
    assert same == downsample(t, {"No Finding": 0.5}, seed=7).frame["path"].tolist()


def test_downsample_counts_an_uncertain_label_as_another_finding():
    """With U-MultiClass labels (-1 kept), "Effusion 1, Mass -1" is no Effusion-only image: kept, as under U-Ones."""
    frame = pd.DataFrame({"path": [f"/i/{i}.png" for i in range(4)], "patient_id": list("abcd"),
                          "Effusion": [1.0, 1.0, 0.0, -1.0], "Mass": [-1.0, 0.0, -1.0, 0.0]})
    t = LabelTable(frame, ["Effusion", "Mass"])
    assert downsample(t, {"Effusion": 1.0}).frame["path"].tolist() == ["/i/0.png", "/i/2.png", "/i/3.png"]
    assert downsample(t, {"No Finding": 1.0}).frame["path"].tolist() == t.frame["path"].tolist()  # none is normal


def test_downsample_no_finding_without_column_and_errors():
    t = make().select(["Effusion", "Mass"])
    out = downsample(t, {"No Finding": 1.0})
    assert len(out) == 60
    with pytest.raises(RadvisionError, match="did you mean 'Effusion'"):
        downsample(t, {"Efusion": 0.3})
    with pytest.raises(RadvisionError, match=r"'Atelectasis' for downsample \(not a class of this data, or one "
                                             r"data.classes leaves out: take it out of data.downsample, or set "
                                             r"data.downsample=null\)"):
        downsample(t, {"Atelectasis": 0.3})
    with pytest.raises(RadvisionError, match="did you mean 'No Finding'"):  # a choice, though not a class here
        downsample(t, {"No Findings": 0.9})
    with pytest.raises(RadvisionError, match="between 0 and 1"):
        downsample(t, {"Effusion": 30})


def test_downsample_rounds_half_up_and_names_a_fraction_that_is_not_a_number():
    t = make()
    n_nf = int((t.labels()[:, 0] == 1).sum())
    out = downsample(t, {"No Finding": (n_nf // 2 + 0.5) / n_nf}, seed=0)  # exactly half a row more than half
    assert (out.labels()[:, 0] == 1).sum() == n_nf - (n_nf // 2 + 1)
    with pytest.raises(RadvisionError, match="must be a number between 0 and 1, got 'x'"):
        downsample(t, {"Effusion": "x"})


def test_downsample_no_finding_drops_only_images_without_any_finding():
    # Effusion / Mass chosen from a source with more classes: all-negative rows may carry other findings
    frame = pd.DataFrame({"path": [f"/i/{i}.png" for i in range(6)], "patient_id": list("abcdef"),
                          "Effusion": [0, 0, np.nan, 1, 0, 0], "Mass": [0, 0, np.nan, 0, np.nan, 0],
                          "source_no_finding": [1, 0, 0, 0, 0, 1]}, dtype=object).astype({"Effusion": float, "Mass": float})
    t = LabelTable(frame, ["Effusion", "Mass"])
    out = downsample(t, {"No Finding": 1.0})
    assert out.frame["path"].tolist() == ["/i/1.png", "/i/2.png", "/i/3.png", "/i/4.png"]  # was: 0, 1, 2, 4, 5 gone
    bare = LabelTable(frame.drop(columns="source_no_finding"), ["Effusion", "Mass"])  # no source flag: known negatives only
    assert downsample(bare, {"No Finding": 1.0}).frame["path"].tolist() == ["/i/2.png", "/i/3.png", "/i/4.png"]
