"""The study examples: their configs hold the published setups, and each --smoke mode runs end to end on
synthetic data in seconds (small backbones, no weights, no network)."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from radvision.data import CHEXPERT_CLASSES
from radvision.errors import RadvisionError

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chexpert():
    return _load("chexpert_study")


@pytest.fixture(scope="module")
def clef():
    return _load("imageclef_concepts")


@pytest.fixture(scope="module")
def nih():
    return _load("nih_densenet_fpn")



# ------------------------------------------------------------------------------------------------ CheXpert


def test_chexpert_refuses_another_dataset_config_and_two_different_roots(chexpert, tmp_path, capsys):
    code = chexpert.main(["--smoke", "--config", str(REPO / "configs" / "demo.yaml")])
    assert code == 2 and "config's data.dataset is 'nih_sample'" in capsys.readouterr().err  # it trained, exit 0
    code = chexpert.main(["--data-root", str(tmp_path), f"data.root={tmp_path / 'other'}"])
    assert code == 2 and "disagree; give the CheXpert folder once" in capsys.readouterr().err
    code = chexpert.main([])
    assert code == 2 and "data.root is not set; pass --data-root" in capsys.readouterr().err


def test_chexpert_config_is_the_published_setup(chexpert):
    cfg = chexpert.study_config()
    assert cfg.model.backbone == ["vgg16", "resnet50", "convnext_large"]
    assert cfg.model.pretrained == "imagenet"
    assert cfg.data.dataset == "chexpert" and cfg.data.frontal_only and cfg.data.policy == "U-Ones"
    assert cfg.data.transforms == "chexpert_study"
    assert cfg.data.downsample == {"No Finding": 0.91, "Pleural Effusion": 0.30}
    assert set(cfg.data.downsample) <= set(
        CHEXPERT_CLASSES
    )  # real column names, or downsample() refuses them
    assert cfg.loss.name == "weighted_bce" and cfg.loss.pos_weight == "auto"
    smoke = chexpert.study_config(smoke=True, overrides=["optim.lr=0.01"])
    assert smoke.model.pretrained is None and smoke.optim.epochs == 1 and smoke.optim.lr == 0.01
    assert isinstance(smoke.model.backbone, list) and len(smoke.model.backbone) == 2  # still a MultiBackbone


def test_chexpert_tables_split_downsample_and_policies(chexpert, tmp_path):
    root = chexpert.make_synthetic_chexpert(tmp_path)
    cfg = chexpert.study_config(smoke=True, data_root=root, overrides=["data.classes=null"])
    ones = chexpert.study_tables(cfg, "U-Ones")
    zeros = chexpert.study_tables(cfg, "U-Zeros")
    assert set(ones) == {"train", "valid", "test"}
    frames = {k: t.frame for k, t in ones.items()}
    assert all(not f["path"].str.contains("lateral").any() for f in frames.values())  # frontal only
    assert len(frames["test"]) == len(pd.read_csv(root / "valid.csv"))  # official valid.csv is the test set
    assert not set(frames["train"]["patient_id"]) & set(frames["valid"]["patient_id"])
    # downsampling: before it, a quarter of the training patients are No-Finding-only
    undownsampled = chexpert.study_config(smoke=True, data_root=root, overrides=["data.downsample=null"])
    full = chexpert.study_tables(undownsampled, "U-Ones")["train"]
    y_full, y = full.labels(), ones["train"].labels()
    j = full.classes.index("No Finding")
    only_nf = lambda m: int(((m[:, j] == 1) & ((m == 1).sum(1) == 1)).sum())  # noqa: E731
    assert only_nf(y_full) >= 4 and only_nf(y) <= round(0.09 * only_nf(y_full)) + 1
    assert len(ones["train"]) < len(full)
    # U-Ones turns uncertain labels into positives, U-Zeros into negatives; nothing stays -1
    assert not (y == -1).any()
    assert (ones["valid"].labels() == 1).sum() + (y == 1).sum() > (zeros["valid"].labels() == 1).sum() + (
        zeros["train"].labels() == 1
    ).sum()
    # data.unmentioned reaches the study's own reads: blanks become negatives in train and test alike
    negative = chexpert.study_config(smoke=True, data_root=root,
                                     overrides=["data.classes=null", "data.unmentioned=negative"])
    parts = chexpert.study_tables(negative, "U-Ones")
    assert np.isnan(ones["train"].labels()).any() or np.isnan(ones["test"].labels()).any()
    assert not any(np.isnan(parts[k].labels()).any() for k in ("train", "test"))


def test_chexpert_smoke_trains_both_policies_and_describes_reports(chexpert, tmp_path, capsys):
    assert chexpert.main(["--smoke", "--run-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "U-Ones" in out and "U-Zeros" in out
    summary = json.loads((tmp_path / "runs" / "study_summary.json").read_text())
    assert [r["policy"] for r in summary["runs"]] == ["U-Ones", "U-Zeros"]
    for r in summary["runs"]:
        run = Path(r["run_dir"])
        assert (run / "model.safetensors").is_file() and (run / "thresholds.json").is_file()
        assert (run / "test_metrics.csv").is_file()
        assert 0.0 <= r["test_mean_auroc"] <= 1.0
        metrics = pd.read_csv(run / "metrics.csv")
        assert len(metrics) == 1 and np.isfinite(metrics["train_loss"]).all()
    reports = tmp_path / "runs" / "reports"
    labels = pd.read_csv(reports / "labels.csv")
    assert len(labels) == len(chexpert.SMOKE_REPORTS)
    assert {"Pleural Effusion", "Cardiomegaly", "error"} <= set(labels.columns)
    prevalence = pd.read_csv(reports / "prevalence.csv").set_index("class")
    assert prevalence.loc["Pleural Effusion", "positive"] >= 1
    assert "positive_U-Ones" in prevalence.columns
    assert summary["reports"]["reports"] == len(labels) and summary["reports"]["entities_per_report"] > 0
    assert (reports / "entities.csv").is_file()


def test_chexpert_checks_the_report_file_before_training(chexpert, tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("images were trained before the report file was checked")

    monkeypatch.setattr(chexpert, "train_policy", no_training)
    assert chexpert.main(["--smoke", "--reports", str(tmp_path / "nope.csv"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_chexpert_bad_override_is_one_sentence(chexpert, capsys):
    assert chexpert.main(["--smoke", "optim.epocs=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "epochs" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------------- ImageCLEF


def test_imageclef_config_is_the_published_setup(clef):
    cfg = clef.study_config()
    assert cfg.model.backbone == "vgg16" and cfg.model.head == "mlp"
    assert cfg.model.hidden == [4096, 4096] and cfg.model.dropout == 0.5
    assert cfg.model.pretrained == "imagenet"
    assert cfg.loss.name == "f1_plus_bce" and cfg.thresholds.top_k == 100
    assert cfg.schedule.monitor == "samples_f1"


def test_predicted_concepts_read_the_label_columns(clef):
    labels = pd.DataFrame({"C1_label": [1.0, 0.0, np.nan], "C2_label": [1.0, 0.0, np.nan], "C3_label": [0.0, 1.0, np.nan],
                           "C1": [0.9, 0.1, np.nan]})
    assert clef.predicted_concepts(labels, ["C1", "C2", "C3"]) == [{"C1", "C2"}, {"C3"}, set()]


def test_concept_table_uses_the_training_vocabulary(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path, n_train=8, n_valid=6)
    vocab = ["C1000000", "C9999999"]  # the second never occurs in the file
    t = clef.concept_table(root / "valid_concepts.csv", root / "valid", vocab)
    assert t.classes == vocab and len(t) == 6
    assert (t.labels()[:, 1] == 0).all()
    lines = (root / "valid_concepts.csv").read_text().splitlines()
    gold = [set(filter(None, line.split("\t")[1].split(";"))) for line in lines]
    from radvision.data.imageclef import concept_set

    assert [concept_set(c) for c in t.frame["concepts"]] == gold
    assert t.labels()[:, 0].tolist() == [float("C1000000" in g) for g in gold]


def test_imageclef_smoke_runs_and_writes_a_submission(clef, tmp_path, capsys):
    assert clef.main(["--smoke", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "cardinality_all" in out and "density_kept" in out and "ImageCLEF F1" in out
    result = json.loads((tmp_path / "run" / "imageclef_scores.json").read_text())
    vocab = result["vocabulary"]
    assert vocab["concepts_kept"] == 8 and vocab["concepts_in_file"] > vocab["concepts_kept"]
    assert vocab["cardinality_all"] >= vocab["cardinality_kept"] > 0
    scores = result["scores"]
    assert 0.0 <= scores["imageclef_f1"] <= 1.0 and scores["images"] == 24
    classes = json.loads((tmp_path / "run" / "thresholds.json").read_text())["thresholds"]
    assert len(classes) == 8
    lines = (tmp_path / "run" / "test_submission.tsv").read_text().splitlines()
    assert len(lines) == 24
    for line in lines:
        image_id, cell = line.split("\t")
        concepts = [c for c in cell.split(";") if c]
        assert (
            image_id.startswith("ROCO_CLEF_valid_") and len(concepts) <= 3 and set(concepts) <= set(classes)
        )


@pytest.mark.parametrize("flag, value", [("--top-concepts", "0"), ("--min-frequency", "0")])
def test_imageclef_bad_vocabulary_options_name_the_option(clef, flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        clef.main(["--smoke", flag, value])
    assert exc.value.code == 2
    assert f"{flag} must be 1 or more" in capsys.readouterr().err


def test_imageclef_detects_a_comma_separated_concept_file(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path, n_train=8, n_valid=6)
    tsv = (root / "valid_concepts.csv").read_text()
    (root / "valid_concepts.csv").write_text(tsv.replace("\t", ","))  # ROCOv2 layout
    t = clef.concept_table(root / "valid_concepts.csv", root / "valid", ["C1000000"])
    assert len(t) == 6 and set(t.frame["concepts"]) == {c.split("\t")[1] for c in tsv.splitlines()}


def test_imageclef_without_validation_file_splits_the_training_images(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=40, n_valid=4)
    (root / "valid_concepts.csv").unlink()
    cfg_overrides = ["data.split={train: 0.6, valid: 0.2, test: 0.2}"]
    args = argparse.Namespace(
        config=str(clef.CONFIG),
        overrides=cfg_overrides,
        smoke=True,
        run_dir=str(tmp_path / "run"),
        data_root=str(root),
        train_concepts=None,
        train_images=None,
        valid_concepts=None,
        valid_images=None,
        sep="\t",
        top_concepts=5,
        min_frequency=1,
    )
    result = clef.run(args)
    assert result["scored_split"] == "test"
    assert 0 < result["scores"]["images"] < 40
    # no test fraction: the valid images are scored and their submission is named after them
    args.overrides, args.run_dir = ["data.split={train: 0.8, valid: 0.2}"], str(tmp_path / "run2")
    result = clef.run(args)
    assert result["scored_split"] == "valid" and (tmp_path / "run2" / "valid_submission.tsv").is_file()
    assert not (tmp_path / "run2" / "test_submission.tsv").exists()
    # the run's config.yaml says what it trained on (it said root: null and the config's filters)
    from radvision.config import load_run_config

    saved = load_run_config(tmp_path / "run2" / "config.yaml").data
    assert (saved.csv, saved.root) == (str(root / "train_concepts.csv"), str(root / "train"))
    assert (saved.concept_top_k, saved.concept_min_frequency) == (5, 1)


def test_imageclef_data_overrides_take_effect_and_other_configs_are_refused(clef, tmp_path, capsys):
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=12, n_valid=4)
    code = clef.main(["--data-root", str(root), f"data.csv={tmp_path / 'nowhere.csv'}", "--smoke"])
    assert code == 2 and "nowhere.csv" in capsys.readouterr().err  # the override was ignored: trained on root
    code = clef.main(["--smoke", "--config", str(REPO / "configs" / "demo.yaml")])
    assert code == 2 and "config's data.dataset is 'nih_sample'" in capsys.readouterr().err
    small = [f"{section}.{key}={json.dumps(value)}" for section, keys in clef.SMOKE.items() for key, value in keys.items()]
    code = clef.main([f"data.csv={root / 'train_concepts.csv'}", f"data.root={root / 'train'}", "--run-dir",
                      str(tmp_path / "run"), "--top-concepts", "5", *small])
    assert code == 0  # the overrides alone name the data (an argument error asked for --data-root)
    code = clef.main([])
    assert code == 2 and "No training data given; pass --data-root" in capsys.readouterr().err


def _clef_args(clef, root, run_dir, overrides=()):
    return argparse.Namespace(config=str(clef.CONFIG), overrides=list(overrides), smoke=True, run_dir=str(run_dir),
                              data_root=str(root), train_concepts=None, train_images=None, valid_concepts=None,
                              valid_images=None, sep="\t", top_concepts=None, min_frequency=None)


def test_imageclef_data_classes_picks_the_vocabulary(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=16, n_valid=4)
    result = clef.run(_clef_args(clef, root, tmp_path / "run", ["data.classes=[C1000137,C1000000]"]))
    assert result["vocabulary"]["concepts_kept"] == 2  # it read all 8 and the Trainer refused the run
    kept = json.loads((tmp_path / "run" / "thresholds.json").read_text())["thresholds"]
    assert sorted(kept) == ["C1000000", "C1000137"]


def test_imageclef_skip_scores_a_missing_test_image_as_predicting_nothing(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=16, n_valid=6)
    (root / "valid" / "ROCO_CLEF_valid_00003.png").unlink()
    (root / "train" / "ROCO_CLEF_train_00005.png").unlink()
    result = clef.run(_clef_args(clef, root, tmp_path / "run", ["data.on_error=skip"]))
    assert result["scores"]["images"] == 6  # it was left out of the score (5 images) and of the submission
    lines = (tmp_path / "run" / "test_submission.tsv").read_text().splitlines()
    assert len(lines) == 6 and lines[3] == "ROCO_CLEF_valid_00003\t"
    skipped = pd.read_csv(tmp_path / "run" / "skipped_images.csv")
    assert any("ROCO_CLEF_train_00005." in p for p in skipped["path"])


def test_imageclef_rerun_in_the_same_folder_keeps_no_stale_submission(clef, tmp_path):
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=16, n_valid=4)
    clef.run(_clef_args(clef, root, tmp_path / "run"))
    assert (tmp_path / "run" / "test_submission.tsv").is_file()
    (root / "valid_concepts.csv").unlink()
    assert clef.run(_clef_args(clef, root, tmp_path / "run"))["scored_split"] == "valid"
    assert not (tmp_path / "run" / "test_submission.tsv").exists()  # the first model's predictions stayed


def test_imageclef_with_a_validation_file_records_the_split_it_used(clef, tmp_path, caplog):
    from radvision.config import load_run_config

    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=20, n_valid=4)
    clef.run(_clef_args(clef, root, tmp_path / "run", ["data.split={train: 0.6, valid: 0.2, test: 0.2}"]))
    assert "the validation concept file is the test set" in caplog.text
    saved = load_run_config(tmp_path / "run" / "config.yaml").data
    assert saved.split == {"train": 0.6, "valid": 0.4}  # it said 0.6 / 0.2 / 0.2, which rebuilds another split


def test_imageclef_missing_validation_file_is_an_error(clef, tmp_path, capsys):
    code = clef.main(["--data-root", str(tmp_path), "--valid-concepts", str(tmp_path / "nope.csv")])
    assert code == 2 and "nope.csv" in capsys.readouterr().err


def test_nih_min_positives_must_allow_an_auroc(nih, capsys):
    with pytest.raises(SystemExit) as exc:
        nih.main(["--smoke", "--min-positives", "0"])
    assert exc.value.code == 2 and "--min-positives must be 1 or more" in capsys.readouterr().err


def test_nih_score_errors_are_one_sentence(nih, tmp_path, capsys):
    image = tmp_path / "chest.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00binary")
    assert nih.main(["--score", str(tmp_path / "missing.csv"), str(image)]) == 2
    assert nih.main(["--score", str(image), str(image)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
    assert "not a readable CSV" in err[1]


def test_example_overrides_may_come_between_the_options(nih, tmp_path, capsys):
    gold = pd.DataFrame({"Image Index": [f"{i}.png" for i in range(4)],
                         "Finding Labels": ["Effusion", "No Finding", "Effusion", "No Finding"]})
    gold.to_csv(tmp_path / "gold.csv", index=False)
    pd.DataFrame({"path": gold["Image Index"], "Effusion": [0.9, 0.1, 0.8, 0.2]}).to_csv(tmp_path / "p.csv", index=False)
    argv = ["optim.epochs=1", "--score", str(tmp_path / "p.csv"), str(tmp_path / "gold.csv"), "data.image_size=64",
            "--min-positives", "1"]
    assert nih.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["Effusion"] == 1.0


def test_imageclef_validation_concepts_need_their_images(clef, tmp_path, capsys):
    root = clef.make_synthetic_imageclef(tmp_path, n_train=8, n_valid=6)
    argv = ["--train-concepts", str(root / "train_concepts.csv"), "--train-images", str(root / "train"),
            "--valid-concepts", str(root / "valid_concepts.csv")]
    assert clef.main(argv) == 2
    assert "--valid-concepts needs --valid-images" in capsys.readouterr().err


def test_nih_score_reads_split_spellings_as_training_does(nih, tmp_path):
    sample = Path(__file__).resolve().parents[2] / "src" / "radvision" / "sample" / "Data_Entry_sample.csv"
    gold = pd.read_csv(sample)
    gold["split"] = gold["split"].replace({"valid": " Val"})
    rng = np.random.default_rng(0)
    pred = pd.DataFrame({"path": "images/" + gold["Image Index"]})
    for c in ("Atelectasis", "Effusion", "Infiltration"):
        pred[c] = rng.random(len(pred))
    n_valid = int((gold["split"] == " Val").sum())
    assert nih.score_predictions(pred, gold, min_positives=1, split="valid")["n_images"] == n_valid
    assert nih.score_predictions(pred, gold, min_positives=1, split="validate")["n_images"] == n_valid


def test_imageclef_vocabulary_comes_from_the_flags_then_the_config_keys_then_the_smoke_defaults(clef):
    def filters(argv, overrides=()):
        args = argparse.Namespace(**{"top_concepts": None, "min_frequency": None, "smoke": False, **argv})
        return clef.vocabulary_filters(args, clef.study_config(clef.CONFIG, list(overrides), smoke=args.smoke))

    assert filters({}) == (None, 1)
    assert filters({}, ["data.concept_top_k=3", "data.concept_min_frequency=5"]) == (3, 5)  # were ignored
    assert filters({"top_concepts": 4, "min_frequency": 2}, ["data.concept_top_k=3"]) == (4, 2)
    assert filters({"smoke": True}) == (8, 2)  # the smoke data's own vocabulary
    assert filters({"smoke": True, "min_frequency": 1}) == (8, 1)  # an explicit 1 is kept
    assert filters({"smoke": True}, ["data.concept_top_k=3"]) == (3, 2)



def test_chexpert_study_reads_data_csv_in_place_of_train_csv(chexpert, tmp_path):
    root = chexpert.make_synthetic_chexpert(tmp_path)
    few = pd.read_csv(root / "train.csv").head(16)
    few.to_csv(root / "train_few.csv", index=False)
    cfg = chexpert.study_config(smoke=True, data_root=root, overrides=["data.csv=train_few.csv",
                                                                      "data.downsample=null"])
    parts = chexpert.study_tables(cfg, "U-Ones")
    frontal = few["Frontal/Lateral"].eq("Frontal").sum()
    assert len(parts["train"]) + len(parts["valid"]) == frontal  # all of train.csv was read before
    assert len(parts["test"]) == len(pd.read_csv(root / "valid.csv").query("`Frontal/Lateral` == 'Frontal'"))


def test_nih_any_finding_reads_a_blank_no_finding_beside_a_finding_as_a_finding(nih):
    gold = pd.DataFrame({"path": [f"{i}.png" for i in range(6)], "Effusion": [1, 0, 1, 0, 1, 0],
                         "No Finding": [None, 1, None, 1, None, None]})
    pred = pd.DataFrame({"path": gold["path"], "Effusion": [0.9, 0.1, 0.8, 0.2, 0.3, 0.5]})
    result = nih.score_predictions(pred, gold, min_positives=1)
    assert result["any_finding"] == 1.0  # the last row (blank, no finding) is unknown and left out
    gold["Support Devices"] = [0, 0, 0, 0, 0, 1]  # a device is not a finding: the last row stays unknown
    assert nih.gold_frame(gold)["any_finding"].isna().tolist() == [False] * 5 + [True]
    assert result["mean_auroc"] == pytest.approx((result["Effusion"] + 1.0) / 2)


def test_nih_split_without_score_is_an_argument_error(nih, capsys):
    with pytest.raises(SystemExit) as exc:
        nih.main(["--smoke", "--split", "test"])
    assert exc.value.code == 2 and "--split chooses the gold rows --score scores" in capsys.readouterr().err


def test_chexpert_study_empty_valid_split_is_one_sentence(chexpert, tmp_path, capsys):
    root = chexpert.make_synthetic_chexpert(tmp_path)
    cfg = chexpert.study_config(smoke=True, data_root=root, overrides=["data.split={train: 0.99, valid: 0.01}"])
    with pytest.raises(RadvisionError, match="left no 'valid' image; give it a larger fraction"):
        chexpert.study_tables(cfg, "U-Ones")


def test_chexpert_smoke_trains_u_multiclass_with_its_cross_entropy(chexpert, tmp_path, capsys):
    assert chexpert.main(["--smoke", "--run-dir", str(tmp_path / "runs"), "--policies", "U-MultiClass"]) == 0
    run = tmp_path / "runs"
    saved = yaml.safe_load((run / "U-MultiClass" / "config.yaml").read_text())
    assert saved["data"]["policy"] == "U-MultiClass" and saved["loss"]["name"] == "bce"
    assert 0.0 <= json.loads((run / "study_summary.json").read_text())["runs"][0]["test_mean_auroc"] <= 1.0


def test_nih_score_takes_the_official_lists_and_names_what_it_leaves_out(nih, tmp_path, caplog):
    entry = pd.DataFrame({"Image Index": [f"{i}.png" for i in range(6)],
                          "Finding Labels": ["Effusion", "No Finding", "Effusion", "No Finding", "Mass", "No Finding"]})
    entry.to_csv(tmp_path / "Data_Entry_2017.csv", index=False)
    (tmp_path / "train_val_list.txt").write_text("0.png\n1.png\n")
    (tmp_path / "test_list.txt").write_text("2.png\n3.png\n4.png\n5.png\n")
    pred = pd.DataFrame({"path": [f"img/{i}.png" for i in range(7)], "Effusion": [.9, .1, .8, .2, .3, .1, .5],
                         "Mass": [.1, .1, .1, .1, .9, .2, .5], "error": [""] * 5 + ["cannot read", ""]})
    # was: "the gold table has no 'split' column", though the official lists lie beside it
    with caplog.at_level("INFO"):
        result = nih.score_predictions(pred, tmp_path / "Data_Entry_2017.csv", min_positives=1, split="test")
    assert result["n_images"] == 3  # 2.png, 3.png, 4.png: 5.png failed to read
    assert "1 prediction row(s) carry an error (unread images, first: img/5.png)" in caplog.text
    assert "3 of 6 prediction row(s) match no gold image of split 'test'" in caplog.text  # 0, 1 and the unknown 6


def test_chexpert_overrides_may_follow_the_policies(chexpert, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(chexpert, "run", lambda args: seen.update(vars(args)))
    assert chexpert.main(["--data-root", "x", "--policies", "U-Ones", "U-Zeros", "optim.epochs=1", "a.b=2"]) == 0
    assert seen["policies"] == ["U-Ones", "U-Zeros"] and seen["overrides"] == ["optim.epochs=1", "a.b=2"]
    for bad in (["U-Bogus"], ["optim.epochs=1"]):  # was: "invalid choice: 'optim.epochs=1'"
        with pytest.raises(SystemExit) as exc:
            chexpert.main(["--data-root", "x", "--policies", *bad])
        assert exc.value.code == 2 and "argument --policies: " in capsys.readouterr().err


def test_nih_scores_any_finding_from_a_saved_reader_tables_no_finding_flag(nih):
    # a reader's table keeps the source's "no finding" in a source_no_finding column, never a class: without this
    # every image counted as "any finding" and the term left mean_auroc without a word
    from radvision.sample import load_nih_sample

    gold = load_nih_sample().frame
    assert "source_no_finding" in gold
    frame = nih.gold_frame(gold)
    assert "source_no_finding" not in frame
    np.testing.assert_array_equal(frame["any_finding"], 1.0 - gold["source_no_finding"].to_numpy(dtype=float))
    classes = [c for c in frame.columns if c not in ("key", "any_finding", "split")]
    rng = np.random.default_rng(0)
    pred = pd.DataFrame({"path": gold["path"], **{c: rng.random(len(gold)) for c in classes}})
    assert "any_finding" in nih.score_predictions(pred, gold, min_positives=1)



# -- review of 2026-11-24 (night): what the studies did with their inputs ----------------------------------


def test_chexpert_policies_train_select_and_test_on_the_same_images(chexpert, tmp_path):
    root = chexpert.make_synthetic_chexpert(tmp_path)
    cfg = chexpert.study_config(smoke=True, data_root=root, overrides=["data.classes=null"])
    tables = {p: chexpert.study_tables(cfg, p) for p in ("U-Ones", "U-Zeros", "U-Ignore", "U-MultiClass")}
    for name in ("train", "valid", "test"):  # downsampling ran on U-Zeros' labels: fewer images than U-Ones
        paths = {p: t[name].frame["path"].tolist() for p, t in tables.items()}
        assert all(v == paths["U-Ones"] for v in paths.values()), name
    assert (tables["U-MultiClass"]["train"].labels() == -1).any()  # ... and only the labels differ
    assert not (tables["U-Zeros"]["train"].labels() == -1).any()


def test_chexpert_checks_images_and_backbones_before_labelling_reports(chexpert, tmp_path, capsys, monkeypatch):
    root = chexpert.make_synthetic_chexpert(tmp_path / "data")
    reports = chexpert.make_synthetic_reports(tmp_path / "reports.csv")

    def no_reports(*args, **kwargs):
        raise AssertionError("the reports were labelled before the image side was checked")

    monkeypatch.setattr(chexpert, "report_statistics", no_reports)
    base = ["--data-root", str(root), "--reports", str(reports), "--run-dir", str(tmp_path / "r"),
            "model.pretrained=null", "data.image_size=32"]
    assert chexpert.main([*base, "model.backbone=[simple_cnn,nope]"]) == 2
    assert "Unknown backbone 'nope'" in capsys.readouterr().err
    first = pd.read_csv(root / "train.csv")["Path"].iloc[0]
    (root.parent / first).unlink()
    assert chexpert.main([*base, "model.backbone=simple_cnn"]) == 2
    assert Path(first).name in capsys.readouterr().err


def test_chexpert_a_test_fraction_is_said_and_the_split_used_recorded(chexpert, tmp_path, caplog):
    assert chexpert.train_valid_split({"train": 0.5, "valid": 0.25}) == {"train": 0.666667, "valid": 0.333333}
    with caplog.at_level("WARNING"):
        split = chexpert.train_valid_split({"train": 0.5, "valid": 0.25, "test": 0.25})
    assert split == {"train": 0.666667, "valid": 0.333333}
    assert "asks for a test fraction of 0.25, but the official valid.csv is the test set" in caplog.text
    with pytest.raises(RadvisionError, match="has no train or valid fraction"):
        chexpert.train_valid_split({"test": 1.0})


def test_nih_study_applies_the_data_keys_as_radvision_train_does(nih, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    argv = ["--smoke", "--run-dir", str(run), "data.downsample={No Finding: 1.0}"]
    with caplog.at_level("WARNING"):
        assert nih.main(argv) == 0
    assert "no test split" in caplog.text  # the valid images chose the epoch: not a held-out figure
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["dataset"] == "nih_sample" and cfg["data"]["downsample"] == {"No Finding": 1.0}
    scores = json.loads((run / "nih_scores.json").read_text())
    assert scores["split"] == "valid" and 0.0 <= scores["mean_auroc"] <= 1.0
    from radvision.config import load_config

    parts = nih.study_tables(load_config(run / "config.yaml"))
    no_finding = parts["train"].frame["source_no_finding"] == 1
    assert len(parts["train"]) > 0 and not no_finding.any()  # the downsample was applied (it was ignored)
    assert nih.main(["--smoke", "data.dataset=chexpert"]) == 2
    assert "This study trains on NIH ChestX-ray14, but the config's data.dataset is 'chexpert'" in \
        capsys.readouterr().err


def test_nih_study_warns_when_valid_patients_also_have_train_images(nih, caplog):
    from radvision.sample import load_nih_sample

    table = load_nih_sample()  # patient-disjoint: no warning
    parts = {"train": table.subset("train"), "valid": table.subset("valid")}
    with caplog.at_level("WARNING"):
        nih._warn_shared_patients(parts)
    assert "not patient-disjoint" not in caplog.text
    valid = parts["valid"].frame.copy()  # two valid images of a patient who also has train images
    valid.loc[valid.index[:2], "patient_id"] = parts["train"].frame["patient_id"].iloc[0]
    parts["valid"] = type(parts["valid"])(valid, parts["valid"].classes, parts["valid"].root)
    with caplog.at_level("WARNING"):
        nih._warn_shared_patients(parts)
    assert f"2 of {len(valid)} valid images come from 1 patient(s) who also have train images" in caplog.text


def test_imageclef_no_readable_test_image_stops_before_training(clef, tmp_path, monkeypatch, capsys):
    from radvision.train import Trainer

    def no_training(*args, **kwargs):
        raise AssertionError("trained although no test image could be read")

    monkeypatch.setattr(Trainer, "fit", no_training)
    root = clef.make_synthetic_imageclef(tmp_path / "data", n_train=16, n_valid=4)
    args = _clef_args(clef, root, tmp_path / "run", ["data.on_error=skip"])
    args.valid_concepts, args.valid_images = str(root / "valid_concepts.csv"), str(tmp_path / "nowhere")
    args.train_concepts, args.train_images = str(root / "train_concepts.csv"), str(root / "train")
    with pytest.raises(RadvisionError, match="No image of the validation concept file .* could be read from"):
        clef.run(args)


def test_smoke_modes_refuse_a_data_folder_they_would_ignore(chexpert, nih, capsys):
    for main, flag in ((chexpert.main, "--data-root"), (nih.main, "--root")):
        with pytest.raises(SystemExit):
            main(["--smoke", flag, "/data/somewhere"])
        assert "--smoke trains on" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        chexpert.main(["--data-root", "/data/somewhere", "--plots"])
    assert "--plots draws the report statistics; give --reports FILE" in capsys.readouterr().err


def test_chexpert_smoke_report_labels_keep_the_study_ids(chexpert, tmp_path):
    assert chexpert.main(["--smoke", "--run-dir", str(tmp_path / "runs"), "--policies", "U-Ones"]) == 0
    labels = pd.read_csv(tmp_path / "runs" / "reports" / "labels.csv")
    assert labels.columns[0] == "study_id" and labels["study_id"].tolist()[:2] == ["s0", "s1"]


def test_chexpert_policy_prevalence_counts_every_report_as_prevalence_does(chexpert, tmp_path):
    """A report that could not be read has no labels: it was left out of the policy's share only, so
    `positive_U-Ones` (2 of 3) disagreed with `prevalence` (2 of 4) where no report was uncertain."""
    reports = tmp_path / "reports.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "report": ["Small left pleural effusion.", "Large right pleural effusion.",
                                                 "", "No effusion."]}).to_csv(reports, index=False)
    out = chexpert.report_statistics(reports, tmp_path / "out", id_column="id", policy="U-Ones")
    assert out["errors"] == 1
    prevalence = out["prevalence"]
    assert prevalence.loc["Pleural Effusion", "prevalence"] == pytest.approx(0.5)
    assert prevalence.loc["Pleural Effusion", "positive_U-Ones"] == pytest.approx(0.5)


def test_chexpert_names_folders_of_an_earlier_study_it_does_not_describe(chexpert, tmp_path, caplog):
    runs = tmp_path / "runs"
    (runs / "U-Zeros").mkdir(parents=True)
    (runs / "reports").mkdir()
    with caplog.at_level("WARNING"):
        assert chexpert.main(["--smoke", "--run-dir", str(runs), "--policies", "U-Ones"]) == 0
    assert "also holds U-Zeros/ from an earlier run" in caplog.text  # reports/ is this run's (smoke labels some)


def test_chexpert_study_resume_goes_on_with_the_runs_in_the_folder(chexpert, tmp_path, caplog):
    root = chexpert.make_synthetic_chexpert(tmp_path / "data")
    cfg = chexpert.study_config(smoke=True, data_root=root, run_dir=tmp_path / "runs")
    cfg.data.split = chexpert.train_valid_split(cfg.data.split)
    parts = chexpert.study_parts(cfg)
    run_dir = tmp_path / "runs" / "U-Ones"
    first = chexpert.train_policy(cfg, "U-Ones", run_dir, parts)
    metrics = (run_dir / "metrics.csv").read_text()
    with caplog.at_level("INFO"):
        again = chexpert.train_policy(cfg, "U-Ones", run_dir, parts, resume=True)
    assert "going on with the run" in caplog.text and "Nothing left to train" in caplog.text
    assert (run_dir / "metrics.csv").read_text() == metrics  # the finished epoch was not trained again
    assert again["test_mean_auroc"] == pytest.approx(first["test_mean_auroc"])
    fresh = chexpert.train_policy(cfg, "U-Zeros", tmp_path / "runs" / "U-Zeros", parts, resume=True)
    assert Path(fresh["run_dir"], "model.safetensors").is_file()  # no run there yet: it starts
