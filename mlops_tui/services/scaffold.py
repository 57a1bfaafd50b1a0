"""`mlops-tui init`: a workspace with a pipeline, and a [data] section guessed from a file.

Everything is checked and guessed before anything is written; the files init writes are
the default mlops.toml (with the guessed [data] keys filled in) and pipeline/ (train.py and
params.toml of a template, requirements.txt pinned to this host).
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlops_tui.core.config import RANGES, parse_config
from mlops_tui.core.errors import ConflictError, UsageError
from mlops_tui.core.scaffold import SAMPLE_ROWS, TEMPLATES, Guess, guess_contract
from mlops_tui.services.workspace import (
    CONFIG_NAME,
    FOLDERS,
    STORE_NAME,
    Workspace,
    default_config_text,
    init_workspace,
    load_config,
    resolve_root,
)

# what the templates and the harness import; pinned to the versions installed here
PIPELINE_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "pyarrow")
PIPELINE_DIR = "pipeline"
TEMPLATE_FILES = ("train.py", "params.toml")
METRIC = {"regression": "r2", "classification": "accuracy"}
# what init itself leaves in a workspace (the store's lock file and write-ahead log too)
INIT_ENTRIES = {CONFIG_NAME, STORE_NAME, STORE_NAME + ".wal", "store.lock", PIPELINE_DIR,
                *FOLDERS}


@dataclass(frozen=True)
class Scaffolded:
    workspace: Workspace
    template: str
    guess: Guess | None
    replaced: bool  # an empty workspace's mlops.toml and pipeline/ were written again
    files: tuple[str, ...]


def requirements_text() -> str:
    pins = []
    for name in PIPELINE_PACKAGES:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise UsageError(f"{name} is not installed on this host: init pins the "
                             "pipeline's requirements to the host's versions") from None
    return ("# The pipeline's dependencies, pinned by mlops-tui init to this host's versions.\n"
            + "\n".join(pins) + "\n")


def pipeline_files(template: str) -> dict[str, str]:
    folder = resources.files("mlops_tui").joinpath("templates", template)
    files = {name: folder.joinpath(name).read_text(encoding="utf-8") for name in TEMPLATE_FILES}
    files["requirements.txt"] = requirements_text()
    return files


def _string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's (non-ASCII kept as it is)."""
    return json.dumps(value, ensure_ascii=False)


def _toml_list(names: tuple[str, ...], key: str) -> str:
    if len(names) <= 3:
        return f"{key} = [{', '.join(_string(n) for n in names)}]"
    return f"{key} = [\n" + "".join(f"    {_string(n)},\n" for n in names) + "]"


def data_section(guess: Guess, source: str) -> list[str]:
    """The [data] keys init guessed, as mlops.toml lines (TOML strings are JSON strings)."""
    lines = [f"# Guessed by mlops-tui init from the first {SAMPLE_ROWS:,} rows of {json.dumps(source)}.",  # a name may hold a newline
             f"id_column = {_string(guess.id_column)}",
             f"timestamp_column = {_string(guess.timestamp_column)}",
             f"label_column = {_string(guess.label_column)}"]
    if guess.regime_column:
        lines.append(f"regime_column = {_string(guess.regime_column)}")
    else:
        lines.append("# regime_column = \"...\"         # retrain needs one: no column "
                     "looked like a regime")
    if guess.regime_candidates:
        lines.append("# regime candidates (text with few plain names): "
                     + ", ".join(_string(n) for n in guess.regime_candidates))
    lines += [_toml_list(guess.numeric, "numeric"), _toml_list(guess.categorical, "categorical")]
    if guess.nan_missing:
        lines.append('nan_policy = "missing"             # NaN/inf seen in the sample')
    return lines


def config_text(template: str, guess: Guess | None, source: str = "") -> str:
    """The default mlops.toml with the template's metric and the guessed [data] keys."""
    lines = default_config_text().splitlines()
    out, section, pending = [], "", guess is not None
    guessed = {"id_column", "timestamp_column", "label_column", "regime_column", "numeric",
               "categorical"} | ({"nan_policy"} if guess and guess.nan_missing else set())
    for line in lines:
        if line.startswith("["):
            section = line.strip()
            out.append(line)
            continue
        key = line.lstrip("# ").split(" ", 1)[0]
        if section == "[data]" and guess is not None:
            if pending and not line.startswith("#"):  # after the section's own comment
                out += data_section(guess, source)
                pending = False
            if key in guessed:
                continue
        if section == "[pipeline]" and key == "metric":
            comment = line[line.index("#"):] if "#" in line else ""
            line = f"metric = {_string(METRIC[template])}".ljust(33) + comment
        out.append(line)
    return "\n".join(out) + "\n"


def _store_in_use(root: Path) -> str:
    """What the store of an existing workspace holds ('' when nothing)."""
    from mlops_tui.store import labels as label_sql
    from mlops_tui.store import observations as observation_sql
    from mlops_tui.store import registry as registry_sql

    workspace = Workspace(root=root, config=load_config(root / CONFIG_NAME))
    with workspace.store.read() as tx:
        held = {"batches": len(observation_sql.batch_paths(tx)),
                "label files": len(label_sql.label_paths(tx))}
        counts = registry_sql.counts(tx)
    held |= {"versions": counts["model_versions"], "jobs": counts["jobs"],
             "regimes": counts["regimes"], "audit entries": counts["audit"]}
    return ", ".join(f"{n} {what}" for what, n in held.items() if n)


def _check_target(root: Path, config: str, files: dict[str, str]) -> bool:
    """True when `root` is an empty workspace init may write again, False when it is new or
    an empty directory. Anything else is refused before anything is written."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise ConflictError(f"{root} is not a directory")
    entries = sorted(p.name for p in root.iterdir())
    if not entries:
        return False
    strange = [e for e in entries if e not in INIT_ENTRIES]
    if strange:
        shown = ", ".join(strange[:3]) + (f" and {len(strange) - 3} more" if len(strange) > 3
                                          else "")
        what = "a workspace and " if CONFIG_NAME in entries else ""
        raise ConflictError(f"{root} is not empty (it holds {what}{shown}): init writes "
                            "into a new or empty directory, or an empty workspace")
    for folder in FOLDERS:
        path = root / folder
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConflictError(f"{root} already holds a workspace ({folder}/ is not empty)")
    # what a plain init (either template) writes, and what this init writes
    allowed: dict[str, set[str]] = {CONFIG_NAME: {config}}
    for name, content in files.items():
        allowed[f"{PIPELINE_DIR}/{name}"] = {content}
    for kind in TEMPLATES:
        allowed[CONFIG_NAME].add(config_text(kind, None))
        for name, content in pipeline_files(kind).items():
            allowed[f"{PIPELINE_DIR}/{name}"].add(content)
    pipeline = root / PIPELINE_DIR
    if pipeline.exists():
        extra = [p.name for p in pipeline.iterdir()
                 if f"{PIPELINE_DIR}/{p.name}" not in allowed or p.is_dir()]
        if extra:
            raise ConflictError(f"{root} already holds a workspace ({PIPELINE_DIR}/{extra[0]} "
                                "was not written by init)")
    for name, texts in allowed.items():
        path = root / name
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") not in texts:
            raise ConflictError(f"{root} already holds a workspace ({name} was changed "
                                "since init; move it away to start again)")
    if (root / STORE_NAME).exists() and (root / CONFIG_NAME).exists():
        used = _store_in_use(root)
        if used:
            raise ConflictError(f"{root} already holds a workspace ({used})")
    return True


def scaffold(directory: str | Path | None, *, template: str | None = None,
             csv: Path | None = None, id_column: str | None = None,
             timestamp: str | None = None, label: str | None = None,
             regime: str | None = None) -> Scaffolded:
    """Create (or complete an empty) workspace with pipeline/ and, from `csv`, a [data]."""
    if csv is None and any(f is not None for f in (id_column, timestamp, label, regime)):
        raise UsageError("--id, --timestamp, --label and --regime need --from-csv")
    if template is not None and template not in TEMPLATES:
        raise UsageError(f"--template {template[:30]!r}: use regression or classification")
    guess = None
    if csv is not None:
        guess = guess_from_file(Path(csv), id_column=id_column, timestamp=timestamp,
                                label=label, regime=regime, template=template)
        template = guess.template
    template = template or "regression"
    root = resolve_root(directory)
    text = config_text(template, guess, Path(csv).name if csv else "")
    try:  # never write a file the workspace cannot read
        parse_config(tomllib.loads(text), source=str(root / CONFIG_NAME))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{csv}: its column names do not make a valid mlops.toml "
                         f"({error})") from None
    files = pipeline_files(template)
    replaced = _check_target(root, text, files)
    if replaced and not (root / STORE_NAME).exists():
        (root / CONFIG_NAME).unlink(missing_ok=True)  # a half-made workspace: make it again
        replaced = False
    if replaced:
        workspace = Workspace(root=root, config=parse_config(tomllib.loads(text)),
                              command="mlops-tui init")
        (root / CONFIG_NAME).write_text(text, encoding="utf-8")
    else:
        workspace = init_workspace(root, config_text=text)
    pipeline = root / PIPELINE_DIR
    pipeline.mkdir(exist_ok=True)
    for name, content in files.items():
        (pipeline / name).write_text(content, encoding="utf-8")
    written = (CONFIG_NAME, *(f"{PIPELINE_DIR}/{n}" for n in files))
    return Scaffolded(workspace, template, guess, replaced, written)


def guess_from_file(source: Path, **flags) -> Guess:
    from mlops_tui.services.ingest import _check_path
    from mlops_tui.store.sniff import sample_file

    # only the head is read: no size limit here ([data] max_file_mb applies to ingest)
    _check_path(source, int(RANGES[("data", "max_file_mb")].high or 0))
    _refuse_duplicate_header(source)
    return guess_contract(sample_file(source, SAMPLE_ROWS), **flags)


def _refuse_duplicate_header(source: Path) -> None:
    """DuckDB renames repeated header names; ingest refuses them, so init does too."""
    import csv

    if source.suffix.lower() not in (".csv", ".tsv", ".txt"):
        return
    try:
        with open(source, encoding="utf-8-sig", newline="") as handle:
            delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
            header = next(csv.reader(handle, delimiter=delimiter), [])
    except (UnicodeDecodeError, csv.Error):
        return  # the reader's own error names the line
    repeated = sorted({n for n in header if header.count(n) > 1})
    if repeated:
        raise UsageError(f"{source}: line 1: duplicate column names in the header: "
                         f"{', '.join(repeated)}")


def summary(done: Scaffolded) -> tuple[list[str], dict]:
    """(lines for a person, extra keys of the JSON document) saying what init guessed."""
    lines: list[str] = []
    document: dict = {"template": done.template, "files": list(done.files)}
    guess = done.guess
    if guess is not None:
        lines += [f"guessed {reason}" for reason in guess.reasons]
        lines += [f"warning: {warning}" for warning in guess.warnings]
        document["guessed"] = {
            "id_column": guess.id_column, "timestamp_column": guess.timestamp_column,
            "label_column": guess.label_column, "regime_column": guess.regime_column,
            "numeric": list(guess.numeric), "categorical": list(guess.categorical),
            "regime_candidates": list(guess.regime_candidates),
            "nan_policy": "missing" if guess.nan_missing else "reject",
            "reasons": list(guess.reasons), "warnings": list(guess.warnings)}
    lines.append(f"wrote {', '.join(done.files)} (the template: {done.template})")
    if guess is None:
        lines.append(f"next: declare your columns in {CONFIG_NAME} [data], or run init here again "
                     "with --from-csv FILE (this workspace is still empty)")
    elif guess.regime_column:
        lines.append("next: mlops-tui ingest FILE, then mlops-tui retrain --regime NAME --wait "
                     f"(regimes: the values of {guess.regime_column})")
    else:
        lines.append(f"next: mlops-tui ingest FILE; retrain needs [data] regime_column set in "
                     f"{CONFIG_NAME} first")
    return lines, document
