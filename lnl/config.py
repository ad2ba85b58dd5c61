"""The run configuration: one typed dataclass, and the three ways to fill it.

``Config`` is the single source of truth for a run. Every field carries its help
text (shown by ``--help``), and optionally the values it allows. It is filled
from, in increasing precedence:

1. the defaults below,
2. a YAML file (``--config file.yaml``; a flat mapping of field names),
3. command-line flags, in either spelling: ``--color-var 0.03`` or the
   ``--color_var=0.03`` that ``wandb agent`` renders from a sweep's ``${args}``,
   with booleans as ``True``/``False`` and ``None`` for "unset".

Unknown keys and invalid values raise :class:`ConfigError`, which the command-line
entry points turn into one line on stderr and exit status 2; nothing falls back
to a default silently.

``lambda`` is a Python keyword, so the field is ``lambda_``; everywhere a user
sees it (flags, YAML, records, W&B) it is spelled ``lambda``.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

# the data's choices are defined where they are implemented (one list, read by Config and lnl-prepare-data)
from lnl.data.colored import BIAS_IGNORE, COLOR_BOUNDS, COLOR_NOISE, STROKES, UNBIASED_COLORS
from lnl.errors import UserError

PAPER_COLOR_VARS = (0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050)


class ConfigError(UserError):
    """A bad key or value; ``str(err)`` is the one line shown to the user."""

    def __init__(self, key: str | None, message: str) -> None:
        self.key = key
        flag = f"{key} (--{key.replace('_', '-')})" if key else "config"
        super().__init__(f"{flag}: {message}")


def _f(default: Any, help: str, *, choices: Sequence[Any] | None = None, identity: bool = True,
       default_factory: Any = None) -> Any:
    """A dataclass field with CLI metadata.

    ``identity=False`` marks fields that do not change what a run computes (paths,
    logging, resuming); they are left out of the run's identity hash.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "identity": identity}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """Everything that defines a run. See ``python scripts/train.py --help``."""

    # --- experiment -----------------------------------------------------------------
    method: str = _f("lnl", "training method (registry lnl.methods.METHODS): baseline, lnl, gray or "
                                   "blind_eye")
    arch: str = _f("paper", "architecture (registry lnl.models.ARCHS)")
    color_var: float = _f(0.02, "color jitter variance sigma^2 around each class's mean color (> 0; "
                                "the paper uses 0.020 to 0.050)")
    seed: int = _f(0, "training seed: weight init and batch order")
    recipe: Optional[str] = _f(None, "a named recipe (lnl/resources/recipes/<name>.yaml, e.g. 'reproduction') "
                                     "or a recipe YAML path: per-method defaults under your own values",
                               identity=False)

    # --- data -----------------------------------------------------------------------
    data_source: str = _f("generated", "'generated': Colored MNIST made from MNIST by this package; "
                                       "'official': the authors' released .npy file (--data-path)",
                          choices=("generated", "official"))
    data_path: Optional[str] = _f(None, "path of the authors' mnist_10color_jitter_var_<var>.npy "
                                        "(with --data-source official)")
    data_dir: Optional[str] = _f(None, "folder with MNIST IDX files in torchvision's layout "
                                       "(default: the cache folder, where a download lands)", identity=False)
    cache_dir: str = _f("data", "folder for downloaded MNIST and generated Colored MNIST caches",
                        identity=False)
    palette: str = _f("default", "the 10 mean colors: a packaged palette ('default': estimated from the "
                                 "authors' released files; 'v1': the first guess) or a CSV path with columns "
                                 "digit,r,g,b (0-255)")
    strokes: str = _f("binary", "'binary': digits binarized at MNIST gray > 128 and filled with one flat color, "
                                "as in the authors' released files; 'graded': gray level x color",
                      choices=STROKES)
    color_noise: str = _f("per_channel_var", "how sigma^2 maps onto the color jitter on [0, 1]: "
                                             "'per_channel_var' N(0, sigma^2) per channel; 'total_var' "
                                             "sigma^2/3 per channel; 'std' sigma^2 as the per-channel "
                                             "standard deviation (calibrated on the Baseline and Gray rows)",
                          choices=tuple(COLOR_NOISE))
    color_bounds: str = _f("clip", "how a jittered color channel stays in [0, 1]: 'clip' (values beyond pile up at "
                                   "0 and 255) or 'resample' (redrawn until inside, a truncated normal: the "
                                   "rule attributed to the paper's supplementary Algorithm 1; the authors' "
                                   "files show no 0 or 255 in the strokes)",
                           choices=COLOR_BOUNDS)
    unbiased_colors: str = _f("palette", "how the unbiased splits (val_unbiased, test) draw each image's color: "
                                         "'palette' a uniformly chosen palette mean (the label's own included) plus "
                                         "the jitter; 'other_palette' another digit's mean plus the jitter; "
                                         "'uniform_rgb' uniform random RGB (generated data only)",
                              choices=UNBIASED_COLORS)
    data_seed: int = _f(0, "seed of the dataset's color draws and validation split (separate from --seed)")
    val_size: int = _f(5000, "MNIST training images held out as val_biased / val_unbiased")
    train_size: Optional[int] = _f(None, "use only the first N training images (quick runs, tests)")
    test_size: Optional[int] = _f(None, "use only the first N test images (quick runs, tests)")
    val_eval_size: Optional[int] = _f(None, "evaluate on only the first N images of val_biased and val_unbiased "
                                            "(quick runs, tests: with a few thousand training images the two "
                                            "5,000-image validation splits cost as much as the training)")

    # --- optimization ---------------------------------------------------------------
    epochs: int = _f(10, "training epochs")
    batch_size: int = _f(128, "mini-batch size")
    optimizer: str = _f("sgd", "optimizer for all parts", choices=("sgd", "adam"))
    lr: float = _f(0.01, "learning rate of f and g (and of h unless --bias-lr)")
    bias_lr: Optional[float] = _f(None, "learning rate of the bias predictor h (default: --lr)")
    momentum: float = _f(0.9, "SGD momentum")
    weight_decay: float = _f(5e-4, "weight decay")
    lr_schedule: str = _f("step", "'step': x lr_gamma every lr_step_epochs (the authors'); "
                                  "'cosine': cosine decay to 0 over the run; 'constant'",
                          choices=("step", "cosine", "constant"))
    lr_step_epochs: int = _f(40, "epochs between learning-rate decays of the step schedule")
    lr_gamma: float = _f(0.1, "decay factor of the step schedule")

    # --- LNL (Kim et al., CVPR 2019, Sec. 3) -----------------------------------------
    lambda_: float = _f(0.01, "weight of the negative-entropy term that makes h's prediction uncertain")
    mu: float = _f(0.1, "gradient reversal scale: f receives -mu x the bias predictor's gradient")
    mu_schedule: str = _f("constant", "reversal scale over the unlearning epochs: 'constant' (mu, as the paper) or "
                                      "'dann': mu x (2 / (1 + exp(-10 p)) - 1), p the progress through them at each "
                                      "epoch's middle (Ganin & Lempitsky, 2015): f unlearns gently while h is weak",
                          choices=("constant", "dann"))
    warmup_epochs: int = _f(0, "epochs of plain cross-entropy before unlearning starts (the authors "
                               "pretrain f and g)")
    lnl_step: str = _f("two_pass", "'two_pass': the official step (f,g update, then h and reversed f "
                                   "update); 'one_pass': one forward of f for both updates",
                       choices=("two_pass", "one_pass"))
    # --- BlindEye (Alvi et al., ECCV Workshops 2018) ------------------------------------
    alpha: float = _f(0.01, "BlindEye: weight of the confusion loss (cross-entropy between h's prediction and "
                            "the uniform distribution) in f's update")
    init_from: Optional[str] = _f(None, "start from the final checkpoint (weights and optimizer state, as the "
                                        "authors do) of a run of this method (e.g. 'baseline') with the same data, "
                                        "seed and architecture, trained with --init-recipe; it is found by its run "
                                        "id in --runs-dir, or trained first. The bias heads start fresh")
    init_recipe: Optional[str] = _f(None, "the recipe of the --init-from run (default: this run's --recipe)",
                                    identity=False)
    bias_probe: bool = _f(True, "methods without an adversary train h on detached features, so "
                                "bias/acc measures the color the features carry for every method")
    bias_ignore: str = _f("channel", "bias labels h ignores: 'channel' (the authors' rule) a channel value of "
                                     "0, 'background' only pixels whose 3 channels are 0 (the same on the "
                                     "authors' files; differs where the jitter clips a channel to 0)",
                          choices=BIAS_IGNORE)

    # --- architecture knobs -----------------------------------------------------------
    width: float = _f(1.0, "channel multiplier of f and g (1.0: the paper's 32/64 channels)")
    g_depth: int = _f(2, "number of 3x3 convolutions in g (2 in the paper)")
    head_width: int = _f(32, "hidden channels of each bias head (32 in the paper)")
    head_bn_init: str = _f("ones", "initial scale (gamma) of the bias heads' batch norm: 'ones' (PyTorch's "
                                   "default since 1.0) or 'uniform', gamma ~ U(0, 1), the default of the "
                                   "PyTorch 0.3/0.4 the authors' code ran on (their own init covers f and g "
                                   "only, pytorch/pytorch#12325)",
                           choices=("ones", "uniform"))

    # --- execution --------------------------------------------------------------------
    device: str = _f("auto", "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'", identity=False)
    precision: str = _f("auto", "'auto': bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16, else "
                                "fp32; 'fp32'; 'bf16'", choices=("auto", "fp32", "bf16"))
    channels_last: bool = _f(True, "channels-last memory format (faster convolutions on CPU and GPU)",
                             identity=False)
    compile: bool = _f(False, "torch.compile the networks", identity=False)
    cuda_graphs: bool = _f(True, "on a GPU, replay each training step as one CUDA graph (SGD only; no effect "
                                 "on CPU or with --compile)", identity=False)
    cpu_kernels: bool = _f(True, "on CPU: max-pool + ReLU and LNL's two losses as fused C "
                                 "kernels (compiled on first use; eager ops where no C compiler is found) and "
                                 "f's input batch norm folded into its first convolution; same values and "
                                 "gradients",
                           identity=False)
    fast_path: str = _f("tuned", "CPU layout (lnl.accel.fast_path): 'tuned' times the layouts --channels-last and "
                                 "--cpu-kernels allow on this CPU at first use (cached per CPU) and takes the "
                                 "fastest; 'cl+kernels', 'cl' or 'nchw' forces one; 'manual' uses "
                                 "--channels-last and --cpu-kernels as given. Same numbers either way",
                        identity=False, choices=("tuned", "cl+kernels", "cl", "nchw", "manual"))
    threads: Optional[int] = _f(None, "CPU threads for torch (default: this worker's share, cores / "
                                      "LNL_WORKERS, when several share the machine; else torch's choice)",
                               identity=False)

    # --- records ----------------------------------------------------------------------
    runs_dir: str = _f("runs", "root folder of run records", identity=False)
    run_id: Optional[str] = _f(None, "run folder name (default: method, bias level, seed and a hash "
                                     "of the config, so a re-launch finds its run)", identity=False)
    resume: bool = _f(False, "continue the run from its last checkpoint; a finished run is not redone",
                      identity=False)
    overwrite: bool = _f(False, "train a finished run of the same id again, replacing its record (without "
                                "it, re-running a finished run is an error)", identity=False)
    progress: bool = _f(True, "show a progress bar", identity=False)

    # --- tracking (Weights & Biases) --------------------------------------------------
    wandb_mode: str = _f("auto", "'auto': online when W&B credentials exist, else offline; "
                                 "'online', 'offline' or 'disabled' (WANDB_MODE also works)",
                         choices=("auto", "online", "offline", "disabled"), identity=False)
    init_artifacts: bool = _f(True, "with --init-from: when this machine's store lacks the pretrained run, and "
                                    "W&B is online, take its final checkpoint from the W&B Artifact another "
                                    "machine logged (lnl-final-<run-id>) instead of training it here",
                              identity=False)
    wandb_project: Optional[str] = _f(None, "W&B project (default: WANDB_PROJECT or 'lnl')", identity=False)
    wandb_entity: Optional[str] = _f(None, "W&B entity (default: WANDB_ENTITY or your default)",
                                     identity=False)
    group: Optional[str] = _f(None, "W&B group (default: method and bias level)", identity=False)
    job_type: Optional[str] = _f(None, "W&B job type (default: 'train', or 'sweep' under wandb agent)",
                                 identity=False)
    tags: list[str] = _f(None, "extra W&B tags", identity=False, default_factory=list)
    study: Optional[str] = _f(None, "Optuna study this run belongs to (set by scripts/optuna_search.py)",
                              identity=False)
    trial: Optional[int] = _f(None, "Optuna trial number (set by scripts/optuna_search.py)", identity=False)

    # ----------------------------------------------------------------------------------
    def validate(self) -> "Config":
        """Check every value; raise :class:`ConfigError` naming the first bad key."""
        from lnl.methods import METHODS  # registries import torch: load them only when needed
        from lnl.models import ARCHS

        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(_public(f.name), f"must be one of {', '.join(map(str, choices))}; "
                                                   f"got {getattr(self, f.name)!r}")
        if self.method not in METHODS:
            raise ConfigError("method", f"must be one of {', '.join(METHODS.names())}; got {self.method!r}")
        if self.arch not in ARCHS:
            raise ConfigError("arch", f"must be one of {', '.join(ARCHS.names())}; got {self.arch!r}")
        self._check_ranges()
        if self.init_from is not None:
            if self.init_from not in METHODS:
                raise ConfigError("init_from", f"must be one of {', '.join(METHODS.names())} or None; "
                                               f"got {self.init_from!r}")
            if not (self.init_recipe or self.recipe):
                raise ConfigError("init_recipe", "is needed with --init-from (or give this run a --recipe)")
        if self.data_source == "official" and not self.data_path:
            raise ConfigError("data_path", "is required with --data-source official "
                                           "(a mnist_10color_jitter_var_<var>.npy file)")
        if self.data_source == "official" and self.color_bounds != "clip":
            raise ConfigError("color_bounds", "applies to generated data only (the authors' file has its own "
                                              "colors); leave it at 'clip' with --data-source official")
        if self.data_source == "official" and self.unbiased_colors != "palette":
            raise ConfigError("unbiased_colors", "applies to generated data only (the authors' file has its own "
                                                 "test colors); leave it at 'palette' with --data-source official")
        if not (self.device in ("auto", "cpu", "cuda") or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError("device", f"must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        if self.run_id is not None and (not self.run_id or "/" in self.run_id or self.run_id.startswith(".")):
            raise ConfigError("run_id", f"must be a plain folder name; got {self.run_id!r}")
        self._check_start_chain()
        self._check_paths()
        return self

    def _check_start_chain(self) -> None:
        """A run that starts from a run that (through recipes) starts from itself would recurse forever."""
        seen, cfg = {(self.method, self.recipe, self.init_recipe)}, self
        while cfg.init_from is not None:
            cfg = cfg.init_config()
            key = (cfg.method, cfg.recipe, cfg.init_recipe)
            if key in seen:
                raise ConfigError("init_from", f"{self.method} starts from {cfg.method} (recipe {cfg.recipe}), which "
                                               "starts from itself: a recipe's init_from must name another method")
            seen.add(key)

    def _check_paths(self) -> None:
        """The runs folder must be a folder (or not exist yet), and a run's lock file name must fit the file
        system (255 bytes), so neither fails mid-run."""
        runs = Path(self.runs_dir)
        if runs.is_symlink() and not runs.exists():
            raise ConfigError("runs_dir", f"{self.runs_dir} is a symbolic link to nothing")
        if runs.exists() and not runs.is_dir():
            raise ConfigError("runs_dir", f"{self.runs_dir} is a file, not a folder")
        name = self.run_id or f"{self.method}-cv{self.color_var:.3f}-s{self.seed}-0123456789"
        if len(f".{name}.pretrain.lock".encode()) > 255:
            raise ConfigError("run_id", f"is too long for a file name ({len(name.encode())} bytes; at most 240)")

    def _check_ranges(self) -> None:
        """The numeric keys' ranges (part of :meth:`validate`)."""
        positive = {"color_var": self.color_var, "lr": self.lr, "width": self.width}
        if self.bias_lr is not None:
            positive["bias_lr"] = self.bias_lr
        for key, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(key, f"must be a finite number > 0; got {value}")
        non_negative = {"weight_decay": self.weight_decay, "lambda": self.lambda_, "mu": self.mu, "alpha": self.alpha,
                        "warmup_epochs": self.warmup_epochs, "val_size": self.val_size,
                        "lr_gamma": self.lr_gamma}
        for key, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(key, f"must be a finite number >= 0; got {value}")
        at_least_one = {"epochs": self.epochs, "g_depth": self.g_depth, "head_width": self.head_width,
                        "lr_step_epochs": self.lr_step_epochs}
        for key, value in at_least_one.items():
            if value < 1:
                raise ConfigError(key, f"must be an integer >= 1; got {value}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", f"must be >= 2 (batch norm needs 2 samples); got {self.batch_size}")
        if not 0 <= self.momentum < 1:
            raise ConfigError("momentum", f"must be in [0, 1); got {self.momentum}")
        if self.warmup_epochs > self.epochs:
            raise ConfigError("warmup_epochs", f"must be <= epochs ({self.epochs}); got {self.warmup_epochs}")
        if self.val_size >= 60000:
            raise ConfigError("val_size", f"must be < 60000 (the MNIST training set); got {self.val_size}")
        for key in ("seed", "data_seed"):  # numpy and torch seeds: 0 <= seed < 2^63
            if not 0 <= getattr(self, key) < 2 ** 63:
                raise ConfigError(key, f"must be an integer in [0, 2^63); got {getattr(self, key)}")
        for key in ("train_size", "test_size", "val_eval_size", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(key, f"must be >= 1 or None; got {value}")

    # ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict with public key names (``lambda``, not ``lambda_``)."""
        return {_public(f.name): _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, base: "Config | None" = None) -> "Config":
        """Build a config from ``values`` (public or field names) over ``base`` (defaults).

        Values may be strings as they come from a command line; they are converted
        to each field's type. Unknown keys raise :class:`ConfigError`.
        """
        updates = cls._convert_all(values)
        start = base if base is not None else cls()
        if updates.get("recipe"):
            # A recipe supplies defaults for the run's method; explicit values still win.
            method = updates.get("method", start.method)
            recipe = cls._convert_all(load_recipe(updates["recipe"], method))
            start = dataclasses.replace(start, **{k: v for k, v in recipe.items() if k not in updates})
        return dataclasses.replace(start, **updates)

    @classmethod
    def _convert_all(cls, values: dict[str, Any]) -> dict[str, Any]:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        updates: dict[str, Any] = {}
        for raw_key, raw_value in values.items():
            name = _field_name(str(raw_key))
            if name not in fields:
                raise ConfigError(None, f"unknown key {raw_key!r}{_suggest(name, fields)}")
            updates[name] = _convert(name, _field_type(cls, name), raw_value)
        return updates

    def identity(self) -> dict[str, Any]:
        """The fields that decide what the run computes (used for the run id)."""
        return {_public(f.name): _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.metadata.get("identity", True)}

    def rerun_values(self) -> dict[str, Any]:
        """What a config file needs to recompute this run (``lnl-train --config``; an Optuna study's best
        trial): the identity fields, and for a run started from a pretrained one the recipe that pretrained
        it. That recipe is not an identity field (the pretraining run's id stands for it in the hash), yet
        without it a config file could not name its starting point."""
        values = self.identity()
        if self.init_from is not None:
            values["init_recipe"] = self.init_recipe or self.recipe
        return values

    def identity_hash(self) -> str:
        """Hash of the identity fields that differ from their defaults.

        Leaving defaults out keeps run ids stable when a new field (with a default
        that reproduces the old behaviour) is added to the config.
        """
        defaults = Config().identity()
        changed = {k: v for k, v in self.identity().items() if v != defaults.get(k)}
        changed["data_version"] = DATA_VERSION  # runs on other data never share an id
        if self.init_from is not None:
            # The starting point is part of what the run computes: the pretraining run's own identity.
            changed["init_run"] = self.init_config().default_run_id()
        blob = json.dumps(changed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def default_run_id(self) -> str:
        return f"{self.method}-cv{self.color_var:.3f}-s{self.seed}-{self.identity_hash()}"

    def init_config(self) -> "Config":
        """The config of the run this one starts from (``init_from``): that method with
        ``init_recipe``'s values for it, and this run's data, seed, architecture, precision
        and execution settings. Its run id is deterministic, so every run (a sweep's trials,
        an Optuna study's, a grid's) that starts from it shares one pretrained run."""
        if self.init_from is None:
            raise ValueError("init_config() needs init_from")
        inherited = {k: v for k, v in self.to_dict().items() if k not in _NOT_INHERITED}
        values = {**inherited, "method": self.init_from, "recipe": self.init_recipe or self.recipe,
                  "resume": True, "tags": list(self.tags) + ["pretrain"]}
        return Config.from_dict(values)


# Bumped whenever the default data change (2: binary strokes, palette from the authors' files), so that
# runs on different data never share a run id.
DATA_VERSION = 2

# What a pretraining run (Config.init_config) does not take from the run that starts from it: the
# optimization and method settings (they come from the pretraining recipe) and the run's own names.
_NOT_INHERITED = {"method", "recipe", "epochs", "batch_size", "optimizer", "lr", "bias_lr", "momentum",
                  "weight_decay", "lr_schedule", "lr_step_epochs", "lr_gamma", "lambda", "mu", "mu_schedule",
                  "alpha", "warmup_epochs", "lnl_step", "init_from", "init_recipe", "run_id", "resume", "group",
                  "job_type", "study", "trial", "tags",
                  # what only h reads or is: a pretrained baseline's f and g do not depend on them
                  "bias_ignore", "head_bn_init"}


# ---------------------------------------------------------------------------------------
# names and types
def _public(name: str) -> str:
    return name[:-1] if name.endswith("_") else name


def _field_name(key: str) -> str:
    key = key.strip().lstrip("-").replace("-", "_")
    return key + "_" if key in ("lambda",) else key


def _suggest(name: str, fields: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1)
    return f" (did you mean {_public(close[0])!r}?)" if close else ""


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _convert(name: str, tp: Any, raw: Any) -> Any:
    """Convert ``raw`` (a string from argv, or a YAML value) to type ``tp``."""
    key = _public(name)
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = True, args[0]
    if raw is None or (isinstance(raw, str) and raw.strip() in ("None", "null", "~")):
        if optional:
            return None
        raise ConfigError(key, "must not be None")
    try:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if tp is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError
                return int(raw)
            text = str(raw).strip()
            try:
                return int(text)
            except ValueError:
                number = float(text)  # '2.0' as a sweep renders a YAML 2.0; '2.5' stays an error
                if not number.is_integer():
                    raise
                return int(number)
        if tp is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if tp is str:
            if isinstance(raw, (dict, list)):
                raise ValueError
            return str(raw)
        if typing.get_origin(tp) is list:
            if isinstance(raw, str):
                text = raw.strip()
                if text.startswith("["):
                    raw = ast.literal_eval(text)
                else:
                    raw = [t.strip() for t in text.split(",") if t.strip()]
            if not isinstance(raw, (list, tuple)):
                raise ValueError
            return [str(v) for v in raw]
    except (ValueError, TypeError, OverflowError, SyntaxError, RecursionError):  # a YAML list or mapping included
        pass
    kind = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}.get(tp, "a list")
    raise ConfigError(key, f"must be {kind}{' or None' if optional else ''}; got {raw!r}")


# ---------------------------------------------------------------------------------------
# YAML and command line
def parse_pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (a script's ``--set`` / ``--filter``) -> dict; one-line error otherwise."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(None, f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _read_yaml(path: Path, key: str) -> Any:
    """A YAML file's content; unreadable, non-UTF-8 or invalid YAML is a ConfigError on ``key``."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(key, f"{path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(key, f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML mapping of config keys (``{key: value}`` or W&B's ``{key: {value: v}}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"file not found: {path}")
    data = _read_yaml(path, "config")
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of config keys")
    # W&B's config-defaults style: {"lr": {"value": 0.01}}
    return {k: (v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} else v) for k, v in data.items()}


RECIPES = Path(__file__).resolve().parent / "resources" / "recipes"


def load_recipe(spec: str, method: str) -> dict[str, Any]:
    """The values a recipe sets for ``method``.

    A recipe YAML maps method names to config values, plus an optional ``all``
    entry shared by every method (the method's own entry wins).
    """
    path = Path(spec) if spec.endswith((".yaml", ".yml")) else RECIPES / f"{spec}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
        raise ConfigError("recipe", f"no recipe {spec!r} (named recipes: {known}; or a path to a .yaml)")
    data = _read_yaml(path, "recipe")
    if not isinstance(data, dict) or method not in data:
        raise ConfigError("recipe", f"recipe {spec!r} has no entry for method {method!r}")
    for entry in ("all", method):
        if not isinstance(data.get(entry) or {}, dict):
            raise ConfigError("recipe", f"recipe {spec!r}: the entry {entry!r} must be a mapping of config keys; "
                                        f"got {type(data[entry]).__name__}")
    return {**(data.get("all") or {}), **(data.get(method) or {})}


def help_text(prog: str = "train.py") -> str:
    lines = [f"usage: {prog} [--config FILE.yaml] [--key VALUE | --key=VALUE ...]", "",
             "Train on Colored MNIST. Precedence: defaults < --config YAML < flags.",
             "Every flag also accepts --snake_case=VALUE as wandb agent writes it.", ""]
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        flag = "--" + _public(f.name).replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        tp = hints[f.name]
        type_name = getattr(tp, "__name__", str(tp).replace("typing.", ""))
        lines.append(f"  {flag:<18} {f.metadata['help']} [{type_name}; default {default!r}]")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Parse command-line flags (and ``--config FILE``) into a validated :class:`Config`.

    Accepted forms: ``--key value``, ``--key=value``, a bare ``--flag`` for booleans
    (meaning True), key spellings with ``-`` or ``_``. ``-h``/``--help`` prints the
    generated help and exits 0.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    hints = typing.get_type_hints(Config)
    names = {f.name for f in dataclasses.fields(Config)}
    flags: dict[str, Any] = {}
    config_file: str | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-h", "--help"):
            print(help_text())
            raise SystemExit(0)
        if not token.startswith("--"):
            raise ConfigError(None, f"unexpected argument {token!r} (flags look like --key=value)")
        key, has_value, value = token[2:].partition("=")
        name = _field_name(key)
        if name == "config":
            if not has_value:
                if i + 1 >= len(argv):
                    raise ConfigError("config", "needs a YAML file")
                value, i = argv[i + 1], i + 1
            config_file = value
            i += 1
            continue
        if name not in names:
            raise ConfigError(None, f"unknown option --{key}{_suggest(name, dict.fromkeys(names))}")
        if not has_value:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if hints[name] is bool and (nxt is None or nxt.startswith("--")):
                value = "True"
            elif nxt is None:
                raise ConfigError(_public(name), "needs a value")
            else:
                value, i = nxt, i + 1
        flags[name] = value
        i += 1
    # One merge, so that a recipe (from the YAML or a flag) sits under both: defaults < recipe < YAML < flags.
    values = {**load_yaml(config_file), **flags} if config_file else flags
    return Config.from_dict(values).validate()
