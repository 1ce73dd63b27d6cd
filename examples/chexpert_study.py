"""CheXpert study: VGG16 + ResNet50 + ConvNeXt-Large features fused under one weighted-BCE head, plus the
report side (radlabel's CheXpert labeler, label prevalence and graph-entity statistics).

Image side (configs/chexpert_study.yaml): the three ImageNet backbones run on the same frontal radiograph and
their pooled features are concatenated (radvision MultiBackbone) before a linear head for the 14 CheXpert
observations; uncertain labels follow U-Ones or U-Zeros (`--policies U-Ones U-Zeros` trains one run per
policy and compares them; U-Ignore and U-MultiClass too, the latter with a 3-way head per observation and its
softmax cross-entropy in place of the weighted BCE); 91 % of the training images labelled only "No Finding" and 30 % of those labelled
only "Pleural Effusion" are dropped; "chexpert_study" augmentation (random ~90 % crop, small affine, Gaussian
blur p=0.4); weighted BCE with per-class pos_weight.  train.csv is split by patient into train / valid
(thresholds, early stopping); the official valid.csv (radiologist-labelled) is the held-out test set.

Report side (`--reports REPORTS.csv`): every report is labelled with radlabel's `chexpert` schema
(1 / 0 / -1 / blank), and the corpus statistics of radlabel.stats are written: class prevalence, label
cardinality / density, the most frequent graph entities and verbs, FINDINGS-IMPRESSION similarity.

    python examples/chexpert_study.py --data-root /data/CheXpert-v1.0-small
    python examples/chexpert_study.py --data-root /data/CheXpert-v1.0-small --policies U-Ones U-Zeros \\
        --reports /data/chexpert_plus/reports.csv --text-column section_findings optim.epochs=5
    python examples/chexpert_study.py --smoke      # seconds: synthetic CheXpert layout, tiny backbones
    python examples/chexpert_study.py --data-root /data/CheXpert-v1.0-small --policies U-Ones U-Zeros --resume
                                                   # after an interruption: finish the runs, train the rest

Any config key can be changed with `key=value` overrides (e.g. `model.pretrained=null data.image_size=320`).
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

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "chexpert_study.yaml"
logger = logging.getLogger("chexpert_study")
COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]

# --smoke: the same pipeline with two small backbones (still a MultiBackbone) at 32 px, 1 epoch, no weights,
# on four classes (the downsampled two among them): the run's per-class plots dominate a tiny run's time.
SMOKE = {
    "data": {"image_size": 32, "classes": ["No Finding", "Cardiomegaly", "Edema", "Pleural Effusion"]},
    "model": {"backbone": ["simple_cnn", "simple_cnn"], "pretrained": None},
    "optim": {"batch_size": 16, "epochs": 1, "num_workers": 0},
    "schedule": {"patience": None, "plateau_patience": None},
    "runtime": {"amp": "no", "channels_last": False, "device": "cpu", "progress": False},
}

# Invented report texts for --smoke (no real patient text is shipped).
SMOKE_REPORTS = [
    "FINDINGS: The heart is enlarged. Small left pleural effusion. No pneumothorax.\n"
    "IMPRESSION: Cardiomegaly with a small left effusion.",
    "FINDINGS: Lungs are clear. Heart size is normal. No pleural effusion or pneumothorax.\n"
    "IMPRESSION: No acute cardiopulmonary process.",
    "FINDINGS: Patchy opacity in the right lower lobe, may represent pneumonia. Endotracheal tube in place.\n"
    "IMPRESSION: Right lower lobe opacity, cannot exclude pneumonia.",
    "FINDINGS: Mild pulmonary edema. Bibasilar atelectasis.\nIMPRESSION: Mild edema and atelectasis.",
    "FINDINGS: No focal consolidation. Healed left rib fracture.\nIMPRESSION: No acute disease.",
    "FINDINGS: Moderate right pleural effusion with adjacent consolidation.\n"
    "IMPRESSION: Right effusion and consolidation.",
]


# ------------------------------------------------------------------------------------------ configuration


def study_config(
    config: str | Path = CONFIG,
    overrides: list[str] | tuple[str, ...] = (),
    smoke: bool = False,
    data_root: str | None = None,
    run_dir: str | None = None,
) -> Any:
    """The validated radvision Config of the study (smoke settings, --data-root and overrides applied)."""
    from radvision.config import load_config, merge_sections
    from radvision.errors import RadvisionError

    updates = SMOKE if smoke else {}
    if data_root is not None:
        updates = merge_sections(updates, {"data": {"root": str(data_root)}})
    if run_dir is not None:
        updates = merge_sections(updates, {"output": {"run_dir": str(run_dir)}})
    cfg = load_config(config, overrides, updates=updates)
    if cfg.data.dataset != "chexpert":  # its config.yaml would say it trained on something else
        raise RadvisionError(f"This study trains on CheXpert, but the config's data.dataset is {cfg.data.dataset!r}; "
                             "use a CheXpert config such as configs/chexpert_study.yaml, or data.dataset=chexpert.")
    if data_root is not None and Path(cfg.data.root).expanduser().resolve() != Path(data_root).expanduser().resolve():
        raise RadvisionError(f"--data-root {data_root} and data.root={cfg.data.root} disagree; give the CheXpert "
                             "folder once.")
    return cfg


# ------------------------------------------------------------------------------------------------- image


def study_parts(cfg: Any) -> dict[str, Any]:
    """train / valid (patient split of train.csv, train downsampled) and test (official valid.csv), with the
    uncertain (-1) labels kept.

    The split and the downsampling are drawn on these labels, an uncertain label counting as a finding, so
    every policy of a `--policies` comparison trains, selects and tests on the same images (`with_policy`
    then maps the labels)."""
    from radvision.data import downsample, patient_split, read_chexpert, require_train_and_valid
    from radvision.errors import RadvisionError

    d = cfg.data
    if d.root is None:
        raise RadvisionError("data.root is not set; pass --data-root with the CheXpert-v1.0(-small) folder.")
    missing = "drop" if d.on_error == "skip" else "raise"

    def read(split: str, classes: Any, csv: Any = None) -> Any:
        return read_chexpert(d.root, split=split, frontal_only=d.frontal_only, policy="U-MultiClass",
                             classes=classes, missing=missing, unmentioned=d.unmentioned, csv=csv)

    train_all = read("train", d.classes, d.csv)  # data.csv replaces train.csv, as in `radvision train`
    split = train_valid_split(d.split)
    parts = patient_split(train_all, split, cfg.runtime.seed)
    require_train_and_valid(parts, f"Splitting train.csv's {len(train_all)} images by patient with data.split {split}")
    if d.downsample:
        parts["train"] = downsample(parts["train"], d.downsample, cfg.runtime.seed)
    parts["test"] = read("valid", train_all.classes)
    return parts


def with_policy(parts: dict[str, Any], policy: str) -> dict[str, Any]:
    """`study_parts` tables with their uncertain labels mapped by an uncertainty policy."""
    from radvision.data import LabelTable, apply_policy

    out = {}
    for name, table in parts.items():
        frame = table.frame.copy()
        frame[table.classes] = apply_policy(frame[table.classes], policy)
        out[name] = LabelTable(frame, table.classes, table.root)
    return out


def study_tables(cfg: Any, policy: str) -> dict[str, Any]:
    """train / valid / test tables of one uncertainty policy (`study_parts`, then `with_policy`)."""
    return with_policy(study_parts(cfg), policy)


def train_valid_split(split: dict[str, float]) -> dict[str, float]:
    """train.csv's split into train and valid: data.split's train and valid fractions, scaled to sum to 1. The
    official valid.csv is the test set, so a test fraction would only shrink the data: it is left out, with a
    warning."""
    if split.get("test"):
        logger.warning("data.split asks for a test fraction of %s, but the official valid.csv is the test set "
                       "here; train.csv is split into train and valid only", split["test"])
    train, valid = split.get("train", 0.0), split.get("valid", 0.0)
    total = train + valid
    if total <= 0:
        from radvision.errors import RadvisionError

        raise RadvisionError(f"data.split {split} has no train or valid fraction; give both, e.g. "
                             "data.split='{train: 0.875, valid: 0.125}'.")
    return {"train": round(train / total, 6), "valid": round(valid / total, 6)}


def train_policy(cfg: Any, policy: str, run_dir: Path, parts: dict[str, Any] | None = None,
                 resume: bool = False) -> dict[str, Any]:
    """Train one run under an uncertainty policy (on `study_parts`, read here unless given); returns its test
    scores.  `resume`: a run already in `run_dir` goes on from its last finished epoch (a finished one trains
    nothing and rewrites its outputs), as `radvision train --resume` does."""
    from radvision.config import config_from_dict, config_to_dict
    from radvision.rundir import RunDir
    from radvision.train import Trainer, make_datasets

    values = config_to_dict(cfg)
    values["data"]["policy"] = policy
    if policy == "U-MultiClass" and values["loss"]["name"] != "bce":
        # a 3-way head trains a softmax cross-entropy ("bce" under U-MultiClass); pos_weight / class weights stay
        logger.info("U-MultiClass: loss %s -> bce (the per-observation softmax cross-entropy)", values["loss"]["name"])
        values["loss"]["name"] = "bce"
    values["output"]["run_dir"] = str(run_dir)
    cfg = config_from_dict(values)
    parts = with_policy(parts if parts is not None else study_parts(cfg), policy)
    datasets = make_datasets(cfg, parts)
    going_on = resume and RunDir(run_dir).has_run()
    if going_on:
        logger.info("%s: going on with the run in %s", policy, run_dir)
    trainer = Trainer(cfg, resume=run_dir) if going_on else Trainer(cfg)
    run = trainer.fit(datasets["train"], datasets["valid"], datasets.get("test"))
    result: dict[str, Any] = {
        "policy": policy,
        "run_dir": str(run),
        **{f"n_{k}": len(t) for k, t in parts.items()},
    }
    result.update(test_scores(run))
    return result


def test_scores(run: Path) -> dict[str, float]:
    """Mean AUROC over all classes and over the five CheXpert competition tasks, from the run's test files."""
    out: dict[str, float] = {}
    summary, per_class = run / "test_metrics.csv", run / "test_per_class.csv"
    if summary.is_file():
        m = pd.read_csv(summary).set_index("metric")["value"]
        for key in ("mean_auroc", "macro_f1", "micro_f1"):
            if key in m:
                out[f"test_{key}"] = float(m[key])
    if per_class.is_file():
        pc = pd.read_csv(per_class).set_index("class")
        auroc = pd.to_numeric(pc.loc[[c for c in COMPETITION if c in pc.index], "auroc"], errors="coerce")
        out["test_competition_auroc"] = float(auroc.mean()) if auroc.notna().any() else float("nan")
    return out


# ----------------------------------------------------------------------------------------------- reports


def report_statistics(
    reports: str | Path,
    out_dir: Path,
    text_column: str = "report",
    id_column: str | None = None,
    jobs: int = 1,
    policy: str = "U-Ones",
    plots: bool = False,
) -> dict[str, Any]:
    """Label reports with the chexpert schema; write labels, prevalence and entity statistics to out_dir."""
    import radlabel
    from radlabel.stats import corpus_stats

    frame = radlabel.read_table(reports)
    labeler = radlabel.Labeler(schema="chexpert", progress=False)
    labels = labeler.label_corpus(frame, text_column=text_column, id_column=id_column, jobs=jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    radlabel.write_table(labels, out_dir / "labels.csv")
    stats = corpus_stats(
        frame, text_column=text_column, labels=labels, schema="chexpert", output_dir=out_dir, plots=plots
    )
    prevalence = stats.tables["prevalence"].set_index("class")
    binary = radlabel.to_binary(labels, policy=policy, classes=list(prevalence.index))
    # over every report, as `prevalence` is (a report that could not be read has no labels: not positive)
    prevalence[f"positive_{policy}"] = (binary[list(prevalence.index)] == 1).mean().to_numpy()
    radlabel.write_table(prevalence.reset_index(), out_dir / "prevalence.csv")
    errors = int((labels["error"].fillna("").astype(str) != "").sum())
    return {
        "reports": len(labels),
        "errors": errors,
        "summary": stats.summary,
        "prevalence": prevalence,
        "entities": stats.tables["entities"],
    }


# ------------------------------------------------------------------------------------------- smoke data


def make_synthetic_chexpert(
    parent: str | Path, n_patients: int = 24, n_valid: int = 8, size: int = 40, seed: int = 0
) -> Path:
    """A tiny CheXpert-v1.0-small layout: train.csv / valid.csv with the real columns, PNGs on disk.

    Training patients have a frontal and a lateral view; labels mix 1 / 0 / -1 / blank, with some images
    labelled only No Finding or only Pleural Effusion (what the study downsamples). Cardiomegaly brightens
    the image so the labels are learnable.
    """
    from PIL import Image

    from radvision.data import CHEXPERT_CLASSES

    rng = np.random.default_rng(seed)
    parent = Path(parent)
    root = parent / "CheXpert-v1.0-small"
    findings = [c for c in CHEXPERT_CLASSES if c != "No Finding"]

    def labels(kind: int, valid: bool) -> dict[str, float]:
        row = dict.fromkeys(CHEXPERT_CLASSES, 0.0)
        if kind == 3 and not valid:
            row["Fracture"] = np.nan  # "not mentioned"
        if kind == 0:
            row["No Finding"] = 1.0
        elif kind == 1:
            row["Pleural Effusion"] = 1.0
        else:
            for c in rng.choice(findings, size=3, replace=False):
                row[c] = float(rng.choice([1.0, 0.0] if valid else [1.0, 0.0, -1.0]))
        return row

    rows: dict[str, list[dict]] = {"train": [], "valid": []}
    for split, count, offset in (("train", n_patients, 1), ("valid", n_valid, 60001)):
        for p in range(count):
            kind = p % 4 if split == "train" else 2 + p % 2
            lab = labels(kind, split == "valid")
            views = (("frontal", "Frontal", "PA" if p % 2 else "AP"), ("lateral", "Lateral", np.nan))
            for v, (name, fl, apa) in enumerate(views if split == "train" else views[:1], start=1):
                rel = f"CheXpert-v1.0-small/{split}/patient{offset + p:05d}/study1/view{v}_{name}.png"
                img = rng.integers(0, 80, size=(size, size)).astype(np.uint8)
                if lab.get("Cardiomegaly") == 1.0:
                    img[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 150
                (parent / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img, mode="L").save(parent / rel)
                rows[split].append(
                    {
                        "Path": rel,
                        "Sex": "Female" if p % 2 else "Male",
                        "Age": 40 + p,
                        "Frontal/Lateral": fl,
                        "AP/PA": apa,
                        **lab,
                    }
                )
    for split, data in rows.items():
        pd.DataFrame(data).to_csv(root / f"{split}.csv", index=False)
    return root


def make_synthetic_reports(path: str | Path) -> Path:
    path = Path(path)
    pd.DataFrame({"study_id": [f"s{i}" for i in range(len(SMOKE_REPORTS))], "report": SMOKE_REPORTS}).to_csv(
        path, index=False
    )
    return path


# -------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the study as the parsed arguments say; returns {"runs": [...], "reports": {...} or None}."""
    from radvision.errors import RadvisionError

    cfg = study_config(
        args.config, args.overrides, smoke=args.smoke, data_root=args.data_root, run_dir=args.run_dir
    )
    if cfg.data.root is None:  # before the reports: nothing is done without the images
        raise RadvisionError("data.root is not set; pass --data-root with the CheXpert-v1.0(-small) folder (or "
                             "data.root=...), or --smoke for the synthetic check.")
    policies = args.policies or [cfg.data.policy]
    from radvision.train import check_training_config

    cfg.data.split = train_valid_split(cfg.data.split)  # each run's config.yaml records the split it used
    check_training_config(cfg)  # the names and the images before the reports: they stop in seconds
    parts = study_parts(cfg)
    base = Path(cfg.output.run_dir)
    reports = None
    if args.reports:  # first: a wrong file or column stops in seconds, not after hours of image training
        reports = report_statistics(
            args.reports,
            base / "reports",
            text_column=args.text_column,
            id_column=args.id_column,
            jobs=args.jobs,
            policy=next((p for p in policies if p != "U-MultiClass"), "U-Ignore"),  # reports have no 3-way form
            plots=args.plots,
        )
    results = []
    for policy in policies:
        # a folder per policy, also for one: RUN_DIR itself holds reports/ and study_summary.json, and a run
        # folder must hold nothing but its run
        results.append(train_policy(cfg, policy, base / policy, parts, resume=args.resume))
    table = pd.DataFrame(results).set_index("policy")
    print(f"CheXpert image study ({'+'.join(np.atleast_1d(cfg.model.backbone))}, {cfg.data.image_size} px):")
    print(table.drop(columns=["run_dir"]).round(4).to_string())

    if reports is not None:
        s = reports["summary"]
        print(
            f"\nReports: {reports['reports']} labelled ({reports['errors']} errors), "
            f"{s.get('entities_per_report', float('nan')):.2f} graph entities per report, "
            f"label cardinality {s.get('label_cardinality', float('nan')):.2f}, "
            f"density {s.get('label_density', float('nan')):.3f}"
        )
        print(reports["prevalence"].round(3).to_string())
        print("most frequent entities:")
        print(reports["entities"].head(10).to_string(index=False))
        print(f"report tables: {base / 'reports'}")

    from radvision.config import atomic_write_text

    base.mkdir(parents=True, exist_ok=True)
    stale = [name for name in [*POLICY_CHOICES, "reports"] if (base / name).is_dir()
             and name not in policies and not (name == "reports" and reports is not None)]
    if stale:  # left by an earlier study in this folder; not removed: they may be someone's results
        logger.warning("%s also holds %s from an earlier run, which this study_summary.json does not describe",
                       base, ", ".join(f"{n}/" for n in stale))
    summary = {
        "runs": results,
        "reports": None
        if reports is None
        else {"reports": reports["reports"], "errors": reports["errors"], **reports["summary"]},
    }
    atomic_write_text(base / "study_summary.json", json.dumps(summary, indent=1, default=float) + "\n")
    return {"runs": results, "reports": reports}


POLICY_CHOICES = ("U-Ones", "U-Zeros", "U-Ignore", "U-MultiClass")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.epochs=5")
    p.add_argument("--data-root", help="CheXpert-v1.0(-small) folder holding train.csv and valid.csv")
    p.add_argument("--config", default=str(CONFIG), help="study config (default configs/chexpert_study.yaml)")
    p.add_argument(
        "--policies",
        nargs="+",
        metavar="{" + ",".join(POLICY_CHOICES) + "}",
        help="uncertainty policies to train, one run each (default: data.policy of the config)",
    )
    p.add_argument("--run-dir", help="where runs are written (default output.run_dir of the config)")
    p.add_argument("--resume", action="store_true", help="go on with the policies' runs already in the run "
                   "folder: an interrupted one from its last finished epoch, a finished one trains nothing (its "
                   "outputs are rewritten); a policy without a run starts afresh. Settings must not change")
    p.add_argument("--reports", help="report table (.csv/.tsv/.jsonl/.parquet) to label and describe")
    p.add_argument("--text-column", default="report", help="report text column (default report)")
    p.add_argument("--id-column", help="id column kept in the report labels")
    p.add_argument("--jobs", type=int, default=1, help="labeler worker processes")
    p.add_argument("--plots", action="store_true",
                   help="also write entity / verb / prevalence bar plots (needs --reports, or --smoke)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: synthetic CheXpert layout + invented reports, small backbones, 1 epoch (not with --data-root)",
    )
    from radvision.cli import exit_code, parse_with_overrides

    args = parse_with_overrides(p, argv)  # overrides may come before, between or after the options
    if args.policies:  # `--policies U-Ones U-Zeros optim.epochs=1`: nargs="+" took the overrides after it too
        args.overrides += [a for a in args.policies if "=" in a]
        args.policies = [a for a in args.policies if "=" not in a]
        bad = [a for a in args.policies if a not in POLICY_CHOICES]
        if bad or not args.policies:
            p.error(f"argument --policies: {f'invalid choice: {bad[0]!r}' if bad else 'expected at least one policy'} "
                    f"(choose from {', '.join(POLICY_CHOICES)})")
    if args.smoke and args.data_root:
        p.error("--smoke trains on a synthetic CheXpert folder of its own; drop --data-root, or drop --smoke to "
                "train on that folder")
    if args.plots and not (args.reports or args.smoke):
        p.error("--plots draws the report statistics; give --reports FILE as well")
    logging.basicConfig(
        level=logging.WARNING if args.smoke else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from radlabel.errors import RadlabelError

    def go() -> None:
        if args.smoke:
            kept = args.run_dir is not None
            with tempfile.TemporaryDirectory(prefix="chexpert_smoke_") as tmp:
                args.data_root = str(make_synthetic_chexpert(tmp))
                if not args.reports:  # the invented reports, keyed by their study ids
                    args.reports = str(make_synthetic_reports(Path(tmp) / "reports.csv"))
                    args.id_column = args.id_column or "study_id"
                args.run_dir = args.run_dir or str(Path(tmp) / "runs")
                args.policies = args.policies or ["U-Ones", "U-Zeros"]
                run(args)
            if not kept:
                print("(the smoke run's folder above was temporary and is now removed; --run-dir DIR keeps it)")
        else:
            run(args)

    return exit_code(go, prog=None, errors=(RadlabelError,))


if __name__ == "__main__":
    sys.exit(main())
