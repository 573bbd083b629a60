"""The loss inside fp16 autocast (the authors) vs from fp32 copies of the outputs (ours).

    python benchmarks/gpu_loss_precision.py [--steps 30] [--out FILE.json]   # on a GPU: ESM2-35M
    python benchmarks/gpu_loss_precision.py --cpu-smoke                      # tiny model, CPU

Trains the same run twice, ``train.precision=fp16`` (autocast + gradient scaler, as the
authors), once with ``train.loss_precision=fp32`` and once with ``autocast``: a random
ESM2-35M-shaped SeqDance, the real 4-protein dataset of tests/test_train.py (3tvj_I and
5xnd MD, 2g3r and 2KCF NMA, all four trained on), crop 256, batch 4 per group, AdamW 1e-4
with 5 warm-up updates. Prints one JSON object: the logged loss of every update of both runs,
and the largest relative difference (a non-finite loss ends a run with an error).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from seqdance.data.build import BuildConfig, build_dataset
from seqdance.errors import SeqDanceError
from seqdance.train.config import Config, DataConfig, ModelConfig, OptimConfig, Phase, TrainConfig
from seqdance.train.loop import LOG_FILE, train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def dataset(folder: Path) -> Path:
    tvj, xnd, nma = DATA / "md" / "3tvj_I", DATA / "md" / "5xnd", DATA / "nma"
    rows = [
        f"3tvj_I,ATLAS,md,{tvj / '3tvj_I.pdb'},{tvj / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,ATLAS,md,{xnd / '5xnd_topology.pdb'},{xnd / '5xnd_6frames.dcd'},,train",
        f"2g3r,proteinflow_pdb,nma,,,{nma / '2g3r.pdb'},train",
        f"2KCF,proteinflow_pdb,nma,,,{nma / '2KCF.pdb'},train",
    ]
    manifest = folder / "manifest.csv"
    header = "name,source,kind,topology,trajectory,structure,label"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    report = build_dataset(manifest, folder / "ds", BuildConfig(workers=1, progress=False))
    if not report.ok:
        raise SeqDanceError(f"dataset build failed: {report.failed}")
    return folder / "ds"


def run(data: Path, out: Path, where: str, steps: int, smoke: bool) -> list[float]:
    model = ModelConfig(arch="esm2_t12_35M_UR50D")
    if smoke:
        model = ModelConfig(arch="tiny", layers=2, hidden=32, heads=4, ffn=64)
    config = Config(
        data=DataConfig(dir=str(data)),
        model=model,
        optim=OptimConfig(lr=1e-4, warmup_steps=5),
        train=TrainConfig(
            max_steps=steps,
            save_every=steps,
            log_every=1,
            phases=[Phase(crop_size=64 if smoke else 256, batch_size=4, accum_steps=1)],
            device="cpu" if smoke else "cuda",
            precision="fp16",
            loss_precision=where,
            progress=False,
        ),  # fmt: skip
        seed=0,
        out_dir=str(out),
    )
    train(config)
    lines = (out / LOG_FILE).read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cpu-smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("error: no GPU visible (use --cpu-smoke for a CPU run)")
    with tempfile.TemporaryDirectory() as tmp:
        data = dataset(Path(tmp))
        losses = {w: run(data, Path(tmp) / w, w, args.steps, args.cpu_smoke)
                  for w in ("fp32", "autocast")}  # fmt: skip
    pairs = zip(losses["fp32"], losses["autocast"], strict=True)
    result = {
        "device": torch.cuda.get_device_name() if not args.cpu_smoke else "cpu",
        "arch": "tiny" if args.cpu_smoke else "esm2_t12_35M_UR50D",
        "steps": args.steps,
        "loss_fp32": losses["fp32"],
        "loss_autocast": losses["autocast"],
        "final": {w: v[-1] for w, v in losses.items()},
        "max_relative_difference": max(abs(a - b) / abs(a) for a, b in pairs),
    }
    text = json.dumps(result)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
