"""`predict`: score a CSV or Parquet file with what serves, streaming it in batches.

By default every row is scored with the target's active version; with `by_regime`, each row
goes to the champion of the regime named in its regime column. Weights are loaded only
through the verified path (sha256 before parsing, trusted types, scikit-learn version). The
output holds the id column (when the input has it), the regime (when routing), the
prediction and the version that made it, and appears only when it is complete (temp file,
then rename): bad input leaves nothing behind.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_tui.core.errors import ConflictError, IntegrityError, UsageError
from mlops_tui.core.models import DeploymentKind, ModelVersion
from mlops_tui.core.names import format_version_id, not_found, validate_name
from mlops_tui.services.workspace import Workspace
from mlops_tui.store import deployments as deployment_sql
from mlops_tui.store import registry as registry_sql
from mlops_tui.store.read_errors import arrow_error, escaped

BATCH_ROWS = 131_072
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
PREDICTION = "prediction"
VERSION = "version"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class PredictResult:
    source: str
    output: str
    rows: int
    by_regime: bool
    rows_by_version: dict[str, int]
    unrouted: dict[str, int] = field(default_factory=dict)  # regime -> rows without champion
    seconds: float = 0.0

    @property
    def message(self) -> str:
        used = ", ".join(f"{v} {n:,} rows" for v, n in sorted(self.rows_by_version.items()))
        text = f"{self.rows:,} predictions written to {self.output} ({used or 'no rows'})"
        if self.unrouted:
            missing = ", ".join(f"{r or '(empty)'} {n:,}" for r, n in sorted(self.unrouted.items()))
            text += f"; no champion for: {missing} (prediction left empty)"
        return text


@dataclass
class _Model:
    version: ModelVersion
    estimator: Any
    columns: list[str]


def _file_format(path: Path, what: str) -> str:
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise UsageError(f"{path}: {what} must be .csv or .parquet, not {path.suffix or 'none'}")
    return found


def _check_input(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: is not a regular file (FIFO, device or socket)")


def _versions_to_use(workspace: Workspace, target: str | None, by_regime: bool
                     ) -> dict[str | None, tuple[ModelVersion, Any]]:
    """{regime (None: every row): (version, its env)} from the store, in one read."""
    with workspace.store.read() as tx:
        if by_regime:
            events = [e for e in deployment_sql.current_all(tx)
                      if e.kind is DeploymentKind.CHAMPION]
            if not events:
                raise ConflictError("no regime has a champion yet: nothing to route rows to "
                                    "(deploy --champion-of REGIME first)")
            chosen = {e.subject: e.to_version for e in events}
        else:
            name = validate_name(target or workspace.config.serving.default_target, "target")
            event = deployment_sql.current(tx, DeploymentKind.ACTIVE, name)
            known = set(deployment_sql.subjects(tx, DeploymentKind.ACTIVE))
            if event is None and name not in known | {workspace.config.serving.default_target}:
                raise not_found("target", name, sorted(known))
            if event is None:
                raise ConflictError(f"target {name} serves no version yet: deploy one first")
            chosen = {None: event.to_version}
        found = {}
        for regime, number in chosen.items():
            version = registry_sql.get_version(tx, number)
            if version is None:
                raise IntegrityError(f"{format_version_id(number)} serves but does not exist: "
                                     "run 'mlops-tui store verify'")
            if deployment_sql.is_collected(tx, number) is not None:
                raise ConflictError(f"{version.id}'s weights were removed by 'models gc'")
            found[regime] = (version, registry_sql.get_env(tx, version.env_hash))
    return found


def _load(workspace: Workspace, version: ModelVersion, env: Any) -> _Model:
    """Load through the verified path; a refused artifact leaves one audit row."""
    from mlops_tui.services.deployments import refuse
    from mlops_tui.services.registry import load_estimator

    try:
        estimator = load_estimator(workspace, version, env)
    except IntegrityError as error:
        refuse(workspace, "predict-refused", version.id,
               {"version": version.id, "problem": error.message})
        raise
    names = getattr(estimator, "feature_names_in_", None)
    columns = [str(c) for c in names] if names is not None else list(
        workspace.config.data.features)
    if not columns:
        raise UsageError(f"{version.id} names no input columns and [data] declares no features")
    return _Model(version, estimator, columns)


def _input_columns(path: Path, file_format: str) -> list[str]:
    """The column names of the input, reading only its header or footer."""
    import pyarrow as pa

    try:
        if file_format == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        import pyarrow.csv as pacsv

        with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20)) as reader:
            return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as error:
        if file_format == "csv" and isinstance(error, pa.ArrowInvalid):
            raise UsageError(arrow_error(path, error, 1 << 20)) from None
        kind = "Parquet" if file_format == "parquet" else "CSV"
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"{path}: not a readable {kind} file ({text})") from None


def _batches(path: Path, file_format: str, columns: list[str], types: dict[str, Any],
             batch_rows: int) -> tuple[Any, Iterator[Any]]:
    """(schema, record batches) of the needed columns, streamed rather than read whole."""
    import pyarrow as pa

    if file_format == "parquet":
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(path)
        schema = pa.schema([reader.schema_arrow.field(c) for c in columns])
        return schema, _checked(path, reader.iter_batches(batch_size=batch_rows, columns=columns))
    import pyarrow.csv as pacsv

    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types))
    except pa.ArrowInvalid as error:
        raise UsageError(arrow_error(path, error, 1 << 24)) from None
    return reader.schema, _checked(path, reader)


def _checked(path: Path, batches: Iterator[Any]) -> Iterator[Any]:
    """Batches, with a value that does not parse reported as bad input naming the file."""
    import pyarrow as pa

    try:
        yield from batches
    except pa.ArrowInvalid as error:
        text = str(error)
        if path.suffix.lower() == ".csv" and ("CSV parse error" in text or "straddl" in text):
            raise UsageError(arrow_error(path, error, 1 << 24)) from None
        raise UsageError(f"{path}: {escaped(text.splitlines()[0] if text else '')}") from None


def _require_columns(path: Path, available: list[str], needed: list[str]) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(the file has {', '.join(available[:12])}"
                         f"{'…' if len(available) > 12 else ''})")


def _score(model: _Model, frame: Any, path: Path, first_row: int) -> Any:
    import numpy as np

    try:
        values = model.estimator.predict(frame[model.columns])
    except Exception as error:  # noqa: BLE001 - the model's own complaint, named with rows
        raise UsageError(
            f"{path}: rows {first_row}-{first_row + len(frame) - 1}: {model.version.id} could "
            f"not score them: {str(error).splitlines()[0][:200]}") from None
    return np.asarray(values, dtype=np.float64).reshape(-1)


class _Writer:
    """Parquet or CSV output, written batch by batch to a temp file beside the target."""

    def __init__(self, out: Path, file_format: str, schema: Any) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        self.temp, self.out, self.format = Path(name), out, file_format
        if file_format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.temp, schema)
        else:
            import pyarrow.csv as pacsv

            self._writer = pacsv.CSVWriter(self.temp, schema)

    def write(self, batch: Any) -> None:
        self._writer.write_batch(batch)

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.temp, self.out)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.temp.unlink(missing_ok=True)


def predict_file(
    workspace: Workspace,
    source: Path,
    *,
    out: Path | None = None,
    by_regime: bool = False,
    target: str | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> PredictResult:
    """Score `source` and write predictions to `out` (default: SOURCE.predictions.parquet)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    started = time.perf_counter()
    source = Path(source)
    _check_input(source)
    input_format = _file_format(source, "the input")
    out = Path(out) if out is not None else source.with_name(
        f"{source.stem}.predictions.parquet")
    output_format = _file_format(out, "--out")
    if out.resolve() == source.resolve():
        raise UsageError(f"--out {out} would overwrite the input file")
    contract = workspace.config.data
    regime_column = contract.regime_column if by_regime else None
    if by_regime and not regime_column:
        raise UsageError(f"{workspace.config_path}: [data] regime_column is not set: "
                         "--by-regime needs each row's regime")
    if by_regime and target is not None:
        raise UsageError("--by-regime routes rows to champions; it takes no --target")
    names = _input_columns(source, input_format)
    chosen = _versions_to_use(workspace, target, by_regime)
    models = {regime: _load(workspace, version, env)
              for regime, (version, env) in chosen.items()}
    features = list(dict.fromkeys(c for m in models.values() for c in m.columns))
    id_column = contract.id_column if contract.id_column in names else None
    extra = [c for c in (id_column, regime_column) if c is not None and c not in features]
    _require_columns(source, names, extra + features)
    types = {c: pa.float64() for c in contract.numeric} | {
        c: pa.string() for c in (*contract.categorical, regime_column, id_column) if c}
    schema, batches = _batches(source, input_format, extra + features,
                               {c: t for c, t in types.items() if c in extra + features},
                               batch_rows)
    out_schema = pa.schema(
        ([schema.field(id_column)] if id_column else [])
        + ([pa.field(regime_column, pa.string())] if regime_column else [])
        + [pa.field(PREDICTION, pa.float64()), pa.field(VERSION, pa.string())])
    writer = _Writer(out, output_format, out_schema)
    rows, per_version, unrouted = 0, {}, {}
    try:
        for batch in batches:
            frame = batch.select(features).to_pandas()
            count = batch.num_rows
            if regime_column is None:
                model = models[None]
                predictions = pa.array(_score(model, frame, source, rows), pa.float64())
                versions = pa.array([model.version.id] * count, pa.string())
                per_version[model.version.id] = per_version.get(model.version.id, 0) + count
            else:
                regimes = pc.cast(batch.column(regime_column), pa.string())
                values = np.full(count, np.nan)
                labels = np.full(count, None, dtype=object)
                routed = np.zeros(count, dtype=bool)
                for regime in pc.unique(regimes).to_pylist():
                    mask = (np.asarray(pc.fill_null(pc.equal(regimes, regime), False))
                            if regime is not None else np.asarray(pc.is_null(regimes)))
                    model = models.get(regime)
                    if model is None:
                        unrouted[regime or ""] = unrouted.get(regime or "", 0) + int(mask.sum())
                        continue
                    values[mask] = _score(model, frame[mask], source, rows)
                    labels[mask] = model.version.id
                    routed |= mask
                    per_version[model.version.id] = (per_version.get(model.version.id, 0)
                                                     + int(mask.sum()))
                predictions = pa.array(values, pa.float64(), mask=~routed)
                versions = pa.array(labels, pa.string())
            columns = ([batch.column(id_column)] if id_column else []) + (
                [regimes] if regime_column else []) + [predictions, versions]
            writer.write(pa.RecordBatch.from_arrays(columns, schema=out_schema))
            rows += count
            if progress is not None:
                progress(rows)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return PredictResult(str(source), str(out), rows, by_regime, per_version, unrouted,
                         time.perf_counter() - started)

