"""Deterministic sample scenario: a paint line whose car model (the regime) changes over time.

The line builds three car models, `sedan`, `suv` and `pickup`. Each has its own operating
point (line speed, oven temperature, paint thickness, bolt torque, vibration, supplier mix) and
its own physics linking those features to the label, the paint pull-off adhesion in MPa: the
coefficients, signs and interactions differ per car model, so a model fitted on one car model
predicts another badly. This is the "car model A -> B -> A" situation that motivates Auto
Deploy: when the line goes back to a car model seen before, its earlier model should serve.

Timeline (UTC, one observation per minute, 35 days from 2026-01-05T00:00:00Z)::

    sedan  2026-01-05T00:00Z .. 2026-01-13T14:00Z   (8 d 14 h)
    suv    2026-01-13T14:00Z .. 2026-01-19T22:00Z   (6 d  8 h)
    sedan  2026-01-19T22:00Z .. 2026-01-26T14:00Z   (6 d 16 h)
    pickup 2026-01-26T14:00Z .. 2026-01-31T22:00Z   (5 d  8 h)
    sedan  2026-01-31T22:00Z .. 2026-02-09T00:00Z   (8 d  2 h)

Changeovers happen at shift changes (14:00 and 22:00), which fall inside 6-hour windows, so
the windows holding a changeover are `mixed`. In the last sedan stretch the oven thermocouple
loses calibration from 2026-02-02T21:30Z: the `oven_temp_c` *reading* creeps up linearly
(the true temperature, which drives adhesion, does not), reaching about 2.5 reference standard
deviations by the end of the data.

Everything is drawn from `numpy.random.default_rng(seed)` in a fixed order, and every float is
rounded through its CSV text, so the same seed gives byte-identical files.

Run ``python -m mlops_tui.sample.generator --out DIR [--seed N] [--no-csv]`` to write
``observations.csv``, ``observations.parquet`` and ``ground_truth.json`` into DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_SEED = 7
START = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=1)
WINDOW = timedelta(hours=6)
WINDOW_LABEL = "6h"

REGIMES: tuple[str, ...] = ("sedan", "suv", "pickup")
#: (regime, duration) in timeline order; the durations sum to exactly 35 days.
STRETCHES: tuple[tuple[str, timedelta], ...] = (
    ("sedan", timedelta(days=8, hours=14)),
    ("suv", timedelta(days=6, hours=8)),
    ("sedan", timedelta(days=6, hours=16)),
    ("pickup", timedelta(days=5, hours=8)),
    ("sedan", timedelta(days=8, hours=2)),
)
END = START + sum((d for _, d in STRETCHES), timedelta())

ID_COLUMN = "obs_id"
TIME_COLUMN = "ts"
REGIME_COLUMN = "car_model"
FEATURES_NUMERIC: tuple[str, ...] = (
    "line_speed_mpm",
    "oven_temp_c",
    "paint_thickness_um",
    "humidity_pct",
    "torque_nm",
    "vibration_mm_s",
)
FEATURES_CATEGORICAL: tuple[str, ...] = ("shift", "supplier")
LABEL = "paint_adhesion_mpa"
COLUMNS: tuple[str, ...] = (
    ID_COLUMN,
    TIME_COLUMN,
    REGIME_COLUMN,
    *FEATURES_NUMERIC,
    *FEATURES_CATEGORICAL,
    LABEL,
)
UNITS: dict[str, str] = {
    "line_speed_mpm": "m/min",
    "oven_temp_c": "degC",
    "paint_thickness_um": "um",
    "humidity_pct": "%RH",
    "torque_nm": "N*m",
    "vibration_mm_s": "mm/s RMS",
    LABEL: "MPa",
}
#: Decimal places each float column is rounded to (and written with) in every output.
DECIMALS: dict[str, int] = {
    "line_speed_mpm": 3,
    "oven_temp_c": 2,
    "paint_thickness_um": 1,
    "humidity_pct": 1,
    "torque_nm": 1,
    "vibration_mm_s": 3,
    LABEL: 3,
}

#: Per regime and numeric feature: (mean, standard deviation) of the true process value.
#: Humidity is ambient and the same for every car model.
PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "sedan": {
        "line_speed_mpm": (6.2, 0.35),
        "oven_temp_c": (182.0, 2.0),
        "paint_thickness_um": (105.0, 5.0),
        "humidity_pct": (47.0, 6.0),
        "torque_nm": (95.0, 6.0),
        "vibration_mm_s": (1.8, 0.25),
    },
    "suv": {
        "line_speed_mpm": (4.8, 0.30),
        "oven_temp_c": (192.0, 2.5),
        "paint_thickness_um": (122.0, 6.0),
        "humidity_pct": (47.0, 6.0),
        "torque_nm": (145.0, 9.0),
        "vibration_mm_s": (2.9, 0.35),
    },
    "pickup": {
        "line_speed_mpm": (3.9, 0.25),
        "oven_temp_c": (172.0, 2.2),
        "paint_thickness_um": (138.0, 7.0),
        "humidity_pct": (47.0, 6.0),
        "torque_nm": (190.0, 11.0),
        "vibration_mm_s": (4.4, 0.50),
    },
}

SUPPLIERS: tuple[str, ...] = ("acme", "borealis", "cobalt")
SUPPLIER_SHARES: dict[str, tuple[float, float, float]] = {
    "sedan": (0.6, 0.3, 0.1),
    "suv": (0.2, 0.5, 0.3),
    "pickup": (0.1, 0.2, 0.7),
}
SHIFTS: tuple[str, ...] = ("day", "late", "night")

#: Adhesion model per regime, on standardised true values z = (x - mean) / std:
#: base + sum(linear[f] * z_f) + sum(coef * z_a * z_b for pairs) + supplier + shift + noise.
#: A pair (a, a) is a curvature term (e.g. an optimum oven temperature).
ADHESION: dict[str, dict[str, object]] = {
    "sedan": {
        "base": 12.0,
        "linear": {
            "line_speed_mpm": -0.9,
            "oven_temp_c": 1.1,
            "paint_thickness_um": 0.6,
            "humidity_pct": -0.5,
            "torque_nm": 0.2,
            "vibration_mm_s": -0.4,
        },
        "pairs": {
            ("oven_temp_c", "paint_thickness_um"): 0.3,
            ("oven_temp_c", "oven_temp_c"): -0.4,
        },
        "supplier": {"acme": 0.0, "borealis": -0.3, "cobalt": 0.4},
    },
    "suv": {
        "base": 10.5,
        "linear": {
            "line_speed_mpm": 0.5,
            "oven_temp_c": -0.8,
            "paint_thickness_um": 1.0,
            "humidity_pct": -0.9,
            "torque_nm": -0.6,
            "vibration_mm_s": 0.3,
        },
        "pairs": {
            ("line_speed_mpm", "humidity_pct"): -0.4,
            ("oven_temp_c", "oven_temp_c"): -0.2,
        },
        "supplier": {"acme": 0.5, "borealis": 0.0, "cobalt": -0.4},
    },
    "pickup": {
        "base": 14.0,
        "linear": {
            "line_speed_mpm": -0.3,
            "oven_temp_c": 0.4,
            "paint_thickness_um": -1.1,
            "humidity_pct": 0.6,
            "torque_nm": 0.9,
            "vibration_mm_s": -0.8,
        },
        "pairs": {
            ("paint_thickness_um", "vibration_mm_s"): 0.4,
            ("oven_temp_c", "oven_temp_c"): -0.5,
        },
        "supplier": {"acme": -0.6, "borealis": 0.2, "cobalt": 0.0},
    },
}
SHIFT_EFFECT: dict[str, float] = {"day": 0.05, "late": 0.0, "night": -0.15}
NOISE_STD = 0.35
HUMIDITY_MISSING_SHARE = 0.01

DRIFT_FEATURE = "oven_temp_c"
DRIFT_REGIME = "sedan"
DRIFT_START = datetime(2026, 2, 2, 21, 30, tzinfo=UTC)
#: Reading offset growth after DRIFT_START, in degC per hour (about +5 degC by the end).
DRIFT_RATE_PER_HOUR = 0.034
#: Shift (in reference standard deviations) a window's mean must reach to count as detectable.
DRIFT_DETECTABLE_STD = 1.0


def _iso(moment: datetime) -> str:
    """ISO-8601 UTC text with a `Z` suffix, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _minutes_since_start(moment: datetime) -> int:
    return int((moment - START) // STEP)


def _window_index(moment: datetime) -> int:
    return int((moment - START) // WINDOW)


def _window_ref(index: int) -> dict[str, object]:
    return {"index": index, "start": _iso(START + index * WINDOW)}


def drift_offset(minutes: np.ndarray) -> np.ndarray:
    """Calibration offset (degC) added to the drifting reading at minutes since START.

    offset(t) = DRIFT_RATE_PER_HOUR * max(0, hours(t - DRIFT_START)); only rows of the
    stretch that contains DRIFT_START (the last sedan stretch) are affected.
    """
    hours = (minutes - _minutes_since_start(DRIFT_START)) / 60.0
    return DRIFT_RATE_PER_HOUR * np.clip(hours, 0.0, None)


def _regime_codes(n_rows: int) -> np.ndarray:
    codes = np.empty(n_rows, dtype=np.int8)
    row = 0
    for name, duration in STRETCHES:
        count = int(duration // STEP)
        codes[row : row + count] = REGIMES.index(name)
        row += count
    return codes


def _fixed(values: np.ndarray, decimals: int) -> tuple[np.ndarray, list[str]]:
    """Round through fixed-point text, so the table and the CSV hold the very same numbers."""
    text = [f"{v:.{decimals}f}" for v in values.tolist()]
    return np.array(text, dtype=np.float64), text


def _simulate(seed: int) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Draw every column; return numeric arrays and their fixed-point CSV text."""
    rng = np.random.default_rng(seed)
    n_rows = int((END - START) // STEP)
    minutes = np.arange(n_rows, dtype=np.int64)
    codes = _regime_codes(n_rows)

    names = list(FEATURES_NUMERIC)
    means = np.array([[PROFILES[r][f][0] for f in names] for r in REGIMES])
    stds = np.array([[PROFILES[r][f][1] for f in names] for r in REGIMES])
    z = rng.standard_normal((n_rows, len(names)))
    true_values = means[codes] + stds[codes] * z

    shares = np.cumsum(np.array([SUPPLIER_SHARES[r] for r in REGIMES]), axis=1)[codes]
    supplier_idx = (rng.random(n_rows)[:, None] > shares).sum(axis=1).clip(0, 2)
    hour = (minutes // 60) % 24
    shift_idx = np.where((hour >= 6) & (hour < 14), 0, np.where((hour >= 14) & (hour < 22), 1, 2))
    humidity_missing = rng.random(n_rows) < HUMIDITY_MISSING_SHARE
    noise = rng.standard_normal(n_rows) * NOISE_STD

    label = np.zeros(n_rows)
    for code, regime in enumerate(REGIMES):
        spec = ADHESION[regime]
        rows = codes == code
        zr = z[rows]
        value = np.full(rows.sum(), float(spec["base"]))
        for feature, coef in spec["linear"].items():
            value += coef * zr[:, names.index(feature)]
        for (a, b), coef in spec["pairs"].items():
            value += coef * zr[:, names.index(a)] * zr[:, names.index(b)]
        value += np.array([spec["supplier"][s] for s in SUPPLIERS])[supplier_idx[rows]]
        label[rows] = value
    label += np.array([SHIFT_EFFECT[s] for s in SHIFTS])[shift_idx] + noise

    readings = true_values.copy()
    last_start = n_rows - int(STRETCHES[-1][1] // STEP)
    drift_col = names.index(DRIFT_FEATURE)
    readings[last_start:, drift_col] += drift_offset(minutes[last_start:])

    numeric: dict[str, np.ndarray] = {}
    text: dict[str, list[str]] = {}
    for i, feature in enumerate(names):
        numeric[feature], text[feature] = _fixed(readings[:, i], DECIMALS[feature])
    numeric[LABEL], text[LABEL] = _fixed(label, DECIMALS[LABEL])
    numeric["humidity_pct"][humidity_missing] = np.nan
    text["humidity_pct"] = [
        "" if missing else t
        for t, missing in zip(text["humidity_pct"], humidity_missing.tolist(), strict=True)
    ]
    numeric["_minutes"] = minutes
    numeric["_regime"] = codes
    numeric["_supplier"] = supplier_idx
    numeric["_shift"] = shift_idx
    numeric["_humidity_missing"] = humidity_missing
    return numeric, text


def _table(numeric: dict[str, np.ndarray]) -> pa.Table:
    n_rows = len(numeric["_minutes"])
    start_us = int(START.timestamp()) * 1_000_000
    ts = pa.array(start_us + numeric["_minutes"] * 60_000_000, type=pa.timestamp("us", tz="UTC"))
    columns: dict[str, pa.Array] = {
        ID_COLUMN: pa.array([f"obs-{i:07d}" for i in range(1, n_rows + 1)], type=pa.string()),
        TIME_COLUMN: ts,
        REGIME_COLUMN: pa.array(np.array(REGIMES, dtype=object)[numeric["_regime"]], pa.string()),
    }
    for feature in FEATURES_NUMERIC:
        mask = numeric["_humidity_missing"] if feature == "humidity_pct" else None
        columns[feature] = pa.array(numeric[feature], type=pa.float64(), mask=mask)
    columns["shift"] = pa.array(np.array(SHIFTS, dtype=object)[numeric["_shift"]], pa.string())
    columns["supplier"] = pa.array(
        np.array(SUPPLIERS, dtype=object)[numeric["_supplier"]], pa.string()
    )
    columns[LABEL] = pa.array(numeric[LABEL], type=pa.float64())
    return pa.table([columns[c] for c in COLUMNS], names=list(COLUMNS))


def _csv_text(table: pa.Table, text: dict[str, list[str]]) -> str:
    """The CSV document: header, then rows with fixed decimals and `Z` timestamps."""
    n_rows = table.num_rows
    ts = [_iso(START + i * STEP) for i in range(n_rows)]
    cols = [
        table.column(ID_COLUMN).to_pylist(),
        ts,
        table.column(REGIME_COLUMN).to_pylist(),
        *(text[f] for f in FEATURES_NUMERIC),
        *(table.column(c).to_pylist() for c in FEATURES_CATEGORICAL),
        text[LABEL],
    ]
    lines = [",".join(COLUMNS)]
    lines.extend(",".join(row) for row in zip(*cols, strict=True))
    return "\n".join(lines) + "\n"


def _periods() -> list[dict[str, str]]:
    periods = []
    moment = START
    for regime, duration in STRETCHES:
        periods.append({"regime": regime, "start": _iso(moment), "end": _iso(moment + duration)})
        moment += duration
    return periods


def _window_drift_std() -> np.ndarray:
    """Mean calibration offset per 6h window, in reference standard deviations.

    The reference std is the drifting feature's nominal standard deviation in its regime
    (PROFILES: 2.0 degC for the sedan oven). The offset formula (`drift_offset`) is averaged
    over each window's own one-minute timestamps.
    """
    per_window = int(WINDOW // STEP)
    n_windows = int((END - START) // WINDOW)
    minutes = np.arange(n_windows * per_window, dtype=np.int64)
    offsets = drift_offset(minutes).reshape(n_windows, per_window).mean(axis=1)
    return offsets / PROFILES[DRIFT_REGIME][DRIFT_FEATURE][1]


def _drift_detectable_window() -> int:
    """First window whose mean offset reaches DRIFT_DETECTABLE_STD reference stds (1.0)."""
    return int(np.flatnonzero(_window_drift_std() >= DRIFT_DETECTABLE_STD)[0])


def ground_truth(seed: int = DEFAULT_SEED) -> dict:
    """The scenario's truth: periods, changes (with windows) and per-window regime labels.

    Periods are half-open [start, end). Window index i covers [START + 6h*i, START + 6h*(i+1)).
    A regime switch is detectable by the window after the one containing it; the drift start
    is detectable by the window computed in `_drift_detectable_window`.
    """
    periods = _periods()
    changes: list[dict[str, object]] = []
    for before, after in pairwise(periods):
        at = datetime.strptime(after["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        first = _window_index(at)
        changes.append(
            {
                "kind": "regime-switch",
                "at": after["start"],
                "from_regime": before["regime"],
                "to_regime": after["regime"],
                "first_window": _window_ref(first),
                "detectable_by_window": _window_ref(first + 1),
            }
        )
    changes.append(
        {
            "kind": "drift-start",
            "at": _iso(DRIFT_START),
            "regime": DRIFT_REGIME,
            "feature": DRIFT_FEATURE,
            "first_window": _window_ref(_window_index(DRIFT_START)),
            "detectable_by_window": _window_ref(_drift_detectable_window()),
        }
    )
    changes.sort(key=lambda c: str(c["at"]))

    n_windows = int((END - START) // WINDOW)
    per_window = int(WINDOW // STEP)
    codes = _regime_codes(n_windows * per_window).reshape(n_windows, per_window)
    drift_std = _window_drift_std()
    windows = []
    for index in range(n_windows):
        counts = np.bincount(codes[index], minlength=len(REGIMES))
        windows.append(
            {
                "index": index,
                "start": _iso(START + index * WINDOW),
                "end": _iso(START + (index + 1) * WINDOW),
                "rows": per_window,
                "regime": REGIMES[int(counts.argmax())],
                "mixed": bool((counts > 0).sum() > 1),
                "drift_shift_std": round(float(drift_std[index]), 4),
            }
        )

    return {
        "scenario": "car-model paint line",
        "seed": seed,
        "start": _iso(START),
        "end": _iso(END),
        "interval": "1min",
        "rows": int((END - START) // STEP),
        "id_column": ID_COLUMN,
        "time_column": TIME_COLUMN,
        "regime_column": REGIME_COLUMN,
        "regimes": list(REGIMES),
        "features_numeric": list(FEATURES_NUMERIC),
        "features_categorical": list(FEATURES_CATEGORICAL),
        "time_of_day_features": ["shift"],
        "label": LABEL,
        "units": dict(UNITS),
        "window": WINDOW_LABEL,
        "window_alignment": "UTC",
        "periods": periods,
        "changes": changes,
        "drift": {
            "feature": DRIFT_FEATURE,
            "regime": DRIFT_REGIME,
            "start": _iso(DRIFT_START),
            "rate_per_hour": DRIFT_RATE_PER_HOUR,
            "reference_mean": PROFILES[DRIFT_REGIME][DRIFT_FEATURE][0],
            "reference_std": PROFILES[DRIFT_REGIME][DRIFT_FEATURE][1],
            "detectable_at_std": DRIFT_DETECTABLE_STD,
            "affects_label": False,
        },
        "windows": windows,
    }


def _generate(seed: int) -> tuple[pa.Table, dict, str]:
    numeric, text = _simulate(seed)
    table = _table(numeric)
    return table, ground_truth(seed), _csv_text(table, text)


def generate(seed: int = DEFAULT_SEED) -> tuple[pa.Table, dict]:
    """Return (observations sorted by `ts`, ground truth) for `seed`."""
    table, truth, _ = _generate(seed)
    return table, truth


def ground_truth_json(truth: dict) -> str:
    """Stable JSON text: sorted keys, indent 2, trailing newline."""
    return json.dumps(truth, sort_keys=True, indent=2) + "\n"


def csv_text(seed: int = DEFAULT_SEED) -> str:
    """The exact `observations.csv` text for `seed`."""
    return _generate(seed)[2]


def write(out_dir: Path, seed: int = DEFAULT_SEED, *, include_csv: bool = True) -> dict[str, Path]:
    """Write observations (CSV, Parquet) and ground_truth.json; return {kind: path}.

    Keys of the result: "csv" (unless include_csv is False), "parquet", "ground_truth".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table, truth, text = _generate(seed)
    paths: dict[str, Path] = {}
    if include_csv:
        paths["csv"] = out_dir / "observations.csv"
        paths["csv"].write_bytes(text.encode("utf-8"))
    paths["parquet"] = out_dir / "observations.parquet"
    pq.write_table(table, paths["parquet"], compression="zstd")
    paths["ground_truth"] = out_dir / "ground_truth.json"
    paths["ground_truth"].write_bytes(ground_truth_json(truth).encode("utf-8"))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_tui.sample.generator",
        description="Write the car-model paint line sample scenario.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 7)")
    parser.add_argument("--no-csv", action="store_true", help="write only Parquet and truth")
    args = parser.parse_args(argv)
    for kind, path in write(args.out, args.seed, include_csv=not args.no_csv).items():
        print(f"{kind}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
