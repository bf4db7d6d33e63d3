"""Typed, frozen run configuration: defaults in one place, overrides from YAML and the command line.

A YAML file and ``--set key=value`` hold only overrides of the defaults below. Unknown keys, wrong
types and impossible values raise a one-line ``UserError`` that names the key and what is allowed:
nothing is ever set silently. ``resolve()`` fills the per-objective paper defaults (learning rates,
betas, n_critic, optimiser) so the config written beside a run is the whole truth about it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from benchmark.errors import UserError, did_you_mean, quote

# The registries (data, models, objectives) are imported in check() and resolve(), and io's guarded reader in
# load_yaml(), not here: they import torch (2-5 s), and `ganbench train --help` reads this module's field
# comments and limits without it.

DEVICE_RE = re.compile(r"auto|cpu|cuda(:[0-9]{1,4})?")  # a device ganbench can pick (train.pick_device)
CRITIC_NORMS = ("none", "batch", "layer", "instance")
GP_MODES = ("two-sided", "one-sided")
COND_MODES = ("concat", "projection")
LR_DECAYS = ("none", "linear")
LABEL_SCALES = ("one", "sqrt-z")  # the factor on G's one-hot label: 1, or sqrt(z_dim) (models.label_factor)

# Conditional objectives are just names for (objective, conditional=True).
CONDITIONAL_ALIASES = {
    "cgan": "gan",
    "cgan-minimax": "gan-minimax",
    "clsgan": "lsgan",
    "cwgan": "wgan",
    "cwgan-gp": "wgan-gp",
}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``None`` means "the default of the objective/model", filled by ``resolve``."""

    # --- what is trained --------------------------------------------------------------------
    dataset: str = "mnist"  # registry name: mnist, fashion-mnist, stacked-mnist, ring8, grid25, digits
    data_root: Optional[str] = None  # None: $GANBENCH_DATA, else ./data
    download: bool = True  # fetch torchvision datasets when absent (needs a network)
    model: str = "mlp"  # registry name: mlp, dcgan, toy, toy-pacgan, toy-pacgan-maxout, toy-wgangp (or "package.module:function" returning a user's (G, D))
    objective: str = "wgan-gp"  # gan, gan-minimax, lsgan, wgan, wgan-gp (c-prefixed: conditional)
    conditional: bool = False  # class label as an input to G and D
    cond_mode: str = "concat"  # how D sees the label: concat (one-hot input) | projection
    label_scale: str = "one"  # G's one-hot label times: one (1) | sqrt-z (sqrt(z_dim): the energy of z)
    z_dim: Optional[int] = None  # None: the model's default (100 for images, 2 for the toy models)
    critic_norm: str = "none"  # normalisation inside the critic: none | batch | layer | instance

    # --- budget --------------------------------------------------------------------------------
    steps: int = 2000  # generator steps (the budget); see `epochs`
    epochs: Optional[float] = None  # if set, steps = ceil(epochs * N / batch_size)
    batch_size: int = 64

    # --- optimisation (None: the paper default of the objective, see objectives.PAPER_DEFAULTS) --
    n_critic: Optional[int] = None  # critic steps per generator step
    lr_g: Optional[float] = None
    lr_d: Optional[float] = None
    beta1_g: Optional[float] = None  # Adam betas (ignored by RMSProp)
    beta2_g: Optional[float] = None
    beta1_d: Optional[float] = None
    beta2_d: Optional[float] = None
    optimizer: Optional[str] = None  # adam | rmsprop
    lr_decay: str = "none"  # none | linear: both learning rates fall linearly to 0 at the last step

    # --- objective parameters --------------------------------------------------------------------
    gp_lambda: float = 10.0  # weight of the gradient penalty (wgan-gp)
    gp_mode: str = "two-sided"  # two-sided: (|g|-1)^2; one-sided: max(0, |g|-1)^2
    clip: float = 0.01  # weight clipping range [-clip, clip] (wgan)

    # --- mode-collapse remedies (compose with any objective) -------------------------------------
    minibatch_disc: bool = False  # minibatch discrimination layer before the critic's head
    feature_matching: bool = False  # G matches the mean critic features of real data
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (gan, gan-minimax, lsgan)
    instance_noise: float = 0.0  # std of Gaussian noise on D's inputs, annealed linearly to 0
    pack: int = 1  # PacGAN: D judges `pack` samples jointly

    # --- reproducibility and I/O -------------------------------------------------------------------
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)
    device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N
    num_threads: Optional[int] = None  # torch CPU threads (None: torch's default)
    checkpoint_every: int = 500  # generator steps between resumable checkpoints
    checkpoint_at: List[int] = field(default_factory=list)  # steps that keep generator weights + a sample
    #   grid (for evaluation); empty: every checkpoint does. The last step always does.
    grad_norm_every: int = 10  # steps between |grad D| measurements for objectives without a GP
    log_flush_every: int = 50  # steps between appends of the per-step log to disk
    num_grid: int = 64  # samples in the fixed-noise grid
    tensorboard: bool = False  # also write TensorBoard event files in RUN/tb/ (logged scalars, sample grids, scores)
    #   (benchmark/tb.py); changes no number of the run, nor its config hash

    def replace(self, **kw: Any) -> "TrainConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def field_docs(cls: type) -> Dict[str, str]:
    """The comment after each field of a config dataclass (used as ``--help`` text of its flag)."""
    import inspect

    docs: Dict[str, str] = {}
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return docs
    for line in src.splitlines():
        m = re.match(r"\s+(\w+):[^#]*#\s*(.+)$", line)
        if m:
            docs[m.group(1)] = m.group(2).strip().replace("%", "%%")
    if cls is TrainConfig:
        for k, lim in LIMITS.items():
            docs[k] = f"{docs.get(k, '')} (range: {lim.text()})".strip()
    return docs


# ------------------------------------------------------------------------------------------------
# generic typed parsing, shared by every config dataclass of the package


def _allowed(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_allowed(a) for a in args) + " or null"
    if origin in (list, tuple):
        return "a list"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any, width: int = 40) -> str:
    """``repr(value)``, shortened: an error line stays one short line whatever was given."""
    r = repr(value)
    return r if len(r) <= width else r[: width - 3] + "..."


YAML_NON_FINITE = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}  # YAML's spellings


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise a one-line UserError otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return coerce(key, value, args[0])
    if origin is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"config key '{key}' must be a mapping, got {_show(value)}")
        return dict(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' must be a list, got {_show(value)}")
        (inner,) = typing.get_args(tp)[:1] or (Any,)
        out = [coerce(key, v, inner) if inner is not Any else v for v in value]
        return tuple(out) if origin is tuple else out
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise UserError(f"config key '{key}' must be true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' must be an integer, got {_show(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            for base in (10, 0):  # 12, 1_000; then 0x1f, 0o17, 0b101
                try:
                    return int(value, base)
                except ValueError:  # not a number, or more digits than Python converts (4300)
                    pass
        raise UserError(f"config key '{key}' must be an integer, got {_show(value)}")
    if tp is float:
        out: Optional[float] = None
        if isinstance(value, str) and value.strip().lower() in YAML_NON_FINITE:
            value = YAML_NON_FINITE[value.strip().lower()]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                out = float(value)
            except (ValueError, OverflowError):  # "abc"; an integer too large for a float
                out = math.inf if isinstance(value, int) else None
        if out is None:
            raise UserError(f"config key '{key}' must be a number, got {_show(value)}")
        if not math.isfinite(out):  # nan and inf pass float(); they are never a meaningful setting
            raise UserError(f"config key '{key}' must be a finite number, got {_show(value)}")
        return out
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"config key '{key}' must be a string, got {_show(value)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise UserError(f"config key '{key}' must be a mapping, got {_show(value)}")
        return build(tp, value, prefix=f"{key}.")
    return value


def build(cls: Any, overrides: Mapping[str, Any], prefix: str = "", base: Any = None) -> Any:
    """Instantiate dataclass ``cls`` (or replace fields of ``base``) from ``overrides``, type-checked."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    kw: Dict[str, Any] = {}
    for key, value in overrides.items():
        k = str(key).replace("-", "_")
        if k not in names:
            hint = did_you_mean(k, names, prefix)
            raise UserError(
                f"unknown config key '{prefix}{key}'{hint}; valid keys: {', '.join(prefix + n for n in names)}"
            )
        kw[k] = coerce(prefix + k, value, hints[k])
    if base is not None:
        return dataclasses.replace(base, **kw)
    return cls(**kw)


# ------------------------------------------------------------------------------------------------
# strict YAML: data only, read once, bounded

MAX_YAML_BYTES = 1 << 20  # a config or study spec is a few kilobytes
MAX_YAML_DEPTH = 32  # nested lists/mappings; a spec nests 5 deep
MAX_YAML_INT_DIGITS = 40


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads plain data only: no tags (``!!python/...``, ``!!binary``, any ``!x``), no
    aliases (so no alias bomb: nothing is expanded), no merge keys, no key given twice (the last would win
    silently), at most MAX_YAML_DEPTH levels of nesting (deeper would exhaust Python's stack), no integer of
    absurd length."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"uses the alias *{event.anchor} (aliases are not allowed: write the value out)", event.start_mark
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Refused(
                f"has the tag {quote(tag, 60)} (tags are not allowed: write a plain value)", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"nests deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Refused("has a merge key '<<' (not allowed: write the keys out)", key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise _Refused("has a list or mapping as a key", key_node.start_mark) from None
                if first is not None:
                    raise _Refused(
                        f"has the key {quote(key, 60)} twice (lines {first} and {key_node.start_mark.line + 1}; "
                        "the last would win silently): keep one",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        digits = str(node.value).lstrip("+-").replace("_", "")
        if len(digits) > MAX_YAML_INT_DIGITS:
            raise _Refused(f"holds an integer of {len(digits)} digits", node.start_mark)
        return super().construct_yaml_int(node)


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)


def parse_yaml(text: str, source: str) -> Any:
    """``text`` read by StrictLoader; any problem is one UserError line ``{source} {problem} at line N; fix``
    (``source`` names where the text came from: "config file 'c.yaml'", "--set 'seed=...'")."""
    try:
        return yaml.load(text, Loader=StrictLoader)
    except _Refused as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{source} {e.problem}{where}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{source} is not valid YAML{where}; fix the syntax") from None
    except (ValueError, RecursionError, OverflowError) as e:  # a value the constructors cannot build
        raise UserError(f"{source} holds a value that cannot be read ({quote(e, 60)}); fix it") from None


def load_yaml(
    path: str | Path, what: str = "config file", fix: str = "give a YAML file of key: value overrides"
) -> Dict[str, Any]:
    """A YAML file of ``key: value`` (a config, a study spec), read strictly (``StrictLoader``) and at most
    MAX_YAML_BYTES; a folder, a binary file or a malformed one is one UserError line naming the file."""
    from benchmark.io import read_text_checked  # torch: see the imports above

    text = read_text_checked(path, what, fix, MAX_YAML_BYTES)
    data = parse_yaml(text, f"{what} {quote(path)}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"{what} {quote(path)} must hold a mapping of key: value overrides, not a {type(data).__name__}"
        )
    return data


# ------------------------------------------------------------------------------------------------
# command-line values: parsed by the declared type of their key, before (and mostly instead of) YAML


def parse_value(key: str, text: str, tp: Any) -> Any:
    """The text of a flag or ``--set`` value of a key of type ``tp``: a string is taken as it is (``--model ':'``
    is the model ':' and no YAML), a number by ``coerce``, a list as ``[1, 2]`` or ``1,2``; only a key of
    another type (a mapping) is read as strict YAML."""
    if any(not (c.isprintable() or c == " ") for c in text):
        raise UserError(
            f"config key '{key}' is given {quote(text, 60)}, which holds a line break or control character; "
            "give the value on one line"
        )
    origin = typing.get_origin(tp)
    inner = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() in ("none", "null", "~"):
            return None
        return parse_value(key, text, inner[0])
    if origin in (list, tuple):
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        items = [t.strip() for t in body.split(",") if t.strip()]
        return [parse_value(key, t, inner[0]) if inner else t for t in items]
    if tp in (str, int, float, bool):
        return coerce(key, text.strip() if tp is not str else text, tp)
    return parse_yaml(text, f"the value of config key '{key}' ({quote(text, 60)})") if text.strip() else ""


def parse_set(items: Optional[list], cls: Any = None) -> Dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``. A key of ``cls`` (default TrainConfig) is parsed by its
    declared type (``parse_value``); another key's value is read as strict YAML (``build`` then names the key
    as unknown)."""
    hints = typing.get_type_hints(cls or TrainConfig)
    out: Dict[str, Any] = {}
    for item in items or []:
        if any(not (c.isprintable() or c == " ") for c in item):
            raise UserError(
                f"--set {quote(item, 60)} holds a line break or control character; give one key=value per --set"
            )
        if "=" not in item:
            raise UserError(f"--set takes key=value, got {quote(item, 60)}")
        k, v = item.split("=", 1)
        k = k.strip()
        tp = hints.get(k.replace("-", "_"))
        if tp is not None:
            out[k] = parse_value(k.replace("-", "_"), v, tp)
        else:
            out[k] = parse_yaml(v, f"--set {quote(item, 60)}") if v.strip() else ""
    return out


# ------------------------------------------------------------------------------------------------
# the training config: checks and resolution


@dataclass(frozen=True)
class Limit:
    """The allowed range of a number: ``lo``/``hi`` inclusive unless ``*_open``; None: unbounded that side."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""  # appended to the error (what the value means)

    def holds(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):  # (an int is finite, however large)
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def text(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {num(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {num(self.hi)}")
        return " and ".join(parts)


# The documented range of every number of a TrainConfig (shown in --help; checked by ``check``). Upper
# bounds are far above any sensible run; a value beyond one is a typo or an attack (z_dim 1e11 would
# allocate terabytes, seed 2**40 is refused by numpy's RNG) and fails with one line before anything runs.
MAX_STEPS = 100_000_000
MAX_CHECKPOINTS = 10_000
LIMITS: Dict[str, Limit] = {
    "z_dim": Limit(1, 16384),
    "steps": Limit(1, MAX_STEPS),
    "epochs": Limit(0, 100_000, lo_open=True),
    "batch_size": Limit(1, 65536),
    "n_critic": Limit(1, 100),
    "lr_g": Limit(0, 10, lo_open=True),
    "lr_d": Limit(0, 10, lo_open=True),
    "beta1_g": Limit(0, 1, hi_open=True),
    "beta2_g": Limit(0, 1, hi_open=True),
    "beta1_d": Limit(0, 1, hi_open=True),
    "beta2_d": Limit(0, 1, hi_open=True),
    "gp_lambda": Limit(0, 1e6, note=" (0 turns the penalty off)"),
    "clip": Limit(0, 100, lo_open=True),
    "label_smoothing": Limit(0, 1, hi_open=True),
    "instance_noise": Limit(0, 100),
    "pack": Limit(1, 64),
    "seed": Limit(0, 2**32 - 1, note=" (numpy's RNG takes seeds in [0, 2**32 - 1])"),
    "num_threads": Limit(1, 1024),
    "checkpoint_every": Limit(1, MAX_STEPS),
    "checkpoint_at": Limit(1, MAX_STEPS),
    "grad_norm_every": Limit(1, MAX_STEPS),
    "log_flush_every": Limit(1, 1_000_000),
    "num_grid": Limit(1, 1024),
}


def make_config(overrides: Mapping[str, Any] | None = None, base: TrainConfig | None = None) -> TrainConfig:
    """Build a TrainConfig from overrides (YAML/CLI), apply aliases, check values."""
    cfg = build(TrainConfig, dict(overrides or {}), base=base or TrainConfig())
    if cfg.objective in CONDITIONAL_ALIASES:
        cfg = cfg.replace(objective=CONDITIONAL_ALIASES[cfg.objective], conditional=True)
    check(cfg)
    return cfg


def _choice(key: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise UserError(f"config key '{key}' is '{value}'; allowed: {', '.join(allowed)}")


def check(cfg: TrainConfig) -> None:
    """Value checks that need no data. Model/dataset fit is checked where the model is built."""
    from benchmark.data import DATASETS
    from benchmark.models import MODELS
    from benchmark.objectives import OBJECTIVES

    DATASETS.get(cfg.dataset)
    OBJECTIVES.get(cfg.objective)
    if ":" not in cfg.model:
        MODELS.get(cfg.model)
    _choice("critic_norm", cfg.critic_norm, CRITIC_NORMS)
    _choice("gp_mode", cfg.gp_mode, GP_MODES)
    _choice("cond_mode", cfg.cond_mode, COND_MODES)
    _choice("lr_decay", cfg.lr_decay, LR_DECAYS)
    _choice("label_scale", cfg.label_scale, LABEL_SCALES)
    if cfg.optimizer is not None:
        _choice("optimizer", cfg.optimizer, ("adam", "rmsprop"))
    for k, lim in LIMITS.items():  # every number against its documented range
        v = getattr(cfg, k)
        for x in v if isinstance(v, list) else [v]:
            if x is not None and not lim.holds(x):
                raise UserError(f"config key '{k}' must be {lim.text()}, got {_show(x)}{lim.note}")
    if len(cfg.checkpoint_at) > MAX_CHECKPOINTS:
        raise UserError(
            f"config key 'checkpoint_at' lists {len(cfg.checkpoint_at)} steps; at most "
            f"{MAX_CHECKPOINTS} are kept (use checkpoint_every for regular checkpoints)"
        )
    if cfg.label_smoothing > 0 and cfg.objective in ("wgan", "wgan-gp"):
        raise UserError(
            f"config key 'label_smoothing' has no meaning for objective '{cfg.objective}' (a critic has no "
            "targets); use it with gan, gan-minimax or lsgan, or set it to 0"
        )
    if cfg.batch_size % cfg.pack:
        raise UserError(
            f"config key 'pack' ({cfg.pack}) must divide batch_size ({cfg.batch_size}); pick a batch size that is a multiple"
        )
    if cfg.label_scale != "one" and not cfg.conditional:
        raise UserError(
            f"config key 'label_scale' ({cfg.label_scale}) has no meaning without labels; use it with a "
            "conditional objective (cgan, ... or conditional: true), or set it to one"
        )
    if cfg.pack > 1 and cfg.conditional:
        raise UserError("config key 'pack' > 1 cannot be combined with a conditional objective; set pack=1")
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:  # (finds it without importing it)
        raise UserError(
            "config key 'tensorboard' needs the tensorboard package; pip install tensorboard, or set it false"
        )
    if not DEVICE_RE.fullmatch(cfg.device):
        raise UserError(f"config key 'device' is {quote(cfg.device, 60)}; allowed: auto, cpu, cuda, cuda:N")


def steps_for_epochs(epochs: float, num_train: int, batch_size: int) -> int:
    """Generator steps of an ``epochs`` budget: ceil(epochs × N / batch), at least 1. The one conversion, used
    by ``ganbench train --epochs`` and by a study's ``budget: {epochs: ...}`` alike. The quotient is rounded to
    9 decimals before the ceiling, so float noise in ``epochs × N`` (0.1 × 60,000 = 6000.000000000001) never
    adds a step, while a real fraction of a batch (10.0078 batches) does."""
    return max(1, math.ceil(round(epochs * num_train / batch_size, 9)))


def resolve(cfg: TrainConfig, num_train: Optional[int] = None) -> TrainConfig:
    """Fill every ``None`` with the objective's paper default, and epochs into steps."""
    from benchmark.models import default_z_dim
    from benchmark.objectives import PAPER_DEFAULTS

    d = PAPER_DEFAULTS[cfg.objective]
    kw: Dict[str, Any] = {}
    for k in ("n_critic", "lr_g", "lr_d", "beta1_g", "beta2_g", "beta1_d", "beta2_d", "optimizer"):
        if getattr(cfg, k) is None:
            kw[k] = d[k]
    if cfg.z_dim is None:
        kw["z_dim"] = default_z_dim(cfg.model)
    if cfg.epochs is not None and num_train is not None:
        kw["steps"] = steps_for_epochs(cfg.epochs, num_train, cfg.batch_size)
        if kw["steps"] > MAX_STEPS:
            raise UserError(
                f"config key 'epochs' ({cfg.epochs:g}) means {kw['steps']} steps at batch_size "
                f"{cfg.batch_size}; at most {MAX_STEPS} are allowed"
            )
    return cfg.replace(**kw)


# Keys that change nothing about the result of a run (where it reads data, what it prints).
NON_SEMANTIC = ("data_root", "download", "num_threads", "log_flush_every", "tensorboard")


# Keys added after runs were stored, each with the value that gives those runs' numbers. At that value a key is
# left out of the semantic dict, so every earlier run keeps its trial key, checkpoint hash and baseline key.
ADDED_LATER: Dict[str, Any] = {"label_scale": "one", "lr_decay": "none"}


def semantic_dict(cfg: TrainConfig) -> Dict[str, Any]:
    return {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in NON_SEMANTIC and not (k in ADDED_LATER and v == ADDED_LATER[k])
    }


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


__all__ = [
    "TrainConfig",
    "make_config",
    "resolve",
    "steps_for_epochs",
    "check",
    "build",
    "coerce",
    "parse_set",
    "load_yaml",
    "field",
]
