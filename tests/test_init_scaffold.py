"""`mlops-tui init`: pipeline/ from a template and [data] guessed from a CSV, through the real
CLI in a subprocess on generated files; then ingest and a local retrain without any edit."""

from __future__ import annotations

import importlib.metadata
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from conftest import run_cli

from mlops_tui.services.workspace import load_config

START = datetime(2026, 1, 5)


def write_csv(path: Path, rows: int = 400, *, with_id: bool = True, label: str = "number",
              nan_at: int | None = None) -> Path:
    """A plant's observations: id, time, product (the regime), two numbers, a shift, a label."""
    chance = random.Random(7)
    header = (["obs_id"] if with_id else []) + ["ts", "product", "oven_temp", "speed", "shift",
                                                 "label"]
    lines = [",".join(header)]
    for i in range(rows):
        product = "sedan" if i < rows // 2 else "suv"
        temp, speed = chance.gauss(180, 5), chance.gauss(2, 0.3)
        value = 0.1 * temp + 3 * speed + chance.gauss(0, 0.5)
        shown = {"number": f"{value:.3f}", "class": str(int(value > 24)),
                 "text": "good" if value > 24 else "bad"}[label]
        cells = ([f"o{i}"] if with_id else []) + [
            (START + timedelta(minutes=i)).isoformat(), product,
            "nan" if i == nan_at else f"{temp:.2f}", f"{speed:.3f}", chance.choice("ABC"), shown]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def ok(result: tuple[int, str, str]) -> tuple[str, str]:
    code, out, err = result
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


def refused(result: tuple[int, str, str], code: int, *needles: str) -> str:
    returned, out, err = result
    assert returned == code, (returned, out, err)
    assert out == "" and "Traceback" not in err
    line = err.strip()
    assert "\n" not in line and line.startswith("error: "), err  # one line
    for needle in needles:
        assert needle in line, line
    return line


def test_guesses_for_a_regression_csv(tmp_path):
    source = write_csv(tmp_path / "line.csv", nan_at=5)
    target = tmp_path / "plant-a"
    out, err = ok(run_cli("init", str(target), "--from-csv", str(source), "--json"))
    doc = json.loads(out)
    guessed = doc["guessed"]
    assert (guessed["id_column"], guessed["timestamp_column"], guessed["label_column"],
            guessed["regime_column"]) == ("obs_id", "ts", "label", "product")
    assert guessed["numeric"] == ["oven_temp", "speed"]
    assert guessed["categorical"] == ["shift"]
    assert guessed["regime_candidates"] == ["product", "shift"]
    assert guessed["nan_policy"] == "missing"  # the nan in oven_temp
    assert doc["template"] == "regression"
    assert any(r.startswith("id: obs_id (named like an id") for r in guessed["reasons"])
    # what was written is what the workspace reads
    config = load_config(target / "mlops.toml")
    data = config.data
    assert (data.id_column, data.timestamp_column, data.label_column, data.regime_column) == (
        "obs_id", "ts", "label", "product")
    assert data.numeric == ("oven_temp", "speed") and data.categorical == ("shift",)
    assert data.nan_policy == "missing" and config.pipeline.metric == "r2"
    text = (target / "mlops.toml").read_text()
    assert '# regime candidates (text with few plain names): "product", "shift"' in text
    assert "Ridge" in (target / "pipeline" / "train.py").read_text()
    assert "alpha = 1.0" in (target / "pipeline" / "params.toml").read_text()
    pins = (target / "pipeline" / "requirements.txt").read_text()
    for name in ("scikit-learn", "numpy", "scipy", "pandas", "skops", "pyarrow"):
        assert f"{name}=={importlib.metadata.version(name)}\n" in pins
    # the person reads the same decisions, without --json
    out, err = ok(run_cli("init", str(tmp_path / "plant-b"), "--from-csv", str(source)))
    assert "workspace created in" in out
    for line in ("guessed id: obs_id", "guessed timestamp: ts", "guessed label: label (the "
                 "last column)", "guessed regime: product", "other candidates: shift",
                 "guessed numeric features: oven_temp, speed", "nan_policy: missing"):
        assert line in err, err


def test_a_csv_without_an_id_column_is_refused_naming_the_option(tmp_path):
    source = write_csv(tmp_path / "noid.csv", with_id=False)
    target = tmp_path / "ws"
    line = refused(run_cli("init", str(target), "--from-csv", str(source)), 2,
                   "noid.csv: no id column", "does not generate ids", "--id C")
    assert "first 400 rows" in line
    assert not target.exists()  # nothing written
    refused(run_cli("init", str(target), "--from-csv", str(source), "--id", "shift"), 2,
            "--id shift", "repeated values in the first 400 rows")
    # a unique column not named like an id is not guessed, but taken when named
    serial = tmp_path / "serial.csv"
    serial.write_text("serial,ts,temp,y\n" + "".join(
        f"s{i},{(START + timedelta(hours=i)).isoformat()},{i % 7},{i % 5}\n" for i in range(30)))
    refused(run_cli("init", str(target), "--from-csv", str(serial)), 2, "no id column")
    out, _ = ok(run_cli("init", str(target), "--from-csv", str(serial), "--id", "serial",
                        "--json"))
    guessed = json.loads(out)["guessed"]
    assert guessed["id_column"] == "serial" and "id: serial (given with --id)" in guessed[
        "reasons"]
    assert guessed["regime_column"] is None  # no text column: said, retrain needs one
    assert any("no regime column" in w and "--regime C" in w for w in guessed["warnings"])
    assert "# regime_column = " in (target / "mlops.toml").read_text()


def test_flags_override_the_guesses(tmp_path):
    source = write_csv(tmp_path / "line.csv", label="class")
    target = tmp_path / "ws"
    out, err = ok(run_cli("init", str(target), "--from-csv", str(source), "--label", "speed",
                          "--regime", "shift", "--timestamp", "ts", "--id", "obs_id",
                          "--template", "classification", "--json"))
    guessed = json.loads(out)["guessed"]
    assert guessed["label_column"] == "speed" and guessed["regime_column"] == "shift"
    assert guessed["numeric"] == ["oven_temp", "label"]
    assert guessed["categorical"] == ["product"]
    assert "label: speed (given with --label)" in guessed["reasons"]
    # a classifier over 400 distinct speeds: said, not refused
    assert any("a classifier makes each one a class" in w for w in guessed["warnings"])
    config = load_config(target / "mlops.toml")
    assert config.data.label_column == "speed" and config.data.regime_column == "shift"
    assert config.pipeline.metric == "accuracy"
    assert "LogisticRegression" in (target / "pipeline" / "train.py").read_text()


def test_refusals_name_the_problem_and_write_nothing(tmp_path):
    source = write_csv(tmp_path / "line.csv")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused(run_cli("init", str(busy), "--from-csv", str(source)), 3,
            f"{busy} is not empty", "notes.txt")
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    no_time = tmp_path / "no-time.csv"
    no_time.write_text("obs_id,when,temp,y\n" + "".join(
        f"o{i},shift {i % 3},{i * 0.5},{i}\n" for i in range(50)))
    refused(run_cli("init", str(tmp_path / "a"), "--from-csv", str(no_time)), 2,
            "no-time.csv: no timestamp column: none of when, temp, y parses",
            "--timestamp C")
    refused(run_cli("init", str(tmp_path / "a"), "--from-csv", str(source), "--timestamp",
                    "product"), 2, "--timestamp product: 'sedan' is not a timestamp")
    text_label = write_csv(tmp_path / "text.csv", label="text")
    refused(run_cli("init", str(tmp_path / "a"), "--from-csv", str(text_label)), 2,
            "label label holds text ('", "numeric labels only", "--label")
    refused(run_cli("init", str(tmp_path / "a"), "--label", "y"), 2, "need --from-csv")
    refused(run_cli("init", str(tmp_path / "a"), "--from-csv", str(source), "--label", "nope"),
            2, "--label nope: no such column", "(columns: obs_id, ts, product")
    assert not (tmp_path / "a").exists()


def test_an_empty_workspace_is_written_again_but_not_an_edited_or_used_one(tmp_path):
    source = write_csv(tmp_path / "line.csv")
    target = tmp_path / "ws"
    ok(run_cli("init", str(target)))  # plain: the default mlops.toml and the regression pipeline
    assert load_config(target / "mlops.toml").data.numeric == ()
    assert (target / "pipeline" / "train.py").is_file()
    out, _ = ok(run_cli("init", str(target), "--from-csv", str(source)))
    assert "empty workspace in" in out and "written again" in out
    assert load_config(target / "mlops.toml").data.numeric == ("oven_temp", "speed")
    # the same command again: its own files are init's, so still an empty workspace
    ok(run_cli("init", str(target), "--from-csv", str(source)))
    config = target / "mlops.toml"
    config.write_text(config.read_text().replace('window = "1d"', 'window = "6h"'))
    refused(run_cli("init", str(target)), 3, "mlops.toml was changed since init")
    assert 'window = "6h"' in config.read_text()
    # a plain classification workspace: its metric and template, and empty as well
    plain = tmp_path / "plain"
    ok(run_cli("init", str(plain), "--template", "classification"))
    assert load_config(plain / "mlops.toml").pipeline.metric == "accuracy"
    assert "LogisticRegression" in (plain / "pipeline" / "train.py").read_text()
    ok(run_cli("init", str(plain), "--from-csv", str(source)))
    assert load_config(plain / "mlops.toml").pipeline.metric == "r2"
    used = tmp_path / "used"
    ok(run_cli("init", str(used), "--from-csv", str(source)))
    ok(run_cli("ingest", str(source), workspace=used))
    refused(run_cli("init", str(used), "--from-csv", str(source)), 3,
            f"{used} already holds a workspace")


def test_init_from_csv_then_ingest_then_retrain_registers_a_version(tmp_path):
    source = write_csv(tmp_path / "line-2026-01-05.csv", nan_at=5)
    target = tmp_path / "plant-a"
    ok(run_cli("init", str(target), "--from-csv", str(source)))
    out, err = ok(run_cli("ingest", str(source), workspace=target))
    assert "400 rows, regimes sedan, suv, 1 NaN/inf values kept as missing" in err, err
    out, err = ok(run_cli("retrain", "--regime", "sedan", "--runner", "local", "--wait",
                          "--json", workspace=target, timeout=180))
    doc = json.loads(out)
    assert doc["version"] == "v1" and doc["metrics"]["r2"] > 0.3, doc
    models = json.loads(ok(run_cli("models", "list", "--json", workspace=target))[0])
    assert [v["id"] for v in models["versions"]] == ["v1"]


def test_the_classification_template_trains_on_class_codes(tmp_path):
    source = write_csv(tmp_path / "line.csv", label="class")
    target = tmp_path / "ws"
    ok(run_cli("init", str(target), "--from-csv", str(source), "--template", "classification"))
    ok(run_cli("ingest", str(source), workspace=target))
    out, err = ok(run_cli("retrain", "--regime", "suv", "--runner", "local", "--wait",
                          "--json", workspace=target, timeout=180))
    metrics = json.loads(out)["metrics"]
    assert 0.6 < metrics["accuracy"] <= 1.0 and "f1" in metrics, metrics
