import logging

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


def _pngs(folder, n, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        p = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, size=(32, 32), dtype=np.uint8), mode="L").save(p)
        rows.append({"path": str(p), "A": float(i % 2), "patient_id": str(i)})
    return LabelTable(pd.DataFrame(rows), ["A"], folder)


@pytest.fixture()
def table(tmp_path):
    return _pngs(tmp_path, 6, seed=0)


@pytest.fixture()
def model():
    return build_model("simple_cnn", 1, ["A"])


@pytest.fixture()
def tf():
    return build_transforms("none", 32, train=False)


def _run_dir(path, model, image_size=16):
    cfg = load_config(None, ["model.backbone=simple_cnn", "data.classes=[A]", f"data.image_size={image_size}",
                             "data.transforms=none"])
    save_config(cfg, path / "config.yaml")
    save_weights(model, path / "model.safetensors")
    return path


def _extract(model, data, out=None, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("progress", False)
    return extract_features(model, data, out, **kw)


def test_features_npy_cache(tmp_path, table, model, tf, caplog):
    out = tmp_path / "feats.npy"
    model.train()
    feats = _extract(model, table, out, transform=tf)
    assert model.training  # extracted mid-training, the model goes on training as it was
    assert feats.shape == (6, model.backbone.num_features) and feats.dtype == np.float32
    cached, paths = read_features(out)
    np.testing.assert_array_equal(cached, feats)
    assert paths is None
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        again = _extract(model, table, out, transform=tf)
    np.testing.assert_array_equal(again, feats)
    assert "Reusing feature cache" in caplog.text
    # a different model is not served the first model's features
    other = build_model("simple_cnn", 1, ["A"])
    fresh = _extract(other, table, out, transform=tf)
    assert not np.allclose(fresh, feats)
    np.testing.assert_allclose(fresh, _extract(other, table, transform=tf), rtol=1e-5, atol=1e-6)
    # a matching cache needs no image files (fusion may run where the images are not)
    (tmp_path / "0.png").unlink()
    np.testing.assert_array_equal(_extract(other, table, out, transform=tf), fresh)
    # a copy of the cache and its key (a new mtime) still serves, as copied run folders do
    import os
    import shutil

    copy = tmp_path / "copied.npy"
    shutil.copy(out, copy)
    shutil.copy(out.with_name(out.name + ".meta.json"), copy.with_name(copy.name + ".meta.json"))
    os.utime(copy, ns=(1, 1))
    np.testing.assert_array_equal(_extract(other, table, copy, transform=tf), fresh)
    # a feature file replaced by other numbers of the same size no longer matches its key
    np.save(copy, np.zeros_like(fresh))
    with caplog.at_level(logging.INFO, logger="radvision.features"), pytest.raises(RadvisionError, match="0.png"):
        _extract(other, table, copy, transform=tf)  # rebuilt, and the deleted image is then missing
    assert "the feature file changed after its key was written" in caplog.text


def test_npy_cache_is_rebuilt_for_other_images_with_the_same_row_count(tmp_path, table, model, tf, caplog):
    out = tmp_path / "feats.npy"
    first = _extract(model, table, out, transform=tf)
    others = _pngs(tmp_path / "other", 6, seed=1)
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        second = _extract(model, others, out, transform=tf)
    assert "the image paths differ" in caplog.text
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, _extract(model, others, transform=tf), rtol=1e-5, atol=1e-6)
    # the same paths in another order are other rows too
    flipped = LabelTable(table.frame.iloc[::-1].reset_index(drop=True), ["A"], table.root)
    np.testing.assert_allclose(_extract(model, flipped, out, transform=tf), first[::-1], rtol=1e-5, atol=1e-6)


def test_cache_without_a_key_is_rebuilt(tmp_path, table, model, tf, caplog):
    out = tmp_path / "feats.npy"
    np.save(out, np.zeros((6, model.backbone.num_features), dtype=np.float32))  # as an older version wrote it
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        feats = _extract(model, table, out, transform=tf)
    assert "has no key" in caplog.text
    assert np.abs(feats).sum() > 0
    # a feature file replaced behind its key's back is not trusted either
    np.save(out, np.zeros((5, feats.shape[1]), dtype=np.float32))
    np.testing.assert_allclose(_extract(model, table, out, transform=tf), feats, rtol=1e-5, atol=1e-6)


def test_an_existing_output_that_is_not_a_feature_file_is_refused_not_replaced(tmp_path, table, model, tf):
    labels = tmp_path / "labels.parquet"
    pd.DataFrame({"id": ["a"], "Edema": [1.0], "error": [""]}).to_parquet(labels)  # radlabel's output, say
    garbage = tmp_path / "notes.npy"
    garbage.write_bytes(b"not an array")
    for out in (labels, garbage):
        before = out.read_bytes()
        with pytest.raises(RadvisionError, match=r"exists and is not a feature file .*\(--overwrite\)"):
            _extract(model, table, out, transform=tf)
        assert out.read_bytes() == before
    assert _extract(model, table, labels, transform=tf, overwrite=True).shape[0] == len(table)
    placeholder = tmp_path / "made_by_mktemp.npy"
    placeholder.touch()  # an empty file holds nothing to lose
    assert _extract(model, table, placeholder, transform=tf).shape[0] == len(table)
    assert pd.read_parquet(labels).columns[0] == "path"


def test_parquet_cache_is_rebuilt_for_another_run_or_image_size(tmp_path, table, caplog):
    out = tmp_path / "feats.parquet"
    model_a = build_model("simple_cnn", 1, ["A"])
    run_a = _run_dir(tmp_path / "a", model_a)
    run_b = _run_dir(tmp_path / "b", build_model("simple_cnn", 1, ["A"]))
    run_a32 = _run_dir(tmp_path / "a32", model_a, image_size=32)  # same weights, other image size
    feats_a = _extract(run_a, table, out)
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        _extract(run_a32, table, out)
    assert "the image transform differs" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        _extract(run_a32, table, out)
    assert "Reusing feature cache" in caplog.text
    caplog.clear()
    _extract(run_a, table, out)
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        feats_b = _extract(run_b, table, out)
    assert "the backbone weights differ" in caplog.text
    assert not np.allclose(feats_a, feats_b)
    np.testing.assert_allclose(feats_b, _extract(run_b, table), rtol=1e-5, atol=1e-6)


def test_features_parquet_keeps_paths_and_dataset_input(tmp_path, table, model):
    ds = ImageDataset(table, build_transforms("none", 32, train=False))
    out = tmp_path / "feats.parquet"
    feats = _extract(model, ds, out)
    back, paths = read_features(out)
    np.testing.assert_allclose(back, feats)
    assert paths == table.paths
    # the order of the table is the order of the rows
    first = _extract(model, ImageDataset(table.subset([0]), ds.transform))
    np.testing.assert_allclose(first[0], feats[0], rtol=1e-5, atol=1e-6)


def test_missing_image_raises_or_keeps_its_row(tmp_path, table, model, tf):
    frame = table.frame.copy()
    frame.loc[2, "path"] = str(tmp_path / "gone.png")
    broken = LabelTable(frame, ["A"], table.root)
    with pytest.raises(RadvisionError, match="gone.png.*on_error='skip'"):
        _extract(model, broken, transform=tf)
    blank = frame.copy()
    blank.loc[1, "path"] = ""
    with pytest.raises(RadvisionError, match=r"not found: an empty path \(row 2 of the input\)"):
        _extract(model, LabelTable(blank, ["A"], table.root), transform=tf)
    out = tmp_path / "feats.parquet"
    feats = _extract(model, broken, out, transform=tf, on_error="skip")
    good = _extract(model, table, transform=tf)
    assert feats.shape == good.shape
    assert np.isnan(feats[2]).all() and not np.isnan(np.delete(feats, 2, axis=0)).any()
    np.testing.assert_allclose(np.delete(feats, 2, axis=0), np.delete(good, 2, axis=0), rtol=1e-5, atol=1e-6)
    written = pd.read_parquet(out)
    assert written["path"].tolist() == broken.paths
    assert "gone.png" in written.loc[2, "error"] and (written["error"].drop(index=2) == "").all()
    back, _ = read_features(out)
    assert back.shape == good.shape and np.isnan(back[2]).all()
    # "raise" does not take a cache with failed rows as an answer: it tries again, and fails again
    with pytest.raises(RadvisionError, match="gone.png"):
        _extract(model, broken, out, transform=tf)
    with pytest.raises(RadvisionError, match="on_error mode"):
        _extract(model, table, transform=tf, on_error="ignore")


def test_corrupt_image_with_skip_keeps_its_row(tmp_path, table, model, tf):
    (tmp_path / "3.png").write_bytes(b"not a png")
    with pytest.raises(RadvisionError, match="3.png.*on_error='skip'"):
        _extract(model, table, transform=tf)
    feats = _extract(model, table, tmp_path / "f.npy", transform=tf, on_error="skip")
    assert feats.shape[0] == 6 and np.isnan(feats[3]).all() and not np.isnan(feats[[0, 1, 2, 4, 5]]).any()


def test_path_inputs(tmp_path, table, model, tf):
    expected = _extract(model, table, transform=tf)
    close = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_extract(model, table.frame[["path"]], transform=tf), expected, **close)
    np.testing.assert_allclose(_extract(model, table.paths, transform=tf), expected, **close)
    np.testing.assert_allclose(_extract(model, tmp_path, transform=tf), expected, **close)  # folder, sorted
    csv = tmp_path / "list.csv"
    pd.DataFrame({"path": [f"{i}.png" for i in range(6)]}).to_csv(csv, index=False)  # relative to the CSV
    np.testing.assert_allclose(_extract(model, str(csv), transform=tf), expected, **close)
    np.testing.assert_allclose(_extract(model, [f"{i}.png" for i in range(6)], transform=tf, root=tmp_path),
                               expected, **close)
    # a run directory gives the transform for path inputs too, and the cache key sees the same paths
    out = tmp_path / "f.parquet"
    run = _run_dir(tmp_path / "run", model)
    from_csv = _extract(run, csv, out)
    assert read_features(out)[1] == [f"{i}.png" for i in range(6)]  # the paths as the CSV writes them
    np.testing.assert_allclose(_extract(run, table, out), from_csv, **close)
    assert read_features(out)[1] == table.paths  # reused, and respelled for this input so it joins back
    np.testing.assert_allclose(_extract(run, table, out), from_csv, **close)  # still a valid cache


def test_a_blank_path_does_not_tie_the_cache_to_the_working_folder(tmp_path, table, model, monkeypatch, caplog):
    run = _run_dir(tmp_path / "run", model)
    csv = tmp_path / "list.csv"
    pd.DataFrame({"path": [*table.paths, ""]}).to_csv(csv, index=False)
    out = tmp_path / "f.parquet"
    _extract(run, csv, out, on_error="skip")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with caplog.at_level(logging.INFO, logger="radvision.features"):
        _extract(run, csv, out, on_error="skip")
    assert "Reusing feature cache" in caplog.text


def test_features_errors(tmp_path, table, model):
    with pytest.raises(RadvisionError, match=".npy or .parquet"):
        _extract(model, table, tmp_path / "x.csv", transform=lambda x: x)
    (tmp_path / "d.parquet").mkdir()  # was found only after every image, naming a hidden temp file
    (tmp_path / "afile").write_text("x")
    for out, what in ((tmp_path / "d.parquet", "is a folder"), (tmp_path / "afile" / "f.npy", "lies under .*afile', a file")):
        with pytest.raises(RadvisionError, match=f"Feature file .* {what}; give a file path"):
            _extract(model, table, out, transform=lambda x: x)
    with pytest.raises(RadvisionError, match="needs a transform"):
        _extract(model, table)
    for bad in ([1, 2, 3], 5, {"path": "x"}):
        with pytest.raises(RadvisionError, match="LabelTable, a torch Dataset, a DataFrame with a 'path' column"):
            _extract(model, bad, transform=lambda x: x)
    with pytest.raises(RadvisionError, match="no 'path' column"):
        _extract(model, pd.DataFrame({"file": ["a.png"]}), transform=lambda x: x)


def test_features_from_run_dir_use_its_transform(tmp_path, table, model):
    run = _run_dir(tmp_path / "run", model)
    feats = _extract(run, table)
    # the run's 16-pixel transform, applied by hand, gives the same features
    direct = _extract(model, table, transform=build_transforms("none", 16, train=False))
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    other = _extract(model, table, transform=build_transforms("none", 32, train=False))
    assert not np.allclose(feats, other)


@pytest.mark.parametrize(("backbone", "digest"), [  # computed with the code of d3c60b9, before the change
    ("simple_cnn", "09b30f1c86a82cbc409d281445ad117c7d07726a9a4decff00979872534b8c4b"),
    (["simple_cnn", "simple_cnn"], "9fcce791c18b13f800d7dc51207def810f26d2930daa08e39df28973cb9aa044"),
])
def test_caches_keyed_while_the_grad_cam_layer_was_registered_twice_still_match(backbone, digest):
    """The key hashes the state dict as laid out then, so such caches are not rebuilt ("weights differ") or,
    with the images gone, refused."""
    import torch

    from radvision.features import _model_digest

    m = build_model(backbone, 2)
    with torch.no_grad():
        for i, t in enumerate([*m.parameters(), *m.buffers()]):  # each tensor once, values fixed
            if t.is_floating_point():
                t.copy_(torch.arange(t.numel(), dtype=t.dtype).reshape(t.shape) * 0.001 + i)
            else:
                t.fill_(i)
    assert _model_digest(m) == digest
