import os
import stat

import pandas as pd
import pytest
import torch

from radvision.atomic import atomic_write, atomic_write_csv, atomic_write_text
from radvision.rundir import save_weights, write_json
from radvision.thresholds import save_thresholds


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path, umask):
    frame = pd.DataFrame({"path": ["a.png"], "x": [1.0]})
    written = [
        atomic_write_text(tmp_path / "a.txt", "hi"),
        atomic_write_csv(frame, tmp_path / "b.csv"),
        write_json({"k": 1}, tmp_path / "c.json"),
        save_thresholds(tmp_path / "thresholds.json", ["x"], [0.5]),
        save_weights(torch.nn.Linear(2, 1), tmp_path / "model.safetensors"),  # safetensors recreates its file
    ]
    for path in written:
        assert mode(path) == 0o666 & ~umask, path


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = atomic_write_text(tmp_path / "keep.txt", "old")

    def boom(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_folder_that_takes_no_file_is_named_not_the_hidden_temporary_file(tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".x.csv.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match="Read-only") as info:
        atomic_write_text(tmp_path / "x.csv", "a\n")
    assert info.value.filename == str(tmp_path / "x.csv")
