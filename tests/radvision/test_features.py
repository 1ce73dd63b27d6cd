import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radvision.config import load_config, save_config
from radvision.data import ImageDataset, LabelTable, build_transforms
from radvision.errors import RadvisionError
from radvision.features import extract_features, read_features
from radvision.heads import build_model
from radvision.rundir import save_weights


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, size=(32, 32), dtype=np.uint8), mode="L").save(p)
        rows.append({"path": str(p), "A": float(i % 2), "patient_id": str(i)})
    return LabelTable(pd.DataFrame(rows), ["A"], tmp_path)


@pytest.fixture()
def model():
    return build_model("simple_cnn", 1, ["A"])


def test_features_npy_cache(tmp_path, table, model):
    tf = build_transforms("none", 32, train=False)
    out = tmp_path / "feats.npy"
    feats = extract_features(model, table, out, transform=tf, device="cpu", progress=False)
    assert feats.shape == (6, model.backbone.num_features) and feats.dtype == np.float32
    cached, paths = read_features(out)
    np.testing.assert_array_equal(cached, feats)
    assert paths is None
    # a different model must not be used: the cache is read back as is
    other = build_model("simple_cnn", 1, ["A"])
    again = extract_features(other, table, out, transform=tf, device="cpu", progress=False)
    np.testing.assert_array_equal(again, feats)
    fresh = extract_features(other, table, out, transform=tf, device="cpu", progress=False, overwrite=True)
    assert not np.allclose(fresh, feats)


def test_features_parquet_keeps_paths_and_dataset_input(tmp_path, table, model):
    ds = ImageDataset(table, build_transforms("none", 32, train=False))
    out = tmp_path / "feats.parquet"
    feats = extract_features(model, ds, out, device="cpu", progress=False)
    back, paths = read_features(out)
    np.testing.assert_allclose(back, feats)
    assert paths == table.paths
    # the order of the table is the order of the rows
    first = extract_features(model, ImageDataset(table.subset([0]), ds.transform), device="cpu", progress=False)
    np.testing.assert_allclose(first[0], feats[0], rtol=1e-5, atol=1e-6)


def test_features_errors(tmp_path, table, model):
    with pytest.raises(RadvisionError, match=".npy or .parquet"):
        extract_features(model, table, tmp_path / "x.csv", transform=lambda x: x)
    with pytest.raises(RadvisionError, match="needs a transform"):
        extract_features(model, table)
    with pytest.raises(RadvisionError, match="LabelTable or a torch Dataset"):
        extract_features(model, [1, 2, 3])


def test_features_from_run_dir_use_its_transform(tmp_path, table, model):
    run = tmp_path / "run"
    cfg = load_config(None, ["model.backbone=simple_cnn", "data.classes=[A]", "data.image_size=16",
                             "data.transforms=none"])
    save_config(cfg, run / "config.yaml")
    save_weights(model, run / "model.safetensors")
    feats = extract_features(run, table, device="cpu", progress=False)
    # the run's 16-pixel transform, applied by hand, gives the same features
    direct = extract_features(model, table, transform=build_transforms("none", 16, train=False), device="cpu",
                              progress=False)
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    other = extract_features(model, table, transform=build_transforms("none", 32, train=False), device="cpu",
                             progress=False)
    assert not np.allclose(feats, other)
