"""Guessing a data contract from a sample of a file: pure rules over per-column counts.

The sample comes from store/sniff.py (values parsed as ingest parses them). Every guess
comes with the reason it is printed with; a flag names a column instead of a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_tui.core.errors import UsageError
from mlops_tui.core.names import shown_column

TEMPLATES = ("regression", "classification")
SAMPLE_ROWS = 10_000
REGIME_MAX_NAMES = 20  # a regime candidate names at most this many conditions in the sample
ID_WORDS = {"id", "uuid", "guid", "uid", "key"}
TIME_WORDS = {"ts", "time", "timestamp", "datetime", "date", "at"}
REGIME_WORDS = {"regime", "product", "recipe", "model", "grade", "season", "variant", "mode",
                "line", "plant", "site", "type", "kind", "condition"}


@dataclass(frozen=True)
class ColumnSample:
    """One column over the sample; counts are of non-missing values."""

    name: str
    values: int
    distinct: int
    not_numbers: int  # values that do not parse as a number
    first_text: str | None  # the first of them
    not_finite: int  # NaN or +-inf
    not_times: int  # values that do not parse as a timestamp
    first_not_time: str | None
    names_ok: bool  # every value is a valid regime name
    backwards: int | None  # row of the first timestamp earlier than the one before it

    @property
    def numeric(self) -> bool:
        return self.values > 0 and self.not_numbers == 0


@dataclass(frozen=True)
class Sample:
    source: str
    rows: int
    columns: tuple[ColumnSample, ...]

    def column(self, name: str, flag: str) -> ColumnSample:
        for column in self.columns:
            if column.name == name:
                return column
        raise UsageError(f"{flag} {shown_column(name)}: no such column in {self.source} "
                         f"(columns: {_names(c.name for c in self.columns)})")


@dataclass(frozen=True)
class Guess:
    id_column: str
    timestamp_column: str
    label_column: str
    regime_column: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    regime_candidates: tuple[str, ...]
    nan_missing: bool  # NaN/inf seen in a numeric column: nan_policy = "missing"
    template: str
    reasons: tuple[str, ...]  # one line per decision, printed by init
    warnings: tuple[str, ...]


def _names(names) -> str:
    listed = [shown_column(n) for n in names]
    return ", ".join(listed[:12]) + (f", ... ({len(listed)} in all)" if len(listed) > 12 else "")


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # orderId -> order_Id
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def id_like(name: str) -> bool:
    words = _words(name)
    return bool(words) and (words[-1] in ID_WORDS or words[0] in {"id", "uuid"})


def time_like(name: str) -> bool:
    words = _words(name)
    return bool(words) and words[-1] in TIME_WORDS


def regime_like(name: str) -> bool:
    return any(w in REGIME_WORDS for w in _words(name))


def _choose_id(sample: Sample, flag: str | None) -> tuple[str, str]:
    def unique(c: ColumnSample) -> bool:
        return c.values == sample.rows and c.distinct == sample.rows

    if flag is not None:
        column = sample.column(flag, "--id")
        if not unique(column):
            problem = (f"{sample.rows - column.values} missing" if column.values < sample.rows
                       else f"{column.values - column.distinct} repeated")
            raise UsageError(f"{sample.source}: --id {shown_column(flag)}: {problem} values in "
                             f"the first {sample.rows:,} rows (ingest needs a unique id per row)")
        return flag, "given with --id"
    for column in sample.columns:
        if id_like(column.name) and unique(column):
            return column.name, f"named like an id, unique in the first {sample.rows:,} rows"
    raise UsageError(
        f"{sample.source}: no id column: no column named like an id (id, *_id, uuid, key) is "
        f"unique in the first {sample.rows:,} rows; ingest needs one (it does not generate "
        "ids; late labels join on it): add one to the file or name it with --id C")


def _choose_timestamp(sample: Sample, flag: str | None, id_column: str) -> tuple[str, str]:
    if flag is not None:
        column = sample.column(flag, "--timestamp")
        if column.values < sample.rows:
            raise UsageError(f"{sample.source}: --timestamp {shown_column(flag)}: "
                             f"{sample.rows - column.values} missing values in the first "
                             f"{sample.rows:,} rows")
        if column.not_times:
            raise UsageError(f"{sample.source}: --timestamp {shown_column(flag)}: "
                             f"{column.first_not_time!r} is not a timestamp (ISO-8601, UTC "
                             "unless it names a zone)")
        return flag, "given with --timestamp"
    tried = [c for c in sample.columns if c.name != id_column]
    parsed = [c for c in tried if c.values == sample.rows and not c.not_times]
    if not parsed:
        raise UsageError(
            f"{sample.source}: no timestamp column: none of {_names(c.name for c in tried)} "
            f"parses as an ISO-8601 timestamp on each of the first {sample.rows:,} rows "
            "(name one with --timestamp C)")
    # in order first: ingest refuses timestamps going backwards within a file
    parsed.sort(key=lambda c: (c.backwards is not None, not time_like(c.name)))
    chosen = parsed[0]
    why = "parses as a timestamp on every row" + (", named like a time" if time_like(
        chosen.name) else "")
    if len(parsed) > 1:
        why += f" (also parseable: {_names(c.name for c in parsed[1:])})"
    return chosen.name, why


def guess_contract(sample: Sample, *, id_column: str | None = None,
                   timestamp: str | None = None, label: str | None = None,
                   regime: str | None = None, template: str | None = None) -> Guess:
    """The [data] contract for `sample`; the keyword arguments are the flags overriding it."""
    if sample.rows == 0:
        raise UsageError(f"{sample.source}: no rows (only a header)")
    if template is not None and template not in TEMPLATES:
        raise UsageError(f"--template {template[:30]!r}: use regression or classification")
    reasons, warnings = [], []
    chosen_id, why = _choose_id(sample, id_column)
    reasons.append(f"id: {shown_column(chosen_id)} ({why})")
    ts, why = _choose_timestamp(sample, timestamp, chosen_id)
    if ts == chosen_id:
        raise UsageError(f"--timestamp {shown_column(ts)} is the id column")
    reasons.append(f"timestamp: {shown_column(ts)} ({why})")
    back = sample.column(ts, "--timestamp").backwards
    if back is not None:
        warnings.append(f"{shown_column(ts)} goes backwards at data row {back:,}: ingest "
                        "refuses that; sort the file by time first")
    label_column, why = _choose_label(sample, label, chosen_id, ts)
    reasons.append(f"label: {shown_column(label_column)} ({why})")
    taken = {chosen_id, ts, label_column}
    candidates = [c for c in sample.columns if c.name not in taken and not c.numeric
                  and c.values and c.names_ok and c.distinct <= REGIME_MAX_NAMES]
    regime_column, why = _choose_regime(sample, regime, taken, candidates)
    if regime_column is None:
        warnings.append(
            f"no regime column: none looks like one (text with 1 to {REGIME_MAX_NAMES} plain "
            "names); retrain needs [data] regime_column: add one to the file or pass --regime C")
    else:
        reasons.append(f"regime: {shown_column(regime_column)} ({why})")
        taken.add(regime_column)
    features = [c for c in sample.columns if c.name not in taken]
    numeric = tuple(c.name for c in features if c.numeric)
    categorical = tuple(c.name for c in features if not c.numeric)
    if not features:
        raise UsageError(f"{sample.source}: no feature columns left after the id, timestamp, "
                         "label and regime")
    reasons.append(f"numeric features: {_names(numeric) or 'none'} (every value a number)")
    reasons.append(f"categorical features: {_names(categorical) or 'none'} (text)")
    label_sample = sample.column(label_column, "--label")
    finite_checked = [label_sample, *(c for c in features if c.numeric)]
    nan_missing = any(c.not_finite for c in finite_checked)
    if nan_missing:
        reasons.append("nan_policy: missing (NaN/inf values in "
                       f"{_names(c.name for c in finite_checked if c.not_finite)})")
    chosen_template = template or "regression"
    if template is None:
        why = "the label is numeric; classification needs --template classification"
    else:
        why = "given with --template"
    reasons.append(f"template: {chosen_template} ({why})")
    if chosen_template == "classification" and label_sample.distinct > REGIME_MAX_NAMES:
        warnings.append(f"label {shown_column(label_column)} has {label_sample.distinct:,} "
                        "distinct values in the sample: a classifier makes each one a class")
    return Guess(chosen_id, ts, label_column, regime_column, numeric, categorical,
                 tuple(c.name for c in candidates), nan_missing, chosen_template,
                 tuple(reasons), tuple(warnings))


def _choose_label(sample: Sample, flag: str | None, id_column: str, ts: str
                  ) -> tuple[str, str]:
    if flag is not None:
        column, why = sample.column(flag, "--label"), "given with --label"
        if flag in (id_column, ts):
            raise UsageError(f"--label {shown_column(flag)} is the "
                             f"{'id' if flag == id_column else 'timestamp'} column")
    else:
        rest = [c for c in sample.columns if c.name not in (id_column, ts)]
        if not rest:
            raise UsageError(f"{sample.source}: no column left for a label")
        column, why = rest[-1], "the last column"
        if not column.values:
            why += "; no values in the sample: labels may come later with labels ingest"
    if column.values and not column.numeric:
        raise UsageError(
            f"{sample.source}: label {shown_column(column.name)} holds text "
            f"({column.first_text!r}): ingest and training take numeric labels only (for "
            "classification, class codes such as 0/1); encode it or choose another with --label")
    return column.name, why


def _choose_regime(sample: Sample, flag: str | None, taken: set[str],
                   candidates: list[ColumnSample]) -> tuple[str | None, str]:
    if flag is not None:
        column = sample.column(flag, "--regime")
        if flag in taken:
            raise UsageError(f"--regime {shown_column(flag)} is already the id, timestamp or "
                             "label column")
        if not column.names_ok:
            raise UsageError(f"{sample.source}: --regime {shown_column(flag)}: its values are "
                             "not plain names (1-64 letters, digits, '.', '_' or '-')")
        return flag, "given with --regime"
    if not candidates:
        return None, ""
    named = [c for c in candidates if regime_like(c.name)]
    chosen = named[0] if named else min(candidates, key=lambda c: c.distinct)
    names = "1 plain name" if chosen.distinct == 1 else f"{chosen.distinct} plain names"
    why = (f"text with {names} in the sample"
           + (", named like a regime" if named else ", the fewest names of the text columns"))
    others = [c.name for c in candidates if c.name != chosen.name]
    if others:
        why += f"; other candidates: {_names(others)}"
    return chosen.name, why
