"""Content-addressed blobs, safe weight loading, and code snapshots."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import host_environment, register_real_version, train_pipeline
from sklearn.tree import DecisionTreeRegressor

from mlops_tui.artifacts import blobs, weights
from mlops_tui.artifacts import code as code_snapshots
from mlops_tui.core.errors import ExitCode, IntegrityError
from mlops_tui.core.fingerprint import manifest_hash
from mlops_tui.services.registry import env_from_capture, load_estimator, show_version
from mlops_tui.services.workspace import default_config_text, init_workspace

X_CHECK = np.random.default_rng(99).normal(size=(5, 3))


def tree_model() -> DecisionTreeRegressor:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 3))
    return DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, x[:, 0])


# -- blobs --------------------------------------------------------------------------------


def test_put_bytes_layout_mode_and_idempotence(tmp_path):
    root = tmp_path / "artifacts"
    data = b"some weights"
    sha256, path = blobs.put_bytes(root, data, ".skops")
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert path == root / "sha256" / sha256[:2] / f"{sha256}.skops"
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    first = path.stat()

    again = blobs.put_bytes(root, data, ".skops")
    assert again == (sha256, path)
    # never rewritten (same inode, same bytes); only its mtime is refreshed, so leftover
    # clean-up sees a blob a registration is about to reference as fresh
    assert path.stat().st_ino == first.st_ino and path.read_bytes() == data
    assert path.stat().st_mtime_ns >= first.st_mtime_ns
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_put_file_checks_the_expected_hash(tmp_path):
    source = tmp_path / "model.skops"
    source.write_bytes(b"weights")
    with pytest.raises(IntegrityError, match="does not match the recorded"):
        blobs.put_file(tmp_path / "store", source, ".skops", expected_sha256="0" * 64)
    assert not (tmp_path / "store").exists()
    sha256, path = blobs.put_file(tmp_path / "store", source, ".skops",
                                  expected_sha256=hashlib.sha256(b"weights").hexdigest())
    assert path.read_bytes() == b"weights" and path.name == f"{sha256}.skops"


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "A" * 64, "a" * 63, "", "g" * 64])
def test_blob_path_refuses_malformed_hashes(tmp_path, bad):
    with pytest.raises(IntegrityError, match="malformed sha256"):
        blobs.blob_path(tmp_path, bad)


def test_resolve_inside_refuses_escapes(tmp_path):
    root = tmp_path / "ws"
    (root / "artifacts").mkdir(parents=True)
    (tmp_path / "outside.skops").write_bytes(b"x")
    (root / "artifacts" / "link").symlink_to(tmp_path / "outside.skops")
    assert blobs.resolve_inside(root, "artifacts/x.skops") == (root / "artifacts/x.skops")
    assert blobs.resolve_inside(root, "artifacts/../mlops.toml") == root / "mlops.toml"
    for escape in ("../outside.skops", "artifacts/../../outside.skops", "/etc/passwd",
                   str(tmp_path / "outside.skops"), "artifacts/link"):
        with pytest.raises(IntegrityError, match="escapes"):
            blobs.resolve_inside(root, escape)


# -- weights ------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    model = train_pipeline(seed=4)
    sha256, size, path = weights.save(tmp_path, model)
    assert path.suffix == ".skops" and size == path.stat().st_size
    loaded = weights.load(path, sha256)
    np.testing.assert_allclose(loaded.predict(X_CHECK), model.predict(X_CHECK))


def test_a_changed_byte_is_refused_by_hash(tmp_path):
    sha256, _, path = weights.save(tmp_path, train_pipeline(seed=4))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as raised:
        weights.load(path, sha256)
    assert raised.value.code is ExitCode.INTEGRITY
    assert "does not match the recorded" in raised.value.message
    assert "changed after it was registered" in raised.value.message


def test_the_hash_is_checked_before_anything_is_parsed(tmp_path):
    not_a_zip = tmp_path / "evil.skops"
    not_a_zip.write_bytes(b"this is not a zip archive at all")
    recorded = hashlib.sha256(b"the bytes that were registered").hexdigest()
    with pytest.raises(IntegrityError) as raised:
        weights.load(not_a_zip, recorded)
    assert "does not match the recorded" in raised.value.message
    # with its own hash the same file gets past the check and the parser rejects it instead:
    # so the refusal above came from the hash check, which ran first
    with pytest.raises(Exception) as parsed:
        weights.load(not_a_zip, hashlib.sha256(not_a_zip.read_bytes()).hexdigest())
    assert "does not match the recorded" not in str(parsed.value)

    # and in a fresh interpreter skops is never even imported on the refused path
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mlops_tui.artifacts import weights
        from mlops_tui.core.errors import IntegrityError
        try:
            weights.load(Path({str(not_a_zip)!r}), {recorded!r})
        except IntegrityError:
            print("refused", "skops" in sys.modules, "skops.io" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["refused", "False", "False"], done.stderr


def test_an_untrusted_type_is_refused_until_trusted(tmp_path):
    model = tree_model()
    sha256, _, path = weights.save(tmp_path, model)
    with pytest.raises(weights.UntrustedTypeError) as raised:
        weights.load(path, sha256)
    error = raised.value
    assert error.code is ExitCode.INTEGRITY and int(error.code) == 5
    assert error.kind == "untrusted-type"
    assert "sklearn.tree._tree.Tree" in error.message
    assert error.detail == {"types": ["sklearn.tree._tree.Tree"]}
    loaded = weights.load(path, sha256, extra_trusted=["sklearn.tree._tree.Tree"])
    np.testing.assert_allclose(loaded.predict(X_CHECK), model.predict(X_CHECK))


def test_trusted_types_come_from_the_workspace_config(tmp_path):
    plain = init_workspace(tmp_path / "plain")
    version = register_real_version(plain, estimator=tree_model())
    detail = show_version(plain, version.id)
    with pytest.raises(weights.UntrustedTypeError):
        load_estimator(plain, version, detail.env)

    text = default_config_text().replace(
        "trusted_types = []", 'trusted_types = ["sklearn.tree._tree.Tree"]')
    assert text != default_config_text()
    trusting = init_workspace(tmp_path / "trusting", config_text=text)
    version = register_real_version(trusting, estimator=tree_model())
    estimator = load_estimator(trusting, version, show_version(trusting, version.id).env)
    np.testing.assert_allclose(estimator.predict(X_CHECK), tree_model().predict(X_CHECK))


def test_a_scikit_learn_version_mismatch_is_refused_unless_allowed(tmp_path):
    sha256, _, path = weights.save(tmp_path, train_pipeline())
    with pytest.raises(IntegrityError) as raised:
        weights.load(path, sha256, recorded_sklearn="0.0.1")
    assert "trained with scikit-learn 0.0.1" in raised.value.message
    assert raised.value.detail["recorded"] == "0.0.1"
    assert weights.load(path, sha256, recorded_sklearn="0.0.1", allow_version_mismatch=True)
    import sklearn

    assert weights.load(path, sha256, recorded_sklearn=sklearn.__version__)


def test_load_estimator_uses_the_recorded_environment(tmp_path):
    host = host_environment()
    old = env_from_capture({"python_version": host.python_version,
                            "implementation": host.implementation, "platform": host.platform,
                            "packages": host.packages | {"scikit-learn": "0.0.1"}}, "host")
    ws = init_workspace(tmp_path / "ws")
    version = register_real_version(ws, environment=old)
    env = show_version(ws, version.id).env
    assert env is not None and env.packages["scikit-learn"] == "0.0.1"
    with pytest.raises(IntegrityError, match="scikit-learn 0.0.1"):
        load_estimator(ws, version, env)
    assert load_estimator(ws, version, env, allow_version_mismatch=True) is not None

    allowing = init_workspace(tmp_path / "allowing", config_text=default_config_text().replace(
        "allow_version_mismatch = false", "allow_version_mismatch = true"))
    version = register_real_version(allowing, environment=old)
    assert load_estimator(allowing, version, show_version(allowing, version.id).env)


@pytest.mark.parametrize("bad_path", ["../outside.skops", "mlops.toml"])
def test_load_estimator_refuses_paths_outside_artifacts(workspace, register, bad_path):
    version = register()
    (workspace.root.parent / "outside.skops").write_bytes(b"x")
    moved = dataclasses.replace(
        version, artifact=dataclasses.replace(version.artifact, path=bad_path))
    with pytest.raises(IntegrityError, match="escapes|outside artifacts"):
        load_estimator(workspace, moved, None)


# -- code snapshots -----------------------------------------------------------------------


def make_pipeline_dir(directory: Path) -> Path:
    (directory / "lib").mkdir(parents=True)
    (directory / "train.py").write_text("import lib.util\n")
    (directory / "requirements.txt").write_text("scikit-learn==1.5.2\n")
    (directory / "lib" / "util.py").write_text("VALUE = 1\n")
    (directory / "__pycache__").mkdir()
    (directory / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00")
    (directory / "lib" / "util.pyc").write_bytes(b"\x00")
    (directory / ".env").write_text("SECRET=1\n")
    (directory / ".ipynb_checkpoints").mkdir()
    (directory / ".ipynb_checkpoints" / "x.py").write_text("x\n")
    return directory


def test_snapshot_manifest_skips_caches_and_hidden_files(tmp_path):
    directory = make_pipeline_dir(tmp_path / "pipeline")
    code_root = tmp_path / "code"
    snap = code_snapshots.snapshot(code_root, directory)
    assert [f.path for f in snap.files] == ["lib/util.py", "requirements.txt", "train.py"]
    for entry in snap.files:
        data = (directory / entry.path).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size == len(data)
        assert blobs.blob_path(code_root, entry.sha256).read_bytes() == data
    assert snap.hash == manifest_hash((f.path, f.sha256) for f in snap.files)
    assert (snap.git_commit, snap.git_dirty) == (None, None)  # not in a git repository
    assert code_snapshots.verify_snapshot(code_root, snap) == []
    # the same files give the same snapshot; one changed byte gives another
    assert code_snapshots.snapshot(code_root, directory).hash == snap.hash
    (directory / "lib" / "util.py").write_text("VALUE = 2\n")
    assert code_snapshots.snapshot(code_root, directory).hash != snap.hash


def test_restore_round_trip(tmp_path):
    directory = make_pipeline_dir(tmp_path / "pipeline")
    snap = code_snapshots.snapshot(tmp_path / "code", directory)
    target = tmp_path / "restored"
    code_snapshots.restore(tmp_path / "code", snap, target)
    restored = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert restored == [f.path for f in snap.files]
    for entry in snap.files:
        assert (target / entry.path).read_bytes() == (directory / entry.path).read_bytes()


def test_verify_snapshot_detects_missing_and_changed_blobs(tmp_path):
    directory = make_pipeline_dir(tmp_path / "pipeline")
    code_root = tmp_path / "code"
    snap = code_snapshots.snapshot(code_root, directory)
    by_path = {f.path: f for f in snap.files}

    changed = blobs.blob_path(code_root, by_path["train.py"].sha256)
    changed.chmod(0o644)
    changed.write_text("import os; os.system('evil')\n")
    blobs.blob_path(code_root, by_path["lib/util.py"].sha256).unlink()
    problems = code_snapshots.verify_snapshot(code_root, snap)
    assert len(problems) == 2
    assert any("lib/util.py is missing" in p for p in problems)
    assert any("train.py" in p and "does not match the recorded" in p for p in problems)
    assert all(p.startswith(f"code snapshot {snap.hash[:12]}") for p in problems)
    with pytest.raises(IntegrityError):
        code_snapshots.restore(code_root, snap, tmp_path / "restored")

    forged = dataclasses.replace(snap, hash="f" * 64)
    assert any("manifest does not match its hash" in p
               for p in code_snapshots.verify_snapshot(code_root, forged))


def test_git_commit_and_dirty_flag_are_recorded(tmp_path):
    repo = tmp_path / "repo"
    directory = make_pipeline_dir(repo / "pipeline")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
             *args], capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "pipeline")
    head = git("rev-parse", "HEAD")
    clean = code_snapshots.snapshot(tmp_path / "code", directory)
    assert (clean.git_commit, clean.git_dirty) == (head, False)

    (directory / "train.py").write_text("import lib.util  # edited\n")
    dirty = code_snapshots.snapshot(tmp_path / "code", directory)
    assert (dirty.git_commit, dirty.git_dirty) == (head, True)

    (directory / "train.py").write_text("import lib.util\n")
    (repo / "README").write_text("outside the pipeline dir\n")  # not the pipeline's change
    assert code_snapshots.snapshot(tmp_path / "code", directory).git_dirty is False
