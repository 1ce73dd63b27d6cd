import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from radvision.config import load_config, save_config
from radvision.errors import RadvisionError
from radvision.predict import evaluate_files, explain_images, input_paths, load_run, predict
from radvision.thresholds import save_thresholds
from radvision.train import Trainer

CLASSES = ["Bright", "Stripe"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, make_images):
    root = tmp_path_factory.mktemp("predict")
    csv = make_images(root, n=24, seed=1, fractions=(2 / 3, 1 / 3, 0))
    cfg = load_config(None, [
        "data.dataset=csv", f"data.csv={csv}", "data.image_size=32", "data.transforms=none",
        "model.backbone=simple_cnn", "optim.batch_size=8", "optim.epochs=1", "runtime.device=cpu",
        "runtime.progress=false", f"output.run_dir={root / 'run'}",
    ])
    return Trainer(cfg).fit()


def test_load_run(run_dir):
    model, cfg, classes, thr = load_run(run_dir)
    assert classes == CLASSES
    assert thr.shape == (2,) and np.all((thr > 0) & (thr < 1))
    assert not model.training
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)


def test_predict_folder_and_csv_same_order(run_dir):
    folder = run_dir.parent / "img"
    by_folder = predict(run_dir, folder, batch_size=5, device="cpu")
    assert list(by_folder.columns) == ["path", *CLASSES, "error"]
    assert len(by_folder) == 24 and (by_folder["error"] == "").all()
    assert by_folder[CLASSES].apply(lambda c: c.between(0, 1)).all().all()
    csv = run_dir.parent / "some.csv"
    pd.DataFrame({"path": ["img/003.png", "img/001.png"]}).to_csv(csv, index=False)
    by_csv = predict(run_dir, csv, device="cpu")
    expected = by_folder.set_index("path").loc[[str(folder / "003.png"), str(folder / "001.png")], CLASSES]
    np.testing.assert_allclose(by_csv[CLASSES].to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)


def test_predict_reads_dicom_folders_and_extensionless_dicom_files(run_dir, tmp_path, write_dicom):
    pytest.importorskip("pydicom")
    png = run_dir.parent / "img" / "002.png"  # dark with a white stripe: 0..255, so the DICOM stretch is exact
    pixels = np.asarray(Image.open(png))
    assert pixels.min() == 0 and pixels.max() == 255
    folder = tmp_path / "dicoms"
    folder.mkdir()
    write_dicom(folder / "a.dcm", pixels.astype(np.uint16), bits_stored=8)
    bare = write_dicom(tmp_path / "1.2.3.4", pixels.astype(np.uint16), bits_stored=8)  # as PACS exports name them
    expected = predict(run_dir, [str(png)], device="cpu")[CLASSES].to_numpy()
    for source in (folder, str(bare)):
        out = predict(run_dir, source, device="cpu")
        assert len(out) == 1 and out["error"].iloc[0] == ""
        np.testing.assert_allclose(out[CLASSES].to_numpy(), expected, rtol=1e-5, atol=1e-6)


def test_root_sets_where_relative_csv_paths_start(run_dir, tmp_path):
    csv = tmp_path / "elsewhere.csv"  # a CSV away from the images, paths relative to the data folder
    pd.DataFrame({"path": ["img/003.png", str(run_dir.parent / "img" / "001.png")]}).to_csv(csv, index=False)
    assert input_paths(csv, root=run_dir.parent) == [str(run_dir.parent / "img" / "003.png"),
                                                     str(run_dir.parent / "img" / "001.png")]
    assert input_paths(csv)[0] == str(tmp_path / "img" / "003.png")
    assert input_paths(["a.png", "/abs/b.png"], root=tmp_path) == [str(tmp_path / "a.png"), "/abs/b.png"]
    out = predict(run_dir, csv, device="cpu", root=run_dir.parent)
    assert (out["error"] == "").all()


def test_paths_that_start_with_the_roots_own_name_are_read_from_its_parent(tmp_path, monkeypatch):
    # CheXpert's valid.csv sits in CheXpert-v1.0-small/ and writes "CheXpert-v1.0-small/valid/..."
    root = tmp_path / "CheXpert-v1.0-small"
    (root / "valid").mkdir(parents=True)
    Image.new("L", (8, 8)).save(root / "valid" / "a.jpg")
    pd.DataFrame({"Path": ["CheXpert-v1.0-small/valid/a.jpg"]}).to_csv(root / "valid.csv", index=False)
    expected = [str(root / "valid" / "a.jpg")]
    assert input_paths(root / "valid.csv", path_column="Path") == expected
    assert input_paths(root / "valid.csv", path_column="Path", root=root) == expected
    assert input_paths(root / "valid.csv", path_column="Path", root=tmp_path) == expected
    # a relative root ("." in the dataset folder) has the folder's name too
    monkeypatch.chdir(root)
    assert [str(Path(p).resolve()) for p in input_paths("valid.csv", path_column="Path")] == expected
    assert [str(Path(p).resolve()) for p in input_paths("valid.csv", path_column="Path", root=".")] == expected
    # a linked dataset folder keeps the name it is reached by
    store = tmp_path / "store" / "cx"
    shutil.copytree(root, store)
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "CheXpert-v1.0-small").symlink_to(store)
    linked = tmp_path / "mnt" / "CheXpert-v1.0-small"
    assert input_paths(linked / "valid.csv", path_column="Path") == [str(linked / "valid" / "a.jpg")]
    # a path that exists under the root itself keeps the root
    (root / "CheXpert-v1.0-small").mkdir()
    assert input_paths(["CheXpert-v1.0-small"], root=root) == [str(root / "CheXpert-v1.0-small")]


def test_bad_image_keeps_its_row(run_dir, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    good = run_dir.parent / "img" / "000.png"
    out = predict(run_dir, [str(good), str(bad), str(good)], device="cpu", with_labels=True)
    assert out["path"].tolist() == [str(good), str(bad), str(good)]
    assert out["error"].iloc[0] == "" and out["error"].iloc[1] != ""
    assert out[CLASSES].iloc[1].isna().all() and out[CLASSES].iloc[0].notna().all()
    assert set(out["Bright_label"].dropna()) <= {0.0, 1.0}


def test_input_errors(run_dir, tmp_path, caplog):
    with caplog.at_level("INFO"), pytest.raises(RadvisionError, match="does not exist"):
        predict(run_dir, tmp_path / "missing.csv")
    assert "built" not in caplog.text  # the input is named before the model is built (it was logged first)
    with pytest.raises(RadvisionError, match="is not a run directory"):  # ... but a wrong run folder first of all
        predict(tmp_path / "no_run", tmp_path / "missing.csv")
    pd.DataFrame({"file": ["a.png"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(RadvisionError, match="no 'path' column"):
        input_paths(tmp_path / "x.csv")
    with pytest.raises(RadvisionError, match="not a run directory"):
        load_run(tmp_path)


def test_evaluate_files(run_dir, tmp_path):
    pred = predict(run_dir, run_dir.parent / "img", device="cpu")
    gold = pd.read_csv(run_dir.parent / "labels.csv")
    gold["path"] = [str(run_dir.parent / p) for p in gold["path"]]
    gold = gold.drop(columns=["patient_id", "split"])
    pred.to_csv(tmp_path / "pred.csv", index=False)
    gold.to_csv(tmp_path / "gold.csv", index=False)
    summary, per_class = evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.csv",
                                        thresholds=run_dir / "thresholds.json")
    assert 0.0 <= summary["mean_auroc"] <= 1.0
    assert len(per_class) == 2
    assert evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.csv", thresholds=run_dir)[0] == summary
    # a perfect prediction scores AUROC 1
    perfect = gold.copy()
    summary, _ = evaluate_files(perfect, gold)
    assert summary["mean_auroc"] == pytest.approx(1.0)
    with pytest.raises(RadvisionError, match="share no class column"):
        evaluate_files(pred[["path", "error"]], gold)


def test_explain_writes_overlays(run_dir, tmp_path):
    image = run_dir.parent / "img" / "001.png"
    written = explain_images(run_dir, [image], tmp_path / "cams", classes=["Bright"])
    assert len(written) == 1 and written[0].is_file()
    with pytest.raises(RadvisionError, match="did you mean 'Stripe'"):
        explain_images(run_dir, [image], tmp_path / "cams", classes=["Strip"])


def test_explain_reads_the_image_column_of_a_table_as_predict_does(run_dir, tmp_path):
    table = run_dir.parent / "explain_these.csv"  # beside the images: its relative paths start there
    pd.DataFrame({"Path": ["img/001.png", "img/003.png"]}).to_csv(table, index=False)
    written = explain_images(run_dir, [table], tmp_path / "cams", classes=["Bright"], path_column="Path")
    assert [p.name for p in written] == ["001_Bright.png", "003_Bright.png"]
    manifest = pd.read_csv(tmp_path / "cams" / "overlays.csv")
    assert manifest["image"].tolist() == [str(run_dir.parent / "img" / n) for n in ("001.png", "003.png")]
    table.unlink()


@pytest.mark.parametrize("out", ["gold.csv", "gold.csv/cams"])
def test_explain_into_a_file_says_it_needs_a_folder(run_dir, tmp_path, out):
    (tmp_path / "gold.csv").write_text("path\n")
    with pytest.raises(RadvisionError, match="'.*gold.csv' is a file; explain writes its overlays and overlays.csv "
                                             "into a folder"):
        explain_images(run_dir, [run_dir.parent / "img" / "001.png"], tmp_path / out)


@pytest.mark.parametrize("transforms, hot_columns", [("default", (20, 35)), ("none", (0, 25))])
def test_explain_lays_the_heatmap_over_the_pixels_the_network_saw(run_dir, tmp_path, monkeypatch, transforms,
                                                                  hot_columns):
    # a 100 x 60 image and a heatmap hot in the top-left eighth of the 32 px network input: "default" saw the
    # centre 60 x 60 square (columns 20-80), "none" the whole image squashed
    import radvision.explain

    def hot_corner(model, tensor, classes, method="gradcam"):
        cam = np.zeros((32, 32), np.float32)
        cam[:8, :8] = 1.0
        return {c: cam for c in classes}

    monkeypatch.setattr(radvision.explain, "gradcam", hot_corner)
    copy = shutil.copytree(run_dir, tmp_path / "run")
    save_config(load_config(copy / "config.yaml", [f"data.transforms={transforms}"]), copy / "config.yaml")
    Image.new("L", (100, 60)).save(tmp_path / "wide.png")  # black: the overlay is the heatmap's colour alone
    explain_images(copy, [tmp_path / "wide.png"], tmp_path / "cams", classes=["Bright"])
    red = np.asarray(Image.open(tmp_path / "cams" / "wide_Bright.png"))[..., 0]
    assert red.shape == (60, 100)
    hot = np.flatnonzero((red > 100).any(axis=0))
    assert abs(hot.min() - hot_columns[0]) <= 1 and abs(hot.max() + 1 - hot_columns[1]) <= 2
    assert np.flatnonzero((red > 100).any(axis=1)).max() < 16  # the top quarter of the rows


def test_top_k_limits_predicted_labels(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    cfg = load_config(copy / "config.yaml", ["thresholds.top_k=1"])
    save_config(cfg, copy / "config.yaml")
    save_thresholds(copy / "thresholds.json", CLASSES, [0.0, 0.0])  # every class would pass its threshold
    out = predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)
    labels = out[["Bright_label", "Stripe_label"]].to_numpy()
    assert (labels.sum(axis=1) == 1).all()
    # the more probable class is the one kept
    assert (labels.argmax(axis=1) == out[CLASSES].to_numpy().argmax(axis=1)).all()


def test_evaluate_with_a_run_folder_scores_the_runs_whole_rule(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    save_config(load_config(copy / "config.yaml", ["thresholds.top_k=1"]), copy / "config.yaml")
    save_thresholds(copy / "thresholds.json", CLASSES, [0.0, 0.0])  # thresholds alone label every class
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    gold["path"] = [str(run_dir.parent / p) for p in gold["path"]]
    pred = predict(copy, gold[["path"]], device="cpu", with_labels=True)
    by_rule, per_class = evaluate_files(pred, gold, thresholds=copy)
    by_thresholds, _ = evaluate_files(pred, gold, thresholds=copy / "thresholds.json")
    assert by_thresholds["micro_recall"] == 1.0 and by_rule["micro_recall"] < 1.0  # top_k=1 dropped labels
    assert by_rule["label_cardinality_pred"] == 1.0
    labels = pred[["Bright_label", "Stripe_label"]].to_numpy()
    truth = gold[CLASSES].to_numpy()
    assert by_rule["exact_match"] == pytest.approx((labels == truth).all(axis=1).mean())  # = predict --labels
    assert by_rule["mean_auroc"] == by_thresholds["mean_auroc"]  # probabilities are scored as before
    # scoring one class still decides over both (top_k picks between them)
    one, _ = evaluate_files(pred, gold[["path", "Bright"]], thresholds=copy)
    assert one["micro_recall"] == pytest.approx(per_class.set_index("class").loc["Bright", "recall"])


def test_evaluate_with_a_run_folder_shifts_over_every_predicted_image_as_predict_does(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    save_config(load_config(copy / "config.yaml", ["thresholds.cardinality=1.0"]), copy / "config.yaml")
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    gold["path"] = [str(run_dir.parent / p) for p in gold["path"]]
    pred = predict(copy, gold[["path"]], device="cpu", with_labels=True)  # the shift is over all 24 images
    confident = pred[CLASSES].sum(axis=1).sort_values().index[-8:]
    some = gold.loc[confident]  # gold for the 8 most confidently labelled: a shift over them alone differs
    summary, _ = evaluate_files(pred, some, thresholds=copy)
    labels = pred.set_index("path").loc[some["path"], ["Bright_label", "Stripe_label"]].to_numpy()
    assert summary["label_cardinality_pred"] == pytest.approx(labels.sum(1).mean())
    assert summary["exact_match"] == pytest.approx((labels == some[CLASSES].to_numpy()).all(axis=1).mean())


def test_evaluate_with_a_run_folder_missing_a_scored_class_or_its_thresholds(run_dir, tmp_path, caplog):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    gold["path"] = [str(run_dir.parent / p) for p in gold["path"]]
    pred = predict(run_dir, gold[["path"]], device="cpu").assign(Other=0.3)
    with pytest.raises(RadvisionError, match="the run has no class 'Other'.*run's classes are Bright, Stripe"):
        evaluate_files(pred, gold.assign(Other=1), thresholds=run_dir)
    # a run stopped before choosing thresholds: 0.5 for every class, as predict --labels does
    copy = shutil.copytree(run_dir, tmp_path / "unfinished")
    (copy / "thresholds.json").unlink()
    summary, per_class = evaluate_files(pred, gold, thresholds=copy)
    assert "0.5 for every class" in caplog.text and (per_class["threshold"] == 0.5).all()
    assert summary == evaluate_files(pred, gold)[0]  # = the default 0.5 labels


def test_evaluate_refuses_an_empty_table(run_dir, tmp_path):
    (tmp_path / "empty.csv").write_text("path,Bright,Stripe\n")
    gold = pd.DataFrame({"path": ["a.png"], "Bright": [1], "Stripe": [0]})
    with pytest.raises(RadvisionError, match="prediction table has no rows with a path"):
        evaluate_files(tmp_path / "empty.csv", gold)
    with pytest.raises(RadvisionError, match="gold table has no rows"):
        evaluate_files(gold.assign(Bright=0.5, Stripe=0.5), tmp_path / "empty.csv")


def test_csv_round_trip_reproduces_the_runs_valid_metrics(run_dir, tmp_path):
    gold = pd.read_csv(run_dir.parent / "labels.csv")
    gold = gold[gold["split"] == "valid"].drop(columns=["patient_id", "split"])
    gold["path"] = [str(run_dir.parent / p) for p in gold["path"]]
    predict(run_dir, gold[["path"]], device="cpu").to_csv(tmp_path / "pred.csv", index=False)
    summary, _ = evaluate_files(tmp_path / "pred.csv", gold, thresholds=run_dir / "thresholds.json")
    expected = pd.read_csv(run_dir / "valid_metrics.csv").set_index("metric")["value"]
    for key in ("mean_auroc", "macro_f1", "micro_f1"):
        assert summary[key] == pytest.approx(expected[key], nan_ok=True), key


def test_output_keeps_the_input_paths_so_it_joins_back(run_dir, tmp_path):
    csv = run_dir.parent / "relative.csv"
    # blank and whitespace-only lines are rows too; a path is written back as the input spells it
    csv.write_text("path\n img/003.png\n\n  \nimg/001.png\n")
    out = predict(run_dir, csv, device="cpu")
    assert out["path"].tolist() == [" img/003.png", "", "  ", "img/001.png"]
    from radvision.predict import input_rows

    assert input_rows(["a.png ", " b.png"]) == (["a.png ", " b.png"], ["a.png ", " b.png"])  # code: names as given
    assert out["error"].tolist()[1:3] == ["empty path", "empty path"] and out["error"].iloc[0] == ""
    gold = pd.read_csv(run_dir.parent / "labels.csv")  # relative paths, as the input CSV has them
    summary, _ = evaluate_files(out, gold[gold["path"].isin(out["path"].str.strip())].drop(columns=["patient_id", "split"]))
    assert summary["n_samples"] == 2


def test_a_single_image_file_is_an_input(run_dir):
    image = run_dir.parent / "img" / "001.png"
    out = predict(run_dir, image, device="cpu")
    assert out["path"].tolist() == [str(image)] and out["error"].iloc[0] == ""


def test_a_root_that_is_not_a_folder_is_refused(run_dir, tmp_path):
    with pytest.raises(RadvisionError, match="is not a folder"):
        input_paths(["a.png"], root=tmp_path / "nowhere")


def test_unknown_device_names_the_choices(run_dir):
    with pytest.raises(RadvisionError, match="Unknown device 'gpu'; use auto, cpu, cuda"):
        predict(run_dir, run_dir.parent / "img", device="gpu")
    with pytest.raises(RadvisionError, match="Unknown device 'meta'"):
        predict(run_dir, run_dir.parent / "img", device="meta")
    if not torch.backends.mps.is_available():
        with pytest.raises(RadvisionError, match="no Apple GPU"):
            predict(run_dir, run_dir.parent / "img", device="mps")


def test_a_frame_input_keeps_its_index_so_results_line_up(run_dir):
    frame = pd.DataFrame({"path": [str(run_dir.parent / "img" / f"{i:03d}.png") for i in range(6)]},
                         index=[50, 10, 40, 20, 30, 0]).sample(frac=1, random_state=0)
    out = predict(run_dir, frame, device="cpu")
    assert list(out.index) == list(frame.index)
    frame["Bright"] = out["Bright"]  # pandas aligns on the index
    by_path = predict(run_dir, list(frame["path"]), device="cpu").set_index("path")["Bright"]
    np.testing.assert_allclose(frame["Bright"].to_numpy(), by_path.loc[frame["path"]].to_numpy(), rtol=1e-6)


def test_evaluate_with_nothing_to_score_is_an_error(run_dir, tmp_path):
    gold = pd.DataFrame({"path": ["a.png", "b.png"], "Bright": [1, 0], "Stripe": [0, 1]})
    failed = gold.assign(Bright=np.nan, Stripe=np.nan, error="Image file not found")
    with pytest.raises(RadvisionError, match="nothing to score"):
        evaluate_files(failed, gold)


def test_evaluate_reads_true_false_gold_as_a_label_table_that_trains_does(run_dir, tmp_path):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    pred = gold.assign(Bright=np.linspace(0, 1, len(gold)), Stripe=0.5)
    words = gold.astype({"Bright": bool, "Stripe": bool})  # pandas writes a bool column as True / False
    words.to_csv(tmp_path / "gold.csv", index=False)
    assert "True" in (tmp_path / "gold.csv").read_text()
    summary, per_class = evaluate_files(pred, tmp_path / "gold.csv")
    expected, _ = evaluate_files(pred, gold)
    assert summary["mean_auroc"] == pytest.approx(expected["mean_auroc"])


def test_evaluate_rejects_bad_tables(run_dir, tmp_path):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    pred = gold.assign(Bright=0.5, Stripe=0.5)
    bad = gold.astype({"Bright": object})
    bad.loc[3, "Bright"] = "yes"
    with pytest.raises(RadvisionError, match=r"gold column 'Bright' holds 'yes' \(data row 4, path 'img/003.png'\); "
                                             "values must be 0, 1, -1"):
        evaluate_files(pred, bad)
    with pytest.raises(RadvisionError, match="prediction column 'Stripe' holds 2"):
        evaluate_files(pred.assign(Stripe=2.0), gold)
    with pytest.raises(RadvisionError, match="lists 1 path"):
        evaluate_files(pred, pd.concat([gold, gold.iloc[:1]]))
    png = tmp_path / "not.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    with pytest.raises(RadvisionError, match="not a readable CSV"):
        evaluate_files(png, gold)


def test_evaluate_one_class_and_warns_about_gold_columns_it_cannot_score(run_dir, caplog):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    pred = gold.assign(Bright=gold["Bright"] * 0.8 + 0.1, Stripe=0.5)
    summary, per_class = evaluate_files(pred, gold[["path", "Bright"]])
    assert summary["mean_auroc"] == pytest.approx(1.0) and summary["samples_f1"] == pytest.approx(1.0)
    assert len(per_class) == 1
    with caplog.at_level("WARNING"):
        evaluate_files(pred, gold.rename(columns={"Stripe": "Stripy"}).assign(subject="s1", study=[7] * len(gold),
                                                                               notes=""))
    assert "gold column 'Stripy' has no prediction column (did you mean 'Stripe'?)" in caplog.text
    assert "'subject'" not in caplog.text and "'study'" not in caplog.text  # ids and notes are not classes
    assert "'notes'" not in caplog.text  # an empty column is not one either
    caplog.clear()
    with caplog.at_level("WARNING"):  # a saved reader table's source_no_finding flag is meta, not a class to score
        evaluate_files(pred, gold.assign(source_no_finding=[1.0] + [0.0] * (len(gold) - 1)))
    assert "source_no_finding" not in caplog.text


def test_explain_folders_and_images_with_the_same_name(run_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run_dir.parent / "img" / "001.png", other / "001.png")
    written = explain_images(run_dir, [run_dir.parent / "img" / "001.png", other], tmp_path / "cams",
                             classes=["Bright"])
    assert sorted(p.name for p in written) == ["001_2_Bright.png", "001_Bright.png"]
    assert all(p.is_file() for p in written)


def test_evaluate_files_on_disk_skip_blank_cells_and_failed_rows(run_dir, tmp_path):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    gold.loc[0, "Bright"] = None  # a blank gold cell is not scored
    gold.to_csv(tmp_path / "gold.csv", index=False)
    pred = gold.fillna(0).assign(Bright=gold["Bright"].fillna(0) * 0.8 + 0.1, Stripe=0.5)
    pred.loc[1, ["Bright", "Stripe"]] = None  # an image predict could not read: blank probabilities
    pred.to_csv(tmp_path / "pred.csv", index=False)
    summary, _ = evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.csv")
    assert summary["n_samples"] == len(gold) - 1
    assert summary["auroc/Bright"] == pytest.approx(1.0)


def test_labels_without_thresholds_warn_that_they_use_one_half(run_dir, tmp_path, caplog):
    copy = shutil.copytree(run_dir, tmp_path / "unfinished")
    (copy / "thresholds.json").unlink()  # as a run stopped before its thresholds were chosen
    out = predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)
    assert "has no thresholds.json" in caplog.text and "0.5 for every class" in caplog.text
    assert ((out["Bright"] >= 0.5) == (out["Bright_label"] == 1)).all()
    caplog.clear()
    predict(run_dir, run_dir.parent / "img", device="cpu", with_labels=True)
    assert "has no thresholds.json" not in caplog.text


def test_labels_follow_the_runs_cardinality_rule(run_dir, tmp_path):
    import json

    copy = shutil.copytree(run_dir, tmp_path / "run")
    recorded = json.loads((copy / "thresholds.json").read_text())["train_cardinality"]
    for value, expected in (("0", 0.0), ("train", recorded), ("0.5", 0.5), ("1.5", 1.5)):
        save_config(load_config(copy / "config.yaml", [f"thresholds.cardinality={value}"]), copy / "config.yaml")
        out = predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)
        mean = out[["Bright_label", "Stripe_label"]].sum(axis=1).mean()
        assert mean == pytest.approx(expected, abs=1 / 24)  # 24 images: within one label of the target


def test_cardinality_train_without_a_recorded_figure_warns_and_uses_the_thresholds(run_dir, tmp_path, caplog):
    import json

    copy = shutil.copytree(run_dir, tmp_path / "run")
    doc = json.loads((copy / "thresholds.json").read_text())
    doc.pop("train_cardinality")  # a run written before the figure was recorded
    (copy / "thresholds.json").write_text(json.dumps(doc))
    save_config(load_config(copy / "config.yaml", ["thresholds.cardinality=train"]), copy / "config.yaml")
    out = predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)
    assert "records no train_cardinality; the thresholds are not shifted" in caplog.text
    plain = predict(run_dir, run_dir.parent / "img", device="cpu", with_labels=True)
    assert out["Bright_label"].tolist() == plain["Bright_label"].tolist()


def test_explain_never_overwrites_an_overlay_and_skips_unreadable_images(run_dir, tmp_path, caplog):
    src = run_dir.parent / "img" / "001.png"
    for folder, name in (("a", "x.png"), ("b", "x.png"), ("b", "x_2.png"), ("c", "p q.png"), ("c", "p_q.png")):
        (tmp_path / folder).mkdir(exist_ok=True)
        shutil.copy(src, tmp_path / folder / name)
    (tmp_path / "c" / "broken.png").write_bytes(b"not a png")
    written = explain_images(run_dir, [tmp_path / "a", tmp_path / "b", tmp_path / "c"], tmp_path / "cams",
                             classes=["Bright"])
    names = [p.name for p in written]
    assert len(names) == 5 and len(set(names)) == 5 and len(list((tmp_path / "cams").glob("*.png"))) == 5
    assert "skipping" in caplog.text and "broken.png" in caplog.text
    with pytest.raises(RadvisionError, match="No image could be read"):
        explain_images(run_dir, [tmp_path / "c" / "broken.png"], tmp_path / "cams2")
    # a missing file is skipped the same way, as predict keeps its row: the other images still get overlays
    caplog.clear()
    written = explain_images(run_dir, [tmp_path / "a" / "x.png", tmp_path / "gone.png"], tmp_path / "cams3",
                             classes=["Bright"])
    assert [p.name for p in written] == ["x_Bright.png"] and "gone.png" in caplog.text


def test_evaluate_names_bad_files_precisely(run_dir, tmp_path):
    gold = pd.read_csv(run_dir.parent / "labels.csv").drop(columns=["patient_id", "split"])
    pred = gold.assign(Bright=gold["Bright"] * 0.8 + 0.1, Stripe=0.5)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    gold.to_csv(tmp_path / "gold.tsv", index=False, sep="\t")
    with pytest.raises(RadvisionError, match="no 'path' column .the file looks tab-separated"):
        evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.tsv")
    gold.to_csv(tmp_path / "gold_semi.csv", index=False, sep=";")
    with pytest.raises(RadvisionError, match="looks semicolon-separated"):
        evaluate_files(tmp_path / "pred.csv", tmp_path / "gold_semi.csv")
    (tmp_path / "dup.csv").write_text("path,Bright,Bright\n" + "".join(f"{p},0.3,0.4\n" for p in gold["path"]))
    with pytest.raises(RadvisionError, match="dup.csv' names the column 'Bright' more than once"):
        evaluate_files(tmp_path / "dup.csv", gold)
    (tmp_path / "t.json").write_text('{"Bright": 0.3}')
    with pytest.raises(RadvisionError, match=r"t.json' has no threshold for class 'Stripe'; it has 'Bright'"):
        evaluate_files(pred, gold, thresholds=tmp_path / "t.json")
    partial = pred.copy()
    partial.loc[2, "Stripe"] = np.nan  # one blank probability is a broken row, not a failed image
    with pytest.raises(RadvisionError, match=f"row for {gold['path'][2]!r} has probabilities for some classes "
                                             "but a blank 'Stripe'"):
        evaluate_files(partial, gold)


def test_fit_thresholds_files_chooses_f1_optimal_thresholds_on_a_calibration_set(tmp_path, caplog):
    from radvision.predict import fit_thresholds_files
    from radvision.thresholds import load_thresholds, load_train_cardinality

    paths = [f"img/{i}.png" for i in range(8)]
    pred = pd.DataFrame({"path": paths, "A": [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9],
                         "B": [0.9, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "error": ""})
    gold = pd.DataFrame({"path": paths, "A": [0, 0, 0, 1, 1, 1, 1, 1], "B": [1, 0, -1, 0, 0, None, 0, 0],
                         "split": ["valid"] * 7 + ["test"]})
    out = tmp_path / "t.json"
    table = fit_thresholds_files(pred, gold, out)
    # A: all five positives from 0.35 up, so midway to 0.3; B: its one positive 0.9, midway to 0.8
    assert load_thresholds(out) == pytest.approx({"A": 0.325, "B": 0.85})
    assert table.set_index("class").loc["A", "f1"] == pytest.approx(1.0)
    # with a minimum precision the threshold rises until it is met; the split keeps only its rows
    fit_thresholds_files(pred.assign(A=[0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.95, 0.9]), gold.assign(A=[0, 1, 0, 1, 1, 0, 1, 1]),
                         out, min_precision=1.0, split="valid")
    assert load_thresholds(out)["A"] == pytest.approx((0.95 + 0.6) / 2)  # the last row (0.9) is test
    # replacing a run's own thresholds.json keeps the training cardinality it recorded
    save_thresholds(out, ["A", "B"], [0.5, 0.5], train_cardinality=1.25)
    fit_thresholds_files(pred, gold, out)
    assert load_train_cardinality(out) == 1.25 and load_thresholds(out)["A"] == pytest.approx(0.325)
    # a gold table labelling only some classes leaves the others' thresholds as they were
    fit_thresholds_files(pred, gold.drop(columns="B"), out)
    assert load_thresholds(out) == pytest.approx({"B": 0.85, "A": 0.325}) and load_train_cardinality(out) == 1.25
    save_thresholds(out, ["A", "B", "C"], [0.5, 0.25, 0.75])
    caplog.clear()
    fit_thresholds_files(pred, gold.drop(columns="B"), out)
    assert load_thresholds(out) == pytest.approx({"B": 0.25, "C": 0.75, "A": 0.325})
    assert "the other 2 keep their thresholds: B, C" in caplog.text
    with pytest.raises(RadvisionError, match="share no class column"):
        fit_thresholds_files(pred[["path", "error"]], gold, out)
    with pytest.raises(RadvisionError, match="values must be 0, 1, -1 or blank"):
        fit_thresholds_files(pred, gold.assign(A=2), out)


def test_calibrating_some_classes_into_a_run_keeps_the_run_usable(run_dir, tmp_path):
    from radvision.predict import fit_thresholds_files

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    pred = predict(run, run_dir.parent / "img", device="cpu")
    gold = pd.DataFrame({"path": pred["path"], "Bright": (pred["Bright"] > pred["Bright"].median()).astype(int)})
    fit_thresholds_files(pred, gold, run / "thresholds.json")
    _, _, classes, thr = load_run(run)
    assert classes == CLASSES and thr[1] == load_run(run_dir)[3][1]  # Stripe's threshold is the run's own
    assert len(predict(run, run_dir.parent / "img", device="cpu", with_labels=True)) == len(pred)


def test_evaluate_errors_count_rows_as_the_file_has_them(tmp_path):
    """Row numbers count the file's data rows, before blank-path rows (failed predict inputs) and other splits
    are set aside."""
    gold = pd.DataFrame({"path": list("abcd"), "A": [1, 0, 1, 7], "split": ["train"] * 3 + ["test"]})
    pred = pd.DataFrame({"path": ["", "", "c", "d"], "A": [None, None, 0.3, -0.3]})
    gold.to_csv(tmp_path / "gold.csv", index=False)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    with pytest.raises(RadvisionError, match=r"gold column 'A' holds '7' \(data row 4, path 'd'\)"):
        evaluate_files(tmp_path / "pred.csv", tmp_path / "gold.csv", split="test")
    with pytest.raises(RadvisionError, match=r"prediction column 'A' holds '-0.3' \(data row 4, path 'd'\)"):
        evaluate_files(tmp_path / "pred.csv", gold.assign(A=1))
    with pytest.raises(RadvisionError, match="the 'split' column is empty"):
        evaluate_files(pred, gold.assign(split=""), split="test")
    with pytest.raises(RadvisionError, match="is a folder; pass the prediction CSV file"):
        evaluate_files(tmp_path, gold)


def test_a_damaged_thresholds_file_stops_only_what_reads_it(run_dir, tmp_path):
    """predict (probabilities), features and explain refused a run whose thresholds.json lacked a class."""
    copy = shutil.copytree(run_dir, tmp_path / "damaged")
    (copy / "thresholds.json").write_text('{"Bright": 0.3}')
    out = predict(copy, run_dir.parent / "img", device="cpu")
    assert len(out) == 24 and (out["error"] == "").all()
    with pytest.raises(RadvisionError, match="no threshold for class 'Stripe'"):
        predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)


def test_fitted_thresholds_give_unlabelled_classes_one_half_so_the_run_still_loads(run_dir, tmp_path, caplog):
    from radvision.predict import fit_thresholds_files

    pred = predict(run_dir, run_dir.parent / "img", device="cpu")
    gold = pd.read_csv(run_dir.parent / "labels.csv").assign(
        path=lambda f: [str(run_dir.parent / p) for p in f["path"]])[["path", "Bright"]]
    copy = shutil.copytree(run_dir, tmp_path / "calibrated")
    (copy / "thresholds.json").unlink()
    fit_thresholds_files(pred, gold, copy / "thresholds.json")
    assert "does not label 1 of the predicted classes; they get 0.5" in caplog.text and "Stripe" in caplog.text
    _, _, _, thr = load_run(copy)
    assert thr[1] == 0.5 and 0 < thr[0] < 1
    assert "Stripe_label" in predict(copy, run_dir.parent / "img", device="cpu", with_labels=True)


def test_evaluate_warns_when_the_gold_mixes_splits(run_dir, caplog):
    pred = predict(run_dir, run_dir.parent / "img", device="cpu")
    gold = pd.read_csv(run_dir.parent / "labels.csv").assign(
        path=lambda f: [str(run_dir.parent / p) for p in f["path"]])
    evaluate_files(pred, gold)
    assert "holds the splits train, valid and they are scored together" in caplog.text
    caplog.clear()
    evaluate_files(pred, gold, split="valid")
    assert "scored together" not in caplog.text


def test_a_list_or_series_of_paths_with_blanks_and_bad_inputs(run_dir):
    first = str(run_dir.parent / "img" / "001.png")
    out = predict(run_dir, pd.Series([first, None]), device="cpu")
    assert out["error"].tolist() == ["", "empty path"]
    with pytest.raises(RadvisionError, match=r"Image paths must be text or path-like; got 5 \(int\)"):
        predict(run_dir, [first, 5], device="cpu")
    with pytest.raises(RadvisionError, match=r"Cannot read images from 5 \(int\)"):
        predict(run_dir, 5, device="cpu")


def test_path_column_names_the_image_column_of_an_input_or_gold_table(run_dir):
    img = run_dir.parent / "img"
    frame = pd.DataFrame({"Path": [str(img / "003.png"), str(img / "001.png")], "path": ["x", "y"]})
    out = predict(run_dir, frame, device="cpu", path_column="Path")
    assert out["path"].tolist() == frame["Path"].tolist() and (out["error"] == "").all()
    with pytest.raises(RadvisionError, match=r"no 'Paths' column \(did you mean 'path'\? --path-column path"):
        predict(run_dir, frame.drop(columns="Path"), device="cpu", path_column="Paths")
    # the named column wins over a 'path' column in the gold; the predictions, without it, join on 'path'
    gold = frame.assign(Bright=[1, 0], Stripe=[0, 1])
    summary, _ = evaluate_files(out, gold, path_column="Path")
    assert summary["n_samples"] == 2
    with pytest.raises(RadvisionError, match="No path in the prediction table matches"):
        evaluate_files(out, gold)  # joined on the 'path' column, which names other files


def test_evaluate_matches_relative_prediction_paths_to_an_absolute_gold(run_dir, monkeypatch, caplog):
    """The README recipe: `predict RUN images/` writes relative paths, read_nih's gold table absolute ones."""
    monkeypatch.chdir(run_dir.parent)
    out = predict(run_dir, "img", device="cpu")
    assert not Path(out["path"].iloc[0]).is_absolute()
    gold = pd.DataFrame({"path": [str(Path("img", n).resolve()) for n in ("001.png", "003.png")],
                         "Bright": [1, 0], "Stripe": [0, 1]})
    with caplog.at_level("INFO", logger="radvision.predict"):
        summary, _ = evaluate_files(out, gold)
    assert summary["n_samples"] == 2
    assert "2 rows matched once relative paths were taken from the current folder" in caplog.text
    assert "match no gold row" in caplog.text  # the other predicted images, counted in the prediction's spelling
    monkeypatch.chdir(run_dir.parent.parent)  # from elsewhere, the relative paths name other files
    with pytest.raises(RadvisionError, match="No path in the prediction table matches"):
        evaluate_files(out, gold)
    monkeypatch.chdir(run_dir.parent)
    one = out[out["path"].str.endswith("001.png")]
    twice = pd.concat([out, one.assign(path="./" + one["path"].iloc[0])])  # one image, scored twice
    with pytest.raises(RadvisionError, match=r"The prediction table spells one image two ways \('img/"):
        evaluate_files(twice, gold)


def test_evaluate_names_prediction_rows_the_gold_does_not_label(run_dir, caplog):
    img = run_dir.parent / "img"
    pred = predict(run_dir, [str(img / f"00{i}.png") for i in range(4)], device="cpu")
    gold = pd.DataFrame({"path": pred["path"][:2], "Bright": [1, 0], "Stripe": [0, 1]})
    with caplog.at_level("INFO"):
        assert evaluate_files(pred, gold)[0]["n_samples"] == 2
    assert f"2 of 4 prediction rows match no gold row and are not scored (first: {str(img / '002.png')!r})" \
        in caplog.text  # was silent, while the reverse (gold without prediction) warned


def _concept_case(tmp_path):
    """Predictions for three images over three concepts, and their ImageCLEF concept file (tab, no header)."""
    pred = pd.DataFrame({"path": ["imgs/DRAN/a.png", "imgs/b.jpg", "imgs/c.jpg"],
                         "C0001": [0.9, 0.1, 0.1], "C0002": [0.1, 0.8, 0.1], "C0003": [0.7, 0.1, 0.6]})
    concepts = tmp_path / "valid_concepts.csv"
    # C0003 is predicted but in no image of this held-out file; C0009 is outside the model's vocabulary
    concepts.write_text("a\tC0001;C0009\nb.jpg\tC0002\nc\t\n")
    return pred, concepts


def test_evaluate_against_a_concept_file_scores_every_predicted_concept(tmp_path, caplog):
    pred, concepts = _concept_case(tmp_path)
    summary, per_class = evaluate_files(pred, concepts, concepts=True)
    # at 0.5: a -> {C0001, C0003} vs gold {C0001, C0009}; b -> {C0002} vs {C0002}; c -> {C0003} vs {}
    assert summary["imageclef_f1"] == pytest.approx((2 * 1 / 4 + 1.0 + 0.0) / 3)
    # the model's own vocabulary: a -> {C0001, C0003} vs {C0001}: C0003's false alarms count
    assert summary["samples_f1"] == pytest.approx((2 * 1 / 3 + 1.0 + 0.0) / 3)
    assert list(per_class["class"]) == ["C0001", "C0002", "C0003"]
    # a gold table with a `concepts` column (read_imageclef(...).frame) is read the same way without the flag
    gold = pd.DataFrame({"path": pred["path"], "C0001": [1.0, 0, 0], "concepts": ["C0001;C0009", "C0002", ""]})
    with caplog.at_level("WARNING", logger="radvision.predict"):
        again, _ = evaluate_files(pred, gold)
    assert again["imageclef_f1"] == pytest.approx(summary["imageclef_f1"])
    assert again["samples_f1"] == pytest.approx(summary["samples_f1"]) and "not scored" not in caplog.text
    thresholds = tmp_path / "thr.json"
    save_thresholds(thresholds, ["C0001", "C0002", "C0003"], [0.5, 0.5, 0.65])  # C0003 only for a
    assert evaluate_files(pred, concepts, thresholds=thresholds, concepts=True)[0]["imageclef_f1"] == \
        pytest.approx((2 * 1 / 4 + 1.0 + 1.0) / 3)


def test_a_gold_table_without_a_predicted_class_says_it_is_not_scored(tmp_path, caplog):
    pred, concepts = _concept_case(tmp_path)
    gold = pd.DataFrame({"path": pred["path"], "C0001": [1.0, 0, 0], "C0002": [0, 1.0, 0]})
    with caplog.at_level("WARNING", logger="radvision.predict"):
        summary, _ = evaluate_files(pred, gold)
    assert "1 predicted class(es) have no gold column and are not scored: C0003" in caplog.text
    assert "--concepts" in caplog.text and "imageclef_f1" not in summary
    with pytest.raises(RadvisionError, match="looks like an ImageCLEF / ROCO concept file.*--concepts"):
        evaluate_files(pred, concepts)
    with pytest.raises(RadvisionError, match="a concept file has no split column"):
        evaluate_files(pred, concepts, concepts=True, split="valid")
    with pytest.raises(RadvisionError, match="No image of the prediction table has an id of the concept file"):
        evaluate_files(pred.assign(path=["x.png", "y.png", "z.png"]), concepts, concepts=True)
    with pytest.raises(RadvisionError, match="names image id 'a' twice"):
        evaluate_files(pred.assign(path=["imgs/a.png", "imgs/DRAN/a.png", "imgs/c.jpg"]), concepts, concepts=True)
    # Windows-style prediction paths name the same ids
    windows = evaluate_files(pred.assign(path=[r"imgs\DRAN\a.png", r"imgs\b.jpg", r"imgs\c.jpg"]), concepts,
                             concepts=True)[0]
    assert windows["imageclef_f1"] == pytest.approx(evaluate_files(pred, concepts, concepts=True)[0]["imageclef_f1"])
    # --concepts given with read_imageclef's own table (path + concepts columns) reads it as that table
    table = tmp_path / "frame.csv"
    pd.DataFrame({"path": pred["path"], "C0001": [1.0, 0, 0], "concepts": ["C0001;C0009", "C0002", ""]}).to_csv(
        table, index=False)
    assert evaluate_files(pred, table, concepts=True)[0]["imageclef_f1"] == pytest.approx((2 * 1 / 4 + 1.0 + 0.0) / 3)
    # ... matching its images by id, as a concept file's, so other spellings of the paths (or bare ids) match too
    pd.DataFrame({"path": ["/data/a.png", "b", "train/c.jpg"], "concepts": ["C0001;C0009", "C0002", ""]}).to_csv(
        table, index=False)
    assert evaluate_files(pred, table, concepts=True)[0]["imageclef_f1"] == pytest.approx((2 * 1 / 4 + 1.0 + 0.0) / 3)


def test_fit_thresholds_on_a_concept_file(tmp_path):
    from radvision.predict import fit_thresholds_files
    from radvision.thresholds import load_thresholds

    pred, concepts = _concept_case(tmp_path)
    table = fit_thresholds_files(pred, concepts, tmp_path / "thr.json", concepts=True)
    assert list(table["class"]) == ["C0001", "C0002", "C0003"]
    assert set(load_thresholds(tmp_path / "thr.json")) == {"C0001", "C0002", "C0003"}
