"""Hostile YAML and flag values: tags, aliases (the alias bomb), duplicate keys, unbounded nesting and size, values
that reach YAML through a flag. Each case ends with exit status 2, one stderr line, no traceback, nothing written,
and no planted payload run."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.cli import build_parser
from benchmark.config import TrainConfig, load_yaml, make_config, parse_set, parse_yaml
from benchmark.errors import UserError, one_line, quote
from benchmark.train import config_from_args
from helpers import refused

BASE = ["train", "--dataset", "ring8", "--model", "toy", "--steps", "2", "--device", "cpu", "--quiet"]

# The classic "billion laughs": 445 bytes that expand to 10**9 list items if aliases are followed.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def payload(marker) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


# (id, text(marker), needles)
YAML_CASES = [
    ("duplicate-key", lambda m: "steps: 5\nsteps: 100000000\n", ["'steps' twice", "lines 1 and 2", "keep one"]),
    ("duplicate-key-apart", lambda m: "steps: 5\nseed: 1\nmodel: toy\nsteps: 7\n", ["'steps' twice", "lines 1 and 4"]),
    ("python-apply", lambda m: f"seed: {payload(m)}\n", ["tag", "python/object/apply"]),
    ("python-apply-top", lambda m: payload(m) + "\n", ["tag"]),
    ("python-name", lambda m: "model: !!python/name:os.system\n", ["tag"]),
    ("python-module", lambda m: "model: !!python/module:os\n", ["tag"]),
    ("binary", lambda m: "model: !!binary aGVsbG8=\n", ["tag"]),
    ("str-tag", lambda m: "model: !!str toy\n", ["tag"]),
    ("set-tag", lambda m: "checkpoint_at: !!set {1, 2}\n", ["tag"]),
    ("local-tag", lambda m: "model: !mine toy\n", ["tag '!mine'"]),
    ("non-specific-tag", lambda m: "model: ! toy\n", ["tag '!'"]),
    ("map-tag", lambda m: "!!map {steps: 2}\n", ["tag"]),
    ("seq-tag", lambda m: "checkpoint_at: !!seq [1]\n", ["tag"]),
    ("alias", lambda m: "seed: &s 3\nsteps: *s\n", ["alias *s", "write the value out"]),
    ("alias-bomb", lambda m: ALIAS_BOMB, ["alias *a"]),
    ("merge-alias", lambda m: "x: &x {steps: 2}\n<<: *x\n", ["alias"]),
    ("merge-inline", lambda m: "<<: {steps: 2}\nseed: 1\n", ["merge key"]),
    ("deep-flow", lambda m: "steps: " + "[" * 100_000, ["nests deeper than 32"]),
    ("deep-flow-map", lambda m: "steps: " + "{a: " * 100_000, ["nests deeper than 32"]),
    ("deep-block", lambda m: "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n", ["deeper"]),
    ("long-int", lambda m: "steps: " + "9" * 5000 + "\n", ["integer of 5000 digits"]),
    ("int-41", lambda m: "seed: " + "1" * 41 + "\n", ["41 digits"]),
    ("float-overflow", lambda m: "lr_g: 1.0e+400\n", ["'lr_g'", "finite"]),
    ("e-notation-int", lambda m: "seed: 1e400\n", ["'seed' must be an integer"]),
    ("unhashable-key", lambda m: "? [a, b]\n: 1\n", ["list or mapping as a key"]),
    ("list", lambda m: "- steps\n- 2\n", ["must hold a mapping"]),
    ("scalar", lambda m: "steps\n", ["must hold a mapping"]),
    ("syntax", lambda m: "steps: [1\n", ["not valid YAML", "line"]),
    ("tab-indent", lambda m: "a:\n\tb: 1\n", ["not valid YAML"]),
    ("huge", lambda m: "# x\n" * 300_000, ["more than"]),
    ("int-key", lambda m: "1: 2\n", ["unknown config key '1'"]),
]


@pytest.mark.parametrize("text,needles", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_hostile_config_files_are_one_line(tmp_path, capsys, text, needles):
    marker = tmp_path / "pwned"
    f = tmp_path / "c.yaml"
    f.write_text(text(marker))
    refused(capsys, BASE + ["--config", str(f), "--out", str(tmp_path / "r")], *needles, tree=tmp_path)
    assert not marker.exists(), "a YAML tag ran code"


def test_duplicate_keys_anywhere_in_a_spec_are_refused():
    with pytest.raises(UserError, match="'b' twice"):
        parse_yaml("base: {b: 1, c: 2, b: 3}\n", "spec 's.yaml'")
    with pytest.raises(UserError, match="'gp_lambda' twice"):
        parse_yaml(
            "variants:\n  - name: a\n    set: {gp_lambda: 1}\n    set2:\n      gp_lambda: 1\n      gp_lambda: 2\n", "s"
        )
    # the same key in two mappings is no duplicate
    assert parse_yaml("a: {x: 1}\nb: {x: 2}\n", "s") == {"a": {"x": 1}, "b": {"x": 2}}


def test_plain_yaml_still_reads(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "# a config\nsteps: 3\ngp_lambda: 2.5\nmodel: toy\ndataset: ring8\ncheckpoint_at: [1, 2]\nz_dim: null\n"
    )
    assert load_yaml(f) == {
        "steps": 3,
        "gp_lambda": 2.5,
        "model": "toy",
        "dataset": "ring8",
        "checkpoint_at": [1, 2],
        "z_dim": None,
    }
    f.write_text("")
    assert load_yaml(f) == {}


# ---- flags: parsed by the key's declared type, never by YAML ---------------------------------------------


FLAG_CASES = [
    ("--seed", "!!python/object/apply:os.system ['touch {m}']", ["config key 'seed' must be an integer"]),
    ("--seed", "*a", ["'seed' must be an integer"]),
    ("--steps", "[1", ["'steps' must be an integer"]),
    ("--steps", "{", ["'steps' must be an integer"]),
    ("--steps", "&a 1", ["'steps' must be an integer"]),
    ("--steps", "9" * 5000, ["'steps' must be an integer"]),
    ("--model", ":", ["model ':'", "package.module:function"]),
    ("--model", "!!python/name:os.system", ["model '!!python/name:os.system'"]),
    ("--model", "*a", ["model '*a'"]),
    ("--model", "..x:y", ["model '..x:y'"]),
    ("--dataset", "!!binary aGk=", ["dataset '!!binary aGk='"]),
    ("--lr-g", ".inf", ["'lr_g'", "finite"]),
    ("--lr-g", ".nan", ["'lr_g'", "finite"]),
    ("--lr-g", "1e999", ["'lr_g'", "finite"]),
    ("--gp-lambda", "!!float 1", ["'gp_lambda' must be a number"]),
    ("--checkpoint-at", "[1, x]", ["'checkpoint_at' must be an integer"]),
    ("--checkpoint-at", "!!python/tuple [1]", ["'checkpoint_at' must be an integer"]),
    ("--deterministic", "!!bool yes", ["'deterministic' must be true or false"]),
    ("--z-dim", "~x", ["'z_dim' must be an integer"]),
    ("--gp-lambda", "1\n2", ["'gp_lambda'", "line break"]),
    ("--model", "toy\x1b[2J", ["'model'", "control character"]),
]


@pytest.mark.parametrize("flag,value,needles", FLAG_CASES, ids=[f"{c[0]}={c[1][:20]}" for c in FLAG_CASES])
def test_flag_values_never_reach_yaml(tmp_path, capsys, flag, value, needles):
    marker = tmp_path / "pwned"
    argv = [a for a in BASE if a not in ("--model", "toy")] + [f"{flag}={value.replace('{m}', str(marker))}"]
    refused(capsys, argv + ["--out", str(tmp_path / "r")], *needles, tree=tmp_path)
    assert not marker.exists()


def test_typed_flags_still_read_what_yaml_read(tmp_path):
    args = build_parser("train").parse_args(
        ["train", "--out", "x", "--steps", "0x10", "--checkpoint-at", "1,2", "--z-dim", "null", "--seed", "1_000"]
        + ["--lr-g", "1e-3", "--deterministic", "yes", "--model", "toy", "--dataset", "ring8", "--epochs", "none"]
    )
    cfg = config_from_args(args)
    assert (cfg.steps, cfg.checkpoint_at, cfg.z_dim, cfg.seed, cfg.lr_g, cfg.deterministic, cfg.epochs) == (
        16,
        [1, 2],
        None,
        1000,
        1e-3,
        True,
        None,
    )
    args = build_parser("train").parse_args(["train", "--out", "x", "--checkpoint-at", "[3, 4]", "--model", "toy"])
    assert config_from_args(args).checkpoint_at == [3, 4]


# ---- --set ------------------------------------------------------------------------------------------------

SET_CASES = [
    ("steps=5\nsteps=7", ["--set 'steps=5\\nsteps=7'", "line break", "one key=value per --set"]),
    ("ste\nps=5", ["line break"]),
    ("steps\r=5", ["line break"]),
    ("model=a\u2028b", ["line break"]),
    ("seed=!!python/object/apply:os.system ['true']", ["config key 'seed' must be an integer"]),
    ("bogus=!!python/object/apply:os.system ['true']", ["tag"]),
    ("bogus=&a [*a]", ["alias"]),
    ("model=:", ["model ':'"]),
    ("steps", ["--set takes key=value"]),
    ("=5", ["unknown config key ''"]),
    ("gp_lambda={a: 1}", ["'gp_lambda' must be a number"]),
]


@pytest.mark.parametrize("item,needles", SET_CASES, ids=[c[0][:24] for c in SET_CASES])
def test_set_values_are_typed_and_one_line(tmp_path, capsys, item, needles):
    refused(capsys, BASE + ["--set", item, "--out", str(tmp_path / "r")], *needles, tree=tmp_path)


def test_regress_set_is_typed_too(capsys, tmp_path):
    refused(capsys, ["regress", "--suite", "ci", "--set", "steps=!!python/name:os.system"], "'steps'", tree=tmp_path)
    refused(capsys, ["regress", "--suite", "ci", "--set", "steps=1\n"], "line break", tree=tmp_path)


# ---- property: any flag text is a config or one line --------------------------------------------------------

HINTS = typing.get_type_hints(TrainConfig)
KEYS = [f.name for f in dataclasses.fields(TrainConfig)]
TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["!!python/object/apply:os.system ['x']", "*a", "&a", "[[[[", "{{", ":", "- x", "? x", "|", ">"]),
    st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{0,5})?(e[+-]?[0-9]{1,4})?", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(KEYS), text=TEXT, via=st.sampled_from(["flag", "set"]))
def test_any_text_for_any_key_is_a_config_or_one_line(key, text, via):
    try:
        if via == "flag":
            args = build_parser("train").parse_args(["train", "--out", "x", f"--{key.replace('_', '-')}={text}"])
            config_from_args(args)
        else:
            make_config(parse_set([f"{key}={text}"]))
    except UserError as e:
        assert len(str(e).splitlines()) == 1, str(e)
    except SystemExit:  # argparse refused the flag itself (a bool flag's value): its own one-line usage error
        pass


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_messages_are_one_line_whatever_they_quote(text):
    assert len(one_line(text).splitlines()) <= 1
    assert len(quote(text).splitlines()) == 1 and len(quote(text)) <= 162
    assert len(str(UserError(f"bad {text} value")).splitlines()) <= 1
