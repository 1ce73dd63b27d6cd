"""NIH sample accuracy: the shipped recipe vs the issue's plain ResNet18 loop, on the same valid split.

    .venv/bin/python benchmarks/bench_nih_accuracy.py                       # ../shared/data/nih_sample
    .venv/bin/python benchmarks/bench_nih_accuracy.py --root DIR --seeds 0 1 2 --peer-epochs 15

The figure is the NIH target's: mean AUROC over classes with >= 10 valid positives plus "any finding vs
No Finding" (noisy-OR of the finding probabilities), `radvision.metrics.monitored_mean`.

- recipe: `radvision.Trainer` on `configs/nih_sample.yaml` (train rows, epoch chosen on valid), then
  `radvision.predict_images` on the valid rows.
- peer: torchvision ResNet18 from scratch, BCE, Adam lr 1e-3, batch 32, `--peer-epochs` epochs, last epoch,
  ImageNet normalisation, no augmentation (the "plain torchvision loop" the NIH issue quotes).

It also prints how many valid images come from patients with train images and the any-finding rate of
those and of the rest: this sample's valid images from such patients all carry a finding, so part of the
figure is patient overlap, not disease.

When the table also has `test` rows (the held-out images, with their images in the folder), the same
runs are scored on them too; selection still uses valid only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from radvision import Trainer, load_config, predict_images
from radvision.data import load_image, read_nih
from radvision.errors import RadvisionError
from radvision.metrics import any_finding, monitored_mean

REPO = Path(__file__).resolve().parents[1]


def recipe_run(config: Path, root: Path, seed: int, paths: list[str], workdir: Path) -> pd.DataFrame:
    cfg = load_config(config, [f"data.root={root}", f"runtime.seed={seed}", "runtime.progress=false",
                               f"output.run_dir={workdir / f'recipe_{seed}'}"])
    run_dir = Trainer(cfg).fit()
    return predict_images(run_dir, pd.DataFrame({"path": paths}), device="cpu")


def peer_run(images: torch.Tensor, y: np.ndarray, train: np.ndarray, scored: np.ndarray, seed: int,
             epochs: int) -> np.ndarray:
    import torchvision

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    x = (images.repeat(1, 3, 1, 1) - mean) / std
    target = torch.from_numpy(np.nan_to_num(y[train], nan=0.0)).float()
    model = torchvision.models.resnet18(weights=None, num_classes=y.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows = np.flatnonzero(train)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(rows))
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            loss = F.binary_cross_entropy_with_logits(model(x[rows[b]]), target[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(x[torch.tensor(scored)])).numpy()


def figure(y: np.ndarray, p: np.ndarray, classes: list[str]) -> float:
    return monitored_mean(y, p, classes, "auroc", min_positives=10, include_any=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "nih_sample",
                    help="NIH sample folder (Data_Entry_sample.csv with a split column + images/)")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "nih_sample.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--peer-epochs", type=int, default=15)
    ap.add_argument("--no-peer", action="store_true", help="time and score the recipe only")
    args = ap.parse_args(argv)
    if not args.config.is_file():
        ap.error(f"--config {str(args.config)!r} is not a file; pass a radvision YAML config")
    if args.peer_epochs < 1:
        ap.error(f"--peer-epochs must be 1 or more, got {args.peer_epochs}")
    if not (args.root / "Data_Entry_sample.csv").is_file() and not list(args.root.glob("Data_Entry_2017*.csv")):
        print(f"No NIH table under {args.root}; pass --root with the nih_sample folder.", file=sys.stderr)
        return 2
    try:
        load_config(args.config, [f"data.root={args.root}"])  # a bad config stops before any image is read
        return _run(args)
    except RadvisionError as err:  # a wrong --root or --config: one line, as the radvision CLI says it
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    table = read_nih(args.root)
    frame, classes = table.frame, list(table.classes)
    split = frame["split"] if "split" in frame else pd.Series("", index=frame.index)
    train = (split == "train").to_numpy()
    y = frame[classes].to_numpy(dtype=float)
    # valid always; test too when the table has the held-out rows
    splits = {s: (split == s).to_numpy() for s in ("valid", "test") if (split == s).any()}
    if "valid" not in splits:
        print(f"{args.root} has no valid rows (a 'split' column, or official split lists); the recipe selects its "
              "epoch on them.", file=sys.stderr)
        return 2
    for name, mask in splits.items():
        seen = frame.loc[mask, "patient_id"].isin(frame.loc[train, "patient_id"]).to_numpy()
        any_true, _ = any_finding(y[mask], y[mask], classes)
        print(f"{name}: {mask.sum()} images, {seen.sum()} of them from patients with train images (any-finding "
              f"rate {np.nanmean(any_true[seen]) if seen.any() else float('nan'):.2f} vs "
              f"{np.nanmean(any_true[~seen]) if (~seen).any() else float('nan'):.2f} for the rest)")
    scored = np.logical_or.reduce(list(splits.values()))

    images = None
    if not args.no_peer:  # decoded as radvision decodes them, so an unreadable file is named in one line
        images = torch.stack([torch.from_numpy(np.asarray(load_image(p, mode="L"), dtype=np.float32) / 255.0)
                              for p in frame["path"]])[:, None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            t0 = time.perf_counter()
            pred = recipe_run(args.config, args.root, seed, list(frame.loc[scored, "path"]), Path(tmp))
            prob = pred[classes].to_numpy()
            row: dict[str, object] = {"seed": seed}
            for name, mask in splits.items():  # predictions are for the `scored` rows, in order
                row["recipe" if name == "valid" else f"recipe_{name}"] = figure(y[mask], prob[mask[scored]], classes)
            row["recipe_s"] = time.perf_counter() - t0
            if images is not None:
                t0 = time.perf_counter()
                p = peer_run(images, y, train, scored, seed, args.peer_epochs)
                for name, mask in splits.items():
                    row["peer" if name == "valid" else f"peer_{name}"] = figure(y[mask], p[mask[scored]], classes)
                row["peer_s"] = time.perf_counter() - t0
            rows.append(row)
            print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                  flush=True)
    out = pd.DataFrame(rows)
    line = f"mean valid figure: recipe {out['recipe'].mean():.3f} ({out['recipe_s'].mean():.0f} s/run)"
    if "peer" in out:
        line += (f"  |  plain ResNet18 peer {out['peer'].mean():.3f} ({out['peer_s'].mean():.0f} s/run)"
                 f"  |  difference {out['recipe'].mean() - out['peer'].mean():+.3f}")
    print(line)
    if "recipe_test" in out:
        line = f"mean test figure: recipe {out['recipe_test'].mean():.3f}"
        if "peer_test" in out:
            line += f"  |  plain ResNet18 peer {out['peer_test'].mean():.3f}"
        print(line + "  (target >= 0.70)")
    else:
        print("target: >= 0.70 on the held-out test images (not in this sample); the valid figure is a proxy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
