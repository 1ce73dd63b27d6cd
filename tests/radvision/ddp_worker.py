"""Run by tests/radvision/test_train_distributed.py under torchrun: trains a tiny FPN model on two CPU
processes, then writes every rank's checksum of the backbone's last gradients.

Gradients, not weights: DDP copies rank 0's weights to every rank each time it wraps the model (also after
training), which would hide ranks that drifted apart; the last step's gradients show whether the stages
opened mid-cycle were averaged across processes."""

import json
import sys

import torch
import torch.distributed as dist

from radvision.config import load_config
from radvision.train import Trainer


def main(csv: str, run_dir: str, out: str, backbone: str, strategy: str, image_size: str, epochs: str,
         resume: str = "") -> None:
    torch.set_num_threads(1)
    cfg = load_config(None, [
        "data.dataset=csv", f"data.csv={csv}", f"data.image_size={image_size}", "data.transforms=none",
        f"model.backbone={backbone}", "model.head=fpn", f"model.strategy={strategy}", "optim.batch_size=4",
        f"optim.epochs={epochs}", "optim.lr=0.05", "runtime.device=cpu", "runtime.progress=false",
        "schedule.plateau_patience=null", "schedule.patience=null", "schedule.restore_best=false",
        f"output.run_dir={run_dir}",
    ])
    trainer = Trainer(cfg, resume=run_dir if resume == "resume" else None)
    trainer.fit()
    grads = [p.grad for p in trainer.model.backbone.parameters() if p.grad is not None]
    checksum = torch.tensor([float(sum(g.double().sum() for g in grads))])
    gathered = [torch.zeros(1) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump({"checksums": [float(g) for g in gathered], "backbone_grads": len(grads),
                       "unfrozen_stages": int(trainer.model.unfrozen_stages)}, f)
    # an orderly teardown: a process group left to interpreter exit can abort ("terminate called without
    # an active exception") while gloo's threads are still up, which fails the run on a loaded machine
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:9])
