"""ImageCLEF 2020 medical concept detection: VGG16 + MLP head (2 x 4096, dropout 0.5), soft-F1 + BCE loss.

Setup (configs/imageclef2020_vgg16.yaml): the concept vocabulary is the `--top-concepts` most frequent UMLS
concepts (CUIs) of the training file that occur in at least `--min-frequency` images; an ImageNet VGG16 with a
2 x 4096 MLP head (dropout 0.5) predicts them, trained with (1 - soft-F1) + BCE.  Per-concept F1-optimal
thresholds are chosen on a validation split of the training images, and each image keeps at most
`thresholds.top_k` (100, ImageCLEF's limit) concepts that pass their threshold.  The score is ImageCLEF's:
per image F1 = 2|P & G| / (|P| + |G|) against ALL of the image's gold concepts (1 when both are empty),
averaged over images (instance-averaged / samples F1).  Concepts outside the vocabulary therefore count as
misses, as they do in the official evaluation; the F1 over the kept vocabulary is printed beside it.

Layout (`--data-root ROOT`, file names changeable with the flags below):
    ROOT/train_concepts.csv   ROOT/train/<ID>.jpg    tab-separated "ID<TAB>CUI;CUI;..." (ImageCLEF 2019-21)
    ROOT/valid_concepts.csv   ROOT/valid/<ID>.jpg    the official validation set, scored as the test set
    (images may sit in subfolders: ImageCLEF 2020's one folder per modality, DRAN ... DRXR)

    python examples/imageclef_concepts.py --data-root /data/imageclef2020 --top-concepts 100
    python examples/imageclef_concepts.py --train-concepts T.csv --train-images T/ --valid-concepts V.csv \\
        --valid-images V/ --min-frequency 10 optim.epochs=5
    python examples/imageclef_concepts.py --smoke       # seconds: synthetic concept file + images

Any config key can be changed with `key=value` overrides (e.g. `model.pretrained=/path/vgg16.pth`).
The test predictions are written in the submission format (`test_submission.tsv`) in the run directory
(`valid_submission.tsv` when there is no test split and the valid images are scored).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "imageclef2020_vgg16.yaml"

# --smoke: the same pipeline with a tiny CNN and a 64-unit MLP at 32 px, 1 epoch, no weights.
SMOKE = {
    "data": {"image_size": 32},
    "model": {"backbone": "simple_cnn", "hidden": [64, 64], "pretrained": None},
    "optim": {"batch_size": 16, "epochs": 1, "num_workers": 0},
    "schedule": {"patience": None, "plateau_patience": None},
    "thresholds": {"top_k": 3},
    "runtime": {"amp": "no", "channels_last": False, "device": "cpu", "progress": False},
}


# ------------------------------------------------------------------------------------------ configuration


def study_config(
    config: str | Path = CONFIG,
    overrides: list[str] | tuple[str, ...] = (),
    smoke: bool = False,
    run_dir: str | None = None,
) -> Any:
    """The validated radvision Config of the study (smoke settings, run dir and overrides applied)."""
    from radvision.config import load_config, merge_sections
    from radvision.errors import RadvisionError

    updates = SMOKE if smoke else {}
    if run_dir is not None:
        updates = merge_sections(updates, {"output": {"run_dir": str(run_dir)}})
    cfg = load_config(config, overrides, updates=updates)
    if cfg.data.dataset != "imageclef":  # its config.yaml would say it trained on something else
        raise RadvisionError(f"This study trains on ImageCLEF concepts, but the config's data.dataset is "
                             f"{cfg.data.dataset!r}; use configs/imageclef2020_vgg16.yaml or data.dataset=imageclef.")
    return cfg


# -------------------------------------------------------------------------------------------------- data


def concept_table(
    concepts_csv: str | Path,
    image_dir: str | Path,
    classes: list[str],
    sep: str | None = None,
    missing: str = "raise",
) -> Any:
    """A LabelTable over a fixed concept vocabulary (e.g. the training one) for another concept file.

    Vocabulary concepts the file never uses are all-negative columns; the image's full concept list stays in
    the `concepts` column for the official score.
    """
    from radvision.data import LabelTable, read_imageclef
    from radvision.data.imageclef import concept_set
    from radvision.data.table import finish_frame

    full = read_imageclef(concepts_csv, image_dir, sep=sep, missing=missing)
    frame = full.frame[["path", "patient_id", "concepts"]].copy()
    sets = frame["concepts"].map(concept_set)
    for c in classes:
        frame[c] = sets.map(lambda s, c=c: float(c in s))
    return LabelTable(finish_frame(frame, classes), classes, full.root)


def vocabulary_stats(table: Any) -> dict[str, float]:
    """Label cardinality / density over all concepts of the file and over the kept vocabulary."""
    from radvision.data import label_cardinality, label_density
    from radvision.data.imageclef import concept_set

    sets = table.frame["concepts"].map(concept_set)
    all_concepts = Counter(c for s in sets for c in s)
    return {
        "images": len(table),
        "concepts_in_file": len(all_concepts),
        "concepts_kept": len(table.classes),
        "cardinality_all": float(sets.map(len).mean()) if len(sets) else float("nan"),
        "density_all": float(sets.map(len).mean() / len(all_concepts)) if all_concepts else float("nan"),
        "cardinality_kept": label_cardinality(table),
        "density_kept": label_density(table),
    }


# ----------------------------------------------------------------------------------------------- scoring


def predicted_concepts(labels: Any, classes: list[str]) -> list[set[str]]:
    """Concepts per image from `radvision predict --labels` output (its `<concept>_label` 0/1 columns, blank
    for an unreadable image, which predicts nothing)."""
    names = np.asarray(classes, dtype=object)
    chosen = labels[[f"{c}_label" for c in classes]].fillna(0).to_numpy(dtype=float) > 0
    return [set(names[row]) for row in chosen]


def write_submission(path: Path, ids: list[str], concepts: list[set[str]]) -> Path:
    """`ID<TAB>CUI;CUI` lines, one per test image (the ImageCLEF run format), written atomically."""
    from radvision.config import atomic_write_text

    lines = [f"{i}\t{';'.join(sorted(c))}" for i, c in zip(ids, concepts, strict=True)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def score_run(run: Path, test: Any, cfg: Any, split: str = "test") -> dict[str, float]:
    """Predict the images of `split` with the finished run, score them the ImageCLEF way and write
    `<split>_submission.tsv`."""
    from radvision.data.imageclef import concept_set
    from radvision.metrics import imageclef_f1
    from radvision.predict import predict

    classes = list(test.classes)
    # with_labels: the run's own decision rule (its thresholds, thresholds.top_k, min_labels, cardinality)
    pred = predict(run, test.frame[["path"]], batch_size=cfg.optim.batch_size, device=cfg.runtime.device,
                   with_labels=True)
    chosen = predicted_concepts(pred, classes)
    gold_all = test.frame["concepts"].map(concept_set).tolist()
    vocab = set(classes)
    gold_kept = [g & vocab for g in gold_all]
    write_submission(run / f"{split}_submission.tsv", test.frame["patient_id"].tolist(), chosen)
    return {
        "images": len(test),
        "imageclef_f1": imageclef_f1(chosen, gold_all),
        "f1_kept_concepts": imageclef_f1(chosen, gold_kept),
        "mean_predicted_concepts": float(np.mean([len(c) for c in chosen])) if chosen else float("nan"),
    }


# ------------------------------------------------------------------------------------------- smoke data


def make_synthetic_imageclef(
    root: str | Path, n_train: int = 64, n_valid: int = 24, size: int = 40, seed: int = 0
) -> Path:
    """A tiny ImageCLEF layout: train_concepts.csv / valid_concepts.csv ("ID<TAB>CUI;CUI") + PNG folders.

    Concept frequencies fall off like real ones (a few common, several rare, some seen once, which the
    min-frequency filter drops); the first two concepts are drawn into the image (brightness, a stripe).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    cuis = [f"C{1000000 + 137 * j:07d}" for j in range(14)]
    freq = np.array([0.6, 0.5, 0.35, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05, 0.03, 0.0, 0.0])
    for split, n in (("train", n_train), ("valid", n_valid)):
        (root / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            present = [c for c, f in zip(cuis, freq, strict=True) if rng.random() < f]
            if split == "train" and i == 0:
                present.append(cuis[12])  # seen once: below any min-frequency filter
            img = rng.integers(0, 70, size=(size, size)).astype(np.uint8)
            if cuis[0] in present:
                img += 120
            if cuis[1] in present:
                img[:, size // 2 - 3 : size // 2 + 3] = 255
            image_id = f"ROCO_CLEF_{split}_{i:05d}"
            Image.fromarray(img, mode="L").save(root / split / f"{image_id}.png")
            lines.append(f"{image_id}\t{';'.join(present)}")
        (root / f"{split}_concepts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# -------------------------------------------------------------------------------------------------- main


def resolve_layout(args: argparse.Namespace, cfg: Any = None) -> dict[str, Path | None]:
    """Concept files and image folders from the per-file flags, else the config's data.csv / data.root (the
    training concept file and image folder, as `radvision train` reads them), else --data-root."""
    from radvision.errors import RadvisionError

    root = Path(args.data_root) if args.data_root else None
    from_config = {"train_concepts": cfg.data.csv, "train_images": cfg.data.root} if cfg is not None else {}
    layout: dict[str, Path | None] = {}
    for key, default in (
        ("train_concepts", "train_concepts.csv"),
        ("train_images", "train"),
        ("valid_concepts", "valid_concepts.csv"),
        ("valid_images", "valid"),
    ):
        given = getattr(args, key) or from_config.get(key)
        layout[key] = Path(given) if given else (root / default if root else None)
    if layout["train_concepts"] is None or layout["train_images"] is None:
        raise RadvisionError(
            "No training data given; pass --data-root, or --train-concepts and --train-images (data.csv and "
            "data.root), or --smoke for the synthetic check."
        )
    if layout["valid_concepts"] is not None and not layout["valid_concepts"].is_file():
        if args.valid_concepts:
            raise RadvisionError(f"Validation concept file {str(layout['valid_concepts'])!r} does not exist.")
        layout["valid_concepts"] = None  # --data-root without a validation file: split the training images
    if layout["valid_concepts"] is not None and layout["valid_images"] is None:
        raise RadvisionError("--valid-concepts needs --valid-images, the folder of the validation images "
                             "(or --data-root with a valid/ folder).")
    return layout


def train_valid_split(split: dict[str, float]) -> dict[str, float]:
    """The training images' split when a validation concept file is the test set: data.split's train fraction
    (default 0.9), the rest valid; a test fraction would only shrink the data, so it goes to valid, with a
    warning."""
    train = split.get("train", 0.9)
    if split.get("test"):
        logging.getLogger(__name__).warning(
            "data.split asks for a test fraction of %s, but the validation concept file is the test set here; "
            "the training images are split %s train / %s valid.", split["test"], train, round(1 - train, 6))
    return {"train": train, "valid": round(1 - train, 6)}


def vocabulary_filters(args: argparse.Namespace, cfg: Any) -> tuple[int | None, int]:
    """(top_k, min_frequency) of the vocabulary: the flags, else data.concept_top_k / data.concept_min_frequency
    (as `radvision train` reads them), else for --smoke the synthetic data's own 8 / 2."""
    d = cfg.data
    top_k = args.top_concepts if args.top_concepts is not None else d.concept_top_k
    min_frequency = args.min_frequency if args.min_frequency is not None else d.concept_min_frequency
    if args.smoke and args.top_concepts is None and d.concept_top_k is None:
        top_k = 8
    if args.smoke and args.min_frequency is None and d.concept_min_frequency == 1:
        min_frequency = 2
    return top_k, min_frequency


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the study as the parsed arguments say; returns vocabulary statistics and scores."""
    from radvision.config import atomic_write_text
    from radvision.data import patient_split, read_imageclef
    from radvision.errors import RadvisionError
    from radvision.train import Trainer, make_datasets

    cfg = study_config(args.config, args.overrides, smoke=args.smoke, run_dir=args.run_dir)
    layout = resolve_layout(args, cfg)
    # as `radvision train`: with on_error=skip a missing image stays in its table, so the datasets skip and list it
    # (skipped_images.csv) and a missing test image is scored as predicting nothing, not left out of the score
    missing = "ignore" if cfg.data.on_error == "skip" else "raise"
    top_k, min_frequency = vocabulary_filters(args, cfg)
    # the run's config.yaml records what was trained on: `radvision train` on it reads the same vocabulary
    cfg.data.csv, cfg.data.root = str(layout["train_concepts"]), str(layout["train_images"])
    cfg.data.concept_top_k, cfg.data.concept_min_frequency = top_k, min_frequency
    train_all = read_imageclef(
        layout["train_concepts"],
        layout["train_images"],
        top_k=top_k,
        min_frequency=min_frequency,
        sep=args.sep,
        classes=cfg.data.classes,
        missing=missing,
    )
    stats = vocabulary_stats(train_all)
    print(
        "training concepts: "
        + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()})
    )
    seed = cfg.runtime.seed
    if layout["valid_concepts"] is not None:
        cfg.data.split = train_valid_split(cfg.data.split)  # config.yaml records the split actually used
        parts = patient_split(train_all, cfg.data.split, seed)
        parts["test"] = concept_table(
            layout["valid_concepts"],
            layout["valid_images"],
            list(train_all.classes),
            sep=args.sep,
            missing=missing,
        )
    else:
        parts = patient_split(train_all, cfg.data.split, seed)
    datasets = make_datasets(cfg, parts)
    if "test" in datasets and len(datasets["test"]) == 0:  # on_error=skip left none: say so before training
        raise RadvisionError(f"No image of the validation concept file {str(layout['valid_concepts'])!r} could be "
                             f"read from {str(layout['valid_images'])!r} (see the warning above); give the folder "
                             "that holds them with --valid-images.")
    run_dir = Trainer(cfg).fit(datasets["train"], datasets["valid"], datasets.get("test"))
    scored = "test" if "test" in datasets else "valid"
    # without a test split the valid images (which chose the thresholds) are scored, and named so
    scores = score_run(run_dir, parts[scored], cfg, scored)
    other = "valid" if scored == "test" else "test"
    (run_dir / f"{other}_submission.tsv").unlink(missing_ok=True)  # an overwritten run's, from another model
    result = {"run_dir": str(run_dir), "scored_split": scored, "vocabulary": stats, "scores": scores}
    atomic_write_text(run_dir / "imageclef_scores.json", json.dumps(result, indent=1) + "\n")
    print(f"run dir: {run_dir}")
    limit = f"<= {cfg.thresholds.top_k} concepts each" if cfg.thresholds.top_k is not None else "no concept limit"
    print(
        f"{scored} ({scores['images']} images, {limit}): "
        f"ImageCLEF F1 {scores['imageclef_f1']:.4f} (all gold concepts), "
        f"{scores['f1_kept_concepts']:.4f} (kept vocabulary), "
        f"{scores['mean_predicted_concepts']:.2f} concepts predicted per image"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.epochs=5")
    p.add_argument("--data-root", help="folder with train_concepts.csv, train/, valid_concepts.csv, valid/")
    p.add_argument("--train-concepts", help="training concept file (default DATA_ROOT/train_concepts.csv)")
    p.add_argument("--train-images", help="training image folder (default DATA_ROOT/train)")
    p.add_argument("--valid-concepts", help="validation concept file, scored as the test set")
    p.add_argument("--valid-images", help="validation image folder (default DATA_ROOT/valid)")
    p.add_argument("--sep", default=None,
                   help="concept file separator (default: detected; '\\t' or tab for ImageCLEF 2019-2021, ',' for "
                        "ROCOv2)")
    p.add_argument(
        "--top-concepts",
        type=int,
        default=None,
        help="keep the K most frequent concepts (default: data.concept_top_k of the config, null: all that pass "
             "--min-frequency; 8 with --smoke)",
    )
    p.add_argument("--min-frequency", type=int, default=None,
                   help="drop concepts seen in fewer training images (default: data.concept_min_frequency of the "
                        "config, 1; 2 with --smoke)")
    p.add_argument(
        "--config", default=str(CONFIG), help="study config (default configs/imageclef2020_vgg16.yaml)"
    )
    p.add_argument("--run-dir", help="where the run is written (default output.run_dir of the config)")
    p.add_argument(
        "--smoke", action="store_true", help="seconds: synthetic concept files + images, tiny model"
    )
    from radvision.cli import exit_code, parse_with_overrides

    args = parse_with_overrides(p, argv)  # overrides may come before, between or after the options
    if args.top_concepts is not None and args.top_concepts < 1:
        p.error(f"--top-concepts must be 1 or more (or left out to keep every concept), got {args.top_concepts}")
    if args.min_frequency is not None and args.min_frequency < 1:
        p.error(f"--min-frequency must be 1 or more, got {args.min_frequency}")
    logging.basicConfig(
        level=logging.WARNING if args.smoke else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    def go() -> None:
        if args.smoke:
            kept = args.run_dir is not None
            with tempfile.TemporaryDirectory(prefix="imageclef_smoke_") as tmp:
                args.data_root = str(make_synthetic_imageclef(Path(tmp) / "data"))
                args.run_dir = args.run_dir or str(Path(tmp) / "run")
                run(args)
            if not kept:
                print("(the smoke run's folder above was temporary and is now removed; --run-dir DIR keeps it)")
        else:
            run(args)

    return exit_code(go, prog=None)


if __name__ == "__main__":
    sys.exit(main())
