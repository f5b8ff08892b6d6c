"""lr-find, train --lr auto, run records (run.json, `runs`, `runs --diff`) and `search` end to end on
small Fashion-MNIST subsets with the mlp (a few seconds per training run)."""
import csv
import json
import os
import subprocess
import xml.dom.minidom

import pytest

FASHION = "/usr/share/datasets/fashion-mnist"
SMALL = ["--model", "mlp", "--limit-train", "300", "--limit-test", "100", "--threads", "2"]


def gradscope():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set (ctest sets it; for a manual run point it at your build dir)")
    path = os.path.join(build, "gradscope")
    assert os.path.exists(path), f"{path} is missing: build the gradscope target"
    return path


def run(*args):
    return subprocess.run([gradscope(), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(autouse=True)
def need_data():
    if not os.path.exists(f"{FASHION}/train-images-idx3-ubyte.gz"):
        pytest.skip("SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)")


def test_lr_find_writes_curve_plot_and_suggestion(tmp_path):
    out = tmp_path / "lrf"
    small = SMALL[:4] + SMALL[6:]  # lr-find evaluates nothing: no --limit-test
    r = run("lr-find", *small, "--optimizer", "sgd", "--steps", "40", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in r.stdout.splitlines() if ":" in l}
    suggested = float(lines["suggested lr"])
    assert suggested == pytest.approx(float(lines["valley"]), rel=1e-2)
    for k in ["steepest", "minimum/10"]:
        assert float(lines[k]) > 0
    rows = list(csv.DictReader(open(out / "lr_find.csv")))
    assert 5 <= len(rows) <= 40 and float(rows[0]["lr"]) == pytest.approx(1e-7)
    lrs = [float(x["lr"]) for x in rows]
    assert lrs == sorted(lrs)
    svg = xml.dom.minidom.parse(str(out / "lr_find.svg"))
    texts = [t.firstChild.data for t in svg.getElementsByTagName("text") if t.firstChild]
    assert any("(suggested)" in t and t.startswith("valley") for t in texts), texts
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(str(out))
    acc.Reload()
    smoothed = [e.value for e in acc.Scalars("lr_find/smoothed_loss")]
    assert smoothed == pytest.approx([float(x["smoothed_loss"]) for x in rows], rel=1e-5)
    assert acc.Scalars("lr_find/suggested_lr")[0].value == pytest.approx(suggested, rel=1e-2)
    r = run("lr-find", *small, "--suggestion", "median")
    assert r.returncode == 2

    # Found by an audit: lr-find ignored --sampler (train --lr auto did not) and --device, printed
    # "suggested lr: 0" for a sweep too short to suggest anything, and took --end-lr inf.
    def suggestion(*flags):
        r = run("lr-find", *small, *flags, "--out", str(tmp_path / "lrf2"))
        assert r.returncode == 0, r.stderr
        return float([l for l in r.stdout.splitlines() if l.startswith("suggested lr:")][0].split(":")[1])

    sequential, shuffled = suggestion("--sampler", "sequential"), suggestion()
    r = run("train", *SMALL, "--sampler", "sequential", "--lr", "auto", "--epochs", "1", "--no-progress",
            "--out", str(tmp_path / "auto"))
    assert r.returncode == 0, r.stderr
    auto = json.load(open(tmp_path / "auto" / "config.json"))["lr"]
    assert auto == pytest.approx(sequential, rel=1e-2) and sequential != pytest.approx(shuffled, rel=1e-3)
    r = run("lr-find", *small, "--steps", "2", "--out", str(tmp_path / "short"))  # the curve, no suggestion
    assert r.returncode == 0 and "warning: lr-find: no suggestion from 2 points" in r.stderr, r.stderr
    assert "suggested lr: none" in r.stdout and ": 0\n" not in r.stdout, r.stdout
    assert len(list(csv.DictReader(open(tmp_path / "short" / "lr_find.csv")))) == 2
    for flags, message in [(["--device", "bogus"], "bogus"),
                           (["--end-lr", "inf"], "lr-find: --end-lr must be finite"),
                           (["--sampler", "weighted"], "--sampler must be shuffle, balanced or sequential")]:
        r = run("lr-find", *small, *flags, "--out", str(tmp_path / "bad"))
        assert r.returncode == 2 and message in r.stderr and "suggested lr" not in r.stdout, (flags, r.stderr)


def test_train_lr_auto_and_run_records(tmp_path):
    a, b = tmp_path / "auto", tmp_path / "fixed"
    r = run("train", *SMALL, "--epochs", "1", "--optimizer", "sgd", "--lr", "auto", "--val-fraction", "0.1",
            "--out", str(a))
    assert r.returncode == 0, r.stderr
    config = json.load(open(a / "config.json"))
    info = json.load(open(a / "run.json"))
    assert config["lr_auto"] is True
    assert config["lr"] == pytest.approx(info["lr_find"]["suggested_lr"])
    assert (a / "lr_find" / "lr_find.svg").exists()
    assert info["command_line"][1:4] == ["train", "--model", "mlp"]
    assert info["seed"] == 0 and info["threads"] == 2 and info["gradscope_version"]
    assert info["git_commit"] and len(info["data_files"]) == 4
    assert all(len(f["fnv1a64"]) == 16 for f in info["data_files"])

    r = run("train", "--config", str(a / "config.json"), "--lr", "0.05", "--out", str(b))
    assert r.returncode == 0, r.stderr
    assert json.load(open(b / "config.json"))["lr"] == 0.05
    assert json.load(open(b / "config.json"))["lr_auto"] is False

    r = run("runs", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "auto" in r.stdout and "fixed" in r.stdout and "(auto)" in r.stdout, r.stdout
    r = run("runs", "--diff", str(a), str(b))
    assert r.returncode == 0, r.stderr
    assert "lr_auto" in r.stdout and "0.05" in r.stdout and "test_acc" in r.stdout, r.stdout
    data_line = [l for l in r.stdout.splitlines() if l.lstrip().startswith("data files")][0]
    assert "differ" not in data_line, data_line  # same data
    # Found by an audit: --diff compared only the first data file's hash (the test images), so a
    # changed training-image file went unflagged. And a trailing slash blanked the run's name.
    info = json.load(open(b / "run.json"))
    info["data_files"][2]["fnv1a64"] = "0" * 16
    (b / "run.json").write_text(json.dumps(info))
    r = run("runs", "--diff", str(a), str(b))
    data_line = [l for l in r.stdout.splitlines() if l.lstrip().startswith("data files")][0]
    assert r.returncode == 0 and "<- differ" in data_line, r.stdout
    r = run("runs", str(a) + "/")
    assert r.returncode == 0 and any(l.split()[:1] == [a.name] for l in r.stdout.splitlines()), r.stdout


def test_search_random_parallel_resume_and_best_config(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "loguniform", "low": 1e-3, "high": 0.3},
                                 "batch": {"type": "choice", "values": [32, 64]}}))
    out = tmp_path / "search"
    common = ["search", "--space", str(space), "--strategy", "random", "--parallel", "2", *SMALL, "--epochs", "2",
              "--optimizer", "sgd", "--out", str(out)]
    r = run(*common, "--trials", "2")
    assert r.returncode == 0, r.stderr
    r = run(*common, "--trials", "4", "--early-stop", "median")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "2 trials already finished" in r.stderr
    trials = [json.loads(l) for l in open(out / "search.jsonl")]
    assert [t["id"] for t in trials] == [0, 1, 2, 3]
    for t in trials:
        cfg = json.load(open(out / f"trial_{t['id']:03d}" / "config.json"))
        assert cfg["lr"] == pytest.approx(t["params"]["lr"]) and cfg["batch_size"] == t["params"]["batch"]
        assert cfg["val_fraction"] == 0.1
    best = max((t for t in trials if t["objective"] is not None), key=lambda t: t["objective"])
    best_cfg = json.load(open(out / "best_config.json"))
    assert best_cfg["lr"] == pytest.approx(best["params"]["lr"])
    # The table is sorted by the objective, best first.
    table = [l.split() for l in open(out / "results.txt").read().splitlines()[1:]]
    assert int(table[0][1]) == best["id"]
    r = run("search", "--space", str(space), "--strategy", "tpe", *SMALL, "--out", str(out), "--trials", "4")
    assert r.returncode == 2 and "different search" in r.stderr

    # TensorBoard HParams: the experiment in the search directory, a session per trial with its values,
    # the objective per epoch and its status, as the hparams plugin reads them.
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    def hparams(d):
        acc = event_accumulator.EventAccumulator(str(d))
        acc.Reload()
        return acc, {tag: plugin_data_pb2.HParamsPluginData.FromString(content)
                     for tag, content in acc.PluginTagToContent("hparams").items()}

    _, exp = hparams(out)
    infos = {h.name: h for h in exp["_hparams_/experiment"].experiment.hparam_infos}
    assert infos["lr"].domain_interval.min_value == pytest.approx(1e-3)
    assert [v.number_value for v in infos["batch"].domain_discrete.values] == [32, 64]
    assert exp["_hparams_/experiment"].experiment.metric_infos[0].name.tag == "val_acc"
    for t in trials:
        acc, session = hparams(out / f"trial_{t['id']:03d}")
        start = session["_hparams_/session_start_info"].session_start_info
        assert start.hparams["lr"].number_value == pytest.approx(t["params"]["lr"])
        assert start.hparams["batch"].number_value == t["params"]["batch"]
        assert session["_hparams_/session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS
        values = [e.value for e in acc.Scalars("val_acc")]
        assert max(values) == pytest.approx(t["objective"], abs=1e-6)


def test_search_objective_errors_before_any_trial(tmp_path):
    """Found by a CLI audit: an objective no trial records read every good trial as failed, exit 0."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "loguniform", "low": 1e-3, "high": 0.3}}))
    common = ["search", "--space", str(space), *SMALL, "--epochs", "1", "--trials", "1"]
    r = run(*common, "--objective", "nope", "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and "--objective 'nope' is not a metrics.jsonl key" in r.stderr, r.stderr
    r = run(*common, "--val-fraction", "0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--objective val_acc needs a validation set" in r.stderr, r.stderr
    assert not (tmp_path / "a" / "trial_000").exists() and not (tmp_path / "b" / "trial_000").exists()
    # Every trial failing is an error, after the results are written.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"batch": {"type": "choice", "values": [0]}}))
    r = run("search", "--space", str(bad), *SMALL, "--epochs", "1", "--trials", "1", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "no trial finished with a val_acc" in r.stderr, r.stderr
    assert (tmp_path / "c" / "results.txt").exists()


def test_search_on_a_loss_shows_and_stores_the_loss_and_picks_the_lowest(tmp_path):
    """Found by an audit: with --objective val_loss, search.jsonl, results.txt, the "best:" line and the
    HParams curves held the loss negated (-0.9974 for 0.9974), the search's internal sign."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "choice", "values": [0.001, 0.05, 0.5]}}))
    out = tmp_path / "s"
    r = run("search", "--space", str(space), "--strategy", "grid", "--objective", "val_loss", *SMALL,
            "--epochs", "2", "--optimizer", "sgd", "--out", str(out))
    assert r.returncode == 0, r.stderr
    trials = [json.loads(l) for l in open(out / "search.jsonl")]
    assert len(trials) == 3
    for t in trials:
        losses = [json.loads(l)["val_loss"] for l in open(out / f"trial_{t['id']:03d}" / "metrics.jsonl")]
        assert t["objective"] == pytest.approx(min(losses), abs=1e-12) and t["objective"] > 0, t
        assert t["score"] == pytest.approx(-t["objective"])
        from tensorboard.backend.event_processing import event_accumulator
        acc = event_accumulator.EventAccumulator(str(out / f"trial_{t['id']:03d}"))
        acc.Reload()
        assert [e.value for e in acc.Scalars("val_loss")] == pytest.approx(losses, abs=1e-6)
    best = min(trials, key=lambda t: t["objective"])
    assert json.load(open(out / "best_config.json"))["lr"] == pytest.approx(best["params"]["lr"])
    table = [l.split() for l in open(out / "results.txt").read().splitlines()[1:]]
    assert int(table[0][1]) == best["id"] and float(table[0][3]) == pytest.approx(best["objective"], abs=1e-4)
    assert [float(row[3]) for row in table] == sorted(float(row[3]) for row in table)  # lowest loss first
    assert f"val_loss {best['objective']:.4f}" in r.stdout, r.stdout
    # A resumed search reads the losses back as losses: nothing runs again, the same best.
    r = run("search", "--space", str(space), "--strategy", "grid", "--objective", "val_loss", *SMALL,
            "--epochs", "2", "--optimizer", "sgd", "--out", str(out))
    assert r.returncode == 0 and "3 trials already finished" in r.stderr, r.stderr
    assert f"best: trial {best['id']}, val_loss {best['objective']:.4f}" in r.stdout, r.stdout


def test_a_killed_search_takes_its_running_trial_with_it(tmp_path):
    """Found by an audit: kill -9 of `gradscope search` left its train child running, and the rerun
    started the same trial in the same folder, two processes writing the same files."""
    import signal
    import time
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "choice", "values": [0.01]}}))
    out = tmp_path / "s"
    search = subprocess.Popen([gradscope(), "search", "--space", str(space), "--strategy", "grid", *SMALL,
                               "--epochs", "200", "--out", str(out)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    marker = str(out / "trial_000" / "config.json")

    def trials():
        found = []
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and marker in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                    found.append(int(pid))
            except OSError:
                pass
        return found

    deadline = time.time() + 120
    while not trials() and time.time() < deadline:
        time.sleep(0.1)
    assert trials(), "the trial never started"
    search.send_signal(signal.SIGKILL)
    search.wait()
    deadline = time.time() + 30
    while trials() and time.time() < deadline:
        time.sleep(0.1)
    assert not trials(), "the trial outlived the search"


def test_a_trial_that_cannot_start_stops_the_search_with_the_reason(tmp_path):
    """Found by a review: with fork + exec, a trial whose exec failed (the binary replaced during a
    search) was recorded as failed with an empty log, and the search went on and exited 0."""
    import shutil
    import time
    binary = tmp_path / "gradscope-copy"
    shutil.copy(gradscope(), binary)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "choice", "values": [0.01, 0.02]}}))
    out = tmp_path / "s"
    search = subprocess.Popen([str(binary), "search", "--space", str(space), "--strategy", "grid", *SMALL,
                               "--epochs", "15", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    log = out / "trial_000" / "train.log"
    deadline = time.time() + 120
    while not (log.exists() and log.stat().st_size > 0) and time.time() < deadline:
        time.sleep(0.05)
    binary.unlink()  # trial 0 runs on; trial 1 cannot start
    _, err = search.communicate(timeout=300)
    assert search.returncode == 2, err
    assert "search: cannot start" in err and "No such file or directory" in err, err
    assert "trial 1: failed" not in err and not (out / "search.jsonl").read_text().count("\"id\":1"), err
