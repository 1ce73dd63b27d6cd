"""Training and inference throughput (images/s) of radvision classifiers on synthetic tensors.

    python benchmarks/bench_train.py                                   # resnet50 densenet121 convnext_tiny
    python benchmarks/bench_train.py --models resnet50 --batch-size 256 --steps 30

Models are built through `radvision.heads.build_model` (random init, 14 classes, linear head), so this measures
the stack users train with.  The peer is the bare torchvision model of the same name (`torchvision.models.<name>(
num_classes=14)`) in the same loop; the ratio column is radvision / peer, so it shows what radvision's wrapping
(input normalisation, pooling, head) costs.  `--compile` wraps both in `torch.compile` (`runtime.compile`).  On CUDA the steps run under bf16 autocast (fp16 + GradScaler where bf16 is not
supported) with channels_last memory; on CPU in float32.  Data loading is excluded on purpose (see
bench_loading.py for that): the inputs are one random batch kept on the device.

Target (printed): ResNet50, AMP + channels_last, training >= 2,000 images/s on one H100.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import torch

from radvision.errors import RadvisionError
from radvision.heads import build_model

DEFAULT_MODELS = ("resnet50", "densenet121", "convnext_tiny")
NUM_CLASSES = 14
# (model, device type) -> minimum training images/s; printed beside the measurement
TARGETS = {("resnet50", "cuda"): 2000.0}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], None], warmup: int, steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of `step` after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def radvision_model(name: str) -> torch.nn.Module:
    return build_model(name, NUM_CLASSES, [f"c{i}" for i in range(NUM_CLASSES)])


def peer_model(name: str) -> torch.nn.Module | None:
    """The bare torchvision model of that name, or None where torchvision has none (timm/..., simple_cnn)."""
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        return None
    kwargs = {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
    return torchvision.models.get_model(name, weights=None, num_classes=NUM_CLASSES, **kwargs)


def bench_model(model: torch.nn.Module, device: torch.device, batch_size: int, size: int, warmup: int, steps: int,
                amp: bool, channels_last: bool, compile: bool = False) -> dict[str, float]:
    """Training and inference images/s of one model on one random batch kept on the device."""
    model = model.to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=memory_format)
    y = (torch.rand(batch_size, NUM_CLASSES, device=device) < 0.2).float()
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    use_scaler = amp and dtype == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    if compile:
        model = torch.compile(model)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    @torch.no_grad()
    def infer_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            model(x)

    model.train()
    train_s = _timed(train_step, warmup, steps, device)
    model.eval()
    infer_s = _timed(infer_step, warmup, steps, device)
    images = batch_size * steps
    return {"train_img_s": images / train_s, "infer_img_s": images / infer_s}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registry backbone names")
    p.add_argument("--batch-size", type=int, default=None, help="default: 128 on CUDA, 8 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 2 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 5 on CUDA, 1 on CPU)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile both models (slow to start on a CPU)")
    p.add_argument("--no-peer", action="store_true", help="skip the bare torchvision models")
    args = p.parse_args(argv)
    from radvision.backbones import get_spec

    for name in args.models:  # a typo or a too-small --size stops here, before the table starts
        try:
            spec = get_spec(name)
        except RadvisionError as err:
            p.error(str(err))
        if args.size < spec.min_size:
            p.error(f"{name} needs images of at least {spec.min_size}x{spec.min_size} pixels, got --size {args.size}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda was asked for but no CUDA device is available")
    for flag, value, least in (("--batch-size", args.batch_size, 1), ("--steps", args.steps, 1),
                               ("--warmup", args.warmup, 0), ("--size", args.size, 1)):
        if value is not None and value < least:
            p.error(f"{flag} must be {least} or more, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cuda = args.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch = args.batch_size if args.batch_size is not None else (128 if cuda else 8)
    steps = args.steps if args.steps is not None else (20 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = cuda and not args.no_amp
    channels_last = cuda and not args.no_channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True
    print(f"device: {device_name(device)}; batch {batch}, {args.size}px, {warmup} warm-up + {steps} timed steps, "
          f"amp={'bf16/fp16' if amp else 'off'}, channels_last={channels_last}, compile={args.compile}; "
          f"torch {torch.__version__}")
    print(f"{'model':<16}{'train img/s':>14}{'peer':>10}{'ratio':>7}{'infer img/s':>14}{'peer':>10}{'ratio':>7}  target")
    run = dict(device=device, batch_size=batch, size=args.size, warmup=warmup, steps=steps, amp=amp,
               channels_last=channels_last, compile=args.compile)
    for name in args.models:
        try:
            r = bench_model(radvision_model(name), **run)
            peer = None if args.no_peer else peer_model(name)
            p = bench_model(peer, **run) if peer is not None else None
        except RadvisionError as err:  # e.g. a timm model with a fixed input size: one line, as the CLI says it
            print(f"bench_train.py: error: {err}", file=sys.stderr)
            return 2
        except ValueError as err:  # batch norm over a 1x1 map of one image: too small a --size for --batch-size 1
            print(f"bench_train.py: error: {name} at --size {args.size}, --batch-size {batch} cannot train: "
                  f"{str(err).splitlines()[0]}; use a larger --size or --batch-size", file=sys.stderr)
            return 2
        cells = []
        for key in ("train_img_s", "infer_img_s"):
            cells.append(f"{r[key]:>14,.1f}" + (f"{p[key]:>10,.1f}{r[key] / p[key]:>6.2f}x" if p else f"{'-':>10}{'-':>7}"))
        target = TARGETS.get((name, device.type))
        verdict = ""
        if target is not None:
            verdict = f"train >= {target:,.0f}: {'PASS' if r['train_img_s'] >= target else 'FAIL'}"
        print(f"{name:<16}{''.join(cells)}  {verdict}", flush=True)
        if cuda:
            torch.cuda.empty_cache()
    if not cuda:
        print("target: resnet50 AMP + channels_last training >= 2,000 img/s on one H100 (not measurable on CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
