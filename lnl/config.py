"""The run configuration: one typed dataclass, the single source of truth for a run.

Its fields come in two groups. ``result`` fields change what a run computes: those off their defaults make
the run's identity and its id (:meth:`Config.default_run_id`). ``setting`` fields say how and where it runs
(device, paths, W&B, resuming) and never change a number. Each field carries its help text and, optionally,
the values it allows.

A config is filled, in increasing precedence, from the defaults, a recipe (:mod:`lnl.config_files`), a YAML
file and command-line flags (:mod:`lnl.flags`); :mod:`lnl.config_values` converts what users type. Unknown
keys and invalid values raise :class:`ConfigError`: one line and exit status 2, never a silent default.
``lambda`` is a Python keyword, so the field is ``lambda_``; everywhere a user sees it, it is ``lambda``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from lnl.config_files import load_recipe
from lnl.config_ranges import check_ranges
from lnl.config_values import convert, field_name, plain, public_name, suggest, type_hints
# the data's choices are defined where they are implemented (one list, read by Config and lnl-prepare-data)
from lnl.data.colored import BIAS_IGNORE, COLOR_BOUNDS, COLOR_NOISE, STROKES, UNBIASED_COLORS
from lnl.errors import ConfigError

__all__ = ["Config", "ConfigError", "DATA_VERSION", "PAPER_COLOR_VARS", "result", "setting"]

PAPER_COLOR_VARS = (0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050)


def result(default: Any, help: str, *, choices: Sequence[Any] | None = None, default_factory: Any = None) -> Any:
    """A field that changes what a run computes: it enters the run's identity (and so its run id)."""
    return _field(default, help, choices, default_factory, identity=True)


def setting(default: Any, help: str, *, choices: Sequence[Any] | None = None, default_factory: Any = None) -> Any:
    """An execution setting (device, paths, logging, resuming): the same run whatever its value, so it is
    left out of the identity."""
    return _field(default, help, choices, default_factory, identity=False)


def _field(default: Any, help: str, choices: Sequence[Any] | None, default_factory: Any, identity: bool) -> Any:
    """A dataclass field with its CLI metadata: help text, allowed values, identity."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "identity": identity}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """Everything that defines a run. See ``python scripts/train.py --help``."""

    # ================================================================================================
    # WHAT A RUN COMPUTES: these fields (those off their defaults) make the run's identity and its id
    # ================================================================================================

    # --- experiment -------------------------------------------------------------------------------
    method: str = result("lnl", "training method (registry lnl.methods.METHODS): baseline, lnl, gray, "
                                       "blind_eye, lff or rebias")
    arch: str = result("paper", "architecture (registry lnl.models.ARCHS)")
    color_var: float = result(0.02, "color jitter variance sigma^2 around each class's mean color (> 0; "
                                    "the paper uses 0.020 to 0.050)")
    seed: int = result(0, "training seed: weight init and batch order")

    # --- data -------------------------------------------------------------------------------------
    data_source: str = result("generated", "'generated': Colored MNIST made from MNIST by this package; "
                                           "'official': the authors' released .npy file (--data-path)",
                              choices=("generated", "official"))
    data_path: Optional[str] = result(None, "path of the authors' mnist_10color_jitter_var_<var>.npy "
                                            "(with --data-source official)")
    palette: str = result("default", "the 10 mean colors: a packaged palette ('default': estimated from the "
                                     "authors' released files; 'v1': the first guess) or a CSV path with columns "
                                     "digit,r,g,b (0-255)")
    strokes: str = result("binary", "'binary': digits binarized at MNIST gray > 128 and filled with one flat color, "
                                    "as in the authors' released files; 'graded': gray level x color",
                          choices=STROKES)
    color_noise: str = result("per_channel_var", "how sigma^2 maps onto the color jitter on [0, 1]: "
                                                 "'per_channel_var' N(0, sigma^2) per channel; 'total_var' "
                                                 "sigma^2/3 per channel; 'std' sigma^2 as the per-channel "
                                                 "standard deviation (calibrated on the Baseline and Gray rows)",
                              choices=tuple(COLOR_NOISE))
    color_bounds: str = result("clip", "how a jittered color channel stays in [0, 1]: 'clip' (values beyond pile up at "
                                       "0 and 255) or 'resample' (redrawn until inside, a truncated normal: the "
                                       "rule attributed to the paper's supplementary Algorithm 1; the authors' "
                                       "files show no 0 or 255 in the strokes)",
                               choices=COLOR_BOUNDS)
    unbiased_colors: str = result("palette", "how the unbiased splits (val_unbiased, test) draw each image's "
                                             "color: 'palette' a uniformly chosen palette mean (the label's own "
                                             "included) plus the jitter; 'other_palette' another digit's mean plus "
                                             "the jitter; 'uniform_rgb' uniform random RGB (generated data only)",
                                  choices=UNBIASED_COLORS)
    data_seed: int = result(0, "seed of the dataset's color draws and validation split (separate from --seed)")
    val_size: int = result(5000, "MNIST training images held out as val_biased / val_unbiased")
    train_size: Optional[int] = result(None, "use only the first N training images (quick runs, tests)")
    test_size: Optional[int] = result(None, "use only the first N test images (quick runs, tests)")
    val_eval_size: Optional[int] = result(None, "evaluate on only the first N images of val_biased and val_unbiased "
                                                "(quick runs, tests: with a few thousand training images the two "
                                                "5,000-image validation splits cost as much as the training)")
    eval_every: int = result(1, "score val_biased, val_unbiased and test after every N-th epoch and after the last; "
                                "0: after the last only. Epochs in between record no accuracy, so a selection rule "
                                "picks among the scored ones (the demo: 0, a minute or two less on a 2-core CPU)")

    # --- optimization -----------------------------------------------------------------------------
    epochs: int = result(10, "training epochs")
    batch_size: int = result(128, "mini-batch size")
    optimizer: str = result("sgd", "optimizer for all parts", choices=("sgd", "adam"))
    lr: float = result(0.01, "learning rate of f and g (and of h unless --bias-lr)")
    bias_lr: Optional[float] = result(None, "learning rate of the bias predictor h (default: --lr)")
    momentum: float = result(0.9, "SGD momentum")
    weight_decay: float = result(5e-4, "weight decay")
    lr_schedule: str = result("step", "'step': x lr_gamma every lr_step_epochs (the authors'); "
                                      "'cosine': cosine decay to 0 over the run; 'constant'",
                              choices=("step", "cosine", "constant"))
    lr_step_epochs: int = result(40, "epochs between learning-rate decays of the step schedule")
    lr_gamma: float = result(0.1, "decay factor of the step schedule")
    precision: str = result("auto", "'auto': bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16 (unless "
                                    "ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY caps them), else fp32; 'fp32'; 'bf16'", choices=("auto", "fp32", "bf16"))

    # --- LNL (Kim et al., CVPR 2019, Sec. 3) ------------------------------------------------------
    lambda_: float = result(0.01, "weight of the negative-entropy term that makes h's prediction uncertain")
    mu: float = result(0.1, "gradient reversal scale: f receives -mu x the bias predictor's gradient")
    mu_schedule: str = result("constant", "reversal scale over the unlearning epochs: 'constant' (mu, as the "
                                          "paper) or 'dann': mu x (2 / (1 + exp(-10 p)) - 1), p the progress through "
                                          "them at each epoch's middle (Ganin & Lempitsky, 2015): f unlearns gently "
                                          "while h is weak",
                              choices=("constant", "dann"))
    warmup_epochs: int = result(0, "epochs of plain cross-entropy before unlearning starts (the authors "
                                   "pretrain f and g)")
    lnl_step: str = result("two_pass", "'two_pass': the official step (f,g update, then h and reversed f "
                                       "update); 'one_pass': one forward of f for both updates",
                           choices=("two_pass", "one_pass"))

    # --- BlindEye (Alvi et al., ECCV Workshops 2018) ----------------------------------------------
    alpha: float = result(0.01, "BlindEye: weight of the confusion loss (cross-entropy between h's prediction and "
                                "the uniform distribution) in f's update")

    # --- LfF (Nam et al., NeurIPS 2020) and ReBias (Bahng et al., ICML 2020) -------------------------
    gce_q: float = result(0.7, "LfF: exponent q of the generalized cross-entropy that trains the biased network "
                               "(official 0.7; near 0 it is the cross-entropy, larger q leans on easy samples)")
    loss_ema: float = result(0.7, "LfF: moving-average factor of each sample's loss, old x loss_ema + new x "
                                  "(1 - loss_ema) (official 0.7)")
    hsic_weight: float = result(1.0, "ReBias: weight of the HSIC independence term in f and g's update "
                                     "(official f_lambda_outer 1; the biased network's inner weight stays 1)")

    # --- start and bias head ----------------------------------------------------------------------
    init_from: Optional[str] = result(None, "start from the final checkpoint (weights and optimizer state, as the "
                                            "authors do) of a run of this method (e.g. 'baseline') with the same data, "
                                            "seed and architecture, trained with --init-recipe; it is found by its run "
                                            "id in --runs-dir, or trained first. The bias heads start fresh")
    init_bias_head: bool = result(False, "with --init-from: start h from the pretrained run's bias head (its probe, "
                                         "trained on detached features) instead of fresh; h's optimizer starts fresh")
    bias_probe: bool = result(True, "methods without an adversary train h on detached features, so "
                                    "bias/acc measures the color the features carry for every method")
    bias_ignore: str = result("channel", "bias labels h ignores: 'channel' (the authors' rule) a channel value of "
                                         "0, 'background' only pixels whose 3 channels are 0 (the same on the "
                                         "authors' files; differs where the jitter clips a channel to 0)",
                              choices=BIAS_IGNORE)

    # --- architecture -----------------------------------------------------------------------------
    width: float = result(1.0, "channel multiplier of f and g (1.0: the paper's 32/64 channels)")
    g_depth: int = result(2, "number of 3x3 convolutions in g (2 in the paper)")
    head_width: int = result(32, "hidden channels of each bias head (32 in the paper)")
    head_bn_init: str = result("ones", "initial scale (gamma) of the bias heads' batch norm: 'ones' (PyTorch's "
                                       "default since 1.0) or 'uniform', gamma ~ U(0, 1), the default of the "
                                       "PyTorch 0.3/0.4 the authors' code ran on (their own init covers f and g "
                                       "only, pytorch/pytorch#12325)",
                               choices=("ones", "uniform"))

    # ================================================================================================
    # HOW AND WHERE IT RUNS: execution settings, left out of the identity (same numbers either way)
    # ================================================================================================

    # --- recipes ----------------------------------------------------------------------------------
    recipe: Optional[str] = setting(None, "a named recipe (lnl/resources/recipes/<name>.yaml, e.g. 'reproduction') "
                                          "or a recipe YAML path: per-method defaults under your own values")
    init_recipe: Optional[str] = setting(None, "the recipe of the --init-from run (default: this run's --recipe)")

    # --- files and run folder ---------------------------------------------------------------------
    data_dir: Optional[str] = setting(None, "folder with MNIST IDX files in torchvision's layout "
                                            "(default: the cache folder, where a download lands)")
    cache_dir: str = setting("data", "folder for downloaded MNIST and generated Colored MNIST caches")
    runs_dir: str = setting("runs", "root folder of run records")
    run_id: Optional[str] = setting(None, "run folder name (default: method, bias level, seed and a hash "
                                          "of the config, so a re-launch finds its run)")
    resume: bool = setting(False, "continue the run from its last checkpoint; a finished run is not redone")
    overwrite: bool = setting(False, "train a finished run of the same id again, replacing its record (without "
                                     "it, re-running a finished run is an error)")
    progress: bool = setting(True, "show a progress bar")

    # --- speed (lnl.accel) ------------------------------------------------------------------------
    device: str = setting("auto", "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'")
    channels_last: bool = setting(True, "channels-last memory format (faster convolutions on CPU and GPU)")
    compile: bool = setting(False, "torch.compile the networks")
    cuda_graphs: bool = setting(True, "on a GPU, replay each training step as one CUDA graph (SGD only; no effect "
                                      "on CPU or with --compile)")
    cpu_kernels: bool = setting(True, "on CPU: max-pool + ReLU and LNL's two losses as fused C "
                                      "kernels (compiled on first use; eager ops where no C compiler is found) and "
                                      "f's input batch norm folded into its first convolution; same values and "
                                      "gradients")
    fast_path: str = setting("tuned", "CPU layout (lnl.accel.fast_path): 'tuned' times the layouts --channels-last and "
                                      "--cpu-kernels allow on this CPU at first use (cached per CPU) and takes the "
                                      "fastest; 'cl+kernels', 'cl' or 'nchw' forces one; 'manual' uses "
                                      "--channels-last and --cpu-kernels as given. Same numbers either way",
                             choices=("tuned", "cl+kernels", "cl", "nchw", "manual"))
    threads: Optional[int] = setting(None, "CPU threads for torch (default: this worker's share, cores / "
                                           "LNL_WORKERS, when several share the machine; else torch's choice)")

    # --- tracking (Weights & Biases, Optuna) ------------------------------------------------------
    wandb_mode: str = setting("auto", "'auto': online when W&B credentials exist, else offline; "
                                      "'online', 'offline' or 'disabled' (WANDB_MODE also works)",
                              choices=("auto", "online", "offline", "disabled"))
    init_artifacts: bool = setting(True, "with --init-from: when this machine's store lacks the pretrained run, and "
                                         "W&B is online, take its final checkpoint from the W&B Artifact another "
                                         "machine logged (lnl-final-<run-id>) instead of training it here")
    wandb_project: Optional[str] = setting(None, "W&B project (default: WANDB_PROJECT or 'lnl')")
    wandb_entity: Optional[str] = setting(None, "W&B entity (default: WANDB_ENTITY or your default)")
    group: Optional[str] = setting(None, "W&B group (default: method and bias level)")
    job_type: Optional[str] = setting(None, "W&B job type (default: 'train', or 'sweep' under wandb agent)")
    tags: list[str] = setting(None, "extra W&B tags", default_factory=list)
    study: Optional[str] = setting(None, "Optuna study this run belongs to (set by scripts/optuna_search.py)")
    trial: Optional[int] = setting(None, "Optuna trial number (set by scripts/optuna_search.py)")

    def validate(self) -> "Config":
        """Check every value; raise :class:`ConfigError` naming the first bad key."""
        from lnl.methods import METHODS  # registries import torch: load them only when needed
        from lnl.models import ARCHS

        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(public_name(f.name), f"must be one of {', '.join(map(str, choices))}; "
                                                   f"got {getattr(self, f.name)!r}")
        if self.method not in METHODS:
            raise ConfigError("method", f"must be one of {', '.join(METHODS.names())}; got {self.method!r}")
        if self.arch not in ARCHS:
            raise ConfigError("arch", f"must be one of {', '.join(ARCHS.names())}; got {self.arch!r}")
        check_ranges(self)
        if self.init_from is not None:
            if self.init_from not in METHODS:
                raise ConfigError("init_from", f"must be one of {', '.join(METHODS.names())} or None; "
                                               f"got {self.init_from!r}")
            if not (self.init_recipe or self.recipe):
                raise ConfigError("init_recipe", "is needed with --init-from (or give this run a --recipe)")
        elif self.init_bias_head:
            raise ConfigError("init_bias_head", "needs --init-from (a pretrained run whose bias head to start from)")
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

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with public key names (``lambda``, not ``lambda_``)."""
        return {public_name(f.name): plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
            name = field_name(str(raw_key))
            if name not in fields:
                raise ConfigError(None, f"unknown key {raw_key!r}{suggest(name, fields)}")
            updates[name] = convert(name, type_hints(cls)[name], raw_value)
        return updates

    def identity(self) -> dict[str, Any]:
        """The fields that decide what the run computes (used for the run id)."""
        return {public_name(f.name): plain(getattr(self, f.name)) for f in dataclasses.fields(self)
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
        """Hash of the identity fields that differ from their defaults: leaving defaults out keeps run ids stable
        when a new field (with a default that reproduces the old behaviour) is added to the config."""
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
                  "alpha", "gce_q", "loss_ema", "hsic_weight", "warmup_epochs", "lnl_step", "init_from",
                  "init_recipe", "init_bias_head", "run_id", "resume", "group",
                  "job_type", "study", "trial", "tags",
                  # what only h reads or is: a pretrained baseline's f and g do not depend on them
                  "bias_ignore", "head_bn_init"}
