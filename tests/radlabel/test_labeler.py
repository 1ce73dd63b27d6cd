"""Corpus labeling: public API, ordering, bad rows, files, graphs, atomicity, training targets."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import radlabel
from radlabel import labeler as labeler_mod
from radlabel.errors import RadlabelError
from radlabel.io import data_path, read_table, write_table
from radlabel.labeler import Labeler, to_binary

BAD = [None, np.nan, "", "   \n\t", 42, b"bytes", "\x00\x01\x02\x03garbage\x00"]


@pytest.fixture(scope="module")
def labeler():
    return Labeler(schema="chexpert", progress=False)


@pytest.fixture(scope="module")
def sample():
    return pd.read_csv(data_path("sample_reports.csv"))


def test_public_api_names():
    for name in ("label", "parse", "Labeler", "to_binary", "load_schema", "list_schemas", "ReportGraph",
                 "RadlabelError", "__version__", "data_path"):
        assert hasattr(radlabel, name), name
    assert {"chexpert", "chestxray14"} <= set(radlabel.list_schemas())


def test_label_keeps_series_index_and_columns():
    s = pd.Series(["No pneumothorax. Small left effusion.", "Heart size is normal."], index=[10, 3])
    df = radlabel.label(s, schema="chexpert")
    assert list(df.index) == [10, 3]
    assert list(df.columns) == radlabel.load_schema("chexpert").class_names + ["error"]
    assert df.loc[10, "Pneumothorax"] == 0 and df.loc[10, "Pleural Effusion"] == 1
    assert df.loc[3, "Cardiomegaly"] == 0
    assert (df["error"] == "").all()


def test_label_accepts_list_generator_and_single_string():
    assert len(radlabel.label(t for t in ["a", "b", "c"])) == 3
    assert len(radlabel.label("No pneumothorax.")) == 1
    with pytest.raises(RadlabelError, match="label_corpus"):
        radlabel.label(pd.DataFrame({"report": ["x"]}))


def test_parse_returns_graph():
    g = radlabel.parse("No pneumothorax. Small left effusion.")
    assert isinstance(g, radlabel.ReportGraph)
    assert any("effusion" in e.tokens.lower() for e in g.entities)


def test_bad_rows_never_vanish(labeler):
    texts = ["Small left pleural effusion.", *BAD, "Large right pneumothorax."]
    df = labeler.label_corpus(pd.Series(texts, dtype=object))
    assert len(df) == len(texts) and list(df.index) == list(range(len(texts)))
    assert df["error"].tolist() == ["", "missing report", "missing report", "empty report", "empty report",
                                    "not text", "not text", "not text (binary content)", ""]
    classes = labeler.class_names
    assert df.loc[1:7, classes].isna().all().all()
    assert df.loc[0, "Pleural Effusion"] == 1 and df.loc[8, "Pneumothorax"] == 1


def test_a_report_that_is_only_a_missing_value_word_is_missing(labeler):
    """R's write.csv writes NA, SQL exports NULL: those cells are missing reports, not normal studies."""
    texts = ["NA", " null ", "None", "N/A", "#N/A", "NaN", "<NA>", "  NA" + " " * 30 + "\n\n", "Nil.", "None seen."]
    df = labeler.label_corpus(pd.Series(texts, dtype=object))
    assert df["error"].tolist() == ["missing report"] * 8 + ["", ""]
    assert df.loc[:7, labeler.class_names].isna().all().all()
    assert df.loc[8:, "No Finding"].tolist() == [1.0, 1.0]


def test_long_report_truncated_with_note():
    lab = Labeler(progress=False, max_chars=60)
    text = "Large right pneumothorax. " + "Normal. " * 50 + "Small left pleural effusion."
    row = lab.label_text(text)
    assert row["Pneumothorax"] == 1
    assert np.isnan(row["Pleural Effusion"])  # beyond the first 60 characters
    assert row["error"] == "truncated to the first 60 characters"


def test_megabyte_report_is_labeled(labeler):
    text = "FINDINGS: Small left pleural effusion. " + "The lungs are clear. " * 50_000
    row = labeler.label_text(text)
    assert row["Pleural Effusion"] == 1
    assert row["error"].startswith("truncated")


def test_pipeline_exception_becomes_error(labeler, monkeypatch):
    def boom(text):
        raise RuntimeError("kaput")

    monkeypatch.setattr(labeler.pipeline, "parse", boom)
    labeler_mod._label_repeatable.cache_clear()  # texts labelled by earlier tests would come from the cache
    df = labeler.label_corpus(pd.Series(["a", "b"]))
    assert df["error"].tolist() == ["could not be labeled: RuntimeError: kaput"] * 2


def test_label_corpus_dataframe_ids_and_jobs(labeler, sample):
    one = labeler.label_corpus(sample, text_column="report", id_column="id", jobs=1, batch_size=7)
    two = labeler.label_corpus(sample, text_column="report", id_column="id", jobs=2, batch_size=7)
    assert one.columns[0] == "id" and one["id"].tolist() == sample["id"].tolist()
    pd.testing.assert_frame_equal(one, two)
    assert (one["error"] == "").all()
    assert one[labeler.class_names].notna().any().all()  # the sample mentions every CheXpert class


def test_repeated_ids_are_warned_about_and_every_row_kept(labeler, tmp_path, caplog):
    src = tmp_path / "dup.csv"
    src.write_text("id,report\na,No edema.\nb,Edema.\nc,Effusion.\nb,Cardiomegaly.\n,x\n,y\na,z\n")
    with caplog.at_level("WARNING", logger="radlabel.labeler"):
        labeler.label_file(src, tmp_path / "out.csv", id_column="id", chunksize=2)  # across chunks too
    assert "2 row(s) repeat an earlier row's id in column 'id' (the first: rows 1 and 3, counted from 0)" in caplog.text
    assert len(pd.read_csv(tmp_path / "out.csv")) == 7
    caplog.clear()
    frame = pd.DataFrame({"id": [[1], [2], [1]], "report": ["a", "b", "c"]})  # JSON lists as ids hash too
    with caplog.at_level("WARNING", logger="radlabel.labeler"):
        labeler.label_corpus(frame, id_column="id")
        labeler.label_corpus(frame.assign(id=[1, 2, None]), id_column="id")  # blank ids are not repeats
    assert caplog.text.count("repeat an earlier row's id") == 1 and "rows 0 and 2" in caplog.text


def test_a_big_text_file_gets_an_estimated_progress_total(tmp_path, monkeypatch, progress_totals):
    import radlabel.labeler as labeler_module

    totals = progress_totals(labeler_module)
    monkeypatch.setattr(radlabel.io, "ESTIMATE_MIN_BYTES", 0)  # the test file is small
    src = tmp_path / "big.csv"
    pd.DataFrame({"report": ["No acute cardiopulmonary process. " * 20, "Small left effusion."] * 1500}).to_csv(
        src, index=False)
    Labeler(progress=True).label_file(src, tmp_path / "out.csv", chunksize=500)
    estimates = [t for t in totals if t is not None]
    assert estimates and estimates[-1] == 3000  # estimated while reading, exact at the end
    assert any(500 <= t <= 6000 for t in estimates[:-1])


class _DeadPool:
    """A ProcessPoolExecutor whose worker was killed: every result raises BrokenProcessPool."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, fn, *args):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future = Future()
        future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
        return future

    def shutdown(self, **kwargs):
        pass


def test_a_dead_worker_is_a_machine_error_exit_1_and_writes_nothing(sample, tmp_path, monkeypatch, capsys):
    from radlabel.cli import main
    from radlabel.errors import WorkerDiedError

    monkeypatch.setattr(labeler_mod, "ProcessPoolExecutor", _DeadPool)
    with pytest.raises(WorkerDiedError, match="A labeling worker process stopped unexpectedly"):
        Labeler(progress=False).label_corpus(sample, text_column="report", jobs=2, batch_size=2)
    sample.to_csv(tmp_path / "r.csv", index=False)
    # exit 1 as for a full disk; 2 would say the input or the options were wrong
    monkeypatch.setattr(labeler_mod, "BATCH_SIZE", 2)  # several batches, so the pool is used
    assert main(["label", str(tmp_path / "r.csv"), "-o", str(tmp_path / "l.csv"), "--jobs", "2", "--no-progress"]) == 1
    assert "worker process stopped unexpectedly" in capsys.readouterr().err
    assert not (tmp_path / "l.csv").exists()


def test_label_corpus_errors(labeler, sample):
    with pytest.raises(RadlabelError, match=r"'text'.*available columns: 'id', 'report'"):
        labeler.label_corpus(sample, text_column="text")
    with pytest.raises(RadlabelError, match="'uid'"):
        labeler.label_corpus(sample, id_column="uid")
    with pytest.raises(RadlabelError, match="DataFrame or Series"):
        labeler.label_corpus(["x"])
    with pytest.raises(RadlabelError, match="jobs"):
        labeler.label_corpus(sample, jobs=-1)


def test_unknown_schema_is_user_error():
    with pytest.raises(RadlabelError, match="chexpert"):
        Labeler(schema="chexpret")


def test_graphs_jsonl_one_line_per_row(labeler, tmp_path):
    s = pd.Series(["Small left pleural effusion.", None, "No pneumothorax."], index=["a", "b", "c"])
    labeler.label_corpus(s, graphs=tmp_path / "g.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]
    assert lines[1] == {"id": "b", "error": "missing report", "graph": None}
    ents = lines[0]["graph"]["entities"]
    assert any(e["label"].startswith("OBS") for e in ents.values())
    with pytest.raises(RadlabelError, match=".jsonl"):
        labeler.label_corpus(s, graphs=tmp_path / "g.json")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(RadlabelError, match="graphs file .*dir.jsonl' is a folder"):  # before labelling, not after
        labeler.label_corpus(s, graphs=tmp_path / "dir.jsonl")


def test_a_repeated_report_is_labelled_once_with_the_same_output(tmp_path, monkeypatch):
    labeler = Labeler(schema="chexpert", progress=False)
    labeler_mod._label_repeatable.cache_clear()
    parsed = []
    parse = labeler.pipeline.parse
    monkeypatch.setattr(labeler.pipeline, "parse", lambda text: parsed.append(text) or parse(text))
    normal, finding = "Heart size normal. Lungs are clear.", "Small left pleural effusion. No pneumothorax."
    texts = pd.Series([normal, finding, normal, normal, finding], index=list("abcde"))
    out = labeler.label_corpus(texts, graphs=tmp_path / "g.jsonl")
    assert parsed == [normal, finding]
    one_by_one = pd.DataFrame([labeler.label_text(t) for t in texts], index=texts.index)
    pd.testing.assert_frame_equal(out, one_by_one, check_dtype=False)
    lines = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == list("abcde")
    assert lines[0]["graph"] == lines[2]["graph"] == lines[3]["graph"] != lines[1]["graph"] == lines[4]["graph"]
    # a long report is never kept: the cache stays small however large the reports are
    parsed.clear()
    monkeypatch.setattr(labeler_mod, "REPEAT_CACHE_CHARS", len(finding) - 1)
    labeler.label_corpus(pd.Series([finding, finding, normal]), graphs=tmp_path / "g2.jsonl")
    assert parsed == [finding, finding]


@pytest.mark.parametrize("ext_in,ext_out", [("csv", "parquet"), ("parquet", "csv"), ("jsonl", "tsv"),
                                            ("tsv", "jsonl")])
def test_label_file_roundtrip(labeler, sample, tmp_path, ext_in, ext_out):
    src = write_table(sample, tmp_path / f"in.{ext_in}")
    out = tmp_path / f"out.{ext_out}"
    summary = labeler.label_file(src, out, id_column="id", jobs=1, chunksize=20, batch_size=6,
                                 graphs=tmp_path / "g.jsonl")
    assert summary["rows"] == len(sample) and summary["errors"] == 0
    got = read_table(out)
    assert list(got.columns) == ["id", *labeler.class_names, "error"]
    assert got["id"].tolist() == sample["id"].tolist()
    ref = labeler.label_corpus(sample, id_column="id")
    np.testing.assert_array_equal(got[labeler.class_names].apply(pd.to_numeric).to_numpy(dtype=float),
                                  ref[labeler.class_names].to_numpy(dtype=float))
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == len(sample)


def test_label_file_parallel_order_and_generated_row_ids(labeler, tmp_path):
    texts = ["Large right pneumothorax.", "No pneumothorax.", None, "Cannot exclude pneumothorax."] * 13
    src = write_table(pd.DataFrame({"report": texts}), tmp_path / "in.csv")
    labeler.label_file(src, tmp_path / "out.csv", jobs=2, chunksize=9, batch_size=4)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "row" and header[-1] == "error"
    got = read_table(tmp_path / "out.csv")
    assert got["row"].astype(int).tolist() == list(range(len(texts)))
    assert got["Pneumothorax"].tolist()[:4] == ["1", "0", np.nan, "-1"]
    assert got["Pneumothorax"].tolist()[4:8] == ["1", "0", np.nan, "-1"]


def test_label_file_reads_a_folder_of_text_reports(labeler, tmp_path):
    root = tmp_path / "files"
    (root / "p1").mkdir(parents=True)
    (root / "p1" / "s1.txt").write_text("IMPRESSION: Large right pneumothorax.")
    (root / "p1" / "s2.txt").write_text("")
    (root / "s3.txt").write_text("No pneumothorax.")
    summary = labeler.label_file(root, tmp_path / "out.csv", graphs=tmp_path / "g.jsonl")
    assert summary["rows"] == 3 and summary["errors"] == 1
    got = read_table(tmp_path / "out.csv")
    # each row is named by its file, in path order, the empty one kept with its error
    assert got["path"].tolist() == ["p1/s1.txt", "p1/s2.txt", "s3.txt"]
    assert got["Pneumothorax"].tolist() == ["1", np.nan, "0"]
    assert got["error"].fillna("").tolist() == ["", "empty report", ""]
    ids = [json.loads(line)["id"] for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert ids == ["p1/s1.txt", "p1/s2.txt", "s3.txt"]


def test_label_file_user_errors(labeler, sample, tmp_path):
    src = write_table(sample, tmp_path / "in.csv")
    with pytest.raises(RadlabelError, match="did you mean 'report'"):
        labeler.label_file(src, tmp_path / "o.csv", text_column="reports")
    with pytest.raises(RadlabelError, match=r"\.xls"):
        labeler.label_file(src, tmp_path / "o.xls")
    with pytest.raises(RadlabelError, match="does not exist"):
        labeler.label_file(tmp_path / "missing.csv", tmp_path / "o.csv")
    with pytest.raises(RadlabelError, match="is the input"):
        labeler.label_file(src, src)
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]


def test_interrupted_run_leaves_no_output(labeler, sample, tmp_path, monkeypatch):
    src = write_table(sample, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    real = labeler_mod._label_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(labeler_mod, "_label_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        labeler.label_file(src, out, chunksize=10, batch_size=10, graphs=tmp_path / "g.jsonl")
    assert out.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


def test_to_binary_policies():
    df = pd.DataFrame({"id": [1, 2, 3, 4], "A": [1, 0, -1, np.nan], "B": [np.nan] * 3 + [1],
                       "error": ["", "", "", ""]})
    ones = to_binary(df, "U-Ones", classes=["A", "B"])
    assert ones["A"].tolist() == [1, 0, 1, 0] and ones["B"].tolist() == [0, 0, 0, 1]
    assert to_binary(df, "U-Zeros", classes=["A", "B"])["A"].tolist() == [1, 0, 0, 0]
    ign = to_binary(df, "U-Ignore", classes=["A", "B"])["A"].tolist()
    assert ign[:2] == [1, 0] and np.isnan(ign[2]) and ign[3] == 0
    assert to_binary(df, classes=["A", "B"])["id"].tolist() == [1, 2, 3, 4]
    with pytest.raises(RadlabelError, match="did you mean 'U-Ones'"):
        to_binary(df, "U-ones")


def test_to_binary_keeps_unreadable_rows_nan(labeler):
    df = labeler.label_corpus(pd.Series(["No pneumothorax.", None]))
    out = to_binary(df, "U-Zeros")  # classes found from the frame's attrs
    assert out.loc[0, labeler.class_names].notna().all()
    assert out.loc[1, labeler.class_names].isna().all()
    assert out.loc[1, "error"] == "missing report"


def test_to_binary_guesses_classes_of_a_file(labeler, sample, tmp_path):
    labeler.label_file(write_table(sample.head(5), tmp_path / "in.csv"), tmp_path / "o.csv", id_column="id")
    out = to_binary(read_table(tmp_path / "o.csv"), "U-Ones")
    assert set(np.unique(out[labeler.class_names].to_numpy(dtype=float))) <= {0.0, 1.0}


def test_indication_does_not_label(labeler):
    row = labeler.label_text("INDICATION: Evaluate for pneumonia.\nFINDINGS: The lungs are clear.")
    assert np.isnan(row["Pneumonia"]) or row["Pneumonia"] == 0


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_empty_input_gives_header_only_output(labeler, tmp_path, ext):
    src = tmp_path / f"in.{ext}"
    src.write_text("")
    summary = labeler.label_file(src, tmp_path / "out.csv", id_column="id")
    assert summary["rows"] == 0
    assert (tmp_path / "out.csv").read_text().splitlines()[0].split(",") == ["id", *labeler.class_names, "error"]


def test_an_empty_input_written_as_parquet_has_the_column_types_rows_would_give(labeler, tmp_path):
    (tmp_path / "h.csv").write_text("id,report\n")
    (tmp_path / "one.csv").write_text("id,report\n1,Edema.\n")
    for name, id_column in (("h", "id"), ("one", "id"), ("h", None), ("one", None)):
        out = tmp_path / f"{name}_{id_column}.parquet"
        labeler.label_file(tmp_path / f"{name}.csv", out, id_column=id_column)
    import pyarrow.parquet as pq

    for id_column in ("id", None):
        empty, one = (pd.read_parquet(tmp_path / f"{n}_{id_column}.parquet") for n in ("h", "one"))
        assert empty.dtypes.to_dict() == one.dtypes.to_dict()  # row and error were float64
        # the file's own types too (under pandas 2 an empty text column is arrow's null type)
        schemas = [pq.read_schema(tmp_path / f"{n}_{id_column}.parquet") for n in ("h", "one")]
        assert [f.type for f in schemas[0]] == [f.type for f in schemas[1]]


def test_labeling_does_not_import_torch():
    code = ("import sys, radlabel; radlabel.label(['Small left effusion.']); radlabel.parse('No edema.'); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "RADLABEL_SPACY_TORCH"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_parallel_parent_does_not_import_spacy(tmp_path):
    """With jobs > 1 only the workers parse; spaCy and networkx in the parent would cost ~60 MB of the 1 GB
    corpus budget."""
    code = ("import sys, pandas as pd\n"
            "from radlabel.labeler import Labeler\n"
            "if __name__ == '__main__':\n"
            "    df = pd.DataFrame({'report': ['No edema.', 'Small left effusion.'] * 3})\n"
            f"    out = Labeler(progress=False).label_corpus(df, jobs=2, batch_size=2, graphs={str(tmp_path / 'g.jsonl')!r})\n"
            "    print(len(out), out['Pleural Effusion'].tolist()[:2], "
            "[m for m in ('spacy', 'networkx') if m in sys.modules])\n")
    script = tmp_path / "run.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "6 [nan, 1.0] []"


def test_parallel_reader_stays_bounded(labeler):
    """The pool never runs more than 2 x jobs batches ahead of the consumer (bounded memory)."""
    pulled = {"n": 0}

    def endless():
        while True:
            pulled["n"] += 1
            yield ["Small left pleural effusion."] * 3, None, False

    batches = labeler._batches(endless(), jobs=2)
    got = [next(batches) for _ in range(5)]
    batches.close()
    assert all(b.values.shape == (3, len(labeler.class_names)) for b in got)
    assert pulled["n"] <= 5 + 2 * 2


def test_dead_worker_is_a_clear_error_not_a_hang(tmp_path):
    script = tmp_path / "unguarded.py"  # no __main__ guard: workers re-run it and fail to start
    script.write_text("import pandas as pd\nfrom radlabel.labeler import Labeler\n"
                      "Labeler(progress=False).label_corpus(pd.Series(['No edema.'] * 30), jobs=2, batch_size=5)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert "WorkerDiedError" in r.stderr and "__main__" in r.stderr


def test_parallel_run_builds_no_pipeline_in_the_main_process():
    lab = radlabel.Labeler(schema="chexpert", progress=False)
    reports = pd.DataFrame({"report": ["No effusion.", "Small left effusion."] * 3})
    out = lab.label_corpus(reports, jobs=2, batch_size=2)  # three batches: worker processes run
    assert out["Pleural Effusion"].tolist() == [0.0, 1.0] * 3
    assert "pipeline" not in vars(lab)  # only the workers compiled matchers
    assert lab.label_text("No effusion.")["Pleural Effusion"] == 0.0  # built on first use here


def test_bad_sections_fail_at_construction():
    with pytest.raises(RadlabelError, match="Unknown section 'findngs'"):
        radlabel.Labeler(sections=("findngs",))


def test_ctrl_c_is_left_to_the_parent_while_the_fork_server_starts_and_in_workers(monkeypatch):
    import multiprocessing
    import signal
    from multiprocessing import forkserver

    from radlabel import labeler as labeler_module

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver on this platform")
    seen = []
    monkeypatch.setattr(forkserver, "ensure_running", lambda: seen.append(signal.getsignal(signal.SIGINT)))
    before = signal.getsignal(signal.SIGINT)
    labeler_module._mp_context()
    assert seen == [signal.SIG_IGN]  # the server inherits it across exec, so ^C mid-import prints nothing
    assert signal.getsignal(signal.SIGINT) is before  # the caller's own handling is back
    try:
        labeler_module._init_worker("chexpert", None, 1000)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_while_a_worker_is_being_started_is_raised_once_the_start_is_done():
    import os
    import signal

    from radlabel.labeler import _ctrl_c_after

    done = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests run as a background job of a script
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_after():
            os.kill(os.getpid(), signal.SIGINT)  # the parent's ^C, mid-start
            done.append("started")  # the block still finishes: no half-started worker
    assert done == ["started"] and signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("width", [60, 78])
def test_hard_wrapped_reports_get_the_same_labels(labeler, sample, width):
    """MIMIC-style line wrapping inside sentences must not change a label (headers stay on their lines)."""
    import textwrap

    def wrap(text):
        return "\n".join("\n".join(textwrap.wrap(line, width)) for line in text.split("\n"))

    plain = labeler.label_corpus(sample["report"])
    wrapped = labeler.label_corpus(sample["report"].map(wrap))
    pd.testing.assert_frame_equal(plain, wrapped)


def test_an_id_column_that_clashes_with_an_output_column_is_refused(tmp_path):
    lab = Labeler()
    frame = pd.DataFrame({"Edema": ["x1"], "report": ["Edema."]})
    with pytest.raises(RadlabelError, match="id column 'Edema' would clash with the output's class column"):
        lab.label_corpus(frame, id_column="Edema")
    src = tmp_path / "r.csv"
    frame.rename(columns={"Edema": "error"}).to_csv(src, index=False)
    with pytest.raises(RadlabelError, match="'error' would clash with the output's status column"):
        lab.label_file(src, tmp_path / "o.csv", id_column="error")
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"report": "Edema."}\n')
    with pytest.raises(RadlabelError, match="graphs file .* is the input file"):  # the input was replaced
        lab.label_file(jsonl, tmp_path / "o.csv", graphs=jsonl)
    with pytest.raises(RadlabelError, match="is also the output"):  # only the labels survived
        lab.label_file(src, tmp_path / "o.jsonl", graphs=tmp_path / "o.jsonl")
    assert not (tmp_path / "o.csv").exists()


def test_to_binary_refuses_values_that_are_not_labels():
    """A 2 in Edema passed through untouched (or became a target of 2 with classes=[...])."""
    df = pd.DataFrame({"id": list("abcd"), "Edema": [1, -1, None, 2], "Cardiomegaly": [1, -1, None, 0],
                       "error": [""] * 4})
    with pytest.raises(RadlabelError, match="value 2 in column 'Edema'; valid values are 1, 0, -1 or blank"):
        to_binary(df, "U-Zeros")
    with pytest.raises(RadlabelError, match="value 2 in column 'Edema'"):
        to_binary(df, "U-Zeros", classes=["Edema", "Cardiomegaly"])
    with pytest.raises(RadlabelError, match="value 'positive' in column 'A'"):
        to_binary(pd.DataFrame({"A": ["1", "positive"]}), classes=["A"])
    with pytest.raises(RadlabelError, match="not a Series; for one column, pass series.to_frame()"):
        to_binary(df["Edema"])


@pytest.mark.parametrize("text", [".", "IMPRESSION:", "INDICATION: Cough.", "FINDINGS:\nIMPRESSION:", "12345"])
def test_a_report_without_words_in_its_sections_is_blank_not_normal(labeler, text):
    """Header-only exports and indication-only reports came out No Finding = 1: confident 'normal' targets."""
    row = labeler.label_corpus(pd.Series([text, "FINDINGS: No acute disease."])).iloc[0]
    assert row[["No Finding", "Pleural Effusion"]].isna().all()
    assert row["error"] == "no words in the labelled sections (findings, impression)"


def test_the_no_words_note_names_the_chosen_sections():
    row = radlabel.label(["FINDINGS: Small effusion."], sections=("impression",)).iloc[0]
    assert math.isnan(row["No Finding"]) and row["error"] == "no words in the labelled sections (impression)"
    assert radlabel.label(["FINDINGS: No acute disease."]).iloc[0]["No Finding"] == 1.0


def test_an_input_without_rows_warns(tmp_path, caplog):
    src = tmp_path / "empty.csv"
    src.write_text("id,report\n")
    Labeler(progress=False).label_file(src, tmp_path / "out.csv", id_column="id")
    assert "has no rows" in caplog.text


def test_an_edited_schema_file_is_read_again(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nclasses:\n  - name: Edema\n    mentions: [edema]\n"
                    "  - name: Cardiomegaly\n    mentions: [cardiomegaly]\n")
    assert Labeler(schema=path, progress=False).label_text("Edema.")["Edema"] == 1.0
    assert radlabel.label(["Edema."], schema=str(path))["Edema"].iloc[0] == 1.0
    path.write_text("name: s\nclasses:\n  - name: Cardiomegaly\n    mentions: [cardiomegaly]\n"
                    "  - name: Edema\n    mentions: [edema]\n  - name: Mass\n    mentions: [mass]\n")
    os.utime(path, ns=(1, 1))  # a stamp unlike the first file's, however fast the rewrite
    # keyed on the path alone, the old matchers labelled the new columns: Cardiomegaly 1, or a ValueError
    row = Labeler(schema=path, progress=False).label_text("Edema. Mass.")
    assert row["Edema"] == 1.0 and row["Mass"] == 1.0 and math.isnan(row["Cardiomegaly"])
    again = radlabel.label(["Edema. Mass."], schema=str(path))
    assert list(again.columns) == ["Cardiomegaly", "Edema", "Mass", "error"] and again["Mass"].iloc[0] == 1.0
    assert [e.classes for e in radlabel.parse("Mass.", schema=str(path)).entities] == [("Mass",)]


def test_odd_but_textual_inputs_are_labelled_and_bad_calls_are_named(labeler):
    texts = np.array(["Cardiomegaly.", "IMPRESSION", "INDICATION: Cough.\u2028FINDINGS: Cardiomegaly.", "Mass."])
    out = radlabel.label(texts)  # numpy's str_ was refused by spaCy's tokenizer on every row
    assert out["Cardiomegaly"].tolist()[0] == 1.0 and out["error"].iloc[0] == ""
    assert out["error"].iloc[1].startswith("no words") and math.isnan(out["No Finding"].iloc[1])  # was normal
    assert out["Cardiomegaly"].iloc[2] == 1.0  # a Unicode line separator ends the indication's line
    assert out["Lung Lesion"].iloc[3] == 1.0  # spaCy kept "Mass." whole, as Massachusetts
    for bad, match in ((None, "not NoneType"), (5, "not int"), (b"No effusion", "decode bytes")):
        with pytest.raises(RadlabelError, match=match):
            radlabel.label(bad)
    with pytest.raises(RadlabelError, match="max_chars must be a positive number"):
        Labeler(max_chars="100")
    with pytest.raises(RadlabelError, match="batch_size must be a positive number"):
        labeler.label_corpus(pd.Series(["x"]), batch_size=0)
    twice = pd.DataFrame([["a", "b"]], columns=["report", "report"])
    with pytest.raises(RadlabelError, match="column 'report' more than once"):
        labeler.label_corpus(twice)
