"""The `radlabel` command: label, parse, evaluate, stats, schemas.

User errors (RadlabelError, missing files) print one sentence to stderr and exit with code 2,
without a traceback; a system error (a full disk, a read-only folder, a worker process killed) prints one
line and exits 1; Ctrl-C exits 130 and leaves no partial output (writes are atomic).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from radlabel.errors import RadlabelError, WorkerDiedError

logger = logging.getLogger("radlabel.cli")

EPILOG = """examples:
  radlabel label reports.csv -o labels.csv --text-column report --id-column id --jobs 2
  radlabel label reports.parquet -o labels.parquet --schema chestxray14 --graphs graphs.jsonl
  radlabel parse "No pneumothorax. Small left effusion." --format table
  radlabel evaluate labels.csv gold.csv --id-column id -o metrics.csv
  radlabel stats reports.csv --text-column report -o stats/ --plots
  radlabel schemas chexpert
"""


def _sections(value: str) -> tuple[str, ...] | str:
    value = value.strip()
    if value.lower() == "all":
        return "all"
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if not parts:
        raise argparse.ArgumentTypeError("give section names separated by commas, or 'all'")
    return parts


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be 0 or more")
    return n


def _at_least_one(value: str) -> int:
    n = _positive_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be 1 or more")
    return n


def _add_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", default="chexpert", metavar="NAME|FILE.yaml",
                   help="built-in schema (chexpert, chestxray14; see `radlabel schemas`) or your own YAML file, whose "
                        "strict No Finding also counts the built-in classes it does not name (its other_findings_from) "
                        "(default: %(default)s)")


def _add_no_finding(p: argparse.ArgumentParser) -> None:
    from radlabel.schema import NO_FINDING_RULES

    p.add_argument("--no-finding", choices=NO_FINDING_RULES, default=None, dest="no_finding",
                   help="what keeps a report from No Finding: strict = any finding, also one no class names "
                        "(hiatal hernia, granuloma; IU X-ray's 'normal'); chexpert = only the schema's classes "
                        "present or uncertain, as the CheXpert labeler (default: the schema's no_finding_rule, "
                        "strict in the built-in schemas)")


def _add_sections(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sections", type=_sections, default=("findings", "impression"), metavar="LIST",
                   help="comma-separated report sections that produce labels, or 'all' "
                        "(default: findings,impression; history and indication never should)")


INPUT_HELP = ("reports file (.csv .tsv .jsonl .parquet), or a folder of .txt reports (searched recursively; "
              "read as columns `path`, relative to the folder, and `report`)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from radlabel import __version__

    parser = argparse.ArgumentParser(
        prog="radlabel",
        description="Label radiology reports: text -> RadGraph-style graph -> CheXpert-style labels "
                    "(1 present, 0 absent, -1 uncertain, empty not mentioned).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"radlabel {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    # -v also after the command (`radlabel label ... -v`); SUPPRESS keeps a count given before it
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[verbose], **kwargs)

    p = command("label", help="label a corpus (csv, tsv, jsonl, parquet, or a folder of .txt reports)",
                       description="Label every report of INPUT and write OUTPUT (format by extension: .csv "
                                   ".tsv .jsonl .parquet): the id column first, one column per schema class "
                                   "valued 1 / 0 / -1 / empty, then an `error` column (empty when fine). "
                                   "Streams in chunks with bounded memory and keeps the input order.")
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="labels file to write (atomically)")
    p.add_argument("--text-column", default="report", metavar="COL", help="column holding the report text (default: %(default)s)")
    p.add_argument("--id-column", default=None, metavar="ID",
                   help="column copied to the output as the row id (default: `path` for a folder of reports, "
                        "else a generated `row` 0..n-1)")
    _add_schema(p)
    _add_no_finding(p)
    _add_sections(p)
    p.add_argument("--graphs", metavar="GRAPHS.jsonl",
                   help="also write one line per report: {\"id\", \"error\", \"graph\": RadGraph JSON}")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="worker processes (0 = all CPUs; default: %(default)s)")
    p.add_argument("--chunksize", type=_at_least_one, default=10_000, metavar="ROWS",
                   help="rows read and written at a time; bounds memory (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = command("parse", help="show the graph of one report",
                       description="Parse one report and print its entities (RadGraph labels ANAT-DP, "
                                   "OBS-DP, OBS-U, OBS-DA) with their relations, and the resulting labels.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("text", nargs="?", metavar="TEXT", help="report text (quote it)")
    src.add_argument("--file", metavar="F", help="read the report text from this file ('-' for stdin)")
    _add_schema(p)
    _add_no_finding(p)
    _add_sections(p)
    p.add_argument("--format", choices=("json", "table"), default="table",
                   help="table: readable entity list and labels; json: RadGraph JSON (default: %(default)s)")

    p = command("evaluate", help="score predicted labels against gold labels",
                       description="CheXpert-paper style evaluation: per class precision / recall / F1 for "
                                   "positive (1), negative (0) and uncertain (-1) mentions and for the binary "
                                   "label (1 or -1 vs the rest), with micro and macro averages. Rows are joined "
                                   "on the id column.")
    p.add_argument("pred", metavar="PRED", help="predicted labels file")
    p.add_argument("gold", metavar="GOLD", help="gold labels file (1 / 0 / -1 / empty)")
    p.add_argument("--id-column", default=None, help="id column in both files (default: GOLD's first column)")
    p.add_argument("--schema", default=None, metavar="NAME|FILE.yaml",
                   help="evaluate this schema's classes (default: the class columns both files share)")
    p.add_argument("-o", "--output", metavar="metrics.csv", help="write the full metrics table here")

    p = command("stats", help="corpus statistics: entities, verbs, similarity, prevalence",
                       description="Corpus analysis as in the CheXpert Plus / RadGraph study: frequency tables "
                                   "of graph entities and verbs, findings-vs-impression similarity "
                                   "|A∩B| / max(|A|,|B|) over noun phrases, verbs and entities, and (with "
                                   "--labels) class prevalence, label cardinality and density.")
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument("--text-column", default="report", metavar="COL", help="column holding the report text (default: %(default)s)")
    p.add_argument("--labels", metavar="LABELS", help="labels file (as written by `radlabel label`) for prevalence")
    _add_schema(p)
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="analyse only the first N reports")
    p.add_argument("--top", type=_positive_int, default=30, metavar="K",
                   help="rows in printed tables and bars in plots (default: %(default)s)")
    p.add_argument("-o", "--output-dir", metavar="OUTDIR", help="write CSV tables (and plots) into this directory")
    p.add_argument("--plots", action="store_true", help="also draw PNG bar plots (needs -o)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = command("schemas", help="list built-in schemas or show one schema's classes",
                       description="Without NAME: list the built-in schemas. With NAME (or a YAML path): show "
                                   "its classes and how many mention phrases each has.")
    p.add_argument("name", nargs="?", metavar="NAME", help="schema name or YAML file")
    return parser


def _cmd_label(a: argparse.Namespace) -> int:
    from radlabel.labeler import Labeler

    labeler = Labeler(schema=a.schema, sections=a.sections, progress=not a.no_progress, no_finding=a.no_finding)
    summary = labeler.label_file(a.input, a.output, text_column=a.text_column, id_column=a.id_column,
                                 jobs=a.jobs, graphs=a.graphs, chunksize=a.chunksize)
    note = f", {summary['errors']} with an error note" if summary["errors"] else ""
    reports = "report" if summary["rows"] == 1 else "reports"
    print(f"labeled {summary['rows']} {reports}{note} -> {summary['output']}", file=sys.stderr)
    return 0


def _cmd_parse(a: argparse.Namespace) -> int:
    from radlabel.io import decode_report
    from radlabel.labeler import ERR_BINARY, ERROR_COLUMN, Labeler

    # bytes, decoded as `label` decodes .txt reports (UTF-8, a BOM's UTF-16, else Windows-1252)
    if a.file is not None:
        if a.file == "-":
            text = decode_report(sys.stdin.buffer.read(), "standard input")
        else:
            path = Path(a.file)
            if path.is_dir():
                raise RadlabelError(f"{a.file!r} is a folder; parse reads one report (label reads folders).")
            if not path.is_file():
                raise RadlabelError(f"Report file {a.file!r} does not exist.")
            text = decode_report(path.read_bytes(), a.file)
    else:
        text = decode_report(os.fsencode(a.text), "the report text")  # argv keeps odd bytes as surrogates
    if not text.strip():
        raise RadlabelError("The report text is empty; pass the text in quotes or --file F.")
    labeler = Labeler(schema=a.schema, sections=a.sections, progress=False, no_finding=a.no_finding)
    labels = labeler.label_text(text)  # the checks `label` makes: binary content, the length limit
    note = labels.pop(ERROR_COLUMN)
    if note == ERR_BINARY:
        raise RadlabelError(f"The report is {note}; parse reads text.")
    if note:
        logger.warning("%s", note)
    graph = labeler.pipeline.parse(text[:labeler.max_chars])
    if a.format == "json":
        print(json.dumps(graph.to_radgraph(), ensure_ascii=False, indent=1))
        return 0
    print(_graph_table(graph))
    shown = {k: v for k, v in labels.items() if v == v}
    print("\nlabels: " + (", ".join(f"{k}={int(v)}" for k, v in shown.items()) or "(none mentioned)"))
    return 0


def _graph_table(graph) -> str:
    """Entities one per line: id, RadGraph label, text, section/sentence, relations."""
    rows = [("id", "label", "text", "section", "sent", "relations")]
    for e in graph.entities:
        rels = "; ".join(f"{r[0]} -> {r[1]}" for r in getattr(e, "relations", []) or [])
        text = e.tokens if isinstance(e.tokens, str) else " ".join(e.tokens)
        rows.append((str(e.id), str(e.label), text, str(getattr(e, "section", "")),
                     str(getattr(e, "sentence", "")), rels))
    if len(rows) == 1:
        return "(no entities found)"
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
                     for r in rows)


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from radlabel.evaluate import evaluate, summary
    from radlabel.io import check_outputs, check_writable, read_label_table, write_table

    check_outputs({"The metrics output": a.output}, {"predictions": a.pred, "gold": a.gold})
    if a.output:
        check_writable(a.output)  # before the work, as `label` does
    pred, gold = read_label_table(a.pred), read_label_table(a.gold)
    classes = None
    if a.schema is not None:
        from radlabel.schema import load_schema

        classes = load_schema(a.schema).class_names
    metrics = evaluate(pred, gold, id_column=a.id_column, classes=classes)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.float_format", "{:.3f}".format):
        print("F1 by class and task (positive=1, negative=0, uncertain=-1, binary=1 or -1):")
        print(summary(metrics).to_string())
    if a.output:
        write_table(metrics, a.output)
        print(f"metrics -> {a.output}", file=sys.stderr)
    return 0


def _cmd_stats(a: argparse.Namespace) -> int:
    from radlabel.stats import corpus_stats

    if a.plots and not a.output_dir:
        raise RadlabelError("--plots needs an output directory; add -o OUTDIR.")
    result = corpus_stats(a.input, text_column=a.text_column, labels=a.labels, schema=a.schema, limit=a.limit,
                          output_dir=a.output_dir, plots=a.plots, top=a.top, progress=not a.no_progress)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.float_format", "{:.3f}".format):
        for name, table in result.tables.items():
            print(f"\n== {name} ==")
            # --top cuts the frequency tables; similarity (3 rows) and prevalence (one per class) are shown whole
            shown = table.head(a.top) if name in ("entities", "verbs", "noun_phrases") else table
            print(shown.to_string(index=False))
    print("\n== summary ==")
    for k, v in result.summary.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    if a.output_dir:
        print(f"tables{' and plots' if a.plots else ''} -> {a.output_dir}", file=sys.stderr)
    return 0


def _cmd_schemas(a: argparse.Namespace) -> int:
    from radlabel.schema import list_schemas, load_schema

    if a.name is None:
        for name in list_schemas():
            s = load_schema(name)
            print(f"{name}: {len(s.class_names)} classes")
        return 0
    s = load_schema(a.name)
    print(f"schema {s.name}: {len(s.class_names)} output columns")
    for c in s.classes:
        parent = f" (parent: {c.parent})" if c.parent else ""
        print(f"  {c.name}: {len(c.mentions)} mention phrases, e.g. {', '.join(c.mentions[:3])}{parent}")
    if s.no_finding:
        ignore = f", ignoring {', '.join(s.no_finding_ignore)}" if s.no_finding_ignore else ""
        other = "nor any other finding" if s.no_finding_rule == "strict" else "(other findings do not count)"
        print(f"  {s.no_finding}: 1 when no other class is present or uncertain{ignore}, {other}; "
              f"no_finding_rule {s.no_finding_rule}")
    if s.other_findings_from:
        print(f"  other findings also include the classes of {', '.join(s.other_findings_from)} this schema does not "
              "name (other_findings_from)")
    return 0


COMMANDS = {"label": _cmd_label, "parse": _cmd_parse, "evaluate": _cmd_evaluate, "stats": _cmd_stats,
            "schemas": _cmd_schemas}


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a job scheduler) raised in the main thread as an interrupt, so a run stops
    its worker processes and removes its temporary output as it does after Ctrl-C."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_TEMP_NAME = re.compile(r"\.(.+)\.[^.]+\.tmp")  # AtomicWriter / atomic_write_text temp files


def _written_name(filename: object) -> object:
    """The output a temporary file stands for (".labels.csv.x1y2.tmp" -> "labels.csv"): errors name that."""
    name = os.fsdecode(filename) if isinstance(filename, str | bytes) else filename
    if isinstance(name, str):
        match = _TEMP_NAME.fullmatch(os.path.basename(name))
        if match:
            return os.path.join(os.path.dirname(name), match.group(1))
    return name


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `radlabel` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # only radlabel's own loggers get chattier (-vv would otherwise print matplotlib's font search)
    if args.verbose:
        logging.getLogger("radlabel").setLevel(logging.INFO if args.verbose == 1 else logging.DEBUG)
    try:
        with _sigterm_interrupts():
            return COMMANDS[args.command](args)
    except WorkerDiedError as exc:  # the machine's problem, as a full disk: exit 1
        print(f"radlabel: error: {exc}", file=sys.stderr)
        return 1
    except RadlabelError as exc:
        print(f"radlabel: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"radlabel: error: {exc.strerror or exc} ({_written_name(exc.filename)}).", file=sys.stderr)
        return 2
    except Terminated:
        print("radlabel: terminated (SIGTERM); no output was written.", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("radlabel: interrupted; no output was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `radlabel parse ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a full disk, a read-only file system: the machine's problem, said in one line
        where = f" ({_written_name(exc.filename)})" if exc.filename else ""
        print(f"radlabel: error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
