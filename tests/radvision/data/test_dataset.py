import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from radvision.data.cache import build_cache
from radvision.data.dataset import ImageDataset
from radvision.data.transforms import build_transforms
from radvision.errors import RadvisionError


def test_items_labels_and_meta(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images)
    t.frame.loc[2, "A"] = np.nan
    t.frame["age"] = [30, None, 50, 60, 70, 80]
    t.frame["sex"] = ["M", "F", None, "M", "F", "M"]
    ds = ImageDataset(t, build_transforms("default", 16, train=True), return_meta=True)
    assert len(ds) == 6 and ds.classes == ["A", "B"]
    x, y, meta = ds[2]
    assert x.shape == (3, 16, 16) and y.dtype == torch.float32 and torch.isnan(y[0])
    assert meta["path"] == str(gray_images[2]) and meta["sex"] == "" and meta["view"] == ""
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 16, 16) and batch[2]["age"].shape == (4,)
    assert torch.isnan(batch[2]["age"][1])
    plain, _ = ImageDataset(t)[0]  # no transform: float [0, 1] at the source size, one channel
    assert plain.shape == (1, 12, 12) and 0 <= plain.min() and plain.max() <= 1
    np.testing.assert_array_equal(ds.labels(), t.labels())


def test_cached_items_match_decoded_items(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images)
    cache = build_cache(t, 16, tmp_path / "c", progress=False)
    tf = build_transforms("none", 16, train=False)
    direct = ImageDataset(t, tf)
    cached = ImageDataset(t, tf, cache=cache)
    for i in range(len(t)):
        # PIL vs torch resizing differ by rounding only
        assert (direct[i][0] - cached[i][0]).abs().mean() < 0.1
    loader = DataLoader(cached, batch_size=3, num_workers=0)
    assert sum(len(b[0]) for b in loader) == 6


def test_a_cache_of_another_size_or_fit_than_the_transform_is_refused(tmp_path, gray_images, helpers):
    # read as it was, a 16 px cache was upsampled for a 32 px transform, a squashed one cropped: other pixels
    t = helpers.make_table(gray_images)
    cache = build_cache(t, 16, tmp_path / "c", progress=False)  # fit "squash", as the "none" preset
    with pytest.raises(RadvisionError, match=r"holds 16 px images fitted by 'squash', but the transform expects "
                                             r"32 px by 'squash'; build the cache with .*size=32"):
        ImageDataset(t, build_transforms("none", 32, train=False), cache=cache)
    with pytest.raises(RadvisionError, match="expects 16 px by 'crop'"):
        ImageDataset(t, build_transforms("default", 16, train=False), cache=cache)
    assert len(ImageDataset(t, build_transforms("nih_study", 16, train=True), cache=cache)) == 6
    assert len(ImageDataset(t, lambda x: x, cache=cache)) == 6  # a user's own transform: nothing to compare


def test_skip_drops_unreadable_and_writes_list(tmp_path, gray_images, helpers):
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    gone = tmp_path / "gone.png"
    t = helpers.make_table([gray_images[0], bad, gray_images[1], gone])
    ds = ImageDataset(t, build_transforms("none", 8, train=False), on_error="skip")
    assert len(ds) == 2 and [p for p, _ in ds.skipped] == [str(bad), str(gone)]
    out = ds.write_skipped(tmp_path / "out" / "skipped.csv")
    frame = pd.read_csv(out)
    assert frame["path"].tolist() == [str(bad), str(gone)] and "not found" in frame["error"][1]
    cache = build_cache(t, 8, tmp_path / "c", on_error="skip", progress=False)
    via_cache = ImageDataset(t, cache=cache, on_error="skip")
    assert len(via_cache) == 2 and len(via_cache.skipped) == 2


def test_cached_images_broken_or_gone_since_caching_are_checked_like_uncached_ones(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images[:3])
    cache = build_cache(t, 8, tmp_path / "c", progress=False)
    helpers.save_truncated(gray_images[1], size=64)  # e.g. an interrupted re-sync, after the cache was built
    gone = gray_images[2]
    gone.unlink()
    ds = ImageDataset(t, cache=cache, on_error="skip")  # both passed here and failed mid-epoch
    assert len(ds) == 1 and [p for p, _ in ds.skipped] == [str(gray_images[1]), str(gone)]
    ds[0]
    with pytest.raises(RadvisionError, match=f"Image file not found: {gone}"):
        ImageDataset(t, cache=cache)


def test_an_image_the_cache_could_not_decode_is_read_again_once_repaired(tmp_path, gray_images, helpers):
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    t = helpers.make_table([gray_images[0], bad])
    cache = build_cache(t, 8, tmp_path / "c", on_error="skip", progress=False)
    assert len(ImageDataset(t, cache=cache, on_error="skip")) == 1
    helpers.save_gray(bad, seed=3)  # repaired after the build: it stayed skipped
    ds = ImageDataset(t, cache=cache, on_error="skip")
    assert len(ds) == 2 and ds.skipped == []


def test_skip_log_names_the_full_list(tmp_path, gray_images, helpers, caplog, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    gone = tmp_path / "gone.png"
    t = helpers.make_table([gray_images[0], bad, gray_images[1], gone])
    # without a cache: the list stays in the dataset, and no temporary file is left behind
    with caplog.at_level("WARNING", logger="radvision.data.dataset"):
        ds = ImageDataset(t, on_error="skip")
    assert ds.skipped_csv is None and "full list in ImageDataset.skipped" in caplog.text
    assert ".;" not in caplog.text  # the reason's full stop doubled the separator
    assert [p for p, _ in ds.skipped] == [str(bad), str(gone)] and not list((tmp_path / "tmp").iterdir())
    # a path of your own
    caplog.clear()
    with caplog.at_level("WARNING", logger="radvision.data.dataset"):
        ds = ImageDataset(t, on_error="skip", skipped_csv=tmp_path / "run" / "skipped_train.csv")
    assert str(tmp_path / "run" / "skipped_train.csv") in caplog.text
    assert pd.read_csv(tmp_path / "run" / "skipped_train.csv")["path"].tolist() == [str(bad), str(gone)]
    # with a cache: the cache's skipped.csv already lists them
    caplog.clear()
    cache = build_cache(t, 8, tmp_path / "c", on_error="skip", progress=False)
    with caplog.at_level("WARNING", logger="radvision.data.dataset"):
        ds = ImageDataset(t, cache=cache, on_error="skip")
    assert ds.skipped_csv == tmp_path / "c" / "skipped.csv" and str(ds.skipped_csv) in caplog.text
    assert ImageDataset(helpers.make_table(gray_images[:2]), on_error="skip").skipped_csv is None


def test_raise_mode_fails_with_file_name(tmp_path, gray_images, helpers):
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    with pytest.raises(RadvisionError, match="gone.png"):
        ImageDataset(helpers.make_table([gray_images[0], tmp_path / "gone.png"]))
    ds = ImageDataset(helpers.make_table([gray_images[0], bad]))
    with pytest.raises(RadvisionError, match="bad.png"):
        ds[1]
    with pytest.raises(RadvisionError, match="on_error mode 'ignore'"):
        ImageDataset(helpers.make_table(gray_images), on_error="ignore")


def test_exists_check_is_cheap_but_misses_corruption(tmp_path, gray_images, helpers):
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    t = helpers.make_table([gray_images[0], bad, tmp_path / "gone.png"])
    ds = ImageDataset(t, on_error="skip", check="exists")
    assert len(ds) == 2 and [p for p, _ in ds.skipped] == [str(tmp_path / "gone.png")]
    with pytest.raises(RadvisionError, match="image check"):
        ImageDataset(t, on_error="skip", check="open")


def test_skips_say_missing_apart_from_unreadable(tmp_path, gray_images, helpers, caplog):
    from radvision.data.dataset import drop_unreadable_parts

    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    gone = tmp_path / "gone.png"
    t = helpers.make_table([gray_images[0], bad, empty, gone, gray_images[1]])
    with caplog.at_level("WARNING"):
        ds = ImageDataset(t, on_error="skip")
    assert len(ds) == 2
    assert "skipping 3 image(s): 1 missing file(s) (first: Image file not found: " in caplog.text
    assert "2 unreadable image(s) (first: " in caplog.text
    parts = {"train": t.subset([0, 1, 2]), "test": t.subset([3, 4])}
    kept, skipped = drop_unreadable_parts(parts)  # no decode: only the missing file is known
    assert [len(kept["train"]), len(kept["test"])] == [3, 1] and [s[:2] for s in skipped] == [("test", str(gone))]
    kept, skipped = drop_unreadable_parts(parts, "decode")  # what the datasets keep
    assert [len(kept["train"]), len(kept["test"])] == [1, 1]
    assert sorted(p for _, p, _ in skipped) == sorted(map(str, [bad, empty, gone]))
