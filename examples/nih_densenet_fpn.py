"""NIH ChestX-ray14: DenseNet-121 with a feature-pyramid (FPN) head, the setup of the NIH DenseNet121+FPN study.

Setup: DenseNet-121 (ImageNet initialisation) whose four dense-block maps feed an FPN head (lateral 1x1 convs,
top-down upsampling, pooled concat -> linear) for the 14 findings; BCE with per-class pos_weight from the
training labels; Adam, ReduceLROnPlateau and early stopping on validation mean AUROC; resize + horizontal
flip ("nih_study" transforms).  Splits: the official patient-disjoint test list, and a patient-level
validation split carved out of train_val (or the `split` column of a sample table).

    python examples/nih_densenet_fpn.py --root /data/NIH               # Data_Entry_2017.csv + images*/
    python examples/nih_densenet_fpn.py --smoke                        # seconds, on the bundled sample
    python examples/nih_densenet_fpn.py --score PRED.csv GOLD.csv      # score a `radvision predict` CSV

Scores are reported as in the radlabel NIH target: mean AUROC over the classes with at least
`--min-positives` positives in the scored images, plus "any finding vs No Finding".  Any key of the config
can be changed with `key=value` overrides (e.g. `optim.epochs=5 data.image_size=512`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radvision.atomic import atomic_write_text
from radvision.errors import RadvisionError
from radvision.metrics import noisy_or_score

log = logging.getLogger(__name__)

NO_FINDING = "No Finding"
META_COLUMNS = {"path", "image", "patient_id", "age", "sex", "view", "split", "error", "Image Index",
                "Finding Labels", "Patient ID"}

# The study setup as a config mapping (radvision.config dataclasses); `--smoke` shrinks it.
STUDY = {
    # splits as `radvision train` makes them: the official test list, and valid carved out of train_val by
    # patient in the data.split train / valid ratio (default 8:1); without the lists, patients 80 / 10 / 10
    "data": {"dataset": "nih", "image_size": 224, "channels": 3, "transforms": "nih_study"},
    "model": {"backbone": "densenet121", "head": "fpn", "pretrained": "imagenet", "strategy": "full",
              "backbone_lr_mult": 1.0, "dropout": 0.0},
    "loss": {"name": "bce", "pos_weight": "auto"},
    "optim": {"name": "adam", "lr": 1.0e-4, "weight_decay": 0.0, "batch_size": 32, "epochs": 20},
    "schedule": {"monitor": "mean_auroc", "patience": 3, "plateau_factor": 0.1, "plateau_patience": 1,
                 "restore_best": True},
    "runtime": {"seed": 0, "amp": "auto", "channels_last": True, "device": "auto"},
    "output": {"run_dir": "runs/nih_densenet_fpn"},
}
SMOKE = {
    "data": {"dataset": "nih_sample", "image_size": 64},  # the sample bundled with radvision
    "model": {"pretrained": None},
    "optim": {"batch_size": 16, "epochs": 1},
    "runtime": {"channels_last": False, "progress": False},
}


# --------------------------------------------------------------------------------------------- scoring


def _key(paths: pd.Series) -> pd.Series:
    """Join key: the image file name (predictions carry absolute paths, NIH tables bare names)."""
    return paths.astype(str).str.replace("\\", "/", regex=False).str.rsplit("/", n=1).str[-1]


def gold_frame(gold: pd.DataFrame | str | Path) -> pd.DataFrame:
    """Gold labels keyed by image file name: an NIH Data_Entry table ("Image Index", "Finding Labels") or a
    table with `path` and one 1/0 column per class (a LabelTable frame).  Adds the `any_finding` column, and
    for a Data_Entry file without a `split` column, the official split of the train_val_list.txt /
    test_list.txt beside it (train / test)."""
    from radvision.data.nih import official_split
    from radvision.data.table import NO_FINDING_COLUMN, no_finding_beside_findings, read_csv_checked

    g = read_csv_checked(gold) if isinstance(gold, (str, Path)) else gold.copy()
    if "Finding Labels" in g and "Image Index" in g:
        sets = g["Finding Labels"].fillna("").astype(str).str.split("|").map(lambda xs: {x.strip() for x in xs})
        names = sorted({x for s in sets for x in s if x and x != NO_FINDING})
        out = pd.DataFrame({"key": _key(g["Image Index"])})
        for c in names:
            out[c] = sets.map(lambda s, c=c: float(c in s))
        out["any_finding"] = sets.map(lambda s: float(bool(s - {NO_FINDING, ""})))
        if "split" in g:
            out["split"] = g["split"].to_numpy()
        elif isinstance(gold, (str, Path)) and (official := official_split(Path(gold).parent)):
            out["split"] = g["Image Index"].astype(str).str.strip().map(official).to_numpy()
        return out
    if "path" not in g:
        raise RadvisionError("gold table needs 'Image Index' + 'Finding Labels' (NIH) or a 'path' column")
    classes = [c for c in g.columns if c not in META_COLUMNS and c not in (NO_FINDING, NO_FINDING_COLUMN)]
    out = g[classes].apply(pd.to_numeric, errors="coerce").astype(float)
    odd = out.notna() & ~out.isin([0.0, 1.0, -1.0])
    if odd.any().any():
        col = odd.any().idxmax()
        raise RadvisionError(f"gold column {col!r} holds {float(out.loc[odd[col], col].iloc[0]):g}, not 1 / 0 / -1 / blank; "
                             "is it a prediction table? (the order is --score PRED_CSV GOLD_CSV)")
    out.insert(0, "key", _key(g["path"]))
    if NO_FINDING in g:  # read as the csv reader reads it: blank beside a finding is 0, else blank is unknown
        out["any_finding"] = 1.0 - no_finding_beside_findings(g[NO_FINDING], out[classes])
    elif NO_FINDING_COLUMN in g:  # a saved reader table: the source's own flag, findings outside the classes too
        out["any_finding"] = 1.0 - pd.to_numeric(g[NO_FINDING_COLUMN], errors="coerce").astype(float)
    else:
        out["any_finding"] = (out[classes] == 1).any(axis=1).astype(float)
    if "split" in g:
        out["split"] = g["split"].to_numpy()
    return out


def any_finding_score(pred: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Score for "any finding": 1 - P(No Finding) when the model has that output, else the noisy-OR of the
    finding probabilities (`radvision.metrics.noisy_or_score`, which ranks as 1 - prod(1 - p_c) does)."""
    if NO_FINDING in pred:
        return 1.0 - pred[NO_FINDING].to_numpy(dtype=float)
    return noisy_or_score(pred[classes].to_numpy(dtype=float))


def score_predictions(pred: pd.DataFrame | str | Path, gold: pd.DataFrame | str | Path,
                      min_positives: int = 10, split: str | None = None) -> dict[str, float]:
    """Mean AUROC over classes with >= `min_positives` positives among the scored images, plus any finding.

    `split` scores only the gold rows of that `split` (a gold table with a split column, such as the NIH
    sample's); without it, predictions that span several splits are scored together with a warning.
    Returns {class: AUROC, ..., "any_finding": AUROC, "mean_auroc": mean of those class AUROCs and the
    any-finding AUROC (one term among them, as the NIH target counts it), "n_images": N}.
    """
    from sklearn.metrics import roc_auc_score

    from radvision.data.table import read_csv_checked

    p = read_csv_checked(pred) if isinstance(pred, (str, Path)) else pred.copy()
    if "path" not in p:
        raise RadvisionError("prediction table needs a 'path' column (as written by `radvision predict`)")
    if "error" in p:
        failed = ~(p["error"].isna() | (p["error"].astype(str) == ""))
        if failed.any():
            log.warning("%d prediction row(s) carry an error (unread images, first: %s) and are not scored",
                        int(failed.sum()), p.loc[failed, "path"].iloc[0])
        p = p[~failed]
    p["key"] = _key(p["path"])
    g = gold_frame(gold)
    if split is not None:
        from radvision.data.table import canonical_split

        if "split" not in g:
            raise RadvisionError(f"the gold table has no 'split' column to choose split {split!r} from")
        # read as training reads them: case and spaces aside, val / validate -> valid
        split = canonical_split(pd.Series([split])).iloc[0]
        g["split"] = canonical_split(g["split"])
        if not (g["split"] == split).any():
            raise RadvisionError(f"the gold table has no {split!r} rows; its splits are "
                                 f"{', '.join(map(str, g['split'].dropna().unique()))}")
        g = g[g["split"] == split]
    classes = [c for c in g.columns if c not in ("key", "any_finding", "split") and c in p.columns]
    if not classes:
        raise RadvisionError("prediction and gold tables share no class column")
    m = g.merge(p.drop(columns=[c for c in p.columns if c == "any_finding"]), on="key", suffixes=("_gold", ""))
    if m.empty:
        raise RadvisionError("no prediction matches a gold image (joined on image file name)")
    unmatched = ~p["key"].isin(m["key"])
    if unmatched.any():  # images of other splits (expected with --split: said at INFO), or names the gold lacks
        log.log(logging.INFO if split is not None else logging.WARNING,
                "%d of %d prediction row(s) match no gold image%s and are not scored (first: %s)",
                int(unmatched.sum()), len(p), f" of split {split!r}" if split is not None else "",
                p.loc[unmatched, "path"].iloc[0])
    if split is None and "split" in m and m["split"].nunique() > 1:
        counts = ", ".join(f"{k}: {v}" for k, v in m["split"].value_counts().items())
        log.warning("scoring images of several splits together (%s); pass --split valid (or split=) to score one",
                    counts)
    result: dict[str, float] = {}
    for c in classes:
        y = m[f"{c}_gold"].to_numpy(dtype=float)
        known = np.isin(y, (0.0, 1.0))
        if (y[known] == 1).sum() >= min_positives and (y[known] == 0).any():
            result[c] = float(roc_auc_score(y[known], m.loc[known, c].to_numpy(dtype=float)))
    y_any = m["any_finding"].to_numpy(dtype=float)
    known = ~np.isnan(y_any)  # blank No Finding and no finding: unknown
    if 0 < y_any[known].sum() < known.sum():
        result["any_finding"] = float(roc_auc_score(y_any[known], any_finding_score(m, classes)[known]))
    if not result:
        raise RadvisionError(f"nothing to score among the {len(m)} matched images: no class has {min_positives} "
                             "positives and some negatives, and any finding is all one value (lower "
                             "--min-positives, or check the order: --score PRED_CSV GOLD_CSV)")
    result["mean_auroc"] = float(np.mean(list(result.values())))
    result["n_images"] = float(len(m))
    return result


# ---------------------------------------------------------------------------------------------- training


def study_tables(cfg: Any) -> dict:
    """train / valid (/ test) LabelTables from the config's data section, as `radvision train` makes them
    (`radvision.train.split_tables`): the official test list stays test, valid is carved out of train_val by
    patient with the `data.split` train / valid ratio (a sample table's `split` column is used as it is),
    and `data.downsample` / `data.classes` apply, so the run's config.yaml reproduces the run."""
    from radvision.train import split_tables

    return split_tables(cfg)[0]


def _warn_shared_patients(parts: dict) -> None:
    """Warn when a patient has images in train and in the split that is scored or selects the epoch: the `split`
    column of the 800-image sample in ../shared is image-level, so its valid figure partly rewards recognising a
    patient (the sample bundled with radvision is patient-disjoint)."""
    if any("patient_id" not in t.frame for t in parts.values()):
        return
    train = set(parts["train"].frame["patient_id"].astype(str))
    for name in ("valid", "test"):
        if name in parts:
            ids = parts[name].frame["patient_id"].astype(str)
            shared = ids.isin(train)
            if shared.any():
                log.warning("%d of %d %s images come from %d patient(s) who also have train images (e.g. %s): "
                            "that split is not patient-disjoint", int(shared.sum()), len(ids), name,
                            ids[shared].nunique(), ids[shared].iloc[0])


def run(args: argparse.Namespace) -> dict[str, float]:
    from radvision.config import apply_overrides, config_from_dict, merge_sections
    from radvision.predict import predict
    from radvision.train import Trainer, make_datasets

    values = merge_sections(STUDY, SMOKE if args.smoke else {})
    if args.root:
        values["data"]["root"] = args.root
    values["output"]["run_dir"] = args.run_dir or values["output"]["run_dir"]
    values["output"]["overwrite"] = True
    cfg = config_from_dict(apply_overrides(values, args.overrides))
    if cfg.data.dataset not in ("nih", "nih_sample"):  # its config.yaml would say it trained on something else
        raise RadvisionError(f"This study trains on NIH ChestX-ray14, but the config's data.dataset is "
                             f"{cfg.data.dataset!r}; leave data.dataset at 'nih' (or 'nih_sample', the bundled "
                             "sample) and give the data folder as --root.")
    parts = study_tables(cfg)
    if args.smoke:  # a few images per split keep the smoke run to seconds
        parts = {k: t.subset(np.arange(min(len(t), 48 if k == "train" else 24))) for k, t in parts.items()}
    _warn_shared_patients(parts)
    datasets = make_datasets(cfg, parts)
    run_dir = Trainer(cfg).fit(datasets["train"], datasets["valid"], datasets.get("test"))
    scored = "test" if "test" in parts else "valid"
    if scored == "valid":
        log.warning("no test split (the table names no test image, or data.split holds no test fraction): the valid "
                    "images that chose the epoch are scored, so the figure is not a held-out one")
    pred = predict(run_dir, parts[scored].frame[["path"]], batch_size=cfg.optim.batch_size)
    result = score_predictions(pred, parts[scored].frame, min_positives=args.min_positives)
    scores = Path(run_dir) / "nih_scores.json"
    atomic_write_text(scores, json.dumps({"split": scored, **result}, indent=1) + "\n")
    print(f"run dir: {run_dir} (scores in {scores.name})")
    print(f"{scored} ({int(result['n_images'])} images): " + json.dumps({k: round(v, 4) for k, v in result.items()
                                                                          if k != "n_images"}))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.epochs=5")
    p.add_argument("--root", "--data-root", dest="root",  # --data-root as the other two studies spell it
                   help="NIH ChestX-ray14 folder (Data_Entry_2017*.csv, images*/, split lists)")
    p.add_argument("--smoke", action="store_true",
                   help="1 epoch at 64 px on a few bundled sample images (not with --root)")
    p.add_argument("--run-dir", help="where the run is written (default runs/nih_densenet_fpn)")
    p.add_argument("--min-positives", type=int, default=None,
                   help="classes need this many positives to be scored (default 10; 2 with --smoke)")
    p.add_argument("--score", nargs=2, metavar=("PRED_CSV", "GOLD_CSV"),
                   help="only score a `radvision predict` CSV against a gold table and exit")
    p.add_argument("--split", help="with --score: score only the gold rows of this split (e.g. valid), from the "
                                   "gold table's split column")
    from radvision.cli import exit_code, parse_with_overrides

    args = parse_with_overrides(p, argv)  # overrides may come before, between or after the options
    if args.min_positives is None:
        args.min_positives = 2 if args.smoke else 10
    if args.min_positives < 1:
        p.error(f"--min-positives must be 1 or more (a class needs positives for an AUROC), got {args.min_positives}")
    if args.split is not None and not args.score:
        p.error("--split chooses the gold rows --score scores; a training run scores its test images, or its "
                "valid images when there is no test split (give --score PRED_CSV GOLD_CSV --split NAME)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.score:
        def score() -> None:
            result = score_predictions(args.score[0], args.score[1], min_positives=args.min_positives,
                                       split=args.split)
            print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=1))

        return exit_code(score, prog=None)
    if not args.smoke and not args.root:
        p.error("give --root NIH_FOLDER, or --smoke to run on the bundled sample")
    if args.smoke and args.root:
        p.error("--smoke trains on the sample bundled with radvision; drop --root, or drop --smoke to train on "
                "that folder")

    def go() -> None:
        if args.smoke and not args.run_dir:  # a throw-away run directory
            with tempfile.TemporaryDirectory(prefix="nih_fpn_smoke_") as tmp:
                args.run_dir = tmp
                run(args)
            print("(the smoke run's folder above was temporary and is now removed; --run-dir DIR keeps it)")
        else:
            run(args)

    return exit_code(go, prog=None)


if __name__ == "__main__":
    sys.exit(main())
