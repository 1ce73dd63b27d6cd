import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from radvision.data.cache import ImageCache, build_cache, resize_image
from radvision.data.images import load_image
from radvision.errors import RadvisionError


def test_build_matches_direct_decode_and_is_reused(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images)
    cache = build_cache(t, 8, tmp_path / "c", progress=False)
    assert cache.array.shape == (6, 8, 8) and cache.array.dtype == np.uint8
    for p in gray_images:
        expected = np.asarray(resize_image(load_image(p, mode="L"), 8))
        np.testing.assert_array_equal(cache.get(p), expected)
    arr_file = tmp_path / "c" / "images.npy"
    stamp = arr_file.stat().st_mtime_ns
    again = build_cache(t, 8, tmp_path / "c", progress=False)
    assert arr_file.stat().st_mtime_ns == stamp and len(again) == 6  # up to date: nothing rewritten
    assert pd.read_csv(tmp_path / "c" / "skipped.csv").empty
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert index["size"] == 8 and set(index["entries"]) == {str(p) for p in gray_images}


def test_changed_and_new_files_are_redecoded(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images[:3])
    build_cache(t, 8, tmp_path / "c", progress=False)
    Image.new("L", (30, 30), 77).save(gray_images[1])
    st = os.stat(gray_images[1])
    os.utime(gray_images[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cache = build_cache(helpers.make_table(gray_images[:4]), 8, tmp_path / "c", progress=False)
    assert len(cache) == 4 and (cache.get(gray_images[1]) == 77).all()  # the new content, not the old
    assert cache.is_current(gray_images[0]) and cache.index_of(gray_images[3]) == 3
    assert build_cache(t, 16, tmp_path / "c", progress=False).array.shape == (3, 16, 16)  # new size: rebuilt


def test_skip_and_raise_on_bad_files(tmp_path, gray_images, helpers):
    bad = helpers.save_truncated(tmp_path / "bad.png", size=64)
    gone = tmp_path / "gone.png"
    t = helpers.make_table([*gray_images[:2], bad, gone])
    with pytest.raises(RadvisionError, match="bad.png|gone.png"):
        build_cache(t, 8, tmp_path / "c", progress=False)
    cache = build_cache(t, 8, tmp_path / "c", on_error="skip", workers=2, progress=False)
    assert len(cache) == 2 and str(bad) not in cache and str(gray_images[0]) in cache
    skipped = pd.read_csv(tmp_path / "c" / "skipped.csv")
    assert set(skipped["path"]) == {str(bad), str(gone)}
    assert {p for p, _ in cache.skipped} == {str(bad), str(gone)}
    with pytest.raises(RadvisionError, match="bad.png"):  # remembered failure, still an error in raise mode
        build_cache(t, 8, tmp_path / "c", progress=False)
    with pytest.raises(RadvisionError, match="not in the cache"):
        cache.get(bad)


def test_rgb_fits_pickling_and_bad_dirs(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images[:2])
    cache = build_cache(t, 10, tmp_path / "c3", channels=3, fit="pad", progress=False)
    assert cache.array.shape == (2, 10, 10, 3)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._array is None and np.array_equal(clone.get(gray_images[0]), cache.get(gray_images[0]))
    img = Image.new("L", (40, 20), 200)
    assert resize_image(img, 10, "crop").size == (10, 10)
    padded = np.asarray(resize_image(img, 10, "pad"))
    assert padded[0, 0] == 0 and padded[5, 5] == 200
    with pytest.raises(RadvisionError, match="No image cache"):
        ImageCache(tmp_path / "empty")
    with pytest.raises(RadvisionError, match="did you mean 'crop'"):
        build_cache(t, 10, tmp_path / "c4", fit="crops")
    (tmp_path / "c3" / "images.npy").write_bytes(b"broken")
    with pytest.raises(RadvisionError, match="does not match its index"):
        ImageCache(tmp_path / "c3")
    assert build_cache(t, 10, tmp_path / "c3", channels=3, fit="pad", progress=False).array.shape[0] == 2


def test_a_cache_folder_under_a_file_is_a_user_error(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images[:2])
    (tmp_path / "notes.txt").write_text("x")
    for target in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "cache"):
        with pytest.raises(RadvisionError, match="data.cache_dir.*'.*notes.txt' is a file; give a folder path"):
            build_cache(t, 10, target, progress=False)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("preset", ["default", "default+equalize", "chexpert_study", "nih_study", "none"])
def test_a_cached_image_reaches_the_model_as_the_decoded_one(tmp_path, helpers, preset, channels):
    from radvision.data import ImageDataset, build_transforms
    from radvision.data.transforms import preset_fit

    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(40, 30), (30, 44), (32, 32)]):  # landscape, portrait, square
        a = rng.integers(0, 256, (h, w), dtype=np.uint8)
        a[: h // 4] = 250  # a bright band at the top: squashing or cropping moves it
        paths.append(tmp_path / f"im{i}.png")
        Image.fromarray(a, mode="L").save(paths[-1])
    colour = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(colour, mode="RGB").save(tmp_path / "im.jpg")
    Image.fromarray(np.dstack([colour, np.full((30, 40), 200, np.uint8)]), mode="RGBA").save(tmp_path / "im.png")
    paths += [tmp_path / "im.jpg", tmp_path / "im.png"]  # colour sources: a one-channel run makes them gray
    t = helpers.make_table(paths)
    evaluate = build_transforms(preset, 16, train=False, channels=channels)
    cache = build_cache(t, 16, tmp_path / "c", channels=channels, fit=preset_fit(preset), progress=False)
    cached, decoded = ImageDataset(t, evaluate, cache=cache), ImageDataset(t, evaluate)
    for i in range(len(paths)):
        torch.testing.assert_close(cached[i][0], decoded[i][0], atol=1e-6, rtol=0)
    # training too: the same seed draws the same augmentation of the same square
    train = build_transforms(preset, 16, train=True, channels=channels)
    cached, decoded = ImageDataset(t, train, cache=cache), ImageDataset(t, train)
    for i in range(len(paths)):
        torch.manual_seed(i)
        a = cached[i][0]
        torch.manual_seed(i)
        torch.testing.assert_close(a, decoded[i][0], atol=1e-5, rtol=0)


def test_builds_take_turns_and_a_killed_builds_leftover_is_removed(tmp_path, gray_images, helpers):
    import threading

    from filelock import FileLock

    (tmp_path / "c").mkdir()
    orphan = tmp_path / "c" / ".images.npy.abc123.tmp"
    orphan.write_bytes(b"\0" * 1024)
    t = helpers.make_table(gray_images)
    done = threading.Event()
    with FileLock(str(tmp_path / "c" / ".build.lock")):  # another build holds the folder
        worker = threading.Thread(target=lambda: (build_cache(t, 8, tmp_path / "c", progress=False), done.set()))
        worker.start()
        assert not done.wait(0.5)  # it waits for its turn
    worker.join(30)
    assert done.is_set() and not orphan.exists() and len(ImageCache(tmp_path / "c")) == 6


def test_a_dataset_decodes_a_file_that_changed_since_it_was_cached(tmp_path, gray_images, helpers):
    from radvision.data import ImageDataset

    t = helpers.make_table(gray_images)
    cache = build_cache(t, 8, tmp_path / "c", progress=False)
    Image.fromarray(np.full((20, 20), 7, dtype=np.uint8), mode="L").save(gray_images[0])
    image = ImageDataset(t, None, cache=cache)[0][0]
    assert image.shape[-1] == 20 and torch.allclose(image, torch.full_like(image, 7 / 255))


def test_a_run_never_reads_another_builds_rows(tmp_path, gray_images, helpers):
    cache = build_cache(helpers.make_table(gray_images[:3]), 8, tmp_path / "c", progress=False)
    first = cache.get(gray_images[0]).copy()
    spawned = pickle.loads(pickle.dumps(cache))  # a spawned DataLoader worker opens the array by path
    # another run sharing the folder rebuilds it for other images: every row moves
    build_cache(helpers.make_table(gray_images[1:4]), 8, tmp_path / "c", progress=False)
    np.testing.assert_array_equal(cache.get(gray_images[0]), first)  # forked workers keep the mapped build
    with pytest.raises(RadvisionError, match="was rebuilt after this run opened it.*own data.cache_dir"):
        spawned.get(gray_images[1])


def test_a_read_only_cache_folder(tmp_path, gray_images, helpers, monkeypatch):
    import filelock

    table = helpers.make_table(gray_images[:3])
    build_cache(table, 8, tmp_path / "c", progress=False)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(filelock.FileLock, "acquire", denied)  # as in a folder this user cannot write
    cache = build_cache(table, 8, tmp_path / "c", progress=False)  # up to date: used as it is
    assert len(cache) == 3 and cache.get(gray_images[0]).shape == (8, 8)
    with pytest.raises(RadvisionError, match=r"'.*c' is not writable \(Permission denied\) and holds no up-to-date"):
        build_cache(helpers.make_table(gray_images), 8, tmp_path / "c", progress=False)
    monkeypatch.setattr(type(tmp_path), "mkdir", denied)
    with pytest.raises(RadvisionError, match=r"cache_dir\) '.*new' cannot be made \(Permission denied\)"):
        build_cache(table, 8, tmp_path / "new", progress=False)


def test_an_up_to_date_cache_writes_nothing(tmp_path, gray_images, helpers, monkeypatch):
    import radvision.data.cache as cache_module

    table = helpers.make_table(gray_images[:3])
    build_cache(table, 8, tmp_path / "c", progress=False)
    skipped = tmp_path / "c" / "skipped.csv"
    stamp = skipped.stat().st_mtime_ns

    def denied(*args, **kwargs):  # as in a folder made read-only after the build (chmod a-w)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache_module, "atomic_write_csv", denied)
    assert len(build_cache(table, 8, tmp_path / "c", progress=False)) == 3  # unchanged list: not rewritten
    assert skipped.stat().st_mtime_ns == stamp
    skipped.unlink()  # even a list that would change is no reason to fail a build that has nothing to do
    assert len(build_cache(table, 8, tmp_path / "c", progress=False)) == 3


def test_a_file_replaced_with_its_size_and_mtime_kept_is_decoded_again(tmp_path, helpers):
    import time

    a, other = tmp_path / "a.bmp", tmp_path / "other.bmp"
    Image.new("L", (12, 12), 10).save(a)
    Image.new("L", (12, 12), 200).save(other)  # BMP: the same size in bytes
    t = helpers.make_table([a])
    cache = build_cache(t, 8, tmp_path / "c", progress=False)
    st = a.stat()
    time.sleep(0.05)  # past the filesystem's timestamp granularity
    a.write_bytes(other.read_bytes())  # cat other.bmp > a.bmp; touch -r (the old stamp) a.bmp
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (a.stat().st_size, a.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert not cache.is_current(a)
    assert (build_cache(t, 8, tmp_path / "c", progress=False).get(a) == 200).all()


def test_a_folder_of_other_files_is_not_made_a_cache(tmp_path, gray_images, helpers):
    t = helpers.make_table(gray_images[:2])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.json").write_text('{"my": "dataset index"}')
    with pytest.raises(RadvisionError, match=r"data.cache_dir\) '.*mine' is not a radvision image cache and holds "
                                             r"other files \(index.json\); give an empty or new folder"):
        build_cache(t, 8, mine, progress=False)
    assert [p.name for p in mine.iterdir()] == ["index.json"]  # not even a lock file
    # a cache of an older format is rebuilt; hidden files (.DS_Store) are in nobody's way
    old = tmp_path / "old"
    build_cache(t, 8, old, progress=False)
    index = json.loads((old / "index.json").read_text())
    (old / "index.json").write_text(json.dumps({**index, "format": 3}))
    (old / ".build.lock").unlink(missing_ok=True)
    assert len(build_cache(t, 8, old, progress=False)) == 2
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".DS_Store").write_text("")
    assert len(build_cache(t, 8, tmp_path / "hidden", progress=False)) == 2
