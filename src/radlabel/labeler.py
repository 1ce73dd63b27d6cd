"""Corpus labeling: many reports in, one row of labels per report out, in input order.

`Labeler` wraps one `Pipeline` and adds what a corpus needs: per-row validation (bad rows become
an `error`, never an exception), chunked streaming from and to files with bounded memory, an
ordered multiprocessing pool, a progress bar, and optional RadGraph JSON lines per report.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from radlabel.aggregate import aggregate
from radlabel.errors import RadlabelError, WorkerDiedError
from radlabel.evaluate import label_values
from radlabel.graph import compact_json
from radlabel.io import (
    DEFAULT_CHUNKSIZE,
    AtomicWriter,
    check_outputs,
    estimated_rows,
    iter_report_folder,
    iter_table,
    missing_column_error,
    parquet_rows,
    report_files,
    table_format,
)
from radlabel.schema import (
    is_builtin_schema,
    list_schemas,
    load_schema,
    schema_cache_key,
    with_no_finding_rule,
)
from radlabel.sections import check_sections

if TYPE_CHECKING:
    from radlabel.pipeline import Pipeline

logger = logging.getLogger(__name__)

#: Reports longer than this are cut to this many characters (a chest X-ray report is ~0.3-3 kB);
#: the row is still labelled and its `error` says it was truncated.
MAX_CHARS = 100_000
#: Rows handed to a worker process at a time: big enough to amortise pickling, small enough to
#: keep every worker busy and memory flat.
BATCH_SIZE = 500
REPEAT_CACHE_SIZE = 2048  # reports of at most REPEAT_CACHE_CHARS characters whose results are kept for repeats
REPEAT_CACHE_CHARS = 2000

ERR_MISSING = "missing report"
ERR_EMPTY = "empty report"
ERR_NOT_TEXT = "not text"
ERR_BINARY = "not text (binary content)"
ERR_TRUNCATED = "truncated to the first {} characters"
ERR_NO_WORDS = "no words in the labelled sections ({})"
ERROR_COLUMN = "error"
ROW_COLUMN = "row"

# What R, SQL and spreadsheet exports write for a missing value: a report that is only this is missing, not normal.
_MISSING_WORDS = frozenset({"na", "n/a", "#n/a", "nan", "<na>", "none", "null"})
# Control characters other than whitespace, DEL and U+FFFD (what undecodable bytes become).
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufffd]")


def _check_text(value: Any, max_chars: int) -> tuple[str | None, str]:
    """(text to label or None, error note) for one raw cell; never raises."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None, ERR_MISSING
    if not isinstance(value, str):
        return None, ERR_NOT_TEXT
    value = str(value)  # a str subclass (numpy's str_) is what spaCy's tokenizer refuses
    if not value.strip():
        return None, ERR_EMPTY
    if len(value) <= 1000 and value.strip().lower() in _MISSING_WORDS:
        return None, ERR_MISSING
    head = value[:4096]
    # NUL bytes, many control characters or U+FFFD (undecodable bytes) mean a binary blob, not a report.
    if "\x00" in head or len(_NOT_TEXT.findall(head)) > 0.1 * len(head):
        return None, ERR_BINARY
    if len(value) > max_chars:
        return value[:max_chars], ERR_TRUNCATED.format(max_chars)
    return value, ""


def _json_id(value: Any) -> Any:
    """An id as a JSON-safe value (numpy scalars unwrapped, NaN -> null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _id_values(ids: Sequence[Any] | None) -> Any:
    """Ids for the output column: integer ids beside blanks stay integers (pandas would make 7 beside a None
    7.0 and round ids above 2**53); anything else as given."""
    values = list(ids) if ids is not None else []
    missing = [v is None or v is pd.NA for v in values]
    if any(missing) and not all(missing) and all(
            m or (isinstance(v, int | np.integer) and not isinstance(v, bool)) for v, m in zip(values, missing, strict=True)):
        try:
            return pd.array([None if m else int(v) for v, m in zip(values, missing, strict=True)], dtype="Int64")
        except (OverflowError, TypeError, ValueError):  # beyond int64: text keeps every digit
            return [None if m else str(v) for v, m in zip(values, missing, strict=True)]
    return values


def _id_hash(value: Any) -> int:
    try:
        return hash(value)
    except TypeError:  # a JSON list or object as an id
        return hash(repr(value))


class _RepeatedIds:
    """Notices ids that repeat across a whole corpus at 16 bytes a row: only their hashes and row numbers are kept
    (a set of the ids themselves would cost the parent ~70 MB per million rows)."""

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._seen = 0

    def add(self, ids: Sequence[Any]) -> None:
        given = [i for i, v in enumerate(ids) if not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))]
        self._hashes.append(np.fromiter((_id_hash(ids[i]) for i in given), dtype=np.int64, count=len(given)))
        self._rows.append(np.asarray(given, dtype=np.int64) + self._seen)
        self._seen += len(ids)

    def warn(self, id_column: str) -> None:
        hashes = np.concatenate(self._hashes) if self._hashes else np.empty(0, np.int64)
        if len(hashes) < 2:
            return
        rows = np.concatenate(self._rows)
        order = np.argsort(hashes, kind="stable")  # equal ids in row order
        repeat = np.zeros(len(hashes), bool)
        repeat[order[1:]] = hashes[order[1:]] == hashes[order[:-1]]
        if repeat.any():
            later = int(np.flatnonzero(repeat)[0])  # positions are in row order
            first = int(rows[order[np.searchsorted(hashes[order], hashes[later])]])  # its id's earliest row
            logger.warning("%d row(s) repeat an earlier row's id in column %r (the first: rows %d and %d, counted "
                           "from 0); each keeps its own labels, but a join on that column would pair them wrongly",
                           int(repeat.sum()), id_column, first, int(rows[later]))


@dataclass
class _Batch:
    """Labels for a run of consecutive rows: (n, k) float values, errors, optional graph lines."""

    values: np.ndarray
    errors: list[str]
    graphs: list[str] | None


def _label_batch(pipeline: Pipeline, texts: Sequence[Any], ids: Sequence[Any] | None, want_graphs: bool,
                 max_chars: int) -> _Batch:
    classes = pipeline.schema.class_names
    values = np.full((len(texts), len(classes)), np.nan)
    errors = [""] * len(texts)
    graphs: list[str] | None = [] if want_graphs else None
    for i, raw in enumerate(texts):
        text, error = _check_text(raw, max_chars)
        graph_json = "null"
        if text is not None:
            try:
                label = _label_repeatable if len(text) <= REPEAT_CACHE_CHARS else _label_one
                values[i], graph_json, note = label(pipeline, text, want_graphs)
                error = error or note
            except Exception as exc:  # one bad report must not stop a corpus: record it and go on
                logger.debug("report %d could not be labeled", i, exc_info=True)
                error = f"could not be labeled: {type(exc).__name__}: {exc}"[:300]
                values[i] = np.nan
                graph_json = "null"
        errors[i] = error
        if graphs is not None:
            rid = _json_id(ids[i]) if ids is not None else None
            graphs.append(f'{{"id": {compact_json(rid)}, "error": {compact_json(error)}, "graph": {graph_json}}}')
    return _Batch(values, errors, graphs)


def _label_one(pipeline: Pipeline, text: str, want_graph: bool) -> tuple[tuple[float, ...], str, str]:
    """The class values of one report in schema order, its graph's JSON ("null" when not wanted) and a note: a
    report whose labelled sections hold no word ("IMPRESSION:" alone, only an INDICATION) is left blank, not
    called normal."""
    graph = pipeline.parse(text)
    graph_json = graph.to_json() if want_graph else "null"
    if not graph.has_words():
        sections = ", ".join(pipeline.sections) if pipeline.sections else "all"
        return tuple(math.nan for _ in pipeline.schema.class_names), graph_json, ERR_NO_WORDS.format(sections)
    labels = aggregate(graph, pipeline.schema)
    return tuple(labels.get(c, math.nan) for c in pipeline.schema.class_names), graph_json, ""


# Corpora repeat reports word for word (templated normal studies: 12% of IU dev's reports repeat an earlier one):
# each process labels such a text once and reuses the result while it stays among the recent ones. Bounded in
# count and text length, so the cache holds a few MB at most.
_label_repeatable = lru_cache(maxsize=REPEAT_CACHE_SIZE)(_label_one)


# One Pipeline per worker process, built once by the pool initializer.
_WORKER_PIPELINE: Pipeline | None = None
_WORKER_MAX_CHARS = MAX_CHARS


def _init_worker(schema: Any, sections: Any, max_chars: int) -> None:
    global _WORKER_PIPELINE, _WORKER_MAX_CHARS
    # Ctrl-C reaches the whole process group: the parent stops the run and shuts the pool down, so a
    # worker would only add its own KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from radlabel.pipeline import get_pipeline

    _WORKER_PIPELINE = get_pipeline(schema, sections)
    _WORKER_MAX_CHARS = max_chars


def _work(task: tuple[list[Any], list[Any] | None, bool]) -> _Batch:
    texts, ids, want_graphs = task
    return _label_batch(_WORKER_PIPELINE, texts, ids, want_graphs, _WORKER_MAX_CHARS)


def _mp_context():
    """Forkserver where available: forking the caller directly is unsafe once it runs threads
    (tqdm's monitor, pyarrow, notebooks). The server imports radlabel and spaCy once, so each worker only
    builds its Pipeline (the parent itself never imports spaCy). Like any multiprocessing use, scripts need an `if __name__ == "__main__":` guard."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["radlabel.labeler", "radlabel.pipeline"])
        _start_forkserver_ignoring_ctrl_c()
        return ctx
    return multiprocessing.get_context("spawn")


@contextmanager
def _sigint_handler(handler: Any) -> Iterator[None]:
    """SIGINT goes to `handler` inside the block, then back to the caller's handling. Only the main thread may
    change handlers, and a handler set outside Python (None) cannot be restored: those are left as they are."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block and raise it when the block is done."""
    caught: list[int] = []
    with _sigint_handler(lambda signum, frame: caught.append(signum)):
        yield
    if caught:
        raise KeyboardInterrupt


def _start_forkserver_ignoring_ctrl_c() -> None:
    """Start the fork server with SIGINT ignored (it keeps that across exec): a Ctrl-C while it imports
    radlabel would print its traceback; it shields itself only once the import is done."""
    from multiprocessing import forkserver

    with _sigint_handler(signal.SIG_IGN):
        forkserver.ensure_running()


class Labeler:
    """Label report corpora with one schema.

    >>> labeler = Labeler(schema="chexpert", progress=False)
    >>> labeler.label_corpus(df, text_column="report", id_column="id", jobs=2)

    `sections` picks the report sections that produce labels ("all" for every section);
    `max_chars` truncates absurdly long reports (noted in the `error` column); `no_finding` ("strict" or
    "chexpert", default: the schema's own, "strict" in the built-in ones) is what keeps a report from No
    Finding: any finding, or only the schema's classes present or uncertain (the CheXpert labeler's rule).
    """

    def __init__(self, schema: Any = "chexpert", sections: Sequence[str] | str = ("findings", "impression"),
                 progress: bool = True, max_chars: int = MAX_CHARS, no_finding: str | None = None):
        # Validate now; the matchers are compiled on first use, so with jobs > 1 only the workers pay for them.
        loaded = load_schema(schema)
        self.schema = with_no_finding_rule(loaded, no_finding)
        # a built-in name keeps its shared Pipeline; a file or a changed rule travels as the Schema just loaded, so
        # the matchers and the class columns come from the same reading of the file (and so do workers')
        self._schema_arg = schema if is_builtin_schema(schema) and self.schema is loaded else self.schema
        self._sections = sections
        check_sections(sections)
        self.class_names: list[str] = list(self.schema.class_names)
        self.progress = progress
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise RadlabelError(f"max_chars must be a positive number of characters, got {max_chars!r}.")
        self.max_chars = max_chars

    @cached_property
    def pipeline(self) -> Pipeline:
        """This process's Pipeline, shared per (schema, sections): building it is the slow part."""
        # imported here: with jobs > 1 the parent only reads and writes tables, and spaCy would cost it ~50 MB
        from radlabel.pipeline import get_pipeline

        return get_pipeline(self._schema_arg, self._sections)

    # -- single report -------------------------------------------------------------------------
    def label_text(self, text: Any) -> dict[str, Any]:
        """Labels of one report plus its `error` note; never raises on bad input."""
        batch = _label_batch(self.pipeline, [text], None, False, self.max_chars)
        out: dict[str, Any] = dict(zip(self.class_names, batch.values[0].tolist(), strict=True))
        out[ERROR_COLUMN] = batch.errors[0]
        return out

    # -- engine --------------------------------------------------------------------------------
    def _batches(self, tasks: Iterable[tuple[list[Any], list[Any] | None, bool]], jobs: int) -> Iterator[_Batch]:
        """Label task batches in order; with jobs > 1 on a pool whose queue is kept short so memory
        stays bounded however long the input is (Pool.imap would read the whole input ahead)."""
        if jobs == 1:
            for texts, ids, want_graphs in tasks:
                yield _label_batch(self.pipeline, texts, ids, want_graphs, self.max_chars)
            return
        # ProcessPoolExecutor rather than multiprocessing.Pool: a worker that dies (OOM kill) raises
        # BrokenProcessPool here instead of leaving the run waiting forever.
        executor = ProcessPoolExecutor(jobs, mp_context=_mp_context(), initializer=_init_worker,
                                       initargs=(self._schema_arg, self._sections, self.max_chars))
        try:
            pending: deque = deque()
            for task in tasks:
                with _ctrl_c_after():  # a worker half started when ^C stops the parent prints a traceback
                    pending.append(executor.submit(_work, task))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as exc:
            raise WorkerDiedError(
                "A labeling worker process stopped unexpectedly (killed, out of memory, or a script that calls "
                "jobs > 1 without an `if __name__ == '__main__':` guard); fix that or use fewer jobs."
            ) from exc
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _check_jobs(jobs: int | None) -> int:
        if jobs is None or jobs == 0:
            return os.cpu_count() or 1
        if not isinstance(jobs, int) or jobs < 0:
            raise RadlabelError(f"jobs must be a positive number of processes (or 0 for all CPUs), got {jobs!r}.")
        return jobs

    def _check_id_column(self, name: str) -> None:
        """The id column shares the output with the class columns and `error`: a clash would lose one."""
        if name == ERROR_COLUMN or name in self.class_names:
            raise RadlabelError(f"The id column {name!r} would clash with the output's "
                                f"{'status' if name == ERROR_COLUMN else 'class'} column of that name; pass another "
                                "--id-column (or rename the column in the input).")

    def _frame(self, batches: list[_Batch], ids: Sequence[Any] | None, id_column: str | None,
               index: pd.Index | None) -> pd.DataFrame:
        values = np.vstack([b.values for b in batches]) if batches else np.empty((0, len(self.class_names)))
        df = pd.DataFrame(values, columns=self.class_names, index=index)
        df[ERROR_COLUMN] = pd.Series([e for b in batches for e in b.errors], index=index, dtype=str)
        if id_column is not None:
            # no rows: the types a row would give (text ids as read from CSV, integer row numbers), not float
            empty_type = "int64" if id_column == ROW_COLUMN else str
            df.insert(0, id_column, _id_values(ids) if len(df) else pd.Series([], index=index, dtype=empty_type))
        df.attrs["radlabel_classes"] = list(self.class_names)
        return df

    # -- DataFrame in, DataFrame out -----------------------------------------------------------
    def label_corpus(self, data: pd.DataFrame | pd.Series, text_column: str = "report",
                     id_column: str | None = None, jobs: int = 1, graphs: str | os.PathLike | None = None,
                     batch_size: int = BATCH_SIZE) -> pd.DataFrame:
        """Label every row of `data`; returns one row per input row, same order and index.

        Columns: `id_column` first (when given), one float column per class (1 / 0 / -1 / NaN),
        then `error` (empty string when the row was labelled). `graphs` writes one RadGraph JSON
        line per row to that path.
        """
        if isinstance(data, pd.Series):
            texts_s, ids_s = data, None
        elif isinstance(data, pd.DataFrame):
            if text_column not in data.columns:
                raise missing_column_error(text_column, list(data.columns), "the DataFrame")
            if id_column is not None and id_column not in data.columns:
                raise missing_column_error(id_column, list(data.columns), "the DataFrame")
            for column in {text_column, id_column} - {None}:
                if isinstance(data[column], pd.DataFrame):
                    raise RadlabelError(f"The DataFrame has the column {column!r} more than once; rename one.")
            texts_s = data[text_column]
            ids_s = data[id_column] if id_column is not None else None
        else:
            raise RadlabelError(f"label_corpus needs a pandas DataFrame or Series, got {type(data).__name__}.")
        if id_column is not None:
            self._check_id_column(id_column)
        if graphs is not None:  # before any work, as label_file checks it
            table_format_graphs(graphs)
            check_outputs({"The graphs file": graphs}, {})
        jobs = self._check_jobs(jobs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise RadlabelError(f"batch_size must be a positive number of reports, got {batch_size!r}.")
        texts = texts_s.tolist()
        if len(texts) <= batch_size:
            jobs = 1  # one batch: starting worker processes would cost more than it saves
        ids = ids_s.tolist() if ids_s is not None else None
        if ids is not None:
            repeated = _RepeatedIds()
            repeated.add(ids)
            repeated.warn(id_column)
        want_graphs = graphs is not None
        graph_ids = ids if ids is not None else [_json_id(i) for i in texts_s.index]

        def tasks():
            for start in range(0, len(texts), batch_size):
                yield (texts[start:start + batch_size], graph_ids[start:start + batch_size] if want_graphs else None,
                       want_graphs)

        batches: list[_Batch] = []
        with tqdm(total=len(texts), unit="reports", disable=not self.progress, desc="labeling") as bar:
            if want_graphs:
                with AtomicWriter(graphs) as gw:
                    for batch in self._batches(tasks(), jobs):
                        for line in batch.graphs or []:
                            gw.write_text_line(line)
                        batches.append(batch)
                        bar.update(len(batch.errors))
            else:
                for batch in self._batches(tasks(), jobs):
                    batches.append(batch)
                    bar.update(len(batch.errors))
        return self._frame(batches, ids, id_column, texts_s.index)

    # -- file in, file out ---------------------------------------------------------------------
    def label_file(self, input: str | os.PathLike, output: str | os.PathLike, text_column: str = "report",
                   id_column: str | None = None, jobs: int = 1, graphs: str | os.PathLike | None = None,
                   chunksize: int = DEFAULT_CHUNKSIZE, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
        """Stream `input` through the labeler into `output` (formats by extension), atomically.

        `input` may also be a folder of .txt reports (columns `path` and `report`; see `radlabel.io`).
        The output has `id_column` first (or `path` for a folder, else a generated `row` 0..n-1), one column per class
        valued 1 / 0 / -1 / empty, then `error`. Memory is bounded by `chunksize` rows whatever
        the corpus size. Returns a summary: rows, rows with an error, output paths.
        """
        table_format(output)
        if graphs is not None:
            table_format_graphs(graphs)
        check_outputs({"Output": output, "The graphs file": graphs}, {"input": input})
        jobs = self._check_jobs(jobs)
        folder = Path(input).is_dir()
        if id_column is None and folder:
            id_column = "path"  # a folder of .txt reports: each row is named by its file
        columns = [text_column] + ([id_column] if id_column and id_column != text_column else [])
        if folder:  # listed once: its length is the progress total
            files = report_files(input)
            chunks, total = iter_report_folder(input, files, columns, chunksize), len(files)
        else:
            chunks, total = iter_table(input, columns=columns, chunksize=chunksize), parquet_rows(input)
        out_id = id_column or ROW_COLUMN
        self._check_id_column(out_id)
        want_graphs = graphs is not None
        # Per-chunk ids kept until that chunk's batches come back, in order.
        chunk_ids: deque = deque()
        repeated = _RepeatedIds()
        size = os.path.getsize(input) if total is None else 0  # a text file: its rows are estimated as it is read
        read = {"rows": 0}

        def tasks():
            for chunk in chunks:
                texts = chunk[text_column].tolist()
                first = read["rows"]
                read["rows"] += len(texts)
                estimate = estimated_rows(read["rows"], chunk, size)
                if estimate is not None:
                    bar.total = max(estimate, bar.n)
                    bar.refresh()
                if id_column:
                    ids = chunk[id_column].tolist()
                    if not folder:  # a folder's ids are its file paths
                        repeated.add(ids)
                else:
                    ids = list(range(first, read["rows"]))
                for start in range(0, len(texts), batch_size):
                    part_ids = ids[start:start + batch_size]
                    chunk_ids.append(part_ids)
                    yield texts[start:start + batch_size], part_ids if want_graphs else None, want_graphs

        n_rows = n_errors = 0
        with AtomicWriter(output) as writer, _maybe_writer(graphs) as gw, \
                tqdm(total=total, unit="reports", disable=not self.progress, desc="labeling") as bar:
            buffer: list[_Batch] = []
            buffer_ids: list[Any] = []
            for batch in self._batches(tasks(), jobs):
                buffer.append(batch)
                buffer_ids += chunk_ids.popleft()
                if gw is not None:
                    for line in batch.graphs or []:
                        gw.write_text_line(line)
                n_rows += len(batch.errors)
                n_errors += sum(1 for e in batch.errors if e)
                bar.update(len(batch.errors))
                if len(buffer_ids) >= chunksize:
                    writer.write(self._output_frame(buffer, buffer_ids, out_id))
                    buffer, buffer_ids = [], []
            if buffer or writer.rows == 0:
                writer.write(self._output_frame(buffer, buffer_ids, out_id))
            bar.total = n_rows
        if n_rows == 0:
            logger.warning("%s has no rows: %s holds only the header", input, output)
        repeated.warn(id_column)
        logger.info("labeled %d reports (%d with an error note) -> %s", n_rows, n_errors, output)
        return {"rows": n_rows, "errors": n_errors, "output": str(output),
                "graphs": str(graphs) if graphs is not None else None}

    def _output_frame(self, batches: list[_Batch], ids: list[Any], id_column: str) -> pd.DataFrame:
        df = self._frame(batches, ids, id_column, None)
        if df[id_column].dtype == object:  # mixed JSON id types: write them as text, one column type
            df[id_column] = df[id_column].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        # Nullable integers so files hold 1 / 0 / -1 / empty rather than 1.0 / NaN.
        return df.astype({c: "Int8" for c in self.class_names})


def table_format_graphs(path: str | os.PathLike) -> None:
    """Graphs are JSON Lines; refuse any other extension up front."""
    if Path(path).suffix.lower() != ".jsonl":
        raise RadlabelError(f"The graphs file {str(path)!r} must end in .jsonl (one RadGraph JSON object per line).")


class _NullContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _maybe_writer(path: str | os.PathLike | None):
    return AtomicWriter(path) if path is not None else _NullContext()


# -- module-level convenience API --------------------------------------------------------------
_LABELERS: dict[tuple, Labeler] = {}


def _cached_labeler(schema: Any, sections: Any, no_finding: str | None = None) -> Labeler:
    key = (schema_cache_key(schema), tuple(sections) if not isinstance(sections, str) else sections, no_finding)
    try:
        hash(key)
    except TypeError:  # e.g. an unhashable Schema object: build a fresh one
        return Labeler(schema=schema, sections=sections, progress=False, no_finding=no_finding)
    if key not in _LABELERS:
        _LABELERS[key] = Labeler(schema=schema, sections=sections, progress=False, no_finding=no_finding)
    return _LABELERS[key]


def label(reports: Iterable[Any] | pd.Series | str, schema: Any = "chexpert",
          sections: Sequence[str] | str = ("findings", "impression"), jobs: int = 1,
          progress: bool = False, no_finding: str | None = None) -> pd.DataFrame:
    """Label report texts: one row per report (a Series keeps its index), class columns + `error`.
    `no_finding` is the No Finding rule, "strict" or "chexpert" (see `Labeler`).

    >>> radlabel.label(["No pneumothorax.", "Small left effusion."])
    """
    if isinstance(reports, pd.DataFrame):
        raise RadlabelError("label() takes report texts (list or Series); for a DataFrame use "
                            "Labeler.label_corpus(df, text_column=...).")
    if isinstance(reports, str):
        reports = [reports]
    if isinstance(reports, bytes | bytearray):
        raise RadlabelError("label() takes report texts; decode bytes first (e.g. data.decode('utf-8')).")
    if not isinstance(reports, pd.Series):
        try:
            reports = list(reports)
        except TypeError:
            raise RadlabelError(f"label() takes a report text or an iterable of them (list, Series), not "
                                f"{type(reports).__name__}.") from None
    series = reports if isinstance(reports, pd.Series) else pd.Series(reports, dtype=object)
    labeler = _cached_labeler(schema, sections, no_finding)
    labeler.progress = progress
    return labeler.label_corpus(series, jobs=jobs)


def to_binary(df: pd.DataFrame, policy: str = "U-Ones", classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Turn 1 / 0 / -1 / blank labels into training targets.

    U-Ones: uncertain -> 1; U-Zeros: uncertain -> 0; U-Ignore: uncertain -> NaN (mask it in the
    loss). Blank (not mentioned) -> 0. Rows whose report could not be read (an `error` and no
    labels at all) stay NaN: an unreadable report is no evidence of absence. Other columns
    (id, `error`) are kept unchanged.
    """
    policies = {"U-Ones": 1.0, "U-Zeros": 0.0, "U-Ignore": np.nan}
    if policy not in policies:
        import difflib

        close = difflib.get_close_matches(str(policy), list(policies), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RadlabelError(f"Unknown uncertainty policy {policy!r}{hint}; choose one of {', '.join(policies)}.")
    if not isinstance(df, pd.DataFrame):
        raise RadlabelError(f"to_binary takes the labels table (a DataFrame), not a {type(df).__name__}; for one "
                            "column, pass series.to_frame().")
    if classes is None:
        classes = [c for c in df.attrs.get("radlabel_classes", []) if c in df.columns] or _guess_classes(df)
    else:
        for c in classes:
            if c not in df.columns:
                raise missing_column_error(c, list(df.columns), "the labels")
    classes = list(classes)
    out = df.copy()
    values = label_values(out, classes, "The labels")  # 2 or "positive" in a class column is an error, not a 0
    unread = np.isnan(values).all(axis=1)
    if ERROR_COLUMN in out.columns:
        unread &= out[ERROR_COLUMN].fillna("").astype(str).str.len().to_numpy() > 0
    else:
        unread &= False
    result = np.where(values == -1, policies[policy], values)
    result = np.where(np.isnan(values), 0.0, result)
    result[unread] = np.nan
    out[classes] = result
    return out


@lru_cache(maxsize=1)
def _builtin_class_names() -> frozenset[str]:
    """Every class name of the built-in schemas (each YAML parsed once per process)."""
    return frozenset(c for name in list_schemas() for c in load_schema(name).class_names)


def _guess_classes(df: pd.DataFrame) -> list[str]:
    """Label columns of a table read back from a file: numeric columns holding only 1 / 0 / -1 / blank,
    minus the id column conventions (`row`, first column named like an id)."""
    skip = {ERROR_COLUMN, ROW_COLUMN, "id", "uid", "study_id", "subject_id", "dicom_id", "path"}
    found = []
    for c in df.columns:
        if c in _builtin_class_names():  # a built-in class name is a label column whatever it holds (a 2 there is then an error)
            found.append(c)
            continue
        if c in skip:
            continue
        col = pd.to_numeric(df[c], errors="coerce")
        if col.notna().sum() == df[c].notna().sum() and set(col.dropna().unique()) <= {1.0, 0.0, -1.0}:
            found.append(c)
    if not found:
        raise RadlabelError("No label columns found (columns of 1 / 0 / -1 / blank); pass classes=[...].")
    return found
