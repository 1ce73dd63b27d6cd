"""`radvision` command line: train, data, predict, evaluate, thresholds, features, explain, models.

User errors (RadvisionError) print one sentence to stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from radvision.errors import RadvisionError, message

OVERRIDE_HELP = """\
config overrides:
  Any config value can be changed on the command line as dotted.key=value; the value is read as YAML,
  so numbers, booleans, null and lists work:
    radvision train configs/demo.yaml optim.lr=3e-4 optim.epochs=5
    radvision train cfg.yaml model.backbone=[resnet18,densenet121] model.head=mlp model.hidden=[512,512]
    radvision train cfg.yaml data.dataset=nih data.root=/data/nih data.classes=[Effusion,Atelectasis]
    radvision train cfg.yaml "cycles=[{epochs: 2, strategy: frozen}, {epochs: 8, lr: 1e-4, strategy: full}]"
  Sections: data, model, loss, optim, schedule, cycles, runtime, output, thresholds (see docs/radvision.md).
  An unknown key or a value of the wrong type stops with a message naming the key.
resume:
  radvision train cfg.yaml --resume runs/demo optim.epochs=20 continues runs/demo after its last finished
  epoch (finished epochs are never repeated), writing into runs/demo whatever output.run_dir says.
  Only runtime.* (except the seed), output.*, optim.num_workers, data.cache_dir, schedule.patience and
  thresholds.* may differ from the run's config.yaml, and the schedule may only be extended (more
  epochs, more cycles); other changes stop with the keys named: start a new run for those.
"""

_JOIN_COLUMN_HELP = ("a table's column naming each image, when it is not path (e.g. Path in CheXpert's valid.csv); "
                     "a table without it (radvision predict's output) is joined on path")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="radvision", description="Train, evaluate and explain radiology image classifiers.",
        epilog="Config values can be overridden as dotted.key=value after the config file; "
               "see `radvision train --help` and docs/radvision.md.")
    from radvision import __version__

    p.add_argument("--version", action="version", version=f"radvision {__version__}")
    _add_log_options(p, default=False)
    # -v / -q also after the command; SUPPRESS so an absent one there keeps what was given before it
    common = argparse.ArgumentParser(add_help=False)
    _add_log_options(common, default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a YAML config", epilog=OVERRIDE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    t.add_argument("config", help="YAML config file (e.g. configs/demo.yaml)")
    t.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides, e.g. optim.lr=3e-4 (before or after the options)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR after its last finished epoch (RUN_DIR replaces output.run_dir)")
    t.add_argument("--no-progress", action="store_true", help="hide progress bars (runtime.progress=false; so does -q)")

    da = sub.add_parser("data", help="images, patients and labels per split and class, as a config would train on "
                        "them (no image is decoded unless --check-images)", epilog=OVERRIDE_HELP.split("resume:")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    da.add_argument("config", help="YAML config file (e.g. configs/nih_sample.yaml)")
    da.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides, as for train")
    da.add_argument("-o", "--output", help="also write the per-class counts to this .csv file")
    da.add_argument("--check-images", action="store_true", help="decode every image: with data.on_error=skip, "
                    "corrupt ones are left out of the counts as training leaves them out (missing files are left out "
                    "without it); otherwise any missing or unreadable image is an error naming it, as training "
                    "would stop there")

    pr = sub.add_parser("predict", help="predict class probabilities with a trained run", parents=[common])
    _add_run_input(pr, "output .csv file: path, one probability column per class, error")
    pr.add_argument("--labels", action="store_true", help="also write a 0/1 <class>_label column per class, by the "
                    "run's whole decision rule (thresholds, then thresholds.cardinality, min_labels, top_k)")

    ev = sub.add_parser("evaluate", help="score predictions against gold labels", parents=[common])
    ev.add_argument("pred", help="prediction CSV (path + probability per class)")
    ev.add_argument("gold", help="gold CSV (path + one 1/0/-1/blank column per class; -1 and blank are not scored)")
    ev.add_argument("-o", "--output", help="write per-class metrics to this .csv file")
    ev.add_argument("--split", help="score only the gold rows whose 'split' column has this value (e.g. test)")
    _add_path_column(ev, _JOIN_COLUMN_HELP)
    ev.add_argument("--thresholds", help="a run folder: label by the run's whole decision rule (thresholds, cardinality, "
                    "min_labels, top_k), as predict --labels does; or a thresholds.json: those thresholds alone "
                    "(default 0.5 for every class)")
    _add_concepts(ev)

    th = sub.add_parser("thresholds", help="choose per-class F1-optimal thresholds on a labelled calibration set",
                        parents=[common])
    th.add_argument("pred", help="prediction CSV (path + probability per class), e.g. from `radvision predict`")
    th.add_argument("gold", help="gold CSV (path + one 1/0/-1/blank column per class; -1 and blank are not used)")
    th.add_argument("-o", "--output", required=True, help="thresholds .json to write (use it with evaluate "
                    "--thresholds; a run's own thresholds.json may be replaced: its train_cardinality and the "
                    "thresholds of classes the gold does not label are kept)")
    th.add_argument("--min-precision", type=float, metavar="P", help="only thresholds reaching this precision "
                    "qualify (a class that never does gets its most precise threshold, with a warning)")
    th.add_argument("--split", help="use only the gold rows whose 'split' column has this value (e.g. valid)")
    _add_path_column(th, _JOIN_COLUMN_HELP)
    _add_concepts(th)

    fe = sub.add_parser("features", help="pooled backbone features of a trained run, for fusion", parents=[common])
    _add_run_input(fe, "output .parquet (path, f0 ... f<N-1>, error) or .npy (the matrix alone, rows in input "
                   "order); a matching earlier output is reused")
    fe.add_argument("--skip-errors", action="store_true", help="keep an unreadable image's row as NaN features with "
                    "its error recorded, instead of stopping")
    fe.add_argument("--overwrite", action="store_true", help="recompute even when the output matches, and replace an existing output that is not a feature file (refused without it)")

    ex = sub.add_parser("explain", help="Grad-CAM overlays per class", parents=[common])
    ex.add_argument("run_dir", help="run directory written by `radvision train`")
    ex.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images, or CSV tables with a "
                    "'path' column (or the one --path-column names), as predict reads them")
    ex.add_argument("-o", "--output", default="explain", help="output folder for the PNG overlays and overlays.csv "
                    "(image, class, probability, overlay; default: explain)")
    ex.add_argument("--classes", nargs="+", help="classes to explain, separated by spaces or commas (default: all)")
    ex.add_argument("--method", default="gradcam", help="CAM method of the grad-cam package: gradcam (default), "
                    "gradcam++, layercam, hirescam, xgradcam, eigencam; layercam and gradcam++ still show a class "
                    "that Grad-CAM leaves empty")
    _add_path_column(ex, "a CSV input's column naming each image (default: path; e.g. Path for CheXpert's tables)")

    sub.add_parser("models", help="list available backbones with their smallest and usual input sizes (pixels), "
                   "pooled feature width and ImageNet weights", parents=[common])
    return p


def _add_run_input(parser: argparse.ArgumentParser, output_help: str) -> None:
    """The arguments `predict` and `features` share: a run, images to read, where the result goes."""
    parser.add_argument("run_dir", help="run directory written by `radvision train`")
    parser.add_argument("input", help="CSV with a 'path' column (or the one --path-column names), a folder of images, or one image file (PNG, JPEG, TIFF, DICOM ...)")
    parser.add_argument("-o", "--output", required=True, help=output_help)
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="images per forward pass (default 32; memory grows with it)")
    parser.add_argument("--workers", type=int, default=0, metavar="N", help="processes that decode images "
                        "(default 0: this one; a few speed up large inputs, above all on a GPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--root", metavar="DIR", help="where relative paths in the CSV start (default: the CSV's folder)")
    _add_path_column(parser, "the input CSV's column naming each image (default: path; e.g. Path for CheXpert's "
                     "tables); the output calls it path")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (so does -q)")


def _add_concepts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concepts", action="store_true", help="GOLD is an ImageCLEF / ROCO concept file (an id and "
                        "';'-separated CUIs per line, tab or comma): images are matched by file name without "
                        "extension and every predicted concept is scored (an image that does not list it is a "
                        "negative); evaluate adds imageclef_f1, the official score, where gold concepts outside "
                        "the predicted vocabulary count as misses (a gold table with 'path' and 'concepts' columns, as "
                        "read_imageclef writes, is scored this way too: joined on path without the flag, by image "
                        "id with it)")


def _add_path_column(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--path-column", default="path", metavar="NAME", help=help)


def _add_log_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log at DEBUG level")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="log warnings only, no progress bars")


def _cmd_train(args: argparse.Namespace) -> int:
    from radvision.config import load_config
    from radvision.train import Trainer

    overrides = list(args.overrides)
    if args.no_progress or args.quiet:
        overrides.append("runtime.progress=false")
    cfg = load_config(args.config, overrides)
    trainer = Trainer(cfg, resume=args.resume)
    try:
        run_dir = trainer.fit()
    finally:  # under torchrun, close the process group in order rather than leave it to interpreter exit
        accelerator = getattr(trainer, "accelerator", None)
        if accelerator is not None:
            accelerator.end_training()
    if _rank() == 0:
        print(run_dir)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from radvision.atomic import atomic_write_csv
    from radvision.config import load_config, outputs_per_class
    from radvision.summary import class_counts, class_counts_text, split_overview
    from radvision.train import check_training_labels, split_tables

    if args.output is not None:
        _check_output(args.output, "class_counts.csv")
    cfg = load_config(args.config, args.overrides)
    parts, _ = split_tables(cfg)
    # what training would refuse before its first epoch (a class no training image labels), refused here too
    check_training_labels(parts["train"].labels(), list(parts["train"].classes), uncertain=outputs_per_class(cfg) > 1)
    note = None
    if cfg.data.on_error == "skip":  # count what training keeps: it skips missing and unreadable images
        from radvision.data.dataset import describe_skipped, drop_unreadable_parts

        parts, skipped = drop_unreadable_parts(parts, "decode" if args.check_images else "exists")
        note = (f"data.on_error=skip: left out {describe_skipped([(p, e) for _, p, e in skipped])}." if skipped
                else f"data.on_error=skip: every image file is there{' and decodes' if args.check_images else ''}.")
        if not args.check_images:
            note += (" Corrupt or truncated images are only found when training decodes them, and then leave "
                     "its counts lower than these; --check-images decodes every image now.")
    elif args.check_images:  # data.on_error=raise: training would stop at the first image it cannot read
        from radvision.data.dataset import describe_skipped, drop_unreadable_parts

        _, unreadable = drop_unreadable_parts(parts, "decode")
        if unreadable:
            raise RadvisionError(f"--check-images: {describe_skipped([(p, e) for _, p, e in unreadable])}; training "
                                 "would stop at the first. Fix or remove them, or set data.on_error=skip to train "
                                 "without them (they are then listed in the run's skipped_images.csv).")
        note = "--check-images: every image file is there and decodes."
    overview, counts = split_overview(parts), class_counts(parts)
    shown = overview.assign(**{c: overview[c].astype(object).where(overview[c].notna(), "-")
                               for c in ("patients_in_train", "images_in_train")})
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print("positives / known labels (prevalence), ?N: N unknown")
    print(class_counts_text(counts).to_string(index=False))
    if note is not None:
        print()
        print(note)
    if args.output is not None:
        atomic_write_csv(counts, args.output)
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def _cmd_predict(args: argparse.Namespace) -> int:
    from radvision.atomic import atomic_write_csv
    from radvision.predict import predict

    _check_output(args.output, "pred.csv", inputs={"input": args.input})
    df = predict(args.run_dir, args.input, batch_size=args.batch_size, device=args.device,
                 with_labels=args.labels, root=args.root, progress=not (args.no_progress or args.quiet),
                 num_workers=args.workers, path_column=args.path_column)
    atomic_write_csv(df, args.output)
    failed = int((df["error"] != "").sum()) if "error" in df else 0
    print(f"{len(df)} predictions written to {args.output}" + (f" ({failed} failed, see 'error')" if failed else ""))
    if len(df) and failed == len(df):  # the rows are written, but a run that read nothing is an error
        from radvision.data.dicom import is_dicom
        from radvision.data.images import IMAGE_EXTENSIONS

        listed = not (os.path.isdir(args.input) or os.path.splitext(args.input)[1].lower() in IMAGE_EXTENSIONS
                      or is_dicom(args.input))
        hint = "" if not listed else (  # relative paths matter only for a CSV's rows
            f"; relative paths start at {args.root or os.path.dirname(os.path.abspath(args.input))}, "
            "--root DIR changes that")
        print(f"radvision: error: no image could be read (first: {df['error'].iloc[0]}){hint}", file=sys.stderr)
        return 2
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from radvision.atomic import atomic_write_csv
    from radvision.predict import evaluate_files

    if args.output is not None:
        _check_output(args.output, "per_class.csv", inputs={"predictions": args.pred, "gold": args.gold})
    summary, per_class = evaluate_files(args.pred, args.gold, thresholds=args.thresholds, split=args.split,
                                        path_column=args.path_column, concepts=args.concepts)
    for key, value in summary.items():
        print(f"{key}\t{value:.4f}")
    if args.output is not None:
        atomic_write_csv(per_class, args.output)
    return 0


def _cmd_thresholds(args: argparse.Namespace) -> int:
    from radvision.predict import fit_thresholds_files

    _check_output(args.output, "thresholds.json", suffix=".json", inputs={"predictions": args.pred, "gold": args.gold})
    table = fit_thresholds_files(args.pred, args.gold, args.output, min_precision=args.min_precision,
                                 split=args.split, path_column=args.path_column, concepts=args.concepts)
    columns = ["class", "threshold", "precision", "recall", "f1", "support", "n"]
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"thresholds of {len(table)} calibrated classes written to {args.output}")
    return 0


def _check_output(path: str, example: str, suffix: str = ".csv", inputs: dict[str, str] | None = None) -> None:
    """Fail before the work, not after it, when the output file cannot be written or would replace an input."""
    from radvision.atomic import nearest_existing

    if not path.strip():
        raise RadvisionError(f"Output name is empty; pass a file name such as {example!r}.")
    for what, given in (inputs or {}).items():
        if os.path.isfile(given) and os.path.exists(path) and os.path.samefile(path, given):
            raise RadvisionError(f"Output {path!r} is the {what} file; choose another path (writing it would "
                                 f"replace the {what}).")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise RadvisionError(f"Output {path!r} is a folder; pass a file name such as {os.path.join(path, example)!r}.")
    given = os.path.splitext(path)[1]
    if given.lower() != suffix:  # the file is CSV (or JSON) text whatever its name; a .parquet name would mislead
        named = f"ends in {given!r}" if given else "has no suffix"
        kind = suffix.lstrip(".").upper()
        raise RadvisionError(f"Output {path!r} {named}; radvision writes {kind} here, so name it {suffix} "
                             f"(e.g. {os.path.splitext(path)[0] + suffix!r}).")
    blocked = nearest_existing(Path(os.path.abspath(path)).parent)
    if blocked is not None and not blocked.is_dir():
        raise RadvisionError(f"Output {path!r} cannot be written: {str(blocked)!r} is a file, not a folder.")
    if blocked is not None and not os.access(blocked, os.W_OK | os.X_OK):  # also a read-only file system
        raise RadvisionError(f"Output {path!r} cannot be written: the folder {str(blocked)!r} is not writable.")


def _cmd_features(args: argparse.Namespace) -> int:
    import numpy as np

    from radvision.data.images import stat_or_none
    from radvision.features import computed_at, extract_features

    # when the features were computed (a cache of earlier versions records no time: its file's mtime then)
    def stamp() -> object:
        st = stat_or_none(args.output)
        return computed_at(args.output) or (st.st_mtime_ns if st is not None else None)

    before = stamp()
    feats = extract_features(args.run_dir, args.input, args.output, batch_size=args.batch_size, device=args.device,
                             on_error="skip" if args.skip_errors else "raise", root=args.root,
                             overwrite=args.overwrite, progress=not (args.no_progress or args.quiet),
                             num_workers=args.workers, path_column=args.path_column)
    failed = int(np.isnan(feats).any(axis=1).sum()) if feats.size else 0
    done = "reused from" if before is not None and before == stamp() else "written to"
    print(f"{feats.shape[0]} feature rows of width {feats.shape[1]} {done} {args.output}"
          + (f" ({failed} unreadable image{'s' if failed > 1 else ''} kept as NaN rows)" if failed else ""))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from radvision.predict import explain_images

    # "--classes Effusion,Cardiomegaly" as well as "--classes Effusion Cardiomegaly"
    classes = [c.strip() for arg in args.classes for c in arg.split(",") if c.strip()] if args.classes is not None \
        else None  # "--classes ," names none: refused, not read as all
    written = explain_images(args.run_dir, args.images, args.output, classes=classes, method=args.method,
                             path_column=args.path_column)
    print(f"{len(written)} overlays written to {args.output}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from radvision.backbones import TIMM_NOTE, describe_backbones

    rows = [(r["name"], r["source"], str(r["min_size"]), str(r["input_size"]), str(r["num_features"] or "-"),
             r["weights"] or "-") for r in describe_backbones()]
    header = ("name", "source", "min px", "usual px", "features", "ImageNet weights")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"# {TIMM_NOTE}")
    return 0


COMMANDS = {"train": _cmd_train, "data": _cmd_data, "predict": _cmd_predict, "evaluate": _cmd_evaluate, "thresholds": _cmd_thresholds,
            "features": _cmd_features, "explain": _cmd_explain, "models": _cmd_models}


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None = None,
                         takes_overrides: Callable[[argparse.Namespace], bool] = lambda args: True
                         ) -> argparse.Namespace:
    """`parser.parse_args`, except that key=value config overrides (its positional `overrides`) may also come
    after or between the options (`radvision train cfg.yaml --resume RUN optim.epochs=20`); the example
    scripts parse their command lines the same way."""
    args, extra = parser.parse_known_args(argv)
    if takes_overrides(args):
        late = [a for a in extra if not a.startswith("-") and "=" in a]
        args.overrides = [*args.overrides, *late]
        extra = [a for a in extra if a not in late]
        keys = [o.split("=", 1)[0].strip() for o in args.overrides if "=" in o]
        twice = next((k for k in keys if keys.count(k) > 1), None)
        if twice is not None:  # as a key given twice in a YAML file: which one was meant is not known
            parser.error(f"the override {twice} is given twice; keep one")
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}{_override_hint(extra) if takes_overrides(args) else ''}")
    return args


def _override_hint(extra: list[str]) -> str:
    """"; config values are set as key=value: optim.epochs=3" for an option spelled like a config key
    ("--epochs 3"), which people try first."""
    from radvision.config import Config, flatten_config

    keys = flatten_config(Config())
    for i, arg in enumerate(extra):
        name, _, value = arg.lstrip("-").partition("=")
        if not arg.startswith("--") or not name:
            continue
        value = value or (extra[i + 1] if i + 1 < len(extra) and not extra[i + 1].startswith("-") else "VALUE")
        dotted = [k for k in keys if k.rsplit(".", 1)[-1] == name.replace("-", "_")]
        if dotted:
            return f"; config values are set as key=value after the config: {' or '.join(f'{k}={value}' for k in dotted)}"
    return ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The `radvision` command line (`train` and `data` take overrides after their options too)."""
    return parse_with_overrides(_parser(), argv, lambda args: args.command in ("train", "data"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = log_level(args.verbose, args.quiet, _rank())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # pydicom logs each failed decode with its traceback before raising; radvision's one-line error names the
    # file and what to install, so the command shows that alone (-v shows pydicom's log too). Not a level:
    # pydicom resets its logger's level when it is first imported.
    logging.getLogger("pydicom").propagate = bool(args.verbose)
    for chatty in ("PIL", "matplotlib"):  # -v is for radvision's debug lines, not every PNG chunk and font
        logging.getLogger(chatty).setLevel(max(level, logging.INFO))
    return exit_code(lambda: COMMANDS[args.command](args))


def log_level(verbose: bool, quiet: bool, rank: int = 0) -> int:
    """-v DEBUG, -q WARNING, else INFO. With several processes (accelerate launch / torchrun) only the first
    one talks: the others log errors only, since every rank reads the same tables and would repeat rank 0's
    warnings."""
    if rank > 0:
        return logging.ERROR
    return logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a job scheduler) raised in the main thread as an interrupt, so a command
    removes its temporary output and stops its loader processes as it does after Ctrl-C (a training run
    keeps its last checkpoint and resumes from it)."""


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


def exit_code(command: Callable[[], int | None], *, prog: str | None = "radvision",
              errors: tuple[type[Exception], ...] = ()) -> int:
    """Run `command()` as a command line does: a user error (`RadvisionError`, a missing file, or one of
    `errors`) prints one line `prog: error: ...` on stderr and gives 2, Ctrl-C gives 130, SIGTERM 143, else its code or 0.
    The example scripts use it too, so every entry point reports errors the same way."""
    lead = f"{prog}: " if prog else ""
    try:
        with _sigterm_interrupts():
            return command() or 0
    except (RadvisionError, *errors) as exc:
        print(f"{lead}error: {message(exc)}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"{lead}error: file not found: {exc.filename or message(exc)}.", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:  # an output path through a file
        print(f"{lead}error: cannot write {exc.filename or exc}: {exc.strerror or exc}.", file=sys.stderr)
        return 2
    except PermissionError as exc:  # a folder or file this user may not write (or read)
        if exc.filename is None:  # not about a file (an operation not permitted): keep the traceback
            raise
        print(f"{lead}error: permission denied: {exc.filename or exc}; choose a place you can write to, or fix its "
              "permissions.", file=sys.stderr)
        return 2
    except Terminated:
        print(f"{lead}terminated (SIGTERM).", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{lead}interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `radvision evaluate ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file the command reads or writes (a read-only or full disk ...)
        if exc.filename is None:
            raise
        print(f"{lead}error: cannot use {exc.filename}: {exc.strerror or exc}.", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
