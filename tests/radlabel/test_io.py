"""Streaming table I/O: formats by extension, chunking, column checks, atomic writes."""

import json
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
    read_label_table,
    read_table,
    report_files,
    table_format,
    write_table,
)
from radlabel.labeler import Labeler

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


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl"])
def test_bytes_that_are_not_utf8_read_as_windows_1252_and_the_rest_stays_utf8(tmp_path, ext, caplog):
    """One stray byte from an old export stopped the whole run; now only that byte is read another way."""
    rows = [("1", "caf\u00e9 UTF-8"), ("2", "bad byte \udce9 here"), ("3", "curly \udc93quote\udc94")]
    if ext == ".jsonl":
        text = "".join(f'{{"id": "{i}", "report": "{r}"}}\n' for i, r in rows)
    else:
        sep = "\t" if ext == ".tsv" else ","
        text = f"id{sep}report\n" + "".join(f"{i}{sep}{r}\n" for i, r in rows)
    path = tmp_path / f"mixed{ext}"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    got = read_table(path)
    assert got["report"].tolist() == ["caf\u00e9 UTF-8", "bad byte \u00e9 here", "curly \u201cquote\u201d"]
    assert "is not all UTF-8: 3 byte(s) were read as Windows-1252" in caplog.text


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


def test_a_report_folder_follows_folder_links_once_and_reads_odd_files(tmp_path, caplog):
    root = tmp_path / "files"
    (root / "p1").mkdir(parents=True)
    (root / "p1" / "s1.txt").write_text("No effusion.")
    (root / "p1" / "s2.txt").write_bytes("Small effusion.".encode("utf-16"))  # with its byte-order mark
    outside = tmp_path / "disk2" / "p2"
    outside.mkdir(parents=True)
    (outside / "s3.txt").write_text("Edema.")
    (root / "p2").symlink_to(outside, target_is_directory=True)  # reports kept on another disk
    (root / "p1" / "up").symlink_to(root, target_is_directory=True)  # a loop
    os.mkfifo(root / "p1" / "pipe.txt")  # reading it would block forever
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as fh:  # a Latin-1 file name
        fh.write(b"Pneumonia.")
    with caplog.at_level("WARNING", logger="radlabel.io"):
        got = read_table(root)
    assert got["path"].tolist() == ["caf\\xe9.txt", "p1/pipe.txt", "p1/s1.txt", "p1/s2.txt", "p2/s3.txt"]
    assert got["report"].fillna("-").tolist() == ["Pneumonia.", "-", "No effusion.", "Small effusion.", "Edema."]
    assert "pipe.txt is not a regular file" in caplog.text and "not UTF-8" in caplog.text
    labels = tmp_path / "labels.csv"
    Labeler(progress=False).label_file(root, labels)
    assert read_table(labels)["path"].tolist() == got["path"].tolist()


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch, caplog):
    root = tmp_path / "files"
    for rel in ("ok/s1.txt", "locked/s2.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("No effusion.")
    real = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) in ("locked", "files"):
            if os.path.basename(os.fspath(path)) == "files" and not scandir.top_locked:
                return real(path)
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    scandir.top_locked = False
    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level("WARNING", logger="radlabel.io"):
        assert report_files(root) == ["ok/s1.txt"]
    assert "cannot list" in caplog.text and "locked (Permission denied): its reports are left out" in caplog.text
    scandir.top_locked = True
    with pytest.raises(RadlabelError, match=r"Cannot list the folder .*files': Permission denied"):
        report_files(root)


def test_inputs_that_are_neither_table_nor_folder_name_both_choices(tmp_path):
    with pytest.raises(RadlabelError, match=r"'.*flies' does not exist; give a table file \(\.csv.*or a folder of \.txt"):
        read_table(tmp_path / "flies")
    (tmp_path / "s1.txt").write_text("No effusion.")
    with pytest.raises(RadlabelError, match=r"is a single report; give the folder"):
        read_table(tmp_path / "s1.txt")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(RadlabelError, match=r"'\.xlsx'.*or a folder of \.txt reports"):
        iter_table(tmp_path / "a.xlsx")
    with pytest.raises(RadlabelError, match=r"is a folder; labels come in a table file"):
        read_label_table(tmp_path)


def test_a_report_keeps_its_real_path_when_links_also_lead_to_it(tmp_path):
    root = tmp_path / "files"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "s1.txt").write_text("No effusion.")
    (root / "p10").mkdir()
    (root / "p10" / "s2.txt").write_text("Edema.")
    (root / "shortcut").symlink_to(root / "a" / "b", target_is_directory=True)  # deeper than the link
    (root / "a_link").symlink_to(root / "p10", target_is_directory=True)  # sorts before the real name
    assert report_files(root) == ["a/b/s1.txt", "p10/s2.txt"]


def test_linked_folders_are_read_once_and_a_link_above_the_folder_is_not_followed(tmp_path, caplog):
    root, elsewhere = tmp_path / "files", tmp_path / "elsewhere"
    (root / "p10").mkdir(parents=True)
    (root / "p10" / "s1.txt").write_text("No effusion.")
    (tmp_path / "beside").mkdir()
    (tmp_path / "beside" / "other.txt").write_text("Not a report of this corpus.")
    (elsewhere / "x" / "sub").mkdir(parents=True)
    (elsewhere / "x" / "sub" / "s2.txt").write_text("Edema.")
    (root / "a_deep").symlink_to(elsewhere / "x" / "sub", target_is_directory=True)  # met first ...
    (root / "b_x").symlink_to(elsewhere / "x", target_is_directory=True)  # ... then the folder above it
    (root / "p10" / "up").symlink_to(tmp_path, target_is_directory=True)  # walked the folders around root
    with caplog.at_level("WARNING"):
        assert report_files(root) == ["a_deep/s2.txt", "p10/s1.txt"]  # s2 was listed twice
    assert "p10/up links to" in caplog.text and "or a folder above it: not followed" in caplog.text
    caplog.clear()
    (root / "self").symlink_to(root, target_is_directory=True)  # skipped without a word
    with caplog.at_level("WARNING"):
        report_files(root)
    assert "self links to" in caplog.text


@pytest.mark.parametrize("body, where", [("1,Small effusion, large right pneumothorax.\n", "Data row 1"),
                                         ("1,Edema.\n2,Small effusion,extra\n3,Pneumothorax.\n", "Line 3")])
def test_a_row_with_an_unquoted_comma_is_an_error_not_lost_text(tmp_path, body, where):
    # pandas dropped the extra text (with usecols) or shifted the row onto an index (without)
    path = tmp_path / "r.csv"
    path.write_text("id,report\n" + body)
    for read in (lambda: read_table(path), lambda: list(iter_table(path, columns=["report"]))):
        with pytest.raises(RadlabelError, match=f"{where} of .* has more fields than its header .*quote a cell"):
            read()


def test_cells_spelled_like_missing_values_are_text(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,report\nNA,Edema.\nNone,NA\nnull,\n")
    t = read_table(path)
    assert t["id"].tolist() == ["NA", "None", "null"] and t["report"].tolist()[:2] == ["Edema.", "NA"]
    assert pd.isna(t["report"][2])  # an empty cell is still blank


def test_check_outputs_refuses_folders_inputs_and_shared_paths(tmp_path):
    from radlabel.io import check_outputs

    src = tmp_path / "in.csv"
    src.write_text("report\nx\n")
    with pytest.raises(RadlabelError, match="'.*in.csv' is the input file"):
        check_outputs({"The graphs file": src}, {"input": src})
    with pytest.raises(RadlabelError, match="is also the output"):
        check_outputs({"Output": tmp_path / "o.jsonl", "The graphs file": tmp_path / "o.jsonl"}, {"input": src})
    with pytest.raises(RadlabelError, match="is a folder"):
        check_outputs({"Output": tmp_path}, {"input": src})
    # a folder without an extension is named as a folder, not as an unknown extension '(none)'
    with pytest.raises(RadlabelError, match=r"is a folder; give a file path ending in one of \.csv"):
        table_format(tmp_path)
    check_outputs({"Output": tmp_path / "o.csv", "The graphs file": None}, {"input": src})


def test_decode_report_reads_boms_and_windows_bytes(caplog):
    from radlabel.io import decode_report

    assert decode_report("Edema.".encode("utf-16"), "x") == "Edema."  # with its byte-order mark
    assert decode_report(b"Caf\xe9 effusion.", "the text") == "Café effusion."
    assert "the text is not UTF-8" in caplog.text


@pytest.mark.parametrize("out_ext", [".csv", ".jsonl", ".parquet"])
def test_parquet_integer_ids_beside_a_null_keep_every_digit(tmp_path, out_ext):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    ids = [9007199254740993, 123456789012345678, None, 7]
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()),
                             "report": ["No effusion.", "Edema.", "Cardiomegaly.", "Pneumonia."]}), src)
    out = tmp_path / f"out{out_ext}"
    graphs = tmp_path / "g.jsonl"
    for chunksize in (1, 2, 10):  # whether a batch holds the null must not matter
        Labeler(progress=False).label_file(src, out, id_column="id", chunksize=chunksize, graphs=graphs)
        if out_ext == ".csv":
            assert out.read_text().splitlines()[1:] and [line.split(",")[0] for line in out.read_text().splitlines()[1:]] \
                == ["9007199254740993", "123456789012345678", "", "7"]
        else:
            got = read_table(out)["id"].tolist()
            assert got[:2] + got[3:] == [9007199254740993, 123456789012345678, 7] and pd.isna(got[2])
        assert [json.loads(line)["id"] for line in graphs.read_text().splitlines()] == ids


def test_a_lone_surrogate_in_jsonl_is_replaced_and_the_row_kept(tmp_path, caplog):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id":"a","report":"Edema."}\n{"id":"b","report":"Small effusion \\ud83d"}\n'
                   '{"id":"c","report":"Cardiomegaly."}\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    with caplog.at_level("WARNING"):
        Labeler(progress=False).label_file(src, out, id_column="id")
    df = read_table(out)
    assert df["id"].tolist() == ["a", "b", "c"] and df.loc[1, "Pleural Effusion"] == "1"
    assert "line 2" in caplog.text and "U+FFFD" in caplog.text


def test_parquet_integer_ids_read_back_as_integers_when_a_later_chunk_has_a_blank(tmp_path):
    """The file's pandas metadata comes from the first chunk: int64 there made pandas read a column with a later
    blank as float64, rounding ids above 2**53 (10,000 ids came back as 5,001)."""
    big = 9_007_199_254_740_993
    out = tmp_path / "ids.parquet"
    with AtomicWriter(out) as w:
        w.write(pd.DataFrame({"id": [big, big + 2], "No Finding": pd.array([1, None], dtype="Int8")}))
        w.write(pd.DataFrame({"id": pd.array([big + 4, None], dtype="Int64"),
                              "No Finding": pd.array([None, 1], dtype="Int8")}))
    back = pd.read_parquet(out)
    assert str(back["id"].dtype) == "Int64"
    assert back["id"].tolist()[:3] == [big, big + 2, big + 4] and back["id"].isna().tolist()[3]


def test_parquet_column_that_changes_type_names_the_column_in_one_sentence(tmp_path):
    with pytest.raises(RadlabelError) as exc:
        with AtomicWriter(tmp_path / "ids.parquet") as w:
            w.write(pd.DataFrame({"id": [1, 2], "x": [1.0, 0.0]}))
            w.write(pd.DataFrame({"id": ["a3", "a4"], "x": [1.0, 0.0]}))
    message = str(exc.value)
    assert "after row 2" in message and "'id' was int64, now " in message and "\n" not in message
    assert "write .csv or .jsonl" in message


def test_jsonl_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1, "report": "No effusion."}\n')
    assert read_columns(path) == ["id", "report"]
    assert read_table(path)["report"].tolist() == ["No effusion."]


@pytest.mark.parametrize("ext,sep", [("csv", ","), ("tsv", "\t")])
def test_utf16_tables_read_as_excel_writes_them(tmp_path, ext, sep):
    """Excel's "Unicode text" is UTF-16 with a BOM: the columns came back as 'ÿþi\\x00d\\x00'."""
    path = tmp_path / f"r.{ext}"
    path.write_bytes(f"id{sep}report\r\n1{sep}Kein Pleuraerguss – no effusion.\r\n".encode("utf-16"))
    assert read_columns(path) == ["id", "report"]
    assert read_table(path)["report"].tolist() == ["Kein Pleuraerguss – no effusion."]


def test_a_csv_column_named_twice_is_an_error(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,report,report\n1,No effusion.,Edema.\n")
    with pytest.raises(RadlabelError, match="has the column 'report' more than once"):
        read_columns(path)


def test_a_semicolon_file_says_what_separates_its_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id;report\n1;No effusion.\n")
    with pytest.raises(RadlabelError, match="seems to separate columns with ';'"):
        list(iter_table(path, columns=["report"]))


@pytest.mark.parametrize("chunksize", [1, 2, 100])
def test_a_blank_line_is_a_row_and_blank_lines_at_the_end_are_not(tmp_path, chunksize, caplog):
    # pandas skips blank lines by default: in a one-column file the empty report vanished and every later
    # row took the labels of the row below it
    one = tmp_path / "one.csv"
    one.write_text("report\nEdema.\n\nNo effusion.\n\n\n")
    rows = pd.concat(list(iter_table(one, chunksize=chunksize)), ignore_index=True)["report"].tolist()
    assert rows[0] == "Edema." and pd.isna(rows[1]) and rows[2] == "No effusion." and len(rows) == 3
    with caplog.at_level("INFO", logger="radlabel.io"):
        read_table(one)
    assert "left out 2 blank line(s) at the end" in caplog.text
    leading = tmp_path / "leading.csv"
    leading.write_text("\n\nreport\nEdema.\n")
    assert read_table(leading)["report"].tolist() == ["Edema."]  # blank lines before the header are no rows
    # with more columns a blank line is no row (a gold table "id,Edema" with one read as a blank id before)
    two = tmp_path / "two.csv"
    two.write_text("\nid,report\n1,Edema.\n\n2,No effusion.\n")
    assert read_table(two)["id"].tolist() == ["1", "2"]


def test_jsonl_columns_are_the_keys_of_its_first_lines_not_only_the_first(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"id": 1}\n{"id": 2, "report": "Edema."}\n')
    assert read_columns(p) == ["id", "report"]
    rows = read_table(p, columns=["report"])["report"].tolist()
    assert pd.isna(rows[0]) and rows[1] == "Edema."
    with pytest.raises(RadlabelError, match="Column 'text' not found"):
        read_table(p, columns=["text"])


def test_an_output_folder_that_is_a_file_or_takes_no_file_is_named_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "in.csv").write_text("report\nx\n")
    with pytest.raises(RadlabelError, match=r"does not exist; '.*in.csv' is a file, not a folder"):
        AtomicWriter(tmp_path / "in.csv" / "o.csv")

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("radlabel.io.tempfile.TemporaryFile", refuse)  # a read-only mount, an immutable folder
    with pytest.raises(RadlabelError, match="is not writable \\(Operation not permitted\\)"):
        AtomicWriter(tmp_path / "o.csv")


def test_a_full_disk_names_the_output_file(tmp_path):
    out = tmp_path / "o.csv"
    with pytest.raises(OSError) as raised, AtomicWriter(out) as writer:
        def full(text):
            raise OSError(28, "No space left on device")

        writer._fh.write = full
        writer.write(pd.DataFrame({"a": [1]}))
    assert raised.value.filename == str(out) and raised.value.errno == 28
    assert list(tmp_path.iterdir()) == []


def test_a_text_column_without_values_is_written_to_parquet_as_text(tmp_path):
    out = tmp_path / "o.parquet"
    with AtomicWriter(out) as w:
        w.write(pd.DataFrame({"id": pd.Series([], dtype=object), "error": pd.Series([], dtype=object)}))
    import pyarrow.parquet as pq

    assert {str(f.type) for f in pq.read_schema(out)} == {"string"}  # arrow's null type before

