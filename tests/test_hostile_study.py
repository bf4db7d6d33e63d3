"""Hostile input to the study stage (`ganbench study run|status`, `ganbench report`): results and report folders of
the wrong kind, names that are paths or patterns, specs that would run duplicate arms or fail in every trial, a
results store whose index or trial files are malformed, a Dask scheduler that does not answer. Each refused case
ends with exit status 2, one stderr line, no traceback, and the trees it was given unchanged (nothing trained,
no index written).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark import io, rundir
from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.study import records, store
from benchmark.study.runner import install, run_study
from benchmark.study.spec import load_spec
from helpers import fake_statvfs, refused, shared_folder, snapshot, unprivileged

SPEC = {
    "name": "hostile",
    "base": {"dataset": "ring8", "model": "toy", "batch_size": 16},
    "axes": {"gp_lambda": [0, 10]},
    "seeds": [0],
    "budget": {"steps": 4},
    "eval_at": [1.0],
    "num_samples": 2500,
    "metrics": ["modes", "hq"],
    "report": {"columns": ["modes", "hq"], "x": "gp_lambda"},
}


def write_spec(where: Path, spec: dict, name: str = "s.yaml") -> Path:
    p = where / name
    p.write_text(yaml.safe_dump(spec))
    return p


@pytest.fixture
def shared_tmp():
    with shared_folder() as d:
        yield d


@pytest.fixture(scope="module")
def store_made(tmp_path_factory) -> Path:
    """A results store as `ganbench study run` leaves it: two trained and scored trials and the study's index."""
    base = tmp_path_factory.mktemp("store")
    res = run_study(load_spec(write_spec(base, SPEC)), root=base / "res", workers=1, progress=False)
    assert not res["failed"], res["failed"]
    return base / "res"


def copy_store(store_made: Path, where: Path) -> Path:
    root = where / "res"
    shutil.copytree(store_made, root, symlinks=True)
    return root


def run_argv(spec: Path, root: Path, *extra: str) -> list:
    """`study run` of ``spec``; its report (were a check missed and the study run) beside ``spec``, never in ./reports."""
    rep = ["--reports", str(spec.parent / "rep")]
    return [
        "study",
        "run",
        str(spec),
        "--preset",
        "",
        "--results",
        str(root),
        "--quiet",
        "--workers",
        "1",
        *rep,
        *extra,
    ]


# ---- study run: --results, $GANBENCH_RESULTS, --reports, --workers, before anything trains ----------------------


def _folder_cases(tmp: Path):
    (tmp / "f").write_text("x")
    return [
        (tmp / "f", "is a file, not a folder"),
        (tmp / "f" / "r", "is a file"),
        (Path("/proc/x"), "proc file system"),
        (Path("/sys/x/r"), "sysfs file system"),
        (tmp / ("r" * 300), "at most 255"),
    ]


def test_results_of_the_wrong_kind_are_refused_before_training(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path, SPEC)
    (tmp_path / "o").mkdir()
    for res, needle in _folder_cases(tmp_path / "o"):
        refused(capsys, run_argv(spec, res), "--results", needle, tree=tmp_path)
        monkeypatch.setenv("GANBENCH_RESULTS", str(res))
        argv = [a for a in run_argv(spec, res) if a not in ("--results", str(res))]
        refused(capsys, argv, "$GANBENCH_RESULTS", needle, tree=tmp_path)
        monkeypatch.delenv("GANBENCH_RESULTS")
    refused(capsys, run_argv(spec, ""), "--results is empty", tree=tmp_path)


def test_the_default_results_store_is_checked_too(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path, SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GANBENCH_RESULTS", raising=False)
    (tmp_path / "results").write_text("x")
    argv = ["study", "run", str(spec), "--preset", "", "--quiet"]
    refused(capsys, argv, "the results store (default", "is a file, not a folder", tree=tmp_path)


def test_unwritable_or_read_only_results_are_refused_before_training(shared_tmp, capsys, monkeypatch):
    spec = write_spec(shared_tmp, SPEC)
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    for res in (locked, locked / "res"):
        with unprivileged():
            refused(capsys, run_argv(spec, res), "--results", "not writable", tree=shared_tmp)
    ro = shared_tmp / "ro"
    ro.mkdir()
    fake_statvfs(monkeypatch, ro, read_only=True)
    refused(capsys, run_argv(spec, ro / "res"), "--results", "read-only file system", tree=shared_tmp)


def test_reports_that_cannot_be_written_are_refused_before_training(shared_tmp, capsys):
    """`study run --reports FILE` failed only after every trial had trained."""
    spec = write_spec(shared_tmp, SPEC)
    res = shared_tmp / "res"
    (shared_tmp / "o").mkdir()
    for rep, needle in _folder_cases(shared_tmp / "o"):
        refused(capsys, run_argv(spec, res, "--reports", str(rep)), "--reports", needle, tree=shared_tmp)
    (shared_tmp / "rep").mkdir()
    (shared_tmp / "rep" / "hostile").write_text("x")  # reports/<name> is a file
    refused(capsys, run_argv(spec, res, "--reports", str(shared_tmp / "rep")), "study's folder", tree=shared_tmp)
    locked, open_ = shared_tmp / "locked", shared_tmp / "open"
    locked.mkdir(mode=0o555)
    open_.mkdir()
    open_.chmod(0o777)  # where 'nobody' may create the results store
    with unprivileged():
        argv = run_argv(spec, open_ / "res", "--reports", str(locked))
        refused(capsys, argv, "--reports", "not writable", tree=shared_tmp)
    # --no-report: the reports folder is not written, so not checked
    assert not res.exists()


@pytest.mark.parametrize("workers", ["0", "-1", "257", "100000"])
def test_workers_are_bounded(tmp_path, capsys, workers):
    spec = write_spec(tmp_path, SPEC)
    refused(capsys, run_argv(spec, tmp_path / "res", "--workers", workers), "--workers", "[1, 256]", tree=tmp_path)


def test_nothing_is_written_before_the_scheduler_answers(tmp_path, capsys, monkeypatch):
    """An unreachable --scheduler wrote the results index first."""
    import dask.distributed

    spec = write_spec(tmp_path, SPEC)
    res = tmp_path / "res"
    dask_argv = ["--executor", "dask", "--scheduler"]
    # an address dask cannot use (a real, immediate failure)
    refused(capsys, run_argv(spec, res, *dask_argv, "nonsense://x"), "cannot reach the Dask scheduler", tree=tmp_path)

    def unreachable(*a, **k):  # what a closed port gives after its 20 s timeout
        raise OSError("Timed out trying to connect to tcp://10.0.0.1:8786 after 20 s")

    monkeypatch.setattr(dask.distributed, "Client", unreachable)
    argv = run_argv(spec, res, *dask_argv, "tcp://10.0.0.1:8786")
    refused(capsys, argv, "cannot reach the Dask scheduler at 'tcp://10.0.0.1:8786'", "Timed out", tree=tmp_path)
    assert not res.exists()


# ---- names are names ----------------------------------------------------------------------------------------

BAD_NAMES = ["*", "../x", "a/b", "..", ".", "x y", "a\nb", "r" * 300, "ab?", "[ab]", "~", "/etc/passwd", "a\x00b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_report_of_a_name_that_is_a_path_or_a_pattern_is_one_line(store_made, tmp_path, capsys, name):
    """`ganbench report '*'` wrote a folder named '*'; `report '../x'` read an index outside the store and wrote
    outside --reports."""
    root = copy_store(store_made, tmp_path)
    index = json.loads((root / "studies" / "hostile-default.json").read_text())
    io.write_json(root / "x-default.json", {**index, "study": "../x"})  # what '../x' would have found
    (tmp_path / "rep").mkdir()
    argv = ["report", name, "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, "is not a study name", tree=tmp_path)


@pytest.mark.parametrize("preset", ["*", "../x", "a-b", "a/b", "x y", ".."])
def test_a_preset_that_is_not_a_name_is_one_line(store_made, tmp_path, capsys, preset):
    root = copy_store(store_made, tmp_path)
    argv = ["report", "hostile", "--preset", preset, "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, "is not a preset name", tree=tmp_path)
    spec = write_spec(tmp_path, SPEC)
    refused(capsys, ["study", "status", str(spec), "--preset", preset], "is not a preset name", tree=tmp_path)


@pytest.mark.parametrize("name", ["../x", "a/b", "*", "..", "a b"])
def test_study_run_and_status_of_a_name_that_is_a_path_is_one_line(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    for cmd in (["study", "run", name, "--results", "res"], ["study", "status", name]):
        refused(capsys, cmd, "is not a study name", tree=tmp_path)


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"name": "../x"}, "'name' '../x' is not a study name"),
        ({"name": "a*"}, "is not a study name"),
        ({"name": ""}, "is not a study name"),
        ({"presets": {"a-b": {}}}, "preset 'a-b' is not a preset name"),
        ({"presets": {"../x": {}}}, "is not a preset name"),
    ],
)
def test_spec_names_that_are_not_names_are_one_line(tmp_path, capsys, bad, needle):
    spec = write_spec(tmp_path, {**SPEC, **bad})
    refused(capsys, run_argv(spec, tmp_path / "res"), needle, tree=tmp_path)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=120), st.sampled_from(BAD_NAMES + ["a-b", "_x", "-x", "ok", "x.y", "é"])))
def test_any_study_name_is_a_plain_name_or_one_line(tmp_path, name):
    """Whatever the name, a study name that passes builds paths inside its roots; every other one is one line."""
    try:
        store.check_study_name(name)
    except UserError as e:
        assert len(str(e).splitlines()) == 1 and "is not a study name" in str(e)
        return
    root = tmp_path / "res"
    assert Path(name).name == name and not set(name) & set("/\\*?[]{}~ \n\x00") and ".." not in name
    assert store.index_path(root, name, "smoke").parent == root / "studies"
    assert (tmp_path / "rep" / name).resolve().parent == (tmp_path / "rep").resolve()


# ---- the index is matched exactly --------------------------------------------------------------------------


def test_the_index_lookup_matches_the_study_name_exactly(store_made, tmp_path, capsys):
    """`ganbench report golden` also matched golden-lines-*.json and failed with "several presets"."""
    root = copy_store(store_made, tmp_path)
    studies = root / "studies"
    other = json.loads((studies / "hostile-default.json").read_text())
    io.write_json(studies / "hostile-lines-quick.json", {**other, "study": "hostile-lines", "preset": "quick"})
    assert store.find_index(root, "hostile", None) == studies / "hostile-default.json"
    assert store.find_index(root, "hostile-lines", None) == studies / "hostile-lines-quick.json"
    with pytest.raises(UserError, match="no results for study 'hostile-line'"):
        store.find_index(root, "hostile-line", None)
    (studies / "hostile-default.json").unlink()
    argv = ["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, "no results for study 'hostile'", tree=tmp_path)


def test_a_report_builds_from_the_store_and_stays_inside_reports(store_made, tmp_path, capsys):
    """The store the hostile cases start from is a good one: its report is written, under --reports only."""
    root = copy_store(store_made, tmp_path)
    before = snapshot(root)
    assert main(["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]) == 0
    # a study run without a preset is stored as preset 'default' (its index says ''): both name it
    argv = ["report", "hostile", "--preset", "default", "--results", str(root), "--reports", str(tmp_path / "rep")]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "res"]
    assert (tmp_path / "rep" / "hostile" / "README.md").is_file()
    assert list((tmp_path / "rep").iterdir()) == [tmp_path / "rep" / "hostile"]
    after = snapshot(root)  # the report reads the store (and may cache real-data rows in reference/)
    assert {k: v for k, v in after.items() if not k.startswith("reference")} == before


def test_report_folders_of_the_wrong_kind_are_one_line(store_made, tmp_path, capsys):
    """`ganbench report` checks --reports (and reports/<name>) and --results before reading a record."""
    root = copy_store(store_made, tmp_path)
    (tmp_path / "o").mkdir()
    for rep, needle in _folder_cases(tmp_path / "o"):
        argv = ["report", "hostile", "--results", str(root), "--reports", str(rep)]
        refused(capsys, argv, "--reports", needle, tree=tmp_path)
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "hostile").write_text("x")
    argv = ["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, "--reports", "study's folder", "is a file", tree=tmp_path)
    argv = ["report", "hostile", "--results", str(tmp_path / "o" / "f"), "--reports", str(tmp_path / "rep2")]
    refused(capsys, argv, "--results", "is a file, not a folder", tree=tmp_path)


# ---- a malformed index or trial file: one line naming it ------------------------------------------------------


def _index_cases():
    def edit(**kw):
        return lambda ix: {**ix, **kw}

    def trial(**kw):
        return lambda ix: {**ix, "trials": [{**ix["trials"][0], **kw}, *ix["trials"][1:]]}

    return [
        ("folder", "folder", ["study index", "is a folder"]),
        ("not-json", b"{trials: ", ["study index", "not valid JSON"]),
        ("array", b"[]", ["study index", "holds an array"]),
        ("deep", b"[" * 100_000, ["study index", "deeper"]),
        ("huge-int", lambda ix: b'{"seed": ' + b"7" * 401 + b"}", ["study index", "digits"]),
        ("no-trials", edit(trials=5), ["study index", "'trials'"]),
        ("spec-not-mapping", edit(spec=[1]), ["study index", "'spec'"]),
        ("spec-unknown-key", lambda ix: {**ix, "spec": {**ix["spec"], "colour": "red"}}, ["unknown config key"]),
        ("other-study", edit(study="other"), ["study index", "is the index of study 'other'"]),
        ("other-preset", edit(preset="quick"), ["study index", "of study 'hostile' at preset 'quick'"]),
        ("key-path", trial(key="../../../etc"), ["study index", "not a trial key"]),
        ("key-absolute", trial(key="/etc"), ["not a trial key"]),
        ("key-number", trial(key=5), ["not a trial key"]),
        ("seed-text", trial(seed="0"), ["malformed trial"]),
        ("values-list", trial(values=[1]), ["malformed trial"]),
        ("trial-not-object", lambda ix: {**ix, "trials": [1]}, ["malformed trial"]),
    ]


@pytest.mark.parametrize("change,needles", [c[1:] for c in _index_cases()], ids=[c[0] for c in _index_cases()])
def test_a_malformed_index_is_one_line(store_made, tmp_path, capsys, change, needles):
    root = copy_store(store_made, tmp_path)
    p = root / "studies" / "hostile-default.json"
    if change == "folder":
        p.unlink()
        p.mkdir()
    elif isinstance(change, bytes):
        p.write_bytes(change)
    else:
        out = change(json.loads(p.read_text()))
        p.write_bytes(out) if isinstance(out, bytes) else io.write_json(p, out)
    argv = ["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, *needles, tree=tmp_path)


def _trial_file_cases():
    R = f"{store.RUN_DIR}/"
    return [
        ("metrics-folder", R + rundir.METRICS_FILE, "folder", ["scores file", "is a folder"]),
        ("metrics-binary", R + rundir.METRICS_FILE, b"\x00\x01", ["scores file", "binary"]),
        ("metrics-no-step", R + rundir.METRICS_FILE, b'{"metrics": {}}\n', ["scores file", "integer 'step'"]),
        ("metrics-text", R + rundir.METRICS_FILE, b'{"step": 4, "metrics": {"fid": "x"}}\n', ["not numbers"]),
        ("metrics-array", R + rundir.METRICS_FILE, b'{"step": 4, "metrics": [1]}\n', ["not numbers"]),
        ("log-binary", R + rundir.LOG_FILE, b"\xff\xfe", ["training log", "not a text file"]),
        ("log-no-step", R + rundir.LOG_FILE, b'{"d_loss": 1}\n', ["training log", "integer 'step'"]),
        ("run-json-array", R + rundir.RUN_INFO_FILE, b"[1]", ["run record", "holds an array"]),
        ("run-json-folder", R + rundir.RUN_INFO_FILE, "folder", ["run record", "is a folder"]),
        ("config-tag", R + rundir.CONFIG_FILE, b"steps: !!python/object/apply:os.system ['true']\n", ["tag"]),
        ("config-alias", R + rundir.CONFIG_FILE, b"a: &x 1\nb: *x\n", ["alias"]),
        ("config-twice", R + rundir.CONFIG_FILE, b"steps: 5\nsteps: 100000000\n", ["twice"]),
        ("config-list", R + rundir.CONFIG_FILE, b"- 1\n", ["must hold a mapping"]),
        ("failed-malformed", store.FAILED_FILE, b"{", ["failure record", "not valid JSON"]),
        ("failed-no-error", store.FAILED_FILE, b'{"error": 5}', ["failure record", "no 'error'"]),
        ("failed-folder", store.FAILED_FILE, "folder", ["failure record", "is a folder"]),
    ]


@pytest.mark.parametrize(
    "rel,content,needles", [c[1:] for c in _trial_file_cases()], ids=[c[0] for c in _trial_file_cases()]
)
def test_a_malformed_trial_file_is_one_line(store_made, tmp_path, capsys, rel, content, needles):
    root = copy_store(store_made, tmp_path)
    key = json.loads((root / "studies" / "hostile-default.json").read_text())["trials"][0]["key"]
    p = store.trial_dir(root, key) / rel
    if p.is_dir():
        shutil.rmtree(p)
    p.unlink(missing_ok=True)
    p.mkdir() if content == "folder" else p.write_bytes(content)
    argv = ["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, *needles, tree=tmp_path)


def test_trial_record_read_when_there_is_no_config(store_made, tmp_path, capsys):
    root = copy_store(store_made, tmp_path)
    key = json.loads((root / "studies" / "hostile-default.json").read_text())["trials"][0]["key"]
    d = store.trial_dir(root, key)
    (d / store.RUN_DIR / rundir.CONFIG_FILE).unlink()
    argv = ["report", "hostile", "--results", str(root), "--reports", str(tmp_path / "rep")]
    for content, needle in [(b"{", "not valid JSON"), (b'{"config": [1]}', "not a mapping")]:
        (d / store.TRIAL_FILE).write_bytes(content)
        refused(capsys, argv, "trial record", needle, tree=tmp_path)


def test_status_reads_failure_records_and_the_store_through_the_guarded_readers(store_made, tmp_path, capsys):
    root = copy_store(store_made, tmp_path)
    spec = write_spec(tmp_path, SPEC)
    key = json.loads((root / "studies" / "hostile-default.json").read_text())["trials"][1]["key"]
    (store.trial_dir(root, key) / store.FAILED_FILE).write_bytes(b"[]")
    argv = ["study", "status", str(spec), "--preset", "", "--results", str(root)]
    refused(capsys, argv, "failure record", "holds an array", tree=tmp_path)
    (store.trial_dir(root, key) / store.FAILED_FILE).unlink()
    (store.run_dir(root, key) / rundir.METRICS_FILE).write_bytes(b"[1]\n")  # status reads the scores file
    refused(capsys, argv, "scores file", "not a record", tree=tmp_path)
    (tmp_path / "f").write_text("x")
    refused(capsys, argv[:-1] + [str(tmp_path / "f")], "--results", "is a file, not a folder", tree=tmp_path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_in_a_scores_file_are_records_or_one_line(store_made, tmp_path_factory, data):
    """records.load on a scores file holding anything: typed records, or one UserError line (never another error)."""
    root = tmp_path_factory.getbasetemp() / "any-bytes" / "res"
    if not root.exists():
        shutil.copytree(store_made, root, symlinks=True)
    index = records.read_index("hostile", None, root)
    (store.run_dir(root, index.trials[0].key) / rundir.METRICS_FILE).write_bytes(data)
    try:
        recs = records.load(index, root)
    except UserError as e:
        assert len(str(e).splitlines()) == 1 and "scores file" in str(e), str(e)
        return
    assert all(isinstance(r["step"], int) for t in recs.trials for r in t.records)


PL = {"name": "pl", "kind": "parallel-lines", "seeds": [0], "params": {"thetas": [0.0, 1.0], "steps": 2}}


@pytest.mark.parametrize(
    "content,needles",
    [
        ("folder", ["trial table", "is a folder"]),
        (b"\x00\xff\xfe", ["trial table", "not a text file"]),
        (b"", ["trial table", "not a readable CSV"]),
        (b'theta,js_true\n"0,1\n', ["trial table", "not a readable CSV"]),
        (b"theta,js_true\n0,1\n", ["lacks the column(s) kl_true"]),  # a foreign or truncated table
        (None, ["not numbers"]),  # every column, one of them text
    ],
    ids=["folder", "binary", "empty", "open-quote", "columns", "text"],
)
def test_a_malformed_parallel_lines_table_is_one_line(tmp_path, capsys, content, needles):
    root = tmp_path / "res"
    assert not run_study(load_spec(write_spec(tmp_path, PL)), root=root, workers=1, progress=False)["failed"]
    key = json.loads((root / "studies" / "pl-default.json").read_text())["trials"][0]["key"]
    p = store.trial_dir(root, key) / store.PARALLEL_LINES_FILE
    if content is None:
        content = p.read_bytes().replace(b"\n0.0,", b"\nzero,", 1)
        assert content != p.read_bytes()
    p.unlink()
    p.mkdir() if content == "folder" else p.write_bytes(content)
    argv = ["report", "pl", "--results", str(root), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, *needles, tree=tmp_path)


# ---- a remote worker's files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"[1]\n", "not a record"),
        (b"{not json\n", "not a JSON record"),
        (b'{"step": ' + b"9" * 401 + b"}\n", "not a JSON record"),
        (b"[" * 100_000 + b"\n", "not a JSON record"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
    ids=["array", "malformed", "401-digits", "deep", "binary"],
)
def test_records_a_worker_sends_back_are_checked(tmp_path, data, needle):
    d = tmp_path / "trials" / "k"
    d.mkdir(parents=True)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match=needle) as e:
        install(d, {"status": "ok", "files": {f"{store.RUN_DIR}/{rundir.METRICS_FILE}": data}, "remote_dir": "/x"})
    assert len(str(e.value).splitlines()) == 1
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.endswith(".lock")} == before


# ---- specs refuse duplicate arms, unknown report keys, wrong types, a model that is no factory -------------------


@pytest.mark.parametrize(
    "bad,needles",
    [
        ({"axes": {"gp_lambda": [1, 1]}}, ["axis 'gp_lambda' lists the value '1' twice"]),
        ({"axes": {"gp_lambda": [1, 1.0]}}, ["'gp_lambda=1' and 'gp_lambda=1.0' train the same config"]),
        ({"axes": {"gp_lambda": [1, "1"]}}, ["train the same config"]),
        (
            {"axes": {}, "variants": [{"name": "A", "set": {"gp_lambda": 1}}, {"name": "A", "set": {"gp_lambda": 2}}]},
            ["two variants are named 'A'"],
        ),
        (
            {"axes": {}, "variants": [{"name": "A", "set": {"gp_lambda": 1}}, {"name": "B", "set": {"gp_lambda": 1}}]},
            ["arms 'A' and 'B' train the same config"],
        ),
        (
            {
                "axes": {},
                "variants": [
                    {"name": "A", "set": {"log_flush_every": 1}},
                    {"name": "B", "set": {"log_flush_every": 2}},
                ],
            },
            ["arms 'A' and 'B' train the same config"],
        ),
        ({"report": {"colums": ["modes"]}}, ["unknown config key 'report.colums'", "did you mean 'report.columns'"]),
        ({"report": {"columns": 5}}, ["'report.columns' must be a list"]),
        ({"report": {"figure_metrics": "modes"}}, ["'report.figure_metrics' must be a list"]),
        ({"report": {"tsne": "maybe"}}, ["'report.tsne' must be true or false"]),
        ({"report": {"xscale": "logg"}}, ["'report.xscale'", "linear, log, symlog"]),
        ({"report": {"x": "gp_lamda"}}, ["'report.x'", "did you mean 'gp_lambda'"]),
        ({"report": {"notes": {"gp_lambda=7": "x"}}}, ["'report.notes' names the arm 'gp_lambda=7'"]),
        ({"report": {"notes": {"gp_lambda=0": 5}}}, ["'report.notes'", "note as text"]),
        ({"report": {"notes": [1]}}, ["'report.notes' must be a mapping"]),
        ({"report": {"claims": 5}}, ["'report.claims' must be a list"]),
        ({"report": 5}, ["'report' must be a mapping"]),
        ({"report": {"by_step": {"a": 1}}}, ["'report.by_step' must be a list"]),
        ({"base": {**SPEC["base"], "model": ":"}}, ["'model'", "neither a registry name"]),
        ({"base": {**SPEC["base"], "model": "benchmark.config:LIMITS"}}, ["'model'", "not a model factory"]),
        ({"base": {**SPEC["base"], "model": "benchmark.config:TrainConfig"}}, ["'model'", "is a class"]),
        ({"base": {**SPEC["base"], "model": "os:getcwd"}}, ["'model'", "not (cfg, shape, num_classes)"]),
        ({"base": {**SPEC["base"], "model": "no_such_module_xyz:f"}}, ["'model'", "cannot be imported"]),
        (
            {"axes": {}, "variants": [{"name": "A"}, {"name": "B", "set": {"model": "benchmark.models:nope"}}]},
            ["'model'", "cannot be imported"],
        ),
        ({"axes": {"model": ["toy", ":"]}}, ["'model'", "':'"]),
    ],
)
def test_a_spec_that_would_run_duplicate_arms_or_fail_every_trial_is_one_line(tmp_path, capsys, bad, needles):
    spec = write_spec(tmp_path, {**SPEC, **bad})
    refused(capsys, run_argv(spec, tmp_path / "res"), *needles, tree=tmp_path)


def test_the_report_reads_the_declared_defaults():
    """The page reads ReportSpec's declaration (every key, its defaults), the one the spec check typed."""
    from benchmark.study.schema import ReportSpec, report_options

    opts = report_options({"columns": ["modes"]})
    assert opts["tsne"] is True and opts["xscale"] == "linear" and opts["columns"] == ["modes"]
    assert set(opts) == {f for f in ReportSpec.__dataclass_fields__}
    with pytest.raises(UserError, match="did you mean 'report.figure_metrics'"):
        report_options({"figure_metric": ["modes"]})
