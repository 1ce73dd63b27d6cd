"""Images/s of one epoch decoded from full-size PNGs vs read from the pre-resized uint8 cache.

    .venv/bin/python benchmarks/bench_loading.py                 # 200 synthetic 1024x1024 PNGs (half 16-bit)
    .venv/bin/python benchmarks/bench_loading.py --root /data/nih/images_001 --n 500

Both epochs run the same eval transform (resize to --size, --channels channels, normalised) through a
DataLoader, from a cache holding what a run with that data.channels caches (RGB for 3, the default); the
cache build (a one-off cost) is timed separately. Target: cache >= 10x faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from radvision.data import ImageDataset, LabelTable, build_cache, build_transforms
from radvision.data.images import IMAGE_EXTENSIONS
from radvision.errors import RadvisionError


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[str]:
    """Synthetic radiograph-like PNGs: smooth anatomy-ish shapes plus noise; even ones 16-bit."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths = []
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2)
        body = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / rng.uniform(0.05, 0.2))
        lungs = 0.5 * np.sin(xx * rng.uniform(8, 14)) ** 2 * np.cos(yy * rng.uniform(4, 8)) ** 2
        img = body + lungs + rng.normal(0, 0.03, (size, size)).astype(np.float32)
        img = (img - img.min()) / (img.max() - img.min())
        p = folder / f"img_{i:05d}.png"
        if i % 2 == 0:
            Image.fromarray((img * 4095).astype(np.uint16)).save(p)  # 12-bit data in a 16-bit PNG
        else:
            Image.fromarray((img * 255).astype(np.uint8), mode="L").save(p)
        paths.append(str(p))
    return paths


def epoch(ds: ImageDataset, batch_size: int, workers: int) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers, shuffle=True)
    t0 = time.perf_counter()
    n = 0
    for images, _ in loader:
        n += len(images)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, help="folder of images (searched recursively); default: synthetic PNGs")
    ap.add_argument("--n", type=int, default=200, help="number of images")
    ap.add_argument("--source-size", type=int, default=1024, help="side of the synthetic images")
    ap.add_argument("--size", type=int, default=224, help="training resolution / cache side")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for both epochs")
    ap.add_argument("--cache-workers", type=int, default=2, help="threads decoding while building the cache")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads in the main process (DataLoader workers always use 1)")
    ap.add_argument("--channels", type=int, choices=(1, 3), default=3,
                    help="data.channels of the run being timed (3, the default, caches RGB)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line of results")
    args = ap.parse_args(argv)
    for flag, value, least in (("--n", args.n, 1), ("--source-size", args.source_size, 1), ("--size", args.size, 8),
                               ("--batch-size", args.batch_size, 1), ("--workers", args.workers, 0),
                               ("--cache-workers", args.cache_workers, 1), ("--threads", args.threads, 1)):
        if value < least:
            ap.error(f"{flag} must be {least} or more, got {value}")
    if args.root is not None and not args.root.is_dir():
        ap.error(f"--root {args.root} is not a folder")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_loading_") as tmp:
        tmp = Path(tmp)
        if args.root:
            paths = sorted(str(p) for p in args.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[: args.n]
            if not paths:
                print(f"no images under {args.root}", file=sys.stderr)
                return 2
        else:
            (tmp / "images").mkdir()
            t0 = time.perf_counter()
            paths = make_images(tmp / "images", args.n, args.source_size)
            print(f"generated {len(paths)} synthetic {args.source_size}px PNGs in {time.perf_counter() - t0:.1f} s")
        frame = pd.DataFrame({"path": paths, "dummy": np.zeros(len(paths), np.float32), "patient_id": paths})
        table = LabelTable(frame, ["dummy"], None)
        # squashed to size, args.channels: what the cache below stores, so both epochs yield the same tensors
        transform = build_transforms("none", args.size, train=False, channels=args.channels)

        try:
            full = epoch(ImageDataset(table, transform), args.batch_size, args.workers)
            t0 = time.perf_counter()
            cache = build_cache(table, args.size, tmp / "cache", channels=args.channels, workers=args.cache_workers,
                                progress=False)
            build_s = time.perf_counter() - t0
            cached = epoch(ImageDataset(table, transform, cache=cache), args.batch_size, args.workers)
        except RadvisionError as err:  # an unreadable image under --root: one line, as the radvision CLI says it
            print(f"{ap.prog}: error: {err}", file=sys.stderr)
            return 2

    ratio = cached / full
    print(f"images: {len(paths)}   size: {args.size}px   channels: {args.channels}   DataLoader workers: {args.workers}")
    print(f"full-size PNG decode : {full:9.1f} images/s")
    print(f"uint8 cache          : {cached:9.1f} images/s")
    print(f"speed-up             : {ratio:9.1f}x  (target >= 10x)")
    print(f"cache build (one-off): {build_s:9.1f} s  ({len(paths) / build_s:.1f} images/s, "
          f"{args.cache_workers} threads)")
    if args.json:
        print(json.dumps({"n": len(paths), "size": args.size, "full_ips": round(full, 1),
                          "cache_ips": round(cached, 1), "ratio": round(ratio, 1), "build_s": round(build_s, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
