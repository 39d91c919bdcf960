"""The training loop: plain, top to bottom, its state one checkpoint.

One Trainer for every model family (engine/train/family.py): per step it asks the
family for one training step (its data, forward pass, losses and optimizer
steps), with a seeded generator on the device. Every so often: metrics, a
preview, a checkpoint. A NaN or a loss spike rolls back to the last checkpoint
with a lower learning rate instead of ending the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import threading
import time
from typing import Any

import torch
from torch import nn

from engine.config import RunSettings
from engine.errors import SwapdeckError, WorkspaceError
from engine.events import (
    CancelToken,
    Finished,
    Metrics,
    Preview,
    Saved,
    Sink,
    Started,
    Warning,
    null_sink,
)
from engine.locks import model_lock
from engine.results import TrainResult
from engine.train import dist
from engine.train.allocator import keep_freed_memory
from engine.train.checkpoint import keep_snapshot, load_checkpoint, save_checkpoint
from engine.train.family import Family, StepContext, StepHook, make_optimizer
from engine.train.registry import ModelSettingsBase, implementation
from engine.train.store import (
    ModelPaths,
    create_model,
    load_settings,
    open_model,
    with_geometry,
)
from engine.workspace import Workspace, atomic_write_text, open_private

# A step whose loss is this many times the recent average counts as a blow-up.
SPIKE_FACTOR = 4.0
SPIKE_WARMUP = 50
MAX_ROLLBACKS = 3


class TrainingDiverged(SwapdeckError):
    exit_code = 8


def _precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if requested == "fp32":
        return None
    if requested == "fp16":
        return torch.float16
    if requested == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # bf16 on a CPU only pays where the CPU has bf16 instructions (oneDNN tells).
    with contextlib.suppress(AttributeError, RuntimeError):
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return torch.bfloat16
    return None


def _tensorboard(folder: Any) -> Any:
    """A TensorBoard writer when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """Trains one model of a workspace; `fit` returns the result of the Finished event."""

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        requested: dict[str, Any],
        run: RunSettings,
        sink: Sink = null_sink,
        cancel: CancelToken | None = None,
        step_hook: StepHook | None = None,
        save_request: threading.Event | None = None,
    ) -> None:
        self.workspace = workspace
        self.name = name
        self.requested = requested
        self.run = run
        self.cancel = cancel or CancelToken()
        self.step_hook = step_hook
        # Set from another thread or a signal handler: checkpoint at the next step.
        self.save_request = save_request
        self.info = dist.from_environment()
        # Only rank 0 speaks and writes.
        self.sink = sink if self.info.is_main else null_sink

    # ---- set-up ----------------------------------------------------------------------

    def _prepare(self) -> None:
        run = self.run
        self.workspace.ensure()
        self.settings, self.paths, self.created = open_model(
            self.workspace, self.name, self.requested
        )
        s = self.settings
        self.family: Family = implementation(s.family)(s, self.workspace)
        self.device = dist.resolve_device(run.device, self.info)
        if self.device.type == "cpu":
            keep_freed_memory()
        dist.start(self.info, self.device)
        self.dtype = _precision(run.precision, self.device)
        self.data_detail = self.family.load_data(self.device)
        if self.info.is_main:
            # The crop geometry goes into model.toml, for convert (older models get it now).
            geometry = with_geometry(s, self.family.geometry())
            if self.created or geometry is not s or load_settings(self.paths.toml) != s:
                self.settings = s = geometry
                create_model(s, self.paths)
            # Half-written files from a run that was killed mid-save: checkpoint, metrics,
            # preview or snapshot (the lock says no other trainer is writing them now).
            for folder in (self.paths.folder, self.paths.previews, self.paths.snapshots):
                for stray in folder.glob(".*.tmp"):
                    stray.unlink(missing_ok=True)
        torch.manual_seed(s.seed)
        self.model: nn.Module = self.family.build().to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.pair: nn.Module = self.family.forward_module(self.model)
        if self.info.enabled:
            self.pair = nn.parallel.DistributedDataParallel(
                self.pair, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.step_fn = self.pair
        if run.compile and self.device.type == "cuda":
            self.step_fn = torch.compile(self.pair)
        self.optimizers = self.family.optimizers(self.model)
        # Each parameter group's own learning rate; rollbacks scale them all.
        self.base_lrs = {
            name: [group["lr"] for group in opt.param_groups]
            for name, opt in self.optimizers.items()
        }
        self.family.attach(self.model, self.optimizers)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(s.seed * 1000 + self.info.rank)
        self.step = 0
        self.rollbacks = 0
        self.lr_scale = 1.0
        if run.resume and self.paths.checkpoint.exists():
            self._load()
        self._trim_metrics()
        self.board = _tensorboard(self.paths.folder / "tensorboard") if self.info.is_main else None

    def _load(self) -> None:
        info, rng = load_checkpoint(self.paths.checkpoint, self.model, self.optimizers)
        self.step = int(info["step"])
        self.lr_scale = float(info.get("lr_scale", 1.0))
        gen = rng.get(f"gen{self.info.rank}") if self.info.enabled else rng.get("gen0")
        # A state saved on another kind of device (CUDA's is 16 bytes, the CPU's 5 KB)
        # cannot drive this generator: the run then keeps its own seeded stream.
        if gen is not None and gen.numel() == self.generator.get_state().numel():
            self.generator.set_state(gen.to("cpu"))
        if "scaler_scale" in info and self.scaler.is_enabled():
            self.scaler.update(float(info["scaler_scale"]))

    # ---- state -----------------------------------------------------------------------

    def _rng_states(self) -> dict[str, torch.Tensor]:
        state = self.generator.get_state()
        if not self.info.enabled:
            return {"gen0": state}
        gathered = [torch.zeros_like(state) for _ in range(self.info.world_size)]
        torch.distributed.all_gather_object(gathered, state)  # small; gloo and nccl both work
        return {f"gen{i}": s for i, s in enumerate(gathered)}

    def _save(self, reason: str) -> None:
        rng = self._rng_states()  # every rank takes part in the gather
        if not self.info.is_main:
            return
        info = {
            "step": self.step,
            "lr_scale": self.lr_scale,
            "model": self.settings.model_dump(),
            "reason": reason,
            "saved_at": time.time(),
        }
        if self.scaler.is_enabled():
            info["scaler_scale"] = float(self.scaler.get_scale())
        save_checkpoint(self.paths.checkpoint, self.model, self.optimizers, rng, info)
        self.sink(
            Saved(
                path=str(self.paths.checkpoint), what=f"checkpoint at step {self.step} ({reason})"
            )
        )
        every = self.run.snapshot_every
        if every and self.step % every == 0 and self.step > 0:
            keep_snapshot(self.paths.checkpoint, self.step)

    def _trim_metrics(self) -> None:
        """After a resume, drop logged steps beyond the checkpoint: no duplicates later."""
        path = self.paths.metrics
        if not self.info.is_main or not path.exists():
            return
        kept = []
        text = path.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            with contextlib.suppress(
                ValueError, KeyError, TypeError, OverflowError, RecursionError
            ):
                if int(json.loads(line)["step"]) <= self.step:
                    kept.append(line)
        trimmed = "".join(f"{line}\n" for line in kept)
        if trimmed == text:
            return  # nothing to drop: no rewrite of a long history at every start
        try:
            atomic_write_text(path, trimmed)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write {path} ({exc.strerror})",
                "free disk space; the checkpoint and the metrics logged so far are kept",
            ) from None

    def _log_metrics(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        try:
            with open_private(self.paths.metrics, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write {self.paths.metrics} ({exc.strerror})", "free disk space"
            ) from None

    # ---- one step --------------------------------------------------------------------

    def _train_step(self) -> tuple[float, dict[str, float]]:
        ctx = StepContext(
            step=self.step,
            device=self.device,
            dtype=self.dtype,
            generator=self.generator,
            forward=self.step_fn,
            scaler=self.scaler,
            grad_clip=self.run.grad_clip,
            hook=self.step_hook,
        )
        result = self.family.train_step(ctx)
        self.scaler.update()
        return result.total, result.losses

    def _set_lr(self) -> None:
        for name, optimizer in self.optimizers.items():
            for group, base in zip(optimizer.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * self.lr_scale

    @property
    def _lr(self) -> float:
        """The main optimizer's (first group's) learning rate, as logged."""
        return next(iter(self.base_lrs.values()))[0] * self.lr_scale

    def _rollback(self, why: str) -> None:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise TrainingDiverged(
                f"training diverged: {why}, {MAX_ROLLBACKS} rollbacks in a row did not help",
                "lower --lr in a new model, or check the facesets for broken faces",
            )
        bad_step = self.step
        if self.paths.checkpoint.exists():
            self._load()
        self.lr_scale *= 0.5
        self._set_lr()
        # Different batches from here on, so the same bad batch is not drawn again.
        self.generator.manual_seed(self.settings.seed * 1000 + 7919 * self.rollbacks + bad_step)
        self.sink(
            Warning(
                message=f"{why} at step {bad_step}: rolled back to step {self.step}",
                hint=f"learning rate lowered to {self._lr:.2e}",
            )
        )

    # ---- the run ---------------------------------------------------------------------

    def fit(self) -> TrainResult:
        self.board = None
        with contextlib.ExitStack() as stack:
            if self.info.is_main:
                self.workspace.ensure()
                stack.enter_context(model_lock(self.workspace, self.name))
            try:
                self._prepare()
                result = self._fit()
                dist.wait_for_all(self.info)  # rank 0 is still saving and previewing
                return result
            finally:
                if self.board is not None:
                    self.board.close()
                dist.stop(self.info)

    def _fit(self) -> TrainResult:
        run, s = self.run, self.settings
        self._set_lr()
        params = sum(p.numel() for p in self.model.parameters())
        self.sink(
            Started(
                stage="train",
                detail={
                    "model": self.name,
                    "preset": s.preset,
                    "family": s.family,
                    "size": getattr(s, "size", None),
                    "parameters": params,
                    "device": str(self.device),
                    "precision": str(self.dtype).replace("torch.", "") if self.dtype else "fp32",
                    "world_size": self.info.world_size,
                    "start_step": self.step,
                    "steps": run.steps,
                    "batch_size": getattr(s, "batch_size", None),
                    **self.data_detail,
                    "created": self.created,
                },
            )
        )
        if self.step == 0:
            self._save("start")  # something to roll back to from the first step on
        started = time.monotonic()
        start_step = self.step
        per_step_examples = self.family.examples_per_step * self.info.world_size
        window_start, window_steps = time.monotonic(), 0
        # The steady rate leaves out the first logging window, which holds the warm-up
        # (allocator, autotuning, compilation); a run of one window has only that one.
        steady_steps, steady_seconds = 0, 0.0
        first_window: tuple[int, float] | None = None
        average: float | None = None
        headline = [f"loss_{n}" for n in self.family.loss_names]
        last = dict.fromkeys(headline, math.nan)
        stopped = False
        while self.step < run.steps:
            stop = self.cancel.cancelled or (
                run.time_limit is not None and time.monotonic() - started > run.time_limit
            )
            if dist.all_agree(stop, self.info, self.device):
                stopped = True
                break
            total, losses = self._train_step()
            spike = (
                average is not None
                and self.step > SPIKE_WARMUP
                and (total > SPIKE_FACTOR * average)
            )
            if dist.all_agree(not math.isfinite(total) or spike, self.info, self.device):
                self._rollback(
                    "loss is not a number"
                    if not math.isfinite(total)
                    else f"loss jumped to {total:.3g}"
                )
                average = None
                continue
            self.rollbacks = 0
            average = total if average is None else 0.98 * average + 0.02 * total
            self.step += 1
            window_steps += 1
            last = losses
            if self.step % run.log_every == 0 or self.step == run.steps:
                elapsed = time.monotonic() - window_start
                per_step = elapsed / max(window_steps, 1)
                examples_per_s = per_step_examples / max(per_step, 1e-9)
                if first_window is None:
                    first_window = (window_steps, elapsed)
                else:
                    steady_steps += window_steps
                    steady_seconds += elapsed
                window_start, window_steps = time.monotonic(), 0
                self._report(losses, examples_per_s, self._eta(per_step, started))
            if self.step % run.preview_every == 0:
                self._preview()
            # No extra all-reduce per step unless there is a request to watch (a job's own,
            # single process); under DDP it must be given to every rank or to none.
            if self.save_request is not None and dist.all_agree(
                self.save_request.is_set(), self.info, self.device
            ):
                self.save_request.clear()
                self._save("requested")
            elif self.step % run.save_every == 0 and self.step < run.steps:
                self._save("interval")
        self._save("stopped" if stopped else "end")
        self._preview()
        # The whole run, from its first step to its end (saves and previews included), so
        # that a short run is not reported at the speed of its fastest stretch.
        seconds = time.monotonic() - started
        if not steady_steps and first_window is not None:
            steady_steps, steady_seconds = first_window
        result = TrainResult(
            model=self.name,
            steps=self.step,
            **{key: None if math.isnan(last[key]) else last[key] for key in headline},
            examples_per_s=round(
                per_step_examples * (self.step - start_step) / max(seconds, 1e-9), 2
            ),
            examples_per_s_steady=round(
                per_step_examples * steady_steps / max(steady_seconds, 1e-9), 2
            ),
            checkpoint=str(self.paths.checkpoint),
            preview=str(self.paths.previews / "latest.png"),
            stopped=stopped,
            seconds=round(seconds, 2),
        )
        # Only the losses this family has (the autoencoder's loss_a and loss_b).
        self.sink(
            Finished(stage="train", result=result.model_dump(mode="json", exclude_unset=True))
        )
        return result

    def _eta(self, per_step: float, started: float) -> float:
        """Seconds until whichever limit ends the run first: the step cap or the time limit."""
        eta = (self.run.steps - self.step) * per_step
        if self.run.time_limit is not None:
            eta = min(eta, max(0.0, self.run.time_limit - (time.monotonic() - started)))
        return eta

    def _report(self, losses: dict[str, float], examples_per_s: float, eta_s: float) -> None:
        lr = self._lr
        memory = _memory_mb(self.device)
        names = self.family.loss_names
        record = {
            "step": self.step,
            **{f"loss_{n}": round(losses[f"loss_{n}"], 6) for n in names},
            "examples_per_s": round(examples_per_s, 2),
            "lr": lr,
            "memory_mb": round(memory, 1),
            "t": time.time(),
        }
        self._log_metrics(record)
        if self.board is not None:
            for key in (*(f"loss_{n}" for n in names), "examples_per_s", "lr"):
                self.board.add_scalar(key, record[key], self.step)
        self.sink(
            Metrics(
                step=self.step,
                losses={n: losses[f"loss_{n}"] for n in names},
                examples_per_s=examples_per_s,
                extra={
                    "total_steps": float(self.run.steps),
                    "eta_s": round(eta_s, 1),
                    "lr": lr,
                    "memory_mb": round(memory, 1),
                },
            )
        )

    def _preview(self) -> None:
        if not self.info.is_main:
            return
        try:
            path = self.family.preview(self.model, self.paths.previews / "latest.png")
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write a preview in {self.paths.previews} ({exc.strerror})",
                "free disk space",
            ) from None
        self.sink(Preview(path=str(path)))


def train(
    workspace: Workspace,
    name: str,
    requested: dict[str, Any],
    run: RunSettings,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
    step_hook: StepHook | None = None,
    save_request: threading.Event | None = None,
) -> TrainResult:
    """Train (or go on training) model `name` in `workspace`.

    `requested` holds the model settings the user gave (None where not given):
    preset, size, layout, faceset_a, faceset_b, batch_size, lr, loss, seed. A
    new model is created from them; an existing one must not be contradicted.
    Emits Started, Metrics, Preview, Saved, Warning and Finished events; checks
    `cancel` between steps and saves before returning; saves at the next step
    whenever `save_request` is set (and clears it). Only one process at a time
    may train a model: a second one is refused while the first holds the lock.
    """
    return Trainer(workspace, name, requested, run, sink, cancel, step_hook, save_request).fit()


__all__ = ["ModelPaths", "ModelSettingsBase", "TrainingDiverged", "make_optimizer", "train"]
