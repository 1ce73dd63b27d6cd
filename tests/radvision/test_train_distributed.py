"""Two CPU processes under torchrun (gloo): the ranks must agree on the gradients of every trained stage."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def train_on_two_processes(tmp_path, csv, backbone, strategy, image_size, epochs, resume=False):
    out = tmp_path / "ranks.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(csv), str(tmp_path / "run"), str(out), backbone, strategy, str(image_size), str(epochs),
           "resume" if resume else ""]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory, make_images):
    return make_images(tmp_path_factory.mktemp("data"), n=32)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun on CPU is exercised on Linux")
def test_layerwise_stages_opened_mid_cycle_are_averaged(tmp_path, data_csv):
    ranks = train_on_two_processes(tmp_path, data_csv, "simple_cnn", "layerwise", 32, 3)
    assert ranks["unfrozen_stages"] == 2  # stages were opened during the run, after DDP first wrapped the model
    assert ranks["backbone_grads"] > 0
    first, second = ranks["checksums"]
    assert first == pytest.approx(second, rel=1e-6, abs=1e-6)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun on CPU is exercised on Linux")
def test_fpn_head_on_a_backbone_with_unused_layers(tmp_path, data_csv):
    # the fpn head never reads mobilenet_v3's last conv (after its last feature map): without
    # find_unused_parameters DDP stops on the second step
    ranks = train_on_two_processes(tmp_path, data_csv, "mobilenet_v3_large", "full", 64, 1)
    assert ranks["unfrozen_stages"] == 4
    first, second = ranks["checksums"]
    assert first == pytest.approx(second, rel=1e-6, abs=1e-6)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun on CPU is exercised on Linux")
def test_a_resumed_two_process_run_shuffles_as_an_uninterrupted_one(tmp_path, data_csv):
    import pandas as pd

    train_on_two_processes(tmp_path / "straight", data_csv, "simple_cnn", "full", 32, 2)
    train_on_two_processes(tmp_path / "resumed", data_csv, "simple_cnn", "full", 32, 1)
    train_on_two_processes(tmp_path / "resumed", data_csv, "simple_cnn", "full", 32, 2, resume=True)
    straight, resumed = (pd.read_csv(tmp_path / name / "run" / "metrics.csv") for name in ("straight", "resumed"))
    assert resumed["epoch"].tolist() == [1, 2]
    assert resumed["train_loss"].tolist() == pytest.approx(straight["train_loss"].tolist(), rel=1e-5)
