"""Weights & Biases mirror of a run record.

The engine hands the tracker exactly the dicts it writes to the run record: the
resolved config, one metrics dict per epoch, and the final/best summary. W&B is
a mirror, never the source of truth: if the package is missing, the server
can't be reached or ``wandb.init`` fails, training goes on with the local record
(which notes what happened) and, for online mode, an offline W&B run instead.

Mode (``--wandb-mode``): ``auto`` uses ``WANDB_MODE`` when set, else online
when credentials exist (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B
host), else offline. An offline run prints where it went and the ``wandb sync``
command that uploads it.
"""
from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

DEFAULT_PROJECT = "lnl"
ARTIFACT_TYPE = "model"  # a finished run's final checkpoint (lnl.artifacts)
# Summary rule per metric family: what "best" means for each key in W&B's run table.
SUMMARY_RULES = {"val_biased/acc": "max", "val_unbiased/acc": "max", "test/acc": "last", "bias/acc": "min",
                 "train/ce": "min"}


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env in ("dryrun",):
        return "offline"
    return "online" if has_credentials() else "offline"


def wandb_group(config: Any) -> str:
    """The W&B group of a run: ``--group``, else its Optuna study, else ``<method>-cv<sigma^2>``.
    ``config`` is a :class:`lnl.config.Config` or a record's config dict."""
    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key)
    return get("group") or get("study") or f"{get('method')}-cv{float(get('color_var')):.3f}"


def default_job_type(cfg: Any) -> str:
    if cfg.job_type:
        return cfg.job_type
    if cfg.trial is not None:
        return "optuna-trial"
    if os.environ.get("WANDB_SWEEP_ID"):
        return "sweep"
    return "train"


def run_tags(cfg: Any) -> list[str]:
    tags = [cfg.method, f"cv{cfg.color_var:.3f}"]
    if cfg.study:
        tags.append(f"study:{cfg.study}")
    if os.environ.get("WANDB_SWEEP_ID"):
        tags.append(f"sweep:{os.environ['WANDB_SWEEP_ID']}")
    return list(dict.fromkeys(tags + list(cfg.tags)))


class NullTracker:
    """Tracks nothing; used when W&B is disabled or unavailable. ``info`` says why."""

    def __init__(self, mode: str = "disabled", reason: str | None = None) -> None:
        self.info: dict[str, Any] = {"mode": mode, "id": None, "path": None, "dir": None, "url": None}
        if reason:
            self.info["reason"] = reason

    def log(self, metrics: dict[str, Any]) -> None:
        pass

    def log_samples(self, data: Any) -> None:
        pass

    def finish(self, record: dict[str, Any]) -> None:
        pass


class WandbTracker:
    """A live W&B run (online or offline) mirroring one run record."""

    def __init__(self, run: Any, mode: str, note: str | None = None) -> None:
        import wandb

        self.wandb, self.run, self.mode = wandb, run, mode
        sync_dir = str(Path(run.dir).parent) if getattr(run, "dir", None) else None
        self.info = {"mode": mode, "id": run.id, "path": "/".join(p for p in (run.entity, run.project, run.id) if p)
                     if mode == "online" else None, "dir": sync_dir, "url": getattr(run, "url", None)
                     if mode == "online" else None, "project": run.project}
        if os.environ.get("WANDB_SWEEP_ID"):  # under wandb agent: lets a W&B Report filter by sweep
            self.info["sweep"] = os.environ["WANDB_SWEEP_ID"]
        if note:
            self.info["reason"] = note
        run.define_metric("epoch")
        run.define_metric("*", step_metric="epoch")
        for key, rule in SUMMARY_RULES.items():
            run.define_metric(key, step_metric="epoch", summary=rule)

    def log(self, metrics: dict[str, Any]) -> None:
        # An epoch that was not scored (eval_every) has no accuracies: W&B leaves a gap in those charts.
        self._safe(self.run.log, {k: v for k, v in metrics.items() if v is not None})

    def log_samples(self, data: Any) -> None:
        """A grid of training and test images (one row per digit), so a reader sees the bias."""
        images = {f"samples/{split}": self.wandb.Image(sample_grid(*device_split_images(data, split)),
                                                       caption=f"{split}: one row per digit 0-9")
                  for split in ("train", "test")}
        self._safe(self.run.log, images, commit=False)

    def log_checkpoint(self, record: dict[str, Any], checkpoint: Path) -> None:
        """The finished run's final checkpoint and record as a W&B Artifact (:mod:`lnl.artifacts`)."""
        self._safe(log_final, self.wandb, self.run, record, checkpoint)
        self.info["artifact"] = artifact_name(record["run_id"])

    def finish(self, record: dict[str, Any]) -> None:
        final = record.get("final") or {}
        # Keys with a define_metric summary rule keep W&B's aggregate; the record's final dict
        # carries the same information as explicit best/... and last values.
        summary = {k: v for k, v in final.items() if k not in SUMMARY_RULES}
        summary["status"] = record.get("status")
        if record.get("reason"):
            summary["status_reason"] = record["reason"]
        self._safe(self.run.summary.update, summary)
        matrix = final.get("test/confusion")
        if matrix is not None:
            cm = np.asarray(matrix)
            y_true, preds = confusion_to_pairs(cm)
            names = [str(d) for d in range(cm.shape[0])]
            table = self.wandb.Table(columns=["digit", "accuracy", "n"], data=[
                [d, float(cm[d, d] / max(cm[d].sum(), 1)), int(cm[d].sum())] for d in range(cm.shape[0])])
            self._safe(self.run.log, {
                "test/confusion_matrix": self.wandb.plot.confusion_matrix(
                    y_true=y_true, preds=preds, class_names=names, title="Unbiased test confusion matrix"),
                "test/per_class_accuracy": table}, commit=False)
        self._safe(self.run.finish, exit_code=1 if record.get("status") == "failed" else 0)
        if self.mode == "offline" and self.info.get("dir"):
            print(f"lnl: W&B run saved offline in {self.info['dir']}; upload it with: wandb sync {self.info['dir']}",
                  flush=True)

    def _safe(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """W&B errors must not end a training run: note them and go on."""
        try:
            fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the local record is the source of truth
            self.info.setdefault("errors", []).append(f"{type(err).__name__}: {err}"[:300])


def artifact_name(run_id: str) -> str:
    """W&B Artifact name of a run's final checkpoint (run ids use only letters, digits, '.', '-', '_')."""
    return f"lnl-final-{run_id}"


def log_final(wandb: Any, run: Any, record: dict[str, Any], checkpoint: Path) -> Any:
    """Log ``checkpoint`` (the finished run's final.pt) and its record as an Artifact of ``run``, the
    checkpoint's SHA-256 in its metadata (what :func:`lnl.artifacts.fetch_pretrained` checks)."""
    import json

    sha = record["final_checkpoint"]["sha256"]
    art = wandb.Artifact(artifact_name(record["run_id"]), type=ARTIFACT_TYPE,
                         description=f"final weights and optimizer state of run {record['run_id']}",
                         metadata={"sha256": sha, "run_id": record["run_id"], "identity": record.get("identity"),
                                   "method": record["config"]["method"], "color_var": record["config"]["color_var"],
                                   "seed": record["config"]["seed"]})
    art.add_file(str(checkpoint), name="final.pt")
    with art.new_file("record.json", mode="w", encoding="utf-8") as stream:
        json.dump(record, stream, sort_keys=True)
    return run.log_artifact(art)


def confusion_to_pairs(cm: np.ndarray) -> tuple[list[int], list[int]]:
    """Expand a confusion matrix back into (y_true, pred) lists for wandb.plot.confusion_matrix."""
    rows, cols = np.nonzero(cm)
    counts = cm[rows, cols]
    return np.repeat(rows, counts).tolist(), np.repeat(cols, counts).tolist()


def sample_grid(images: np.ndarray, labels: np.ndarray, per_class: int = 8) -> np.ndarray:
    """(10*H, per_class*W, 3) uint8 mosaic: ``per_class`` images of each digit, one row per digit.

    ``images``: (N, H, W, 3) or (N, H, W) uint8 (gray is shown as gray).
    """
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    n, h, w, _ = images.shape
    tiles = np.zeros((10, per_class, h, w, 3), dtype=np.uint8)
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)[:per_class]
        tiles[digit, : len(idx)] = images[idx]
    return tiles.transpose(0, 2, 1, 3, 4).reshape(10 * h, per_class * w, 3)


def device_split_images(data: Any, split: str, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` images of a split of :class:`lnl.data.tensors.DeviceData` as NHWC uint8."""
    part = data[split]
    x = part.x[:limit].cpu().numpy().transpose(0, 2, 3, 1)
    return (x[..., 0] if x.shape[3] == 1 else x), part.y[:limit].cpu().numpy()


def open_tracker(cfg: Any, run_id: str, record: dict[str, Any], resume_id: str | None = None) -> Any:
    """Start the W&B run for ``record`` (see module doc for the fallbacks)."""
    mode = resolve_mode(cfg.wandb_mode)
    if mode == "disabled":
        return NullTracker("disabled")
    try:
        import wandb
    except ImportError:
        print("lnl: wandb is not installed; the run is recorded locally only", file=sys.stderr)
        return NullTracker("unavailable", "wandb not installed")
    kwargs = dict(
        project=cfg.wandb_project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        entity=cfg.wandb_entity or os.environ.get("WANDB_ENTITY") or None,
        group=wandb_group(cfg),
        job_type=default_job_type(cfg), tags=run_tags(cfg), name=run_id,
        config={**record["config"], **({"init_run": record["init"]["from_run"]} if record.get("init") else {})},
        settings=wandb.Settings(init_timeout=float(os.environ.get("LNL_WANDB_INIT_TIMEOUT", "30")),
                                silent=True, console="off"),
    )
    if resume_id:
        kwargs.update(id=resume_id, resume="allow")
    attempts = [mode] if mode == "offline" else [mode, "offline"]
    errors = []
    for attempt in attempts:
        try:
            run = wandb.init(mode=attempt, **kwargs)
            note = None if attempt == mode else f"W&B {mode} failed ({errors[-1]}); logged offline instead"
            if note:
                print(f"lnl: {note}", file=sys.stderr)
            tracker = WandbTracker(run, attempt, note)
            if attempt == "online" and record.get("init"):  # lineage: this run used that run's Artifact
                tracker._safe(run.use_artifact, f"{artifact_name(record['init']['from_run'])}:latest")
            return tracker
        except Exception as err:  # noqa: BLE001 - any W&B failure falls back
            errors.append(f"{type(err).__name__}: {err}"[:300])
    print(f"lnl: W&B could not start ({errors[-1]}); the run is recorded locally only", file=sys.stderr)
    return NullTracker("failed", "; ".join(errors))
