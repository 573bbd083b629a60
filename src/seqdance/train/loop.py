"""The training loop: one loop for one CPU, one GPU or ``torchrun`` (DDP), resumable exactly.

Per update ``n`` (1-based): the learning rate is ``learning_rate(n)``; dropout is seeded from
(seed, n, rank); every data group contributes ``accum_steps`` micro-batches (batches drawn as a
pure function of the same numbers, :mod:`seqdance.train.batches`); each micro-batch's loss is
the masked per-protein RMSE loss of C's model with the group's loss weights (the config's
``loss`` section: weight table, mask, NMA terms; default the authors'), divided by
``accum_steps``; gradients are all-reduced only on the last micro-batch (``no_sync``),
unscaled, clipped by value and applied by AdamW. Only rank 0 logs and writes.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqdance.data.dataset import ProteinDataset
from seqdance.data.loss_weights import (
    AUTHORS_WEIGHTS,
    WEIGHTS_FILE,
    check_weights_cover,
    compute_loss_weights,
    load_weights,
)
from seqdance.errors import SeqDanceError
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.model.pair_grad import release_buffers
from seqdance.model.pretrained import WEIGHTS_NAME, load_state_dict_checked
from seqdance.schema import DataGroup
from seqdance.train.batches import SamplerPlan, iterate_batches, phase_loader, stream_seed
from seqdance.train.checkpoint import (
    STATE_FILE,
    TRAIN_FASTA,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    load_weights_file,
    remove_stale_temporaries,
    rng_states,
    save_checkpoint,
    set_rng_states,
    training_fasta_text,
)
from seqdance.train.config import Config
from seqdance.train.distributed import (
    DistEnv,
    barrier,
    destroy_process_group,
    env_from_environment,
    init_process_group,
    pick_device,
)
from seqdance.train.early_stop import HeldOut
from seqdance.train.modeling import build_model, enable_ffn_checkpointing
from seqdance.train.sampler import check_group_size
from seqdance.train.schedule import learning_rate
from seqdance.train.stats import LogStats
from seqdance.utils.io import atomic_path
from seqdance.utils.progress import echo_above_bars, progress_bar
from seqdance.utils.threads import work_threads

LOG_FILE = "log.jsonl"
TRAIN_LOCK = ".train.lock"
CONFIG_FILE = "config.yaml"


def build_optimizer(params, optim) -> torch.optim.AdamW:
    """AdamW as the recipe sets it (``optim``: an ``OptimConfig``), with the fused kernel:
    one pass over all parameters instead of several per tensor (~6x faster on a CPU)."""
    return torch.optim.AdamW(
        params, lr=optim.lr, betas=optim.betas, eps=optim.eps,
        weight_decay=optim.weight_decay, fused=True,
    )  # fmt: skip


# config keys a resumed run may change; anything else must match the checkpoint
RESUMABLE_CHANGES = {
    ("train", "max_steps"), ("train", "save_every"), ("train", "log_every"),
    ("train", "progress"), ("train", "tensorboard"), ("train", "device"),
    ("data", "num_workers"), ("data", "dir"), ("out_dir",),
}  # fmt: skip


@dataclass
class TrainResult:
    """What a run did (on every rank; only rank 0 wrote files)."""

    out_dir: Path
    step: int  # updates done
    rank: int = 0
    last_log: dict | None = None
    checkpoints: list[Path] = field(default_factory=list)
    best_step: int | None = None  # update of the best held-out loss (train.early_stopping)
    stopped_at: int | None = None  # update at which early stopping ended the run


def train(config: Config, resume: bool = False) -> TrainResult:
    """Train as ``config`` says; with ``resume``, continue from the latest checkpoint."""
    config.validate()
    env = env_from_environment()
    device = pick_device(config.train.device, env)
    init_process_group(env, device)
    try:
        check_training_data(config, env.world_size)  # before anything is written to out_dir
        with training_lock(config.out_dir, env.is_main):
            return _Trainer(config, env, device).run(resume)
    finally:
        destroy_process_group(env)


def check_training_data(config: Config, world_size: int = 1) -> None:
    """Open the training proteins once (label present, files readable) before writing; with
    ``train.sampler=authors`` check that every group fills a batch per process."""
    groups = tuple(DataGroup(g.name, tuple(g.sources), g.kind) for g in config.data.groups)
    batches = phase_loader(config.data.dir, config.data.label, config.train.phases[0].crop_size,
                           config.data.clamp, groups)  # fmt: skip
    if config.train.sampler == "authors":
        for group in batches.groups:
            for phase in config.train.phases:
                n = len(batches.members[group])
                check_group_size(group, n, phase.batch_size, world_size)
    if config.train.early_stopping.every is not None:
        label = config.train.early_stopping.label
        if len(ProteinDataset(config.data.dir, label=label)) == 0:
            raise SeqDanceError(
                f"train.early_stopping.label: no proteins labelled {label!r} in {config.data.dir}"
            )


@contextlib.contextmanager
def training_lock(out_dir: str, is_main: bool):
    """Hold ``out_dir/.train.lock`` (rank 0) so that two runs never write one ``out_dir``.

    The kernel releases it when the process ends, ``kill -9`` included.
    """
    if not is_main:
        yield
        return
    import fcntl

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / TRAIN_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SeqDanceError(f"another training run is writing {out_dir}") from None
        remove_stale_temporaries(out_dir)
        yield


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype (None: full fp32)."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class _Trainer:
    def __init__(self, config: Config, env: DistEnv, device: torch.device) -> None:
        self.config, self.env, self.device = config, env, device
        self.out_dir = Path(config.out_dir)
        self.amp_dtype = precision_dtype(config.train.precision, device)
        self.writer = None
        self.files: dict[str, str] = {}  # written into every checkpoint folder and best/

    # -- setup ---------------------------------------------------------------------------
    def _start_state(self, resume: bool) -> tuple[int, dict | None]:
        existing = list_checkpoints(self.out_dir)
        if not resume:
            if existing:
                raise SeqDanceError(
                    f"{self.out_dir} already holds checkpoints (last step {existing[-1][0]}); "
                    "pass --resume to continue it, or choose another out_dir"
                )
            return 0, None
        folder = latest_checkpoint(self.out_dir)
        if folder is None:
            raise SeqDanceError(f"--resume: no checkpoint in {self.out_dir / 'checkpoints'}")
        state = load_trainer_state(folder)
        self._check_resumable(state.get("config", {}), folder)
        state["folder"] = str(folder)
        return int(state["step"]), state

    def _check_resumable(self, saved: dict, folder: Path) -> None:
        now = self.config.to_dict()
        defaults = Config().to_dict()  # a key the saved config predates counts as its default
        diffs = []
        for section, values in now.items():
            if not isinstance(values, dict):
                if (section,) not in RESUMABLE_CHANGES and saved.get(section) != values:
                    diffs.append(section)
                continue
            for key, value in values.items():
                old = saved.get(section, {}).get(key, defaults[section][key])
                if (section, key) in RESUMABLE_CHANGES:
                    continue
                if json.dumps(old) != json.dumps(value):
                    diffs.append(f"{section}.{key}")
        if diffs:
            raise SeqDanceError(
                f"--resume: the config differs from {folder / STATE_FILE} in "
                f"{', '.join(diffs)} (only max_steps, save_every, log_every, progress, "
                "tensorboard, device, num_workers and paths may change)"
            )

    def _model(self, state: dict | None):
        torch.manual_seed(self.config.seed)  # same initial weights on every rank
        model = build_model(self.config.model)
        if state is not None:
            folder = Path(state["folder"])
            tensors = load_weights_file(folder / WEIGHTS_NAME)
            load_state_dict_checked(model, tensors, str(folder))
        if self.config.train.pair_chunk_elements:
            model.chunk_elements = self.config.train.pair_chunk_elements
        if self.config.train.activation_checkpointing:
            enable_ffn_checkpointing(model)
        return model.to(self.device)

    def group_table(self) -> tuple[DataGroup, ...]:
        """The data groups of ``data.groups`` as schema ``DataGroup`` s."""
        return tuple(DataGroup(g.name, tuple(g.sources), g.kind) for g in self.config.data.groups)

    def _loss_weights(self) -> dict[str, dict[str, float]]:
        """``{group: {term: weight}}`` as ``loss.weights`` says, checked against the groups."""
        spec = self.config.data.loss_weights or self.config.loss.weights
        bands = self.config.loss.nma_bands
        if spec == "authors":
            weights, where = load_weights(AUTHORS_WEIGHTS), "the authors' loss weights"
        elif spec == "dataset":
            path = Path(self.config.data.dir) / WEIGHTS_FILE
            where = str(path)
            if path.is_file():
                weights = load_weights(path)
            else:
                self._echo(f"{path} not found: computing loss weights from the training proteins")
                weights = compute_loss_weights(
                    self.config.data.dir, label=self.config.data.label, nma_bands=bands
                ).weights
        else:
            path = Path(spec)
            if not path.is_file():
                raise SeqDanceError(f"loss.weights: no such file {path}")
            weights, where = load_weights(path), str(path)
        groups = {g.name: g.kind for g in self.config.data.groups}
        check_weights_cover(weights, groups, bands, where)
        return weights

    # -- output --------------------------------------------------------------------------
    def _echo(self, message: str) -> None:
        if self.env.is_main:
            echo_above_bars(message)

    def _prepare_out_dir(self, start: int) -> None:
        if not self.env.is_main:
            return
        import yaml

        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_dir / CONFIG_FILE) as tmp:
            tmp.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        log = self.out_dir / LOG_FILE
        if start and log.exists():  # drop lines logged after the checkpoint we resume from
            kept = [ln for ln in log.read_text().splitlines() if json.loads(ln)["step"] <= start]
            with atomic_path(log) as tmp:
                tmp.write_text("".join(ln + "\n" for ln in kept))
        elif not start:
            log.unlink(missing_ok=True)
        if self.config.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._echo("train.tensorboard: the tensorboard package is not installed; skipped")
            else:
                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=start)

    def _log(self, record: dict) -> None:
        with open(self.out_dir / LOG_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            self.writer.add_scalar("loss", record["loss"], record["step"])
            self.writer.add_scalar("lr", record["lr"], record["step"])
            for name, value in record["features"].items():
                self.writer.add_scalar(f"rmse/{name}", value, record["step"])

    def _save(self, model, optimizer, scaler, step: int) -> Path | None:
        path = None
        if self.env.is_main:
            state = TrainerState(
                step=step,
                optimizer=optimizer.state_dict(),
                scaler=scaler.state_dict() if scaler is not None else None,
                rng=rng_states(),
                config=self.config.to_dict(),
                world_size=self.env.world_size,
            )
            path = save_checkpoint(self.out_dir, model, state, self.files)
        barrier(self.env)
        return path

    # -- the loop ------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        cfg = self.config
        start, state = self._start_state(resume)
        model = self._model(state)
        model.train()
        weights = self._loss_weights()
        params = [p for p in model.parameters() if p.requires_grad]
        n_weights = sum(p.numel() for p in model.parameters())
        optimizer = build_optimizer(params, cfg.optim)
        scaler = None
        if self.amp_dtype == torch.float16:
            scaler = torch.amp.GradScaler(self.device.type)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            set_rng_states(state["rng"])
        net = model  # called with lean_backward: the pair head's lean training backward
        if self.env.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)

        self._prepare_out_dir(start)
        if self.env.is_main:  # the training sequences travel with every saved model
            groups = self.group_table()
            rows = ProteinDataset(cfg.data.dir, label=cfg.data.label, group_table=groups)
            text = training_fasta_text(rows.names, rows.sequences, cfg.model.init_from)
            self.files = {TRAIN_FASTA: text}
        held_out = HeldOut(cfg, weights, self.env.is_main)
        held_out.files = self.files
        if held_out.enabled:
            held_out.restore(start)
        result = TrainResult(self.out_dir, start, rank=self.env.rank)
        if start == 0:
            result.checkpoints.append(self._save(model, optimizer, scaler, 0))

        bar = progress_bar(
            total=cfg.train.max_steps, initial=start, unit="update", desc="train",
            enabled=cfg.train.progress and self.env.is_main,
        )  # fmt: skip
        stats = LogStats()
        tick = time.perf_counter()
        step = start
        caller_threads = torch.get_num_threads()
        try:
            while step < cfg.train.max_steps:
                phase = cfg.phase_at(step)
                if self.device.type == "cpu":  # a tiny model's step is faster on one thread
                    tokens = phase.batch_size * (phase.crop_size + 2)  # per forward/backward
                    cap = work_threads(6 * n_weights * tokens)
                    if cap < torch.get_num_threads():  # a cap only: never more than the caller's
                        torch.set_num_threads(cap)
                stop = cfg.train.max_steps
                if phase.until_step is not None:
                    stop = min(stop, phase.until_step)
                batches = phase_loader(
                    cfg.data.dir, cfg.data.label, phase.crop_size, cfg.data.clamp,
                    self.group_table(),
                )  # fmt: skip
                plan = SamplerPlan(cfg.train.sampler, cfg.train.reload_every,
                                   cfg.phase_start(step), self.env.world_size)  # fmt: skip
                stream = iterate_batches(
                    batches, cfg.seed, step, stop, phase.batch_size, phase.accum_steps,
                    self.env.rank, cfg.data.num_workers, plan,
                )  # fmt: skip
                if step == start and batches.dataset.left_out:
                    counts = ", ".join(f"{n} from {s}" for s, n in batches.dataset.left_out.items())
                    self._echo(
                        f"note: training proteins in no data group are left out ({counts}); "
                        "add their source to data.groups to train on them"
                    )
                n_micro = phase.accum_steps * len(batches.groups)
                for update in range(step, stop):
                    lr = learning_rate(
                        update + 1, cfg.optim.lr, cfg.schedule_steps, cfg.optim.warmup_steps,
                        cfg.optim.decay_fraction, cfg.optim.final_lr_fraction,
                    )  # fmt: skip
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    torch.manual_seed(stream_seed(cfg.seed, update, self.env.rank, 1))  # dropout
                    for micro in range(n_micro):
                        batch = next(stream)
                        last = micro == n_micro - 1
                        defer = self.env.enabled and not last  # all-reduce on the last only
                        with net.no_sync() if defer else contextlib.nullcontext():
                            loss, terms = self._loss(net, batch, weights)
                            scaled = loss / phase.accum_steps
                            (scaler.scale(scaled) if scaler else scaled).backward()
                        stats.add(batch["groups"][0], loss, terms, phase.accum_steps)
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    if cfg.optim.clip_value is not None:
                        torch.nn.utils.clip_grad_value_(params, cfg.optim.clip_value)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    stats.updates += 1
                    done = update + 1
                    bar.update(1)
                    if done % cfg.train.log_every == 0 or done == cfg.train.max_steps:
                        elapsed = time.perf_counter() - tick
                        record = stats.record(done, lr, elapsed, self.env, phase.crop_size)
                        tick = time.perf_counter()
                        if self.env.is_main:
                            self._log(record)
                            bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
                        result.last_log = record
                    stop_now = held_out.due(done) and held_out.check(model, done, cfg.data.dir)
                    if (done % cfg.train.save_every == 0 or done == cfg.train.max_steps
                            or stop_now):  # fmt: skip
                        result.checkpoints.append(self._save(model, optimizer, scaler, done))
                    result.step = done
                    if stop_now:
                        self._echo(
                            f"early stop at update {done}: held-out loss "
                            f"{held_out.state.best_loss:.4f} at {held_out.state.best_step}"
                        )
                        break
                if held_out.state.stopped_at is not None:
                    break
                step = stop
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
            release_buffers()  # scratch memory kept between steps, not after training
            torch.set_num_threads(caller_threads)
        result.checkpoints = [p for p in result.checkpoints if p is not None]
        result.best_step = held_out.state.best_step
        result.stopped_at = held_out.state.stopped_at
        return result

    def _loss(self, net, batch: dict, weights: dict[str, dict[str, float]]):
        group = batch["groups"][0]
        if group not in weights:
            raise SeqDanceError(f"the loss weights have no entry for data group {group!r}")
        dev = self.device
        input_ids = batch["input_ids"].to(dev, non_blocking=True)  # (B, T)
        mask = batch["attention_mask"].to(dev, non_blocking=True)  # (B, T)
        targets = SeqDanceTargets(
            residue=batch["res"].to(dev, non_blocking=True),  # (B, T, 50)
            pair=batch["pair"].to(dev, non_blocking=True),  # (B, T, T, 13)
        )
        amp = (
            torch.autocast(dev.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        inside = self.config.train.loss_precision == "autocast"  # the authors' variant
        with amp:
            out = net(input_ids, mask, lean_backward=True)
        residue, pair = out.residue, out.pair  # (B, T, 50), (B, T, T, 13)
        try:
            with amp if inside else contextlib.nullcontext():
                return masked_rmse_loss(
                    residue if inside else residue.float(), pair if inside else pair.float(),
                    targets, weights[group],
                    mask=self.config.loss.mask, nma_bands=self.config.loss.nma_bands,
                )  # fmt: skip
        except ValueError as exc:
            names = ", ".join(batch["names"])
            raise SeqDanceError(f"batch of {names}: {exc}") from None
