import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radvision.cli import _parser, main


def make_images(root, n=16, size=32):
    rng = np.random.default_rng(2)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        a = rng.integers(0, 60, size=(size, size)).astype(np.uint8) + (120 if i % 2 else 0)
        Image.fromarray(a.astype(np.uint8), mode="L").save(root / "img" / f"{i:03d}.png")
        rows.append({"path": f"img/{i:03d}.png", "Bright": i % 2, "Dark": 1 - i % 2, "patient_id": f"p{i}",
                     "split": "train" if i < 10 else "valid"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    cfg = root / "cfg.yaml"
    cfg.write_text(
        f"data: {{dataset: csv, csv: {root / 'labels.csv'}, image_size: 32, transforms: none}}\n"
        "model: {backbone: simple_cnn}\n"
        "optim: {batch_size: 8, epochs: 1}\n"
        "runtime: {device: cpu, progress: false}\n"
        f"output: {{run_dir: {root / 'run'}}}\n"
    )
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    cfg = make_images(root)
    assert main(["-q", "train", str(cfg)]) == 0
    return root


def test_train_then_resume(trained, capsys):
    run = trained / "run"
    assert (run / "model.safetensors").is_file()
    assert main(["-q", "train", str(trained / "cfg.yaml"), "optim.epochs=2", "--resume", str(run)]) == 0
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    assert capsys.readouterr().out.strip().endswith(str(run))


def test_predict_evaluate_explain(trained, tmp_path, capsys):
    run, pred = trained / "run", tmp_path / "pred.csv"
    assert main(["-q", "predict", str(run), str(trained / "img"), "-o", str(pred)]) == 0
    out = pd.read_csv(pred, keep_default_na=False)
    assert list(out.columns) == ["path", "Bright", "Dark", "error"] and len(out) == 16
    gold = pd.read_csv(trained / "labels.csv")
    gold["path"] = [str(trained / p) for p in gold["path"]]
    gold[["path", "Bright", "Dark"]].to_csv(tmp_path / "gold.csv", index=False)
    capsys.readouterr()
    assert main(["-q", "evaluate", str(pred), str(tmp_path / "gold.csv"), "-o", str(tmp_path / "m.csv")]) == 0
    assert "mean_auroc" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "m.csv")) == 2
    assert main(["-q", "explain", str(run), str(trained / "img" / "001.png"), "-o", str(tmp_path / "cams"),
                 "--classes", "Bright,Dark"]) == 0  # commas as well as spaces ("Bright,Dark" was one unknown class)
    assert len(list((tmp_path / "cams").glob("*.png"))) == 2
    assert main(["-q", "explain", str(run), str(trained / "img" / "002.png"), "-o", str(tmp_path / "layercam"),
                 "--method", "layercam"]) == 0
    assert len(list((tmp_path / "layercam").glob("*.png"))) == 2
    assert main(["-q", "explain", str(run), str(trained / "img" / "002.png"), "--method", "scorecam"]) == 2
    assert "Unknown CAM method 'scorecam'" in capsys.readouterr().err
    assert main(["-q", "explain", str(run), str(trained / "img" / "002.png"), "--classes", ","]) == 2  # was: 0 written
    assert "No class to explain was given; name one or more of Bright, Dark" in capsys.readouterr().err
    from radvision.predict import explain_images

    one = explain_images(run, [trained / "img" / "003.png"], tmp_path / "one", classes="Dark")  # was: class 'D'
    assert [p.name for p in one] == ["003_Dark.png"]
    manifest = pd.read_csv(tmp_path / "cams" / "overlays.csv")  # which overlay is which input, and its probability
    assert manifest["overlay"].tolist() == ["001_Bright.png", "001_Dark.png"]
    assert manifest["image"].tolist() == [str(trained / "img" / "001.png")] * 2
    probs = pd.read_csv(pred).set_index("path").loc[str(trained / "img" / "001.png"), ["Bright", "Dark"]]
    assert manifest["probability"].tolist() == pytest.approx(probs.astype(float).tolist(), abs=1e-5)


def test_nih_data_entry_table_as_input_or_gold_says_what_to_do(trained, tmp_path, capsys):
    entry = tmp_path / "Data_Entry_2017.csv"
    pd.DataFrame({"Image Index": ["000.png"], "Finding Labels": ["Effusion|Mass"], "Patient ID": [1]}).to_csv(
        entry, index=False)
    assert main(["-q", "predict", str(trained / "run"), str(entry), "-o", str(tmp_path / "p.csv")]) == 2
    assert "NIH ChestX-ray14's Data_Entry table" in capsys.readouterr().err
    pred = tmp_path / "pred.csv"
    pd.DataFrame({"path": ["a.png"], "Bright": [0.5], "Dark": [0.5]}).to_csv(pred, index=False)
    assert main(["-q", "evaluate", str(pred), str(entry)]) == 2
    assert "nih_densenet_fpn.py --score" in capsys.readouterr().err


def test_predict_that_reads_nothing_exits_2_with_a_root_hint(trained, tmp_path, capsys):
    csv = tmp_path / "paths.csv"  # paths relative to the data folder, CSV somewhere else
    pd.DataFrame({"path": ["img/000.png", "img/001.png"]}).to_csv(csv, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["-q", "predict", str(trained / "run"), str(csv), "-o", str(pred)]) == 2
    err = capsys.readouterr().err
    assert "no image could be read" in err and f"relative paths start at {tmp_path}" in err and "--root" in err
    assert len(pd.read_csv(pred)) == 2  # the rows are still written, each with its error
    assert main(["-q", "predict", str(trained / "run"), str(csv), "-o", str(pred), "--root", str(trained)]) == 0
    assert pd.read_csv(pred, keep_default_na=False)["error"].tolist() == ["", ""]


def test_models_lists_backbones(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "simple_cnn" in out.split()
    assert "timm/<name>" in out
    inception = next(line.split() for line in out.splitlines() if line.startswith("inception_v3 "))
    assert inception[:5] == ["inception_v3", "torchvision", "75", "299", "2048"]  # min px, usual px, features


@pytest.mark.parametrize("argv, message", [
    (["train", "{cfg}", "optim.epoch=3"], "did you mean epochs"),
    (["train", "{cfg}", "optim.epochs=many"], "must be int"),
    (["train", "{root}/missing.yaml"], "does not exist"),
    (["predict", "{root}", "{root}/img", "-o", "{root}/p.csv"], "not a run directory"),
    (["evaluate", "{root}/nope.csv", "{root}/labels.csv"], "does not exist"),
    (["evaluate", "{root}/img/000.png", "{root}/labels.csv"], "is not a readable CSV"),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/img"], "is a folder; pass a file name"),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/p.csv", "--device", "gpu"], "Unknown device 'gpu'"),
])
def test_user_errors_exit_2_with_one_sentence(trained, capsys, argv, message):
    argv = [a.format(cfg=trained / "cfg.yaml", root=trained) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("radvision: error:") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_help_documents_overrides():
    proc = subprocess.run([sys.executable, "-m", "radvision.cli", "train", "--help"], capture_output=True,
                          text=True, check=True)
    assert "dotted.key=value" in proc.stdout and "--resume" in proc.stdout


def test_exit_code_maps_user_errors_for_every_entry_point(capsys):
    from radvision.cli import exit_code
    from radvision.errors import RadvisionError

    class OtherUserError(Exception):
        pass

    def fail(exc):
        def command():
            raise exc
        return command

    assert exit_code(lambda: None) == 0 and exit_code(lambda: 3) == 3
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert exit_code(lambda: os.kill(os.getpid(), signal.SIGTERM)) == 143  # `kill PID`: cleaned up as after ^C
    assert capsys.readouterr().err == "radvision: terminated (SIGTERM).\n"
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_code(fail(PermissionError(13, "Permission denied", "/ro/cache/.x.tmp"))) == 2
    assert "radvision: error: permission denied: /ro/cache/.x.tmp; choose a place" in capsys.readouterr().err
    with pytest.raises(PermissionError):  # not about a file: a traceback, not a user error
        exit_code(fail(PermissionError(1, "Operation not permitted")))
    assert exit_code(fail(RadvisionError("bad key")), prog=None) == 2
    assert capsys.readouterr().err == "error: bad key\n"
    assert exit_code(fail(OtherUserError("bad report")), prog="x", errors=(OtherUserError,)) == 2
    assert capsys.readouterr().err == "x: error: bad report\n"
    assert exit_code(fail(FileNotFoundError(2, "missing", "a.csv"))) == 2
    assert "file not found: a.csv" in capsys.readouterr().err
    assert exit_code(fail(OSError(30, "Read-only file system", "out/x.csv"))) == 2  # it was a traceback, rc 1
    assert capsys.readouterr().err == "radvision: error: cannot use out/x.csv: Read-only file system.\n"
    with pytest.raises(OSError):  # not about a file
        exit_code(fail(OSError("device lost")))
    with pytest.raises(ValueError):  # a bug is not a user error: it keeps its traceback
        exit_code(fail(ValueError("bug")))


def test_only_the_first_process_logs_below_errors():
    import logging

    from radvision.cli import log_level

    assert [log_level(False, False), log_level(True, False), log_level(False, True)] == [
        logging.INFO, logging.DEBUG, logging.WARNING]
    assert log_level(True, False, rank=1) == logging.ERROR  # its warnings were rank 0's, printed twice


def test_overrides_may_follow_the_options(trained, tmp_path):
    run = tmp_path / "late"
    assert main(["-q", "train", str(trained / "cfg.yaml"), "--no-progress", "optim.epochs=1",
                 f"output.run_dir={run}"]) == 0
    assert (run / "model.safetensors").is_file()
    with pytest.raises(SystemExit) as stop:  # options it does not know still stop argparse's way
        main(["-q", "train", str(trained / "cfg.yaml"), "optim.epochs=1", "--bogus"])
    assert stop.value.code == 2


def test_log_options_also_follow_the_command_and_a_tilde_run_dir_is_home(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    # -q after the command (as --help lists it); the shell leaves ~ in key=value alone, radvision expands it
    assert main(["train", str(trained / "cfg.yaml"), "-q", "output.run_dir=~/runs/t"]) == 0
    run = tmp_path / "home" / "runs" / "t"
    assert (run / "valid_metrics.csv").is_file() and not (tmp_path / "~").exists()
    capsys.readouterr()
    assert main(["predict", str(run), str(trained / "img"), "-o", str(tmp_path / "p.csv"), "-q"]) == 0
    assert "predicting" not in capsys.readouterr().err  # quiet: no progress bar
    args = _parser().parse_args(["-v", "models"])
    assert args.verbose and not args.quiet  # given before the command, not reset by the command's defaults


@pytest.mark.parametrize("argv, message", [
    (["train", "{root}"], "is a folder; pass the path of a YAML file"),
    (["train", "{root}/img/000.png"], "is not text"),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/newdir/"], "is a folder; pass a file name"),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/img/000.png/x.csv"], "cannot be written: "),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/p.parquet"], "ends in '.parquet'; radvision writes CSV"),
    (["evaluate", "{root}/labels.csv", "{root}/labels.csv", "-o", "{root}/m"], "has no suffix; radvision writes CSV"),
    (["train", "{cfg}", "thresholds.min_precision=2"], "'thresholds.min_precision' must be between 0 and 1"),
    (["predict", "{root}/run", "{root}/img", "-o", "{root}/p.csv", "--workers", "-1"], "num_workers must be 0"),
    (["features", "{root}/run", "{root}/img", "-o", "{root}/f.npy", "--batch-size", "0"], "batch_size must be"),
])
def test_more_user_errors_exit_2_with_one_sentence(trained, capsys, argv, message):
    argv = [a.format(cfg=trained / "cfg.yaml", root=trained) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("radvision: error:") and message in err and len(err.splitlines()) == 1
    assert not (trained / "newdir").exists()


def test_a_corrupt_weights_file_is_a_user_error(trained, tmp_path, capsys):
    import shutil

    run = shutil.copytree(trained / "run", tmp_path / "run")
    (run / "model.safetensors").write_bytes(b"\xff" * 64)
    assert main(["-q", "predict", str(run), str(trained / "img"), "-o", str(tmp_path / "p.csv")]) == 2
    assert "is not a readable safetensors file" in capsys.readouterr().err


def test_train_ends_the_accelerator_it_used(trained, tmp_path, monkeypatch):
    from accelerate import Accelerator

    ended = []
    monkeypatch.setattr(Accelerator, "end_training", lambda self: ended.append(self))
    assert main(["-q", "train", str(trained / "cfg.yaml"), f"output.run_dir={tmp_path / 'r'}"]) == 0
    assert len(ended) == 1


def test_predict_of_one_unreadable_image_gives_no_root_hint(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["-q", "predict", str(trained / "run"), str(bad), "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "no image could be read" in err and "--root" not in err


def test_a_closed_pipe_ends_quietly(trained, tmp_path):
    pred = tmp_path / "pred.csv"
    assert main(["-q", "predict", str(trained / "run"), str(trained / "img"), "-o", str(pred)]) == 0
    gold = pd.read_csv(trained / "labels.csv")
    gold["path"] = [str(trained / p) for p in gold["path"]]
    gold[["path", "Bright", "Dark"]].to_csv(tmp_path / "gold.csv", index=False)
    proc = subprocess.Popen([sys.executable, "-m", "radvision.cli", "-q", "evaluate", str(pred), str(tmp_path / "gold.csv")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the first line, as `| head -0` would
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and "Traceback" not in err and "BrokenPipe" not in err


def test_features_and_evaluate_one_split(trained, tmp_path, capsys):
    run = trained / "run"
    out = tmp_path / "feats.parquet"
    assert main(["-q", "features", str(run), str(trained / "img"), "-o", str(out)]) == 0
    assert "16 feature rows of width 128 written to" in capsys.readouterr().out
    assert main(["-q", "features", str(run), str(trained / "img"), "-o", str(out)]) == 0
    assert "16 feature rows of width 128 reused from" in capsys.readouterr().out  # said "written" on a cache hit
    # the same images spelt relative to another folder: the cache is reused, its paths respelt (a new file)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(trained)
        assert main(["-q", "features", str(run), "img", "-o", str(out)]) == 0
    assert "16 feature rows of width 128 reused from" in capsys.readouterr().out
    assert main(["-q", "features", str(run), str(trained / "img"), "-o", str(out), "--overwrite"]) == 0
    assert "16 feature rows of width 128 written to" in capsys.readouterr().out
    sidecar = out.with_name(out.name + ".meta.json")  # a cache of earlier versions records no computing time
    meta = json.loads(sidecar.read_text())
    del meta["computed_ns"]
    sidecar.write_text(json.dumps(meta))
    assert main(["-q", "features", str(run), str(trained / "img"), "-o", str(out)]) == 0
    assert "16 feature rows of width 128 reused from" in capsys.readouterr().out
    table = pd.read_parquet(out)
    assert len(table) == 16 and table["path"].iloc[0].endswith("000.png")
    assert main(["-q", "features", str(run), str(trained / "img"), "-o", str(tmp_path / "f.csv")]) == 2
    assert "must end in" in capsys.readouterr().err

    pred = tmp_path / "pred.csv"
    assert main(["-q", "predict", str(run), str(trained / "labels.csv"), "-o", str(pred)]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(pred), str(trained / "labels.csv"), "--split", "valid"]) == 0
    n_valid = int((pd.read_csv(trained / "labels.csv")["split"] == "valid").sum())
    assert f"n_samples\t{n_valid:.4f}" in capsys.readouterr().out
    gold = pd.read_csv(trained / "labels.csv")
    gold.assign(split=gold["split"].replace({"valid": " Val"})).to_csv(tmp_path / "val.csv", index=False)
    assert main(["-q", "evaluate", str(pred), str(tmp_path / "val.csv"), "--split", "VALID"]) == 0  # as training reads
    assert f"n_samples\t{n_valid:.4f}" in capsys.readouterr().out
    assert main(["-q", "evaluate", str(pred), str(trained / "labels.csv"), "--split", "test"]) == 2
    assert "no gold row has that split; the table's splits are train, valid" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forked workers
def test_predict_and_features_decode_in_worker_processes_with_the_same_result(trained, tmp_path):
    run, img = trained / "run", trained / "img"
    assert main(["-q", "predict", str(run), str(img), "-o", str(tmp_path / "p0.csv")]) == 0
    assert main(["-q", "predict", str(run), str(img), "-o", str(tmp_path / "p2.csv"), "--workers", "2"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p0.csv"), pd.read_csv(tmp_path / "p2.csv"))
    assert main(["-q", "features", str(run), str(img), "-o", str(tmp_path / "f0.npy")]) == 0
    assert main(["-q", "features", str(run), str(img), "-o", str(tmp_path / "f2.npy"), "--workers", "2"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "f0.npy"), np.load(tmp_path / "f2.npy"))


def test_thresholds_on_a_calibration_set_feed_evaluate(trained, tmp_path, capsys):
    import json

    pred, thresholds = tmp_path / "pred.csv", tmp_path / "t.json"
    assert main(["-q", "predict", str(trained / "run"), str(trained / "labels.csv"), "-o", str(pred)]) == 0
    capsys.readouterr()
    argv = ["-q", "thresholds", str(pred), str(trained / "labels.csv"), "--split", "valid", "-o", str(thresholds)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "threshold" in out and f"thresholds of 2 calibrated classes written to {thresholds}" in out
    chosen = json.loads(thresholds.read_text())["thresholds"]
    assert sorted(chosen) == ["Bright", "Dark"] and all(0 <= v <= 1 for v in chosen.values())
    assert main(["-q", "evaluate", str(pred), str(trained / "labels.csv"), "--split", "valid",
                 "--thresholds", str(thresholds)]) == 0
    assert main(argv[:-1] + [str(tmp_path / "t.csv")]) == 2
    assert "radvision writes JSON here, so name it .json" in capsys.readouterr().err
    assert main(argv + ["--min-precision", "1.5"]) == 2
    assert "min_precision must be between 0 and 1" in capsys.readouterr().err


def test_data_summarises_the_splits_a_config_trains_on(tmp_path, capsys):
    cfg = make_images(tmp_path)
    out = tmp_path / "counts.csv"
    assert main(["-q", "data", str(cfg), "data.classes=[Bright]", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "5 / 10 (50.0%)" in printed and "3 / 6 (50.0%)" in printed
    counts = pd.read_csv(out)
    assert counts["class"].tolist() == ["Bright"]
    assert counts[["train_positives", "valid_positives", "valid_negatives"]].iloc[0].tolist() == [5, 3, 3]
    assert not (tmp_path / "run").exists()  # nothing is trained
    assert main(["-q", "data", str(cfg), "data.clases=[Bright]"]) == 2
    assert "clases" in capsys.readouterr().err
    assert main(["-q", "data", str(cfg), "-o", ""]) == 2  # wrote nothing and said nothing
    assert "Output name is empty" in capsys.readouterr().err
    downsampled = ["data.classes=[Bright]", "data.downsample={Bright: 1.0, No Finding: 1.0}"]
    for command in ("data", "train"):  # data said nothing; train blamed unreadable images
        assert main(["-q", command, str(cfg), *downsampled]) == 2
        assert "data.downsample {'Bright': 1.0, 'No Finding': 1.0} leaves no train image" in capsys.readouterr().err


def test_an_undecodable_dicom_gives_one_line_not_pydicoms_traceback(trained, tmp_path, write_dicom):
    pydicom = pytest.importorskip("pydicom")
    path = write_dicom(tmp_path / "j2k.dcm", np.zeros((4, 4), dtype=np.uint16))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 20])
    ds.save_as(path)
    proc = subprocess.run([sys.executable, "-m", "radvision.cli", "-q", "predict", str(trained / "run"), str(path),
                           "-o", str(tmp_path / "p.csv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "j2k.dcm" in proc.stderr
    assert "Traceback" not in proc.stderr and "pydicom" not in proc.stderr.split("radvision: error:")[0]


def test_data_with_on_error_skip_counts_what_training_keeps(tmp_path, capsys):
    cfg = make_images(tmp_path)
    (tmp_path / "img" / "000.png").unlink()  # missing: known without decoding
    (tmp_path / "img" / "001.png").write_bytes(b"")  # unreadable: found by decoding
    assert main(["-q", "data", str(cfg), "data.on_error=skip"]) == 0
    printed = capsys.readouterr().out
    def images(split: str) -> int:
        return int(next(line.split()[1] for line in printed.splitlines() if line.startswith(split + " ")))

    assert images("train") == 9  # 10 listed, the missing one left out
    assert "left out 1 image(s): 1 missing file(s)" in printed and "only found when training decodes" in printed
    assert main(["-q", "data", str(cfg), "data.on_error=skip", "--check-images"]) == 0
    printed = capsys.readouterr().out
    assert images("train") == 8 and "1 missing file(s)" in printed and "1 unreadable image(s)" in printed
    assert "only found when training" not in printed
    (tmp_path / "img" / "000.png").write_bytes((tmp_path / "img" / "002.png").read_bytes())
    assert main(["-q", "data", str(cfg), "--check-images"]) == 2  # on_error=raise: was exit 0, the flag ignored
    assert "--check-images: 1 image(s): 1 unreadable image(s) (first: " in capsys.readouterr().err
    (tmp_path / "img" / "001.png").write_bytes((tmp_path / "img" / "002.png").read_bytes())
    assert main(["-q", "data", str(cfg), "--check-images"]) == 0
    assert "--check-images: every image file is there and decodes." in capsys.readouterr().out


def test_an_output_that_is_an_input_is_refused_before_the_work(trained, tmp_path, capsys):
    """`evaluate P G -o G` replaced the gold labels with metrics; `predict RUN in.csv -o in.csv` the input."""
    run, pred = trained / "run", tmp_path / "pred.csv"
    assert main(["-q", "predict", str(run), str(trained / "img"), "-o", str(pred)]) == 0
    gold = pd.read_csv(trained / "labels.csv").assign(path=lambda f: [str(trained / p) for p in f["path"]])
    gold[["path", "Bright", "Dark"]].to_csv(tmp_path / "gold.csv", index=False)
    before = (tmp_path / "gold.csv").read_bytes()
    capsys.readouterr()
    assert main(["-q", "evaluate", str(pred), str(tmp_path / "gold.csv"), "-o", str(tmp_path / "gold.csv")]) == 2
    assert "is the gold file; choose another path" in capsys.readouterr().err
    assert (tmp_path / "gold.csv").read_bytes() == before
    assert main(["-q", "thresholds", str(pred), str(tmp_path / "gold.csv"), "-o", str(pred)]) == 2
    assert main(["-q", "predict", str(run), str(tmp_path / "gold.csv"), "-o", str(tmp_path / "gold.csv")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert (tmp_path / "gold.csv").read_bytes() == before


def test_an_option_spelled_like_a_config_key_says_how_to_override_it(trained, capsys):
    for argv, hint in ((["--epochs", "3"], "optim.epochs=3"), (["--lr=0.1"], "optim.lr=0.1")):
        with pytest.raises(SystemExit) as exc:
            main(["train", str(trained / "cfg.yaml"), *argv])
        assert exc.value.code == 2
        assert f"config values are set as key=value after the config: {hint}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(trained / "cfg.yaml"), "--bogus"])
    assert "key=value" not in capsys.readouterr().err


def test_an_override_given_twice_is_an_error_and_version_prints(trained, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(trained / "cfg.yaml"), "optim.lr=1e-3", "optim.lr=2e-3"])
    assert exc.value.code == 2
    assert "the override optim.lr is given twice; keep one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("radvision ")


def test_verbose_leaves_pillow_and_matplotlib_at_info(trained, capsys):
    import logging

    try:
        assert main(["-v", "models"]) == 0
        assert logging.getLogger("PIL").level == logging.INFO  # -v printed every PNG chunk Pillow read
        assert logging.getLogger("matplotlib").level == logging.INFO
    finally:
        for name in ("PIL", "matplotlib"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_path_column_reads_a_chexpert_style_table_end_to_end(trained, tmp_path, capsys):
    # CheXpert's valid.csv names images in 'Path', relative to the folder above the dataset, with 1.0 / 0.0 labels
    gold = pd.read_csv(trained / "labels.csv").query("split == 'valid'")
    table = pd.DataFrame({"Path": gold["path"], "Sex": "Female", "Age": 60, "Bright": gold["Bright"] * 1.0,
                          "Dark": gold["Dark"] * 1.0})
    csv = tmp_path / "valid.csv"
    table.to_csv(csv, index=False)
    run, pred = trained / "run", tmp_path / "pred.csv"
    assert main(["-q", "predict", str(run), str(csv), "-o", str(pred), "--root", str(trained)]) == 2
    err = capsys.readouterr().err
    assert "has no 'path' column (did you mean 'Path'? --path-column Path reads it" in err

    argv = ["-q", "predict", str(run), str(csv), "-o", str(pred), "--root", str(trained), "--path-column", "Path"]
    assert main(argv) == 0
    out = pd.read_csv(pred, keep_default_na=False)
    assert out["path"].tolist() == table["Path"].tolist() and (out["error"] == "").all()
    expected = pd.read_csv(tmp_path / "pred.csv")  # the same images named by a 'path' column score the same
    by_path = tmp_path / "by_path.csv"
    main(["-q", "predict", str(run), str(trained / "labels.csv"), "-o", str(by_path)])
    same = pd.read_csv(by_path).set_index("path").loc[table["Path"], ["Bright", "Dark"]]
    np.testing.assert_allclose(expected[["Bright", "Dark"]].to_numpy(), same.to_numpy(), rtol=1e-6)
    capsys.readouterr()

    # gold keyed by 'Path', predictions by 'path': joined; without the option the gold is refused by name
    assert main(["-q", "evaluate", str(pred), str(csv), "--path-column", "Path"]) == 0
    assert f"n_samples\t{len(table):.4f}" in capsys.readouterr().out
    assert main(["-q", "evaluate", str(pred), str(csv)]) == 2
    assert "The gold table has no 'path' column (did you mean 'Path'?" in capsys.readouterr().err
    assert main(["-q", "thresholds", str(pred), str(csv), "--path-column", "Path",
                 "-o", str(tmp_path / "t.json")]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(pred), str(csv), "--path-column", "Study"]) == 2
    assert "The gold table has no 'Study' or 'path' column" in capsys.readouterr().err

    feats = tmp_path / "f.parquet"
    assert main(["-q", "features", str(run), str(csv), "-o", str(feats), "--root", str(trained),
                 "--path-column", "Path"]) == 0
    assert pd.read_parquet(feats)["path"].tolist() == table["Path"].tolist()


def test_data_refuses_what_training_would_refuse(tmp_path, capsys):
    cfg = make_images(tmp_path)
    table = pd.read_csv(tmp_path / "labels.csv")
    table.loc[table["split"] == "train", "Dark"] = np.nan  # no training image labels Dark
    table.to_csv(tmp_path / "labels.csv", index=False)
    assert main(["-q", "data", str(cfg)]) == 2  # was: exit 0 with "?10", then train stopped
    assert "No training image has a label for 'Dark'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "data"])
def test_a_missing_config_is_the_only_required_argument_named(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "the following arguments are required: config" in err
    assert "key=value" not in err.splitlines()[-1]  # was: "required: config, key=value" (overrides are optional)


def test_evaluate_and_thresholds_take_a_concept_file(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    pd.DataFrame({"path": ["valid/a.jpg", "valid/b.jpg"], "C0001": [0.9, 0.2], "C0002": [0.7, 0.1]}).to_csv(pred, index=False)
    concepts = tmp_path / "valid_concepts.csv"
    concepts.write_text("ID,CUIs\na,C0001;C0005\nb,\n")
    assert main(["-q", "evaluate", str(pred), str(concepts), "--concepts"]) == 0
    out = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert float(out["imageclef_f1"]) == pytest.approx((2 * 1 / 4 + 1.0) / 2)  # a: {1, 2} vs {1, 5}; b: {} vs {}
    assert main(["-q", "thresholds", str(pred), str(concepts), "--concepts", "-o", str(tmp_path / "t.json")]) == 0
    assert main(["-q", "evaluate", str(pred), str(concepts)]) == 2
    assert "--concepts" in capsys.readouterr().err
