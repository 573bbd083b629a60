"""Write the checkpoints of tests/test_esm2_reference.py with the installed transformers.

    python tests/data/esm2_versions/make_fixtures.py   # once per transformers version

mlm_<version>/: ``EsmForMaskedLM.save_pretrained`` of a tiny random ESM2, with the logits that
version computes. seqdance_<version>/: a tiny random SeqDance model in the published hub
layout (``model.safetensors`` of the whole module, ``esm2.*`` as that version's
``EsmModel(add_pooling_layer=True)`` names them, pooler included), with the outputs of the
naive forward on that version's trunk (benchmarks/naive_model.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from naive_model import hf_config, naive_forward, stock_trunk  # noqa: E402

from helpers import TINY  # noqa: E402
from seqdance.model import SeqDanceConfig, SeqDanceModel  # noqa: E402
from test_esm2_reference import _batch, _randomise  # noqa: E402


def main() -> None:
    version = transformers.__version__
    ids, mask = _batch()
    origin = {"transformers": version, "torch": torch.__version__,
              "written_by": "tests/data/esm2_versions/make_fixtures.py"}  # fmt: skip

    folder = HERE / f"mlm_{version}"
    mlm = transformers.EsmForMaskedLM(hf_config(TINY))
    _randomise(mlm, 11)
    mlm.save_pretrained(folder)
    with torch.no_grad():
        logits = mlm.eval()(input_ids=ids, attention_mask=mask).logits
    torch.save({"input_ids": ids, "attention_mask": mask, "logits": logits}, folder / "expected.pt")
    (folder / "origin.json").write_text(json.dumps(origin, indent=2) + "\n")

    folder = HERE / f"seqdance_{version}"
    folder.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY)).eval()
    _randomise(model, 12)
    published = transformers.EsmModel(hf_config(TINY))  # the authors' EsmModel, pooler included
    published.load_state_dict(model.esm2.state_dict(), strict=False)
    state = {f"esm2.{k}": v for k, v in published.state_dict().items()}
    state.update({k: v for k, v in model.state_dict().items() if not k.startswith("esm2.")})
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    residue, pair, _ = naive_forward(model, ids, mask, trunk=stock_trunk(model))
    torch.save({"input_ids": ids, "attention_mask": mask, "residue": residue, "pair": pair},
               folder / "expected.pt")
    (folder / "origin.json").write_text(json.dumps(origin, indent=2) + "\n")
    print(f"wrote fixtures for transformers {version}")


if __name__ == "__main__":
    main()
