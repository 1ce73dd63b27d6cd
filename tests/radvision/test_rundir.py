import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from radvision.errors import RadvisionError
from radvision.rundir import RunDir, atomic_write, load_weights, save_weights, write_json


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_weights_roundtrip_channels_last(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).to(memory_format=torch.channels_last)
    save_weights(model, tmp_path / "m.safetensors")
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    load_weights(other, tmp_path / "m.safetensors")
    assert torch.equal(model[0].weight, other[0].weight)


def test_load_weights_errors(tmp_path):
    with pytest.raises(RadvisionError, match="does not exist"):
        load_weights(torch.nn.Linear(2, 2), tmp_path / "none.safetensors")
    save_weights(torch.nn.Linear(2, 2), tmp_path / "a.safetensors")
    with pytest.raises(RadvisionError, match="do not fit"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "a.safetensors")


def test_prepare_refuses_existing_run(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(RadvisionError, match="Cannot resume"):
        run.prepare(resume=True)
    run.prepare(resume=False)
    run.save_state({"epoch": 1})
    with pytest.raises(RadvisionError, match="already holds a run"):
        run.prepare(resume=False)
    run.prepare(resume=True)
    run.prepare(resume=False, overwrite=True)
    assert not run.has_run()


def test_state_metrics_optimizer(tmp_path):
    run = RunDir(tmp_path)
    run.save_state({"epoch": 2, "best": float("nan"), "x": np.float32(0.5)})
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state == {"epoch": 2, "best": None, "x": 0.5}
    run.write_metrics([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    assert run.read_metrics()["epoch"].tolist() == [1, 2]
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    run.save_optimizer({"cycle": 0, "optimizer": opt.state_dict()})
    assert run.load_optimizer()["cycle"] == 0


def test_write_json_is_standard(tmp_path):
    write_json({"a": [float("inf"), 1.0]}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [None, 1.0]}


def test_overwrite_clears_every_output_of_the_old_run(tmp_path):
    run = RunDir(tmp_path / "run")
    run.prepare(resume=False)
    run.save_state({"epoch": 1})
    old = [run.file("test_metrics.csv"), run.file("test_per_class.csv"), run.plots / "roc_test.png",
           run.file("thresholds.json"), run.file("model.safetensors")]
    for path in old:
        path.write_text("old run")
    mine = run.file("notes.txt")
    mine.write_text("the user's")
    run.prepare(resume=False, overwrite=True)
    assert not any(p.exists() for p in old)
    assert mine.read_text() == "the user's"


def test_recover_promotes_confirmed_staged_files_and_drops_the_rest(tmp_path):
    run = RunDir(tmp_path / "run")
    run.prepare(resume=False)
    (run.path / "model.safetensors").write_text("epoch 3")
    run.staged("model.safetensors", 4).write_text("epoch 4")  # confirmed below
    run.staged("optimizer.pt", 4).write_text("opt 4")
    run.staged("model.safetensors", "4-final").write_text("best")  # written, never confirmed
    run.recover({"epoch": 4, "staged": ["model.safetensors.epoch4.pending", "optimizer.pt.epoch4.pending"]})
    assert (run.path / "model.safetensors").read_text() == "epoch 4"
    assert (run.path / "optimizer.pt").read_text() == "opt 4"
    assert not list(run.path.glob("*.pending"))
    # a state whose staged files were promoted already leaves everything as it is
    run.staged("model.safetensors", 5).write_text("epoch 5, unconfirmed")
    run.recover({"epoch": 4, "staged": ["model.safetensors.epoch4.pending"]})
    assert (run.path / "model.safetensors").read_text() == "epoch 4" and not list(run.path.glob("*.pending"))


def test_resume_and_overwrite_drop_the_partial_writes_of_a_kill(tmp_path):
    run = RunDir(tmp_path / "run")
    run.prepare(resume=False)
    partial = [run.file(".metrics.csv.k2j9.tmp"), run.file(".model.safetensors.epoch3.pending.q9.tmp"),
               run.file(".tmpXMV9t5"), run.plots / ".curves.png.a1.tmp"]
    mine = [run.file("notes.tmp"), run.file(".keep")]  # not a writer's temp file
    for path in partial + mine:
        path.write_text("x")
    run.recover({"epoch": 3, "staged": []})
    assert not any(p.exists() for p in partial) and all(p.exists() for p in mine)
    run.save_state({"epoch": 3})
    run.file(".tmpABC").write_text("x")
    run.prepare(resume=False, overwrite=True)
    assert not run.file(".tmpABC").exists()


def test_a_locked_run_folder_is_refused_naming_the_holder_until_released(tmp_path):
    held = RunDir(tmp_path / "runs" / "a").lock("output.run_dir")
    with pytest.raises(RadvisionError, match=rf"output.run_dir '.*a' is in use by another radvision training "
                                             rf"\(pid {os.getpid()}\); wait for it to end"):
        RunDir(tmp_path / "runs" / "a").lock("output.run_dir")
    held.release()
    assert not (tmp_path / "runs").exists()  # folders made for a run that wrote nothing are removed again
    (tmp_path / "kept").mkdir()
    again = RunDir(tmp_path / "kept").lock("output.run_dir")
    (tmp_path / "kept" / "config.yaml").write_text("x")
    again.release()
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["config.yaml"]  # no lock file left behind


def test_the_lock_of_a_killed_process_is_gone_with_it(tmp_path):
    code = ("import sys, time; from radvision.rundir import RunDir; "
            "RunDir(sys.argv[1]).lock('x'); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RadvisionError, match=rf"in use by another radvision training \(pid {proc.pid}\)"):
            RunDir(tmp_path).lock("output.run_dir")
    finally:
        proc.kill()
        proc.wait()
    assert (tmp_path / ".run.lock").exists()  # SIGKILL: no clean-up ran, yet the kernel dropped the lock
    RunDir(tmp_path).lock("output.run_dir").release()


def test_a_new_run_refuses_a_file_or_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for path, message in [(tmp_path / "notes.txt", r"'.*notes.txt' is a file; give a folder path"),
                          (tmp_path / "notes.txt" / "run", r"'.*run' cannot be made: '.*notes.txt' is a file"),
                          (tmp_path, r"'.*' is not a radvision run folder but holds other files \(notes.txt\)")]:
        with pytest.raises(RadvisionError, match="output.run_dir " + message):
            RunDir(path).check_target("output.run_dir")
    for name in ("a.csv", "b.csv", "metrics.csv"):
        (tmp_path / name).write_text("mine")
    with pytest.raises(RadvisionError, match=r"\(a.csv, b.csv, metrics.csv and 1 more\)"):
        RunDir(tmp_path).check_target("output.run_dir")
    hidden = tmp_path / "hidden"
    (hidden / "plots").mkdir(parents=True)
    (hidden / ".DS_Store").write_text("")
    RunDir(hidden).check_target("output.run_dir")  # hidden files and an empty plots/ are in nobody's way
    (hidden / "config.yaml").write_text("data: {}\nmodel: {}\noutput: {}\n")
    (hidden / "notes.txt").write_text("mine")
    assert RunDir(hidden).is_run()  # a run stopped before its first epoch: a run, whatever else it holds
    RunDir(hidden).check_target("output.run_dir")
    (hidden / "config.yaml").write_text("my: own config\n")
    assert not RunDir(hidden).is_run()
