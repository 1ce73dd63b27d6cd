"""The radlabel command: subcommands, outputs and user-error handling (exit 2, one line)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from radlabel.cli import main
from radlabel.io import data_path, read_table, write_table


@pytest.fixture
def reports(tmp_path):
    df = pd.DataFrame({"uid": ["a1", "a2", "a3"],
                       "report": ["FINDINGS: Large right pneumothorax.", "No pleural effusion.", None]})
    return write_table(df, tmp_path / "reports.csv")


@pytest.fixture(autouse=True)
def _radlabel_log_level():
    """`-v` raises the radlabel logger's level for the process; other tests must not inherit it."""
    import logging

    level = logging.getLogger("radlabel").level
    yield
    logging.getLogger("radlabel").setLevel(level)


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("label", "parse", "evaluate", "stats", "schemas"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["label", "--help"])
    assert "--id-column" in capsys.readouterr().out


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path, capsys, monkeypatch):
    """`kill PID` / `timeout` left hidden temporary outputs (and, with --jobs, worker processes) behind."""
    import os
    import signal

    import radlabel.labeler as labeler_mod

    src = write_table(pd.DataFrame({"report": ["No effusion."] * 30}), tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    real, calls = labeler_mod._label_batch, []

    def killed_midway(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(labeler_mod, "_label_batch", killed_midway)
    before = signal.getsignal(signal.SIGTERM)
    rc = main(["label", str(src), "-o", str(out), "--graphs", str(tmp_path / "g.jsonl"), "--chunksize", "10",
               "--no-progress"])
    assert rc == 143 and len(calls) == 2
    assert _error_line(capsys) == "radlabel: terminated (SIGTERM); no output was written."
    assert out.read_text() == "previous\n" and sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_label_command(tmp_path, reports, capsys):
    out, graphs = tmp_path / "labels.parquet", tmp_path / "g.jsonl"
    rc = main(["label", str(reports), "-o", str(out), "--id-column", "uid", "--graphs", str(graphs),
               "--jobs", "1", "--no-progress", "--schema", "chestxray14"])
    assert rc == 0
    df = read_table(out)
    assert df.columns[0] == "uid" and df.columns[-1] == "error"
    assert df["uid"].tolist() == ["a1", "a2", "a3"]
    assert df.loc[0, "Pneumothorax"] == 1 and df.loc[1, "Effusion"] == 0
    assert df.loc[2, "error"] == "missing report"
    assert [json.loads(x)["id"] for x in graphs.read_text().splitlines()] == ["a1", "a2", "a3"]
    assert "labeled 3 reports" in capsys.readouterr().err


def test_label_and_stats_read_a_folder_of_text_reports(tmp_path, capsys):
    (tmp_path / "reports" / "p1").mkdir(parents=True)
    (tmp_path / "reports" / "p1" / "s1.txt").write_text("IMPRESSION: Large right pneumothorax.")
    (tmp_path / "reports" / "s2.txt").write_text("IMPRESSION: No pneumothorax.")
    out = tmp_path / "labels.csv"
    assert main(["label", str(tmp_path / "reports"), "-o", str(out), "--no-progress"]) == 0
    df = read_table(out)
    assert df["path"].tolist() == ["p1/s1.txt", "s2.txt"] and df["Pneumothorax"].tolist() == ["1", "0"]
    assert main(["stats", str(tmp_path / "reports"), "--no-progress"]) == 0
    assert "pneumothorax" in capsys.readouterr().out


def test_label_sections_all(tmp_path, capsys):
    src = write_table(pd.DataFrame({"report": ["HISTORY: Pneumothorax.\nFINDINGS: Lungs are clear."]}),
                      tmp_path / "r.csv")
    main(["label", str(src), "-o", str(tmp_path / "default.csv"), "--no-progress"])
    main(["label", str(src), "-o", str(tmp_path / "all.csv"), "--no-progress", "--sections", "all"])
    assert pd.isna(read_table(tmp_path / "default.csv").loc[0, "Pneumothorax"])
    assert read_table(tmp_path / "all.csv").loc[0, "Pneumothorax"] == "1"


@pytest.mark.parametrize("args,expected", [
    (["label", "{r}", "-o", "{t}/o.csv", "--text-column", "reprot"], "did you mean 'report'"),
    (["label", "{t}/missing.csv", "-o", "{t}/o.csv"], "does not exist"),
    (["label", "{r}", "-o", "{t}/o.xlsx"], ".csv, .tsv, .jsonl, .parquet"),
    (["label", "{r}", "-o", "{t}/o.csv", "--schema", "chexprt"], "chexpert"),
    (["label", "{r}", "-o", "{t}/o.csv", "--schema", "{t}/bad.yaml"], "not valid YAML"),
    (["parse", "--file", "{t}/nope.txt"], "does not exist"),
    (["evaluate", "{r}", "{t}/missing.csv"], "does not exist"),
    (["evaluate", "{t}", "{r}"], "is a folder; labels come in a table file"),
    (["label", "{t}/flies", "-o", "{t}/o.csv"], "or a folder of .txt reports"),
    (["schemas", "chestxray"], "chestxray14"),
    (["stats", "{r}", "--plots"], "-o OUTDIR"),
])
def test_user_errors_exit_2(tmp_path, reports, capsys, args, expected):
    (tmp_path / "bad.yaml").write_text("name: x\nclasses: [\n")
    argv = [a.format(r=reports, t=tmp_path) for a in args]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("radlabel: error: ") and expected in line
    assert not (tmp_path / "o.csv").exists()


def test_parse_command(capsys):
    assert main(["parse", "No pneumothorax. Small left effusion.", "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "OBS-DA" in out and "pneumothorax" in out.lower() and "Pleural Effusion=1" in out
    assert main(["parse", "Small left effusion.", "--format", "json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert {"text", "entities"} <= set(graph)


def test_no_finding_rule_option(tmp_path, capsys):
    assert main(["parse", "Hiatal hernia. Lungs are clear."]) == 0
    assert "No Finding" not in capsys.readouterr().out.split("labels:")[1]
    assert main(["parse", "Hiatal hernia. Lungs are clear.", "--no-finding", "chexpert"]) == 0
    assert "No Finding=1" in capsys.readouterr().out
    src = tmp_path / "r.csv"
    src.write_text("id,report\n1,Hiatal hernia.\n2,Small effusion.\n3,Lungs are clear.\n")
    for jobs in ("1", "2"):  # the rule travels to the worker processes
        out = tmp_path / f"o{jobs}.csv"
        assert main(["label", str(src), "-o", str(out), "--id-column", "id", "--no-finding", "chexpert",
                     "--jobs", jobs, "--no-progress"]) == 0
        assert out.read_text().splitlines()[1].startswith("1,1,")  # hiatal hernia: No Finding 1
    with pytest.raises(SystemExit):
        main(["label", str(src), "-o", str(tmp_path / "x.csv"), "--no-finding", "loose"])
    assert "invalid choice: 'loose'" in capsys.readouterr().err


def test_parse_from_file(tmp_path, capsys):
    f = tmp_path / "r.txt"
    f.write_text("FINDINGS: Cardiomegaly.")
    assert main(["parse", "--file", str(f)]) == 0
    assert "Cardiomegaly=1" in capsys.readouterr().out


def test_evaluate_command_on_sample(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    assert main(["label", str(data_path("sample_reports.csv")), "-o", str(pred), "--id-column", "id",
                 "--no-progress"]) == 0
    metrics = tmp_path / "m.csv"
    assert main(["evaluate", str(pred), str(data_path("sample_gold_chexpert.csv")), "--id-column", "id",
                 "-o", str(metrics), "--schema", "chexpert"]) == 0
    out = capsys.readouterr().out
    assert "macro avg" in out and "binary" in out
    m = read_table(metrics)
    f1 = float(m[(m["class"] == "micro avg") & (m["task"] == "binary")]["f1"].iloc[0])
    assert 0.5 < f1 <= 1.0  # a labeler that works gets most of the hand gold right


def test_stats_command(tmp_path, reports, capsys):
    labels = tmp_path / "labels.csv"
    main(["label", str(reports), "-o", str(labels), "--no-progress"])
    assert main(["stats", str(reports), "--labels", str(labels), "-o", str(tmp_path / "st"), "--plots",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== entities ==" in out and "label_cardinality" in out
    assert (tmp_path / "st" / "entities.png").is_file()


def test_schemas_command(capsys):
    assert main(["schemas"]) == 0
    out = capsys.readouterr().out
    assert "chexpert: 14 classes" in out and "chestxray14: 15 classes" in out
    assert main(["schemas", "chestxray14"]) == 0
    out = capsys.readouterr().out
    assert "Pleural_Thickening" in out and "other_findings_from" not in out


def test_schemas_command_names_a_files_other_findings(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("name: s\nno_finding: Normal\nclasses:\n  - name: A\n    mentions: [a]\n")
    assert main(["schemas", str(tmp_path / "s.yaml")]) == 0
    assert "other findings also include the classes of chexpert, chestxray14" in capsys.readouterr().out


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "radlabel.cli", "schemas"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "chexpert" in r.stdout


def test_a_closed_pipe_ends_quietly(tmp_path):
    report = tmp_path / "r.txt"
    report.write_text("No pneumothorax. Small left effusion. " * 400)
    proc = subprocess.Popen([sys.executable, "-m", "radlabel.cli", "parse", "--file", str(report), "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the first line, as `| head -c 0` would
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and "Traceback" not in err and "BrokenPipe" not in err


def test_parse_decodes_odd_bytes_as_label_does(tmp_path, capsys, monkeypatch):
    import io as _io
    import os

    # a traceback (surrogates not allowed) for argv and stdin; --file ignored the byte-order mark
    assert main(["parse", os.fsdecode(b"Caf\xe9 effusion.")]) == 0
    assert "Pleural Effusion=1" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _io.TextIOWrapper(_io.BytesIO(b"Caf\xe9 effusion.")))
    assert main(["parse", "--file", "-"]) == 0
    assert "Pleural Effusion=1" in capsys.readouterr().out
    (tmp_path / "u16.txt").write_bytes("Edema.".encode("utf-16"))
    assert main(["parse", "--file", str(tmp_path / "u16.txt")]) == 0
    assert "Edema=1" in capsys.readouterr().out
    assert main(["parse", "--file", str(tmp_path)]) == 2
    assert "is a folder; parse reads one report" in _error_line(capsys)


def test_evaluate_will_not_write_over_its_inputs(tmp_path, capsys):
    gold = tmp_path / "g.csv"
    gold.write_text("id,Edema\n1,1\n")
    pred = tmp_path / "p.csv"
    pred.write_text("id,Edema\n1,0\n")
    assert main(["evaluate", str(pred), str(gold), "-o", str(gold)]) == 2
    assert "is the gold file" in _error_line(capsys)
    assert gold.read_text() == "id,Edema\n1,1\n"  # the metrics replaced it


def test_stats_top_cuts_only_the_frequency_tables(tmp_path, capsys):
    src = tmp_path / "r.csv"
    src.write_text("report\n\"FINDINGS: Small effusion.\nIMPRESSION: Small effusion.\"\n")
    assert main(["stats", str(src), "--top", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    similarity = out.split("== similarity ==")[1].split("==")[0]
    assert all(k in similarity for k in ("noun_phrases", "verbs", "entities"))  # --top 1 hid two of its rows


def test_a_full_disk_is_one_line_exit_1_naming_the_output_not_its_temp_file(tmp_path, reports, capsys, monkeypatch):
    """A full disk / read-only folder ended in a chained traceback; caught errors named '.x.csv.k2j3.tmp'."""
    import errno

    from radlabel import io

    def full(self, df):
        raise OSError(errno.ENOSPC, "No space left on device", str(self._tmp))

    monkeypatch.setattr(io.AtomicWriter, "write", full)
    out = tmp_path / "labels.csv"
    assert main(["label", str(reports), "-o", str(out), "--id-column", "uid", "--no-progress"]) == 1
    line = _error_line(capsys)
    assert line == f"radlabel: error: No space left on device ({out})."
    assert not list(tmp_path.glob(".labels.csv.*"))  # and nothing half-written stays

    def denied(self, df):
        raise PermissionError(errno.EACCES, "Permission denied", str(self._tmp))

    monkeypatch.setattr(io.AtomicWriter, "write", denied)
    assert main(["label", str(reports), "-o", str(out), "--id-column", "uid", "--no-progress"]) == 2
    assert _error_line(capsys) == f"radlabel: error: Permission denied ({out})."


def test_verbose_works_after_the_command_and_raises_only_radlabels_loggers(tmp_path, capsys):
    import logging

    from radlabel.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["schemas", "-v"]).verbose == 1
    assert parser.parse_args(["-vv", "schemas"]).verbose == 2
    assert parser.parse_args(["schemas"]).verbose == 0
    before = logging.getLogger("matplotlib").getEffectiveLevel()
    assert main(["schemas", "-vv"]) == 0
    assert logging.getLogger("radlabel").level == logging.DEBUG
    assert logging.getLogger("matplotlib").getEffectiveLevel() == before  # -vv printed 225 font-search lines


def test_chunksize_zero_is_refused_not_read_as_one(reports, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["label", str(reports), "-o", str(tmp_path / "o.csv"), "--chunksize", "0"])
    assert exc.value.code == 2
    assert "'0' must be 1 or more" in capsys.readouterr().err


def test_parse_refuses_binary_content_and_notes_a_report_without_words(tmp_path, capsys, caplog):
    """parse called a file of NUL bytes normal (No Finding=1) where label says 'not text (binary content)'."""
    blob = tmp_path / "scan.txt"
    blob.write_bytes(b"\x00\x01\x02binary\x00\x00")
    assert main(["parse", "--file", str(blob)]) == 2
    assert "not text (binary content)" in _error_line(capsys)
    assert main(["parse", "IMPRESSION:"]) == 0
    assert "labels: (none mentioned)" in capsys.readouterr().out
    assert "no words in the labelled sections (findings, impression)" in caplog.text


def test_evaluate_checks_its_output_path_before_scoring(tmp_path, capsys):
    pred = data_path("sample_gold_chexpert.csv")
    assert main(["evaluate", str(pred), str(pred), "-o", str(tmp_path / "metrics.txt")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # the table was printed, then the extension refused
    assert "'.txt'" in captured.err
    assert main(["evaluate", str(pred), str(pred), "-o", str(tmp_path / "nodir" / "m.csv")]) == 2
    assert "does not exist" in _error_line(capsys)


def test_no_finding_option_with_a_schema_without_no_finding_is_an_error(tmp_path, capsys):
    schema = tmp_path / "s.yaml"
    schema.write_text("name: tiny\nclasses:\n  - name: Edema\n    mentions: [edema]\n")
    assert main(["parse", "Edema.", "--schema", str(schema), "--no-finding", "chexpert"]) == 2
    assert "has no No Finding class" in _error_line(capsys)
