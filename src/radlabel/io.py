"""Streaming table I/O by file extension (.csv .tsv .jsonl .parquet) with atomic writes.

Readers yield DataFrame chunks so a corpus of millions of reports is never held in memory at once;
a folder of ``.txt`` reports (MIMIC-CXR's ``files/p10/p10000032/s50414267.txt``) reads as a table
with a ``path`` column (relative to the folder) and a ``report`` column;
writers append chunk by chunk to a temporary file beside the target and `os.replace` it into place
only when everything was written, so an interrupted run (error, Ctrl-C, SIGTERM) leaves no partial output.
"""

from __future__ import annotations

import codecs
import contextlib
import difflib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radlabel.errors import RadlabelError

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
DEFAULT_CHUNKSIZE = 10_000
#: The columns of a folder of text reports: the file's path relative to the folder, and its text.
FOLDER_COLUMNS = ("path", "report")
_NOT_UTF8 = "radlabel-cp1252"  # codec error handler for table files, registered below
_not_utf8_bytes = 0


def _read_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    """Bytes of a table file that are not UTF-8 are read as Windows-1252, as report files are: one stray
    byte from an old export must not stop a corpus, and the rest of the file stays UTF-8. Counted for a warning."""
    global _not_utf8_bytes
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _not_utf8_bytes += exc.end - exc.start
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error(_NOT_UTF8, _read_as_cp1252)


def table_format(path: str | os.PathLike) -> str:
    """The format name for a path, from its extension; unknown extensions are a user error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS and Path(path).is_dir():
        raise RadlabelError(f"{str(path)!r} is a folder; give a file path ending in one of {', '.join(FORMATS)}.")
    if suffix not in FORMATS:
        raise RadlabelError(
            f"Unsupported file extension {suffix or '(none)'!r} for {str(path)!r}; "
            f"use one of {', '.join(FORMATS)}."
        )
    return FORMATS[suffix]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise RadlabelError(f"Input file {str(path)!r} does not exist.")
    if not path.is_file():
        raise RadlabelError(f"Input path {str(path)!r} is not a file.")
    if not os.access(path, os.R_OK):
        raise RadlabelError(f"Input file {str(path)!r} is not readable (check its permissions).")


def missing_column_error(column: str, available: Sequence[str], where: str) -> RadlabelError:
    """A RadlabelError naming a missing column, the available ones, and a close match if any."""
    available = [str(c) for c in available]
    glued = next((sep for sep in (";", "|", "\t", ",") if len(available) == 1 and sep in available[0]
                  and column in available[0].split(sep)), None)
    close = difflib.get_close_matches(str(column), available, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close and not glued else ""
    if glued:  # "id;report": the file separates its columns with something else
        hint = (f" (the file seems to separate columns with {glued!r}: save it with ',' as .csv or with tabs "
                f"as .tsv)")
    shown = ", ".join(repr(c) for c in available[:30]) + (" ..." if len(available) > 30 else "")
    return RadlabelError(f"Column {column!r} not found in {where}{hint}; available columns: {shown or 'none'}.")


def _input_format(path: Path) -> str:
    """The format of an input: "folder" for a folder of reports, else the table format by extension."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise RadlabelError(f"Input {str(path)!r} does not exist; give a table file ({', '.join(FORMATS)}) "
                            f"or a folder of .txt reports.")
    if path.suffix.lower() == ".txt":
        raise RadlabelError(f"{str(path)!r} is a single report; give the folder that holds the .txt reports "
                            f"(`radlabel parse --file` shows one report's graph).")
    try:
        return table_format(path)
    except RadlabelError:
        raise RadlabelError(f"Unsupported file extension {path.suffix or '(none)'!r} for {str(path)!r}; give a "
                            f"table file ({', '.join(FORMATS)}) or a folder of .txt reports.") from None


def _csv_encoding(path: Path) -> str:
    """"utf-16" for a file that starts with a UTF-16 byte-order mark (Excel's "Unicode text"), else "utf-8"
    (pandas drops a UTF-8 BOM itself)."""
    with open(path, "rb") as fh:
        start = fh.read(2)
    return "utf-16" if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8"


_JSONL_KEY_LINES = 1000
#: key of ``DataFrame.attrs`` on the chunks of `iter_table` from a text file: how much of the file has been read
#: by the end of the chunk (0-1), from which the rows of the whole file are estimated for a progress bar
READ_FRACTION = "radlabel_read_fraction"
# Only a file this big gets an estimate: in a smaller one pandas' read buffer (256 kB) is a large part of the file, so
# the first estimates would be far off (and the run is short anyway).
ESTIMATE_MIN_BYTES = 4 * 2**20


def parquet_rows(path: str | os.PathLike) -> int | None:
    """Rows of a Parquet file from its metadata (cheap), for a progress total; None for other files."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # a progress total is only a nicety; reading the file will say what is wrong
            return None
    return None


def estimated_rows(rows_read: int, chunk: pd.DataFrame, file_size: int) -> int | None:
    """The rows of a whole text file estimated after a chunk of `iter_table` (for a progress total), or None when the
    chunk does not say how far the file has been read or the file is too small to tell."""
    fraction = chunk.attrs.get(READ_FRACTION)
    if not fraction or file_size < ESTIMATE_MIN_BYTES:
        return None
    return round(rows_read / fraction)


def read_columns(path: str | os.PathLike) -> list[str]:
    """Column names of a table file without reading its rows (for JSONL, the keys of its first 1,000 objects)."""
    path = Path(path)
    fmt = _input_format(path)
    if fmt == "folder":
        return list(FOLDER_COLUMNS)
    _check_readable(path)
    try:
        if fmt in ("csv", "tsv"):
            sep, encoding = ("\t" if fmt == "tsv" else ","), _csv_encoding(path)
            header = pd.read_csv(path, sep=sep, nrows=1, header=None, dtype=str, keep_default_na=False,
                                 encoding=encoding, encoding_errors=_NOT_UTF8)
            names = [str(c) for c in header.iloc[0]] if len(header) else []
            twice = sorted({c for c in names if names.count(c) > 1})
            if twice:  # pandas would read them as 'report' and 'report.1' and the first would win unsaid
                raise RadlabelError(f"{str(path)!r} has the column {twice[0]!r} more than once; rename one.")
            return [str(c) for c in pd.read_csv(path, sep=sep, nrows=0, encoding=encoding,
                                                encoding_errors=_NOT_UTF8).columns]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        # the keys of the first lines together: a line without the report key is a "missing report" row,
        # not a reason to refuse the file, when the first line happens to be that line
        keys: dict[str, None] = {}
        with open(path, encoding="utf-8-sig", errors=_NOT_UTF8) as fh:
            objects = 0
            for line in fh:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    if objects:  # reading the rows names the line
                        break
                    raise
                if not isinstance(obj, dict):
                    raise RadlabelError(f"{str(path)!r} is not JSON Lines of objects (one {{...}} per line).")
                keys.update(dict.fromkeys(map(str, obj)))
                objects += 1
                if objects == _JSONL_KEY_LINES:
                    break
        return list(keys)
    except RadlabelError:
        raise
    except pd.errors.EmptyDataError:
        return []
    except Exception as exc:  # pyarrow / json / unicode errors: report them as one user-facing sentence
        raise RadlabelError(f"Could not read {str(path)!r} as {fmt}: {type(exc).__name__}: {exc}.") from exc


def iter_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> Iterator[pd.DataFrame]:
    """Yield the rows of a table file (or of a folder of .txt reports) in order, `chunksize` rows at a time.

    `columns` restricts what is read (and must exist: a missing one is a RadlabelError naming the
    available columns). CSV/TSV cells are read as strings so ids such as "00123" keep their form;
    empty cells become NaN.
    """
    path = Path(path)
    if chunksize < 1:
        raise RadlabelError(f"chunksize must be a positive number of rows, got {chunksize}.")
    fmt = _input_format(path)
    if fmt == "folder":
        return iter_report_folder(path, report_files(path), columns, chunksize)
    available = read_columns(path)
    wanted = list(dict.fromkeys(columns)) if columns is not None else None
    # A file with no header and no rows (0 bytes, or JSONL without a line) is an empty table.
    for col in (wanted or []) if available or fmt == "parquet" else []:
        if col not in available:
            raise missing_column_error(col, available, repr(str(path)))
    # Checks above run at call time; rows are read lazily by the generator below.
    return _iter_rows(path, fmt, wanted, len(available), chunksize)


def _iter_rows(path: Path, fmt: str, wanted: list[str] | None, n_columns: int,
               chunksize: int) -> Iterator[pd.DataFrame]:
    before = _not_utf8_bytes
    yield from _decoded_rows(path, fmt, wanted, n_columns, chunksize)
    if _not_utf8_bytes > before:
        logger.warning("%s is not all UTF-8: %d byte(s) were read as Windows-1252 (check the rows that have "
                       "odd characters)", _shown(str(path)), _not_utf8_bytes - before)


def _decoded_rows(path: Path, fmt: str, wanted: list[str] | None, n_columns: int,
                  chunksize: int) -> Iterator[pd.DataFrame]:
    try:
        if not n_columns and fmt != "parquet":
            return
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            # all columns are read (no usecols, which drops a row's extra text without a word), so a row with
            # an unquoted separator is a tokenizer error or, on the first row, a shift onto an index: both raise.
            # Only empty cells are blank: an id "NA" stays "NA". In a one-column file a blank line is an empty
            # report, so a row (skipping it shifted every later row's labels), except before the header and at
            # the end of the file; with more columns it is no row (pandas' default), as in a label table.
            one_column = n_columns == 1
            encoding = _csv_encoding(path)
            size = os.path.getsize(path)
            # read through our own handle: its position says how far into the file a chunk ends (progress total)
            with open(path, "rb") as fh, pd.read_csv(
                    fh, sep=sep, dtype=str, chunksize=chunksize, keep_default_na=False, na_values=[""],
                    encoding=encoding, encoding_errors=_NOT_UTF8, skip_blank_lines=not one_column,
                    skiprows=_leading_blank_lines(path, encoding) if one_column else None) as reader:
                for chunk in _without_trailing_blank_rows(reader, path) if one_column else reader:
                    if not isinstance(chunk.index, pd.RangeIndex):
                        raise _ragged(path, fmt, "Data row 1")
                    chunk = chunk[wanted] if wanted else chunk
                    chunk.attrs[READ_FRACTION] = fh.tell() / size if size else 1.0
                    yield chunk
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=chunksize, columns=wanted):
                # integers keep their digits beside a null (float64 would turn id 7 into 7.0 and round ids
                # above 2**53), whatever nulls the batch happens to hold
                yield batch.to_pandas(integer_object_nulls=True)
        else:
            yield from _iter_jsonl(path, wanted, chunksize)
    except RadlabelError:
        raise
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected \d+ fields in line (\d+), saw \d+", str(exc))
        if found:
            raise _ragged(path, fmt, f"Line {found.group(1)}") from exc
        raise RadlabelError(f"Could not read {str(path)!r} as {fmt}: {type(exc).__name__}: {exc}.") from exc
    except Exception as exc:
        raise RadlabelError(f"Could not read {str(path)!r} as {fmt}: {type(exc).__name__}: {exc}.") from exc


def _leading_blank_lines(path: Path, encoding: str) -> int:
    with open(path, encoding=encoding, errors=_NOT_UTF8) as fh:
        for n, line in enumerate(fh):
            if line.strip():
                return n
    return 0


def _without_trailing_blank_rows(chunks: Iterator[pd.DataFrame], path: Path) -> Iterator[pd.DataFrame]:
    """One-column chunks in order, blank rows kept except those after the file's last non-blank row (the empty
    lines an editor leaves at the end), which are held back until a later row shows they are not at the end."""
    held: pd.DataFrame | None = None
    for chunk in chunks:
        if held is not None:
            chunk = pd.concat([held, chunk], ignore_index=True)
        filled = chunk.iloc[:, 0].notna().to_numpy()
        end = int(filled.nonzero()[0][-1]) + 1 if filled.any() else 0
        held = chunk.iloc[end:] if end < len(chunk) else None
        if end:
            yield chunk.iloc[:end]
    if held is not None:
        logger.info("%s: left out %d blank line(s) at the end of the file", _shown(str(path)), len(held))


def _ragged(path: Path, fmt: str, where: str) -> RadlabelError:
    header = read_columns(path)
    return RadlabelError(
        f"{where} of {_shown(str(path))!r} has more fields than its header ({len(header)}: {', '.join(header)}); "
        f"quote a cell that holds a {'tab' if fmt == 'tsv' else 'comma'} (\"Small effusion, no pneumothorax.\").")


def report_files(folder: str | os.PathLike) -> list[str]:
    """Every ``*.txt`` file under `folder` as a path relative to it (with ``/``; a name that is not
    UTF-8 keeps its undecodable bytes as surrogates, so the file can still be opened), hidden files and
    folders left out, in path order. Links to folders are followed after the real folders are walked,
    and only into folders not reached otherwise, so a report keeps its real path whatever order the file
    system lists names in and no folder is read twice; a link to the folder itself or one above it is not
    followed (with a warning). A folder that cannot be listed is named in a warning. ``os.walk`` lists MIMIC-CXR's 227k reports about 3x faster than ``Path.rglob``."""
    top = os.fspath(folder)
    failed: list[OSError] = []
    seen: set[tuple[int, int] | None] = set()
    found: list[str] = []
    links: list[str] = []  # relative paths of links to folders, followed once the real folders are done

    def walk(start: str) -> None:
        for dirpath, dirnames, filenames in os.walk(os.path.join(top, start) if start else top, onerror=failed.append):
            seen.add(_identity(dirpath))
            rel = os.path.relpath(dirpath, top)
            prefix = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
            real = []
            for d in sorted(dirnames):
                if d.startswith("."):
                    continue
                if os.path.islink(os.path.join(dirpath, d)):
                    links.append(prefix + d)
                elif _identity(os.path.join(dirpath, d)) not in seen:  # in a linked folder: a shortcut met first
                    real.append(d)
            dirnames[:] = real
            found.extend(prefix + f for f in filenames if f.lower().endswith(".txt") and not f.startswith("."))

    walk("")
    inside = os.path.realpath(top)
    for link in links:  # grows while links inside linked folders are found
        ident = _identity(os.path.join(top, link))
        if ident is None:
            continue
        target = os.path.realpath(os.path.join(top, link))
        if os.path.commonpath([target, inside]) == target:  # the top folder again, and the folders around it
            logger.warning("%s links to %s or a folder above it: not followed", _shown(link), _shown(top))
            continue
        if ident not in seen:  # else a shortcut to a folder walked already
            walk(link)
    for err in failed:
        if os.path.normpath(err.filename or "") == os.path.normpath(top):
            raise RadlabelError(f"Cannot list the folder {_shown(top)!r}: {err.strerror or err}.")
        logger.warning("cannot list %s (%s): its reports are left out", _shown(str(err.filename)), err.strerror or err)
    if not found:
        raise RadlabelError(f"The folder {_shown(top)!r} holds no .txt report files (searched its subfolders too); "
                            f"give a folder of .txt reports or a table file ({', '.join(FORMATS)}).")
    found.sort()
    return found


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the folder a path leads to; None when it cannot be reached."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _shown(path: str) -> str:
    """A path as writable text: the bytes of a file name that is not UTF-8 as \\xNN escapes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _read_report(file: Path) -> str | None:
    """A report file's text: UTF-8, or UTF-16 / UTF-8 by its byte-order mark, else Windows-1252; None
    (with a warning) for what is not a readable regular file (a FIFO would block the run)."""
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):
            logger.warning("%s is not a regular file: its row has no report", _shown(str(file)))
            return None
        data = file.read_bytes()
    except OSError as exc:
        logger.warning("could not read %s (%s): its row has no report", _shown(str(file)), exc.strerror or exc)
        return None
    return decode_report(data, _shown(str(file)))


def decode_report(data: bytes, name: str) -> str:
    """A report's bytes as text: UTF-8, or UTF-16 / UTF-8 by its byte-order mark, else Windows-1252 (with a
    warning naming `name`)."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        # Reports exported on Windows; undecodable bytes become U+FFFD, which marks binary files as such.
        logger.warning("%s is not %s; read as Windows-1252", name, encoding.upper().removesuffix("-SIG"))
        return data.decode("cp1252", errors="replace")


def iter_report_folder(folder: str | os.PathLike, files: list[str], columns: Sequence[str] | None = None,
                       chunksize: int = DEFAULT_CHUNKSIZE) -> Iterator[pd.DataFrame]:
    """The `files` of `folder` (as `report_files` lists them) as table chunks with the columns `path` and
    `report` (or those of them `columns` names: another name is a RadlabelError)."""
    for col in columns or []:
        if col not in FOLDER_COLUMNS:
            raise missing_column_error(col, FOLDER_COLUMNS, f"the report folder {_shown(os.fspath(folder))!r}")
    return _iter_folder(Path(folder), list(dict.fromkeys(columns or FOLDER_COLUMNS)), files, chunksize)


def _iter_folder(folder: Path, wanted: list[str], files: list[str], chunksize: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(files), chunksize):
        part = files[start:start + chunksize]
        columns: dict[str, list] = {}
        if "path" in wanted:
            columns["path"] = [_shown(rel) for rel in part]
            for rel, shown in zip(part, columns["path"], strict=True):
                if shown != rel:
                    logger.warning("the file name of %s is not UTF-8; its path is written with \\x escapes", shown)
        if "report" in wanted:
            columns["report"] = [_read_report(folder / rel) for rel in part]
        yield pd.DataFrame({c: columns[c] for c in wanted}, columns=wanted)


def _iter_jsonl(path: Path, wanted: list[str] | None, chunksize: int) -> Iterator[pd.DataFrame]:
    # Parsed line by line (not pd.read_json) so values keep their JSON types and a bad line is
    # reported with its line number.
    rows: list[dict[str, Any]] = []
    size, chars = os.path.getsize(path), 0  # characters read, about the bytes for a progress total
    with open(path, encoding="utf-8-sig", errors=_NOT_UTF8) as fh:  # -sig: a BOM (Windows editors) is not JSON
        for lineno, line in enumerate(fh, 1):
            chars += len(line)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if "\\ud" in line.lower():  # a lone UTF-16 surrogate ("\ud83d" of a cut emoji) cannot be written
                    obj = _without_lone_surrogates(obj, path, lineno)
            except json.JSONDecodeError as exc:
                raise RadlabelError(f"Line {lineno} of {str(path)!r} is not valid JSON: {exc.msg}.") from exc
            if not isinstance(obj, dict):
                raise RadlabelError(f"Line {lineno} of {str(path)!r} is not a JSON object.")
            rows.append({k: obj.get(k) for k in wanted} if wanted else obj)
            if len(rows) >= chunksize:
                yield _json_frame(rows, wanted, min(chars / size, 1.0))
                rows = []
    if rows:
        yield _json_frame(rows, wanted, 1.0)


def _json_frame(rows: list[dict[str, Any]], wanted: list[str] | None, fraction: float) -> pd.DataFrame:
    """Rows as parsed, each value kept as JSON typed it: pandas would turn integers beside a null into floats
    (id 7 -> 7.0, ids above 2**53 rounded)."""
    frame = pd.DataFrame(rows, columns=wanted, dtype=object)
    frame.attrs[READ_FRACTION] = fraction
    return frame


def _without_lone_surrogates(obj: Any, path: Path, lineno: int) -> Any:
    """The object's top-level strings with lone surrogates replaced by U+FFFD (a warning names the line)."""
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if isinstance(value, str):
            fixed = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            if fixed != value:
                logger.warning("line %d of %s: a lone UTF-16 surrogate in %r was replaced by U+FFFD", lineno,
                               _shown(str(path)), key)
            value = fixed
        out[key] = value
    return out


def read_label_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels table (predictions, gold): a file, never a folder of reports."""
    if not Path(path).exists():
        raise RadlabelError(f"Labels file {_shown(os.fspath(path))!r} does not exist; labels come in a table file "
                            f"({', '.join(FORMATS)}), as `radlabel label` writes them.")
    if Path(path).is_dir():
        raise RadlabelError(f"{_shown(os.fspath(path))!r} is a folder; labels come in a table file "
                            f"({', '.join(FORMATS)}), as `radlabel label` writes them.")
    return read_table(path)


def read_table(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a whole (small) table file; use `iter_table` for corpora."""
    chunks = list(iter_table(path, columns=columns, chunksize=100_000))
    if not chunks:
        return pd.DataFrame(columns=list(columns) if columns else read_columns(path))
    return pd.concat(chunks, ignore_index=True)


def check_writable(path: str | os.PathLike) -> Path:
    """Before any work: `path` has a table extension and its folder exists and takes a file; returns the folder."""
    table_format(path)
    directory = Path(path).parent
    check_folder_writable(directory, "Output directory")
    return directory


def check_folder_writable(directory: Path, what: str) -> None:
    """`directory` exists and a file can be made in it (a trial file, removed again: permissions alone miss a
    read-only mount or an immutable folder)."""
    if not directory.is_dir():
        above = next((p for p in (directory, *directory.parents) if p.exists()), None)
        under = f"; {str(above)!r} is a file, not a folder" if above is not None and not above.is_dir() else ""
        raise RadlabelError(f"{what} {str(directory)!r} does not exist{under}.")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise RadlabelError(f"{what} {str(directory)!r} is not writable ({exc.strerror or exc}).") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicWriter:
    """Context manager writing a table chunk by chunk to a temp file, moved into place on success.

    >>> with AtomicWriter("out.parquet") as w:
    ...     for chunk in chunks:
    ...         w.write(chunk)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = table_format(self.path)
        self._dir = check_writable(self.path)
        self._tmp: Path | None = None
        self._fh = None
        self._pq_writer = None
        self._arrow_schema = None
        self.rows = 0

    def __enter__(self) -> AtomicWriter:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self._dir)
        os.close(fd)
        self._tmp = Path(tmp)
        os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        if self.format != "parquet":
            self._fh = open(self._tmp, "w", encoding="utf-8", newline="")
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append one chunk (its columns must match the first chunk's)."""
        with self._naming_errors():
            self._write(df)

    @contextlib.contextmanager
    def _naming_errors(self) -> Iterator[None]:
        """An OSError without a file name (ENOSPC from a write or flush) is re-raised naming the output."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def _write(self, df: pd.DataFrame) -> None:
        if self.format in ("csv", "tsv"):
            # CRLF rows (RFC 4180) make the csv module quote any field holding a bare "\r" too.
            df.to_csv(self._fh, sep="\t" if self.format == "tsv" else ",", index=False, header=self.rows == 0,
                      lineterminator="\r\n")
        elif self.format == "jsonl":
            if len(df):
                text = df.to_json(orient="records", lines=True, force_ascii=False)
                self._fh.write(text if text.endswith("\n") else text + "\n")
        else:
            self._write_parquet(df)
        self.rows += len(df)

    def _write_parquet(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # integer columns as pandas' nullable integers: the file's pandas metadata comes from the first chunk, and
        # a later chunk's blank would otherwise make pandas read the whole column back as floats (ids rounded)
        ints = {c: t.name.capitalize().replace("Uint", "UInt") for c, t in df.dtypes.items()
                if pd.api.types.is_integer_dtype(t) and not isinstance(t, pd.api.extensions.ExtensionDtype)}
        try:
            table = pa.Table.from_pandas(df.astype(ints) if ints else df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise RadlabelError(f"Cannot write these values to {str(self.path)!r} as parquet: {exc}.") from exc
        if any(pa.types.is_null(f.type) for f in table.schema):
            # a text column with no value yet (no rows, every error blank) has arrow's null type: text it is
            table = table.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                          for f in table.schema], metadata=table.schema.metadata))
        if self._pq_writer is None:
            self._arrow_schema = table.schema
            self._pq_writer = pq.ParquetWriter(self._tmp, self._arrow_schema)
        elif not table.schema.equals(self._arrow_schema, check_metadata=False):
            try:
                table = table.cast(self._arrow_schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
                changed = [f"{f.name!r} was {self._arrow_schema.field(f.name).type}, now {f.type}"
                           for f in table.schema if f.name in self._arrow_schema.names
                           and not f.type.equals(self._arrow_schema.field(f.name).type)]
                raise RadlabelError(
                    f"Column types changed after row {self.rows} while writing {str(self.path)!r} "
                    f"({'; '.join(changed)}); parquet needs one type per column: write .csv or .jsonl, or give "
                    f"the column one type (all numbers or all text)."
                ) from exc
        self._pq_writer.write_table(table)

    def write_text_line(self, line: str) -> None:
        """Append one raw line (for JSONL side files such as graphs)."""
        with self._naming_errors():
            self._fh.write(line)
            self._fh.write("\n")
        self.rows += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        committed = False
        try:
            with self._naming_errors():  # closing flushes: a full disk shows here
                if self._fh is not None:
                    self._fh.close()
                if self._pq_writer is not None:
                    self._pq_writer.close()
                elif self.format == "parquet" and exc_type is None:
                    # Nothing was written: still produce a valid (empty) parquet file.
                    pd.DataFrame().to_parquet(self._tmp)
            if exc_type is None:
                os.replace(self._tmp, self.path)
                committed = True
                logger.debug("wrote %d rows to %s", self.rows, self.path)
        finally:
            if not committed and self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
        return False


def check_outputs(outputs: dict[str, str | os.PathLike | None], inputs: dict[str, str | os.PathLike]) -> None:
    """Before any work: no output is a folder, an input, or another output (each would be lost or replaced)."""
    seen: dict[Path, str] = {Path(p).resolve(): name for name, p in inputs.items()}
    for what, path in outputs.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved.is_dir():
            raise RadlabelError(f"{what} {str(path)!r} is a folder; give a file path.")
        if resolved in seen:
            other = seen[resolved]
            raise RadlabelError(f"{what} {str(path)!r} is the {other} file; choose another path."
                                if other in inputs else f"{what} {str(path)!r} is also the {other.lower()}; "
                                "give each its own path.")
        seen[resolved] = what


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a small text file atomically (temp file in the same directory, then os.replace)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def data_path(name: str) -> Path:
    """Path of a file bundled in radlabel/data (e.g. "sample_reports.csv")."""
    folder = Path(__file__).resolve().parent / "data"
    path = folder / name
    if not path.is_file():
        available = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RadlabelError(f"No bundled data file {name!r}{hint}; available: {', '.join(available)}.")
    return path


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a whole DataFrame atomically, format by extension."""
    with AtomicWriter(path) as writer:
        writer.write(df)
    return Path(path)
