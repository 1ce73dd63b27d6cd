"""Streaming table I/O: formats by extension, chunking, column checks, atomic writes."""

import os

import numpy as np
import pandas as pd
import pytest

from radlabel.errors import RadlabelError
from radlabel.io import (
    AtomicWriter,
    atomic_write_text,
    data_path,
    iter_table,
    read_columns,
    read_table,
    report_files,
    table_format,
    write_table,
)

FORMATS = ["csv", "tsv", "jsonl", "parquet"]


@pytest.fixture
def frame():
    return pd.DataFrame({"id": ["007", "8", "x9"], "report": ["No effusion.", "Small, left\neffusion.", "ok"]})


@pytest.mark.parametrize("ext", FORMATS)
def test_roundtrip_keeps_order_and_text(tmp_path, frame, ext):
    path = write_table(frame, tmp_path / f"t.{ext}")
    back = read_table(path)
    assert back["report"].tolist() == frame["report"].tolist()
    assert back["id"].astype(str).tolist() == ["007", "8", "x9"]  # CSV ids stay strings
    assert read_columns(path) == ["id", "report"]


@pytest.mark.parametrize("ext", FORMATS)
def test_iter_table_chunks_and_selects_columns(tmp_path, ext):
    df = pd.DataFrame({"a": range(25), "report": [f"r{i}" for i in range(25)], "b": 1.5})
    path = write_table(df, tmp_path / f"t.{ext}")
    chunks = list(iter_table(path, columns=["report"], chunksize=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert all(list(c.columns) == ["report"] for c in chunks)
    assert pd.concat(chunks)["report"].tolist() == df["report"].tolist()


def test_missing_column_names_available_and_close_match(tmp_path, frame):
    path = write_table(frame, tmp_path / "t.csv")
    with pytest.raises(RadlabelError, match=r"'reprot'.*did you mean 'report'.*available columns: 'id', 'report'"):
        list(iter_table(path, columns=["reprot"]))


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(RadlabelError, match=r"\.xlsx.*\.csv, \.tsv, \.jsonl, \.parquet"):
        table_format(tmp_path / "a.xlsx")
    with pytest.raises(RadlabelError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(RadlabelError, match="holds no .txt report files"):  # a folder is read as reports
        read_table(_mkdir(tmp_path / "d.csv"))


def _mkdir(p):
    p.mkdir()
    return p


def test_corrupt_files_raise_radlabel_error(tmp_path):
    bad_parquet = tmp_path / "x.parquet"
    bad_parquet.write_bytes(b"not a parquet file at all")
    with pytest.raises(RadlabelError, match="Could not read"):
        read_table(bad_parquet)
    bad_jsonl = tmp_path / "x.jsonl"
    bad_jsonl.write_text('{"report": "ok"}\n{broken\n')
    with pytest.raises(RadlabelError, match="Line 2"):
        read_table(bad_jsonl)


def test_empty_csv_gives_empty_frame(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    assert read_table(p).empty


def test_atomic_writer_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        with AtomicWriter(out) as w:
            w.write(pd.DataFrame({"a": [1]}))
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_atomic_writer_replaces_existing_only_on_success(tmp_path):
    out = tmp_path / "out.parquet"
    write_table(pd.DataFrame({"a": [1, 2]}), out)
    with pytest.raises(RuntimeError):
        with AtomicWriter(out) as w:
            w.write(pd.DataFrame({"a": [9]}))
            raise RuntimeError("boom")
    assert read_table(out)["a"].tolist() == [1, 2]
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]


@pytest.mark.parametrize("ext", FORMATS)
def test_writer_appends_chunks(tmp_path, ext):
    out = tmp_path / f"o.{ext}"
    with AtomicWriter(out) as w:
        for start in (0, 3):
            w.write(pd.DataFrame({"row": np.arange(start, start + 3),
                                  "A": pd.array([1, None, -1], dtype="Int8"), "error": ["", "x", ""]}))
    back = read_table(out)
    assert len(back) == 6
    assert back["row"].astype(int).tolist() == list(range(6))
    assert pd.to_numeric(back["A"]).isna().tolist() == [False, True, False] * 2


def test_csv_labels_written_as_integers(tmp_path):
    out = tmp_path / "o.csv"
    write_table(pd.DataFrame({"A": pd.array([1, 0, -1, None], dtype="Int8"), "error": ["", "", "", "x"]}), out)
    assert out.read_text().splitlines() == ["A,error", "1,", "0,", "-1,", ",x"]


def test_output_directory_must_exist(tmp_path):
    with pytest.raises(RadlabelError, match="Output directory"):
        AtomicWriter(tmp_path / "missing" / "o.csv")


def test_atomic_write_text_and_data_path(tmp_path):
    p = atomic_write_text(tmp_path / "s.json", "{}\n")
    assert p.read_text() == "{}\n"
    assert data_path("sample_reports.csv").is_file()
    with pytest.raises(RadlabelError, match="did you mean 'sample_reports.csv'"):
        data_path("sample_report.csv")


def test_empty_jsonl_has_no_rows_even_with_columns_requested(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text("\n")
    assert list(iter_table(p, columns=["report"])) == []


@pytest.fixture
def report_folder(tmp_path):
    """A MIMIC-CXR-like folder of .txt reports, with files that must be left out."""
    root = tmp_path / "files"
    for rel, data in {
        "p10/p10000032/s2.txt": b"FINDINGS: No effusion.\n",
        "p10/p10000032/s10.txt": "\ufeffIMPRESSION: Small effusion.".encode(),  # a BOM
        "p11/s3.txt": "IMPRESSION: Pneumonia \u2013 right base.".encode("cp1252"),  # not UTF-8
        "p11/notes.csv": b"not a report",
        "p11/.hidden/s4.txt": b"hidden",
        ".git/s5.txt": b"hidden",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_a_folder_of_text_reports_reads_as_path_and_report(report_folder, caplog):
    assert read_columns(report_folder) == ["path", "report"]
    with caplog.at_level("WARNING", logger="radlabel.io"):
        got = read_table(report_folder)
    # path order, hidden files and other extensions left out, BOM dropped, Windows-1252 decoded
    assert got["path"].tolist() == ["p10/p10000032/s10.txt", "p10/p10000032/s2.txt", "p11/s3.txt"]
    assert got["report"].tolist() == ["IMPRESSION: Small effusion.", "FINDINGS: No effusion.\n",
                                      "IMPRESSION: Pneumonia \u2013 right base."]
    assert "s3.txt is not UTF-8" in caplog.text
    chunks = list(iter_table(report_folder, columns=["path"], chunksize=2))
    assert [list(c.columns) for c in chunks] == [["path"], ["path"]] and [len(c) for c in chunks] == [2, 1]
    assert report_files(report_folder) == got["path"].tolist()


def test_a_report_folder_names_its_columns_and_refuses_an_empty_folder(report_folder, tmp_path):
    with pytest.raises(RadlabelError, match=r"Column 'text' not found in the report folder .*'path', 'report'"):
        iter_table(report_folder, columns=["text"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(RadlabelError, match=r"holds no \.txt report files .*\.csv, \.tsv"):
        iter_table(tmp_path / "empty")


def test_an_unreadable_report_file_keeps_its_row(report_folder, monkeypatch, caplog):
    real = type(report_folder).read_bytes

    def read_bytes(self):
        if self.name == "s2.txt":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(type(report_folder), "read_bytes", read_bytes)
    with caplog.at_level("WARNING", logger="radlabel.io"):
        got = read_table(report_folder)
    assert len(got) == 3 and got["report"].isna().tolist() == [False, True, False]
    assert "s2.txt (Permission denied)" in caplog.text
