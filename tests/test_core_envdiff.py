"""Environment diff and verdicts (docs/operator-guide.md §5), and the fingerprints they rest on."""

from __future__ import annotations

import pytest

from mlops_tui.core.envdiff import Verdict, classify_change, diff_environments
from mlops_tui.core.fingerprint import (
    environment_hash,
    manifest_hash,
    normalize_package_name,
    pipeline_fingerprint,
)
from mlops_tui.core.models import EnvSnapshot

BASE_PACKAGES = {"scikit-learn": "1.5.2", "numpy": "2.1.0", "requests": "2.31.0",
                 "rich": "13.7.1"}
NEEDED = ("scikit-learn", "numpy", "skops")


def env(python: str = "3.11.7", implementation: str = "CPython", platform: str = "linux-x86_64",
        packages: dict[str, str] | None = None) -> EnvSnapshot:
    packages = dict(BASE_PACKAGES if packages is None else packages)
    return EnvSnapshot(
        hash=environment_hash(python, implementation, platform, packages),
        python_version=python, implementation=implementation, platform=platform,
        packages=packages,
    )


def with_package(name: str, version: str | None) -> EnvSnapshot:
    packages = dict(BASE_PACKAGES)
    if version is None:
        packages.pop(name, None)
    else:
        packages[name] = version
    return env(packages=packages)


# -- classify_change ----------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("1.2.3", "2.0.0", "major-up"),
    ("2.0.0", "1.9.9", "major-down"),
    ("1.2.3", "1.3.0", "minor-up"),
    ("1.10.0", "1.9.0", "minor-down"),  # numeric, not string, order
    ("1.2.3", "1.2.4", "patch-up"),
    ("1.2.10", "1.2.9", "patch-down"),
    ("1.2", "1.3", "minor-up"),
    ("v1.0.0", "v1.0.1", "patch-up"),
    (None, "1.0.0", "added"),
    ("1.0.0", None, "removed"),
    ("1.0.0", "1.0.0", "same"),
    (None, None, "same"),
    ("unknown", "1.0.0", "other"),
    ("1.0.0", "git+https://example.invalid/x", "other"),
])
def test_classify_change_kinds(old, new, kind):
    assert classify_change(old, new) == kind


@pytest.mark.parametrize(("old", "new", "kind"), [
    # only a pre-release, post-release, dev or local tag differs: a patch-level change whose
    # direction follows PEP 440 order, not string order
    ("1.2.3rc1", "1.2.3", "patch-up"),
    ("1.2.3", "1.2.3rc1", "patch-down"),
    ("1.2.3a1", "1.2.3b1", "patch-up"),
    ("1.2.3rc9", "1.2.3rc10", "patch-up"),
    ("1.2.3.dev0", "1.2.3", "patch-up"),
    ("1.2.3.dev0", "1.2.3a1", "patch-up"),
    ("1.2.3", "1.2.3.post1", "patch-up"),
    ("1.2.3.post2", "1.2.3.post1", "patch-down"),
    ("1.2.3rc1.dev0", "1.2.3rc1", "patch-up"),
    ("1.2.3", "1.2.3+cpu", "patch-up"),
    ("1.2.3+cpu", "1.2.3", "patch-down"),
    ("2.3.0rc1", "2.4.0", "minor-up"),  # the release decides when it differs
])
def test_classify_change_tags(old, new, kind):
    assert classify_change(old, new) == kind


# -- verdicts: every rule (docs/operator-guide.md §5) ---------------------------------------------------


@pytest.mark.parametrize(("left", "right", "verdict"), [
    ("3.11.7", "3.11.9", Verdict.COMPATIBLE),  # patch
    ("3.11.9", "3.11.7", Verdict.COMPATIBLE),
    ("3.11.7", "3.12.1", Verdict.RISKY),  # minor
    ("3.12.1", "3.11.7", Verdict.RISKY),
    ("3.11.7", "4.0.0", Verdict.INCOMPATIBLE),  # major
    ("2.7.18", "3.11.7", Verdict.INCOMPATIBLE),
])
def test_python_version_verdicts(left, right, verdict):
    result = diff_environments(env(python=left), env(python=right), NEEDED)
    assert result.python is not None
    assert result.python.verdict is verdict
    assert result.verdict is verdict
    assert result.changes == ()


def test_python_implementation_change_is_incompatible():
    result = diff_environments(env(implementation="CPython"), env(implementation="PyPy"))
    assert result.python is not None and result.python.kind == "implementation"
    assert result.verdict is Verdict.INCOMPATIBLE
    assert "implementation" in result.reasons[0]


def test_identical_environments_are_compatible():
    result = diff_environments(env(), env(), NEEDED)
    assert result.verdict is Verdict.COMPATIBLE
    assert result.python is None and result.changes == ()
    assert result.identical == len(BASE_PACKAGES)
    assert result.reasons == []


@pytest.mark.parametrize(("new_version", "verdict"), [
    ("1.5.3", Verdict.RISKY),  # patch up
    ("1.5.1", Verdict.RISKY),  # patch down
    ("1.5.2.post1", Verdict.RISKY),  # tag only: patch level
    ("1.6.0", Verdict.INCOMPATIBLE),  # minor up
    ("1.4.0", Verdict.INCOMPATIBLE),  # minor down
    ("2.0.0", Verdict.INCOMPATIBLE),  # major up
    ("0.24.2", Verdict.INCOMPATIBLE),  # major down
    (None, Verdict.INCOMPATIBLE),  # removed
])
def test_needed_package_verdicts(new_version, verdict):
    result = diff_environments(env(), with_package("scikit-learn", new_version), NEEDED)
    (change,) = result.changes
    assert change.name == "scikit-learn" and change.needed
    assert change.verdict is verdict
    assert result.verdict is verdict
    assert "needs it" in change.reason


def test_needed_package_added_is_compatible():
    # skops is needed by the model but missing on the left: appearing on the right is fine
    result = diff_environments(env(), with_package("skops", "0.10.0"), NEEDED)
    (change,) = result.changes
    assert (change.name, change.kind, change.needed) == ("skops", "added", True)
    assert change.verdict is Verdict.COMPATIBLE
    assert result.verdict is Verdict.COMPATIBLE


@pytest.mark.parametrize(("new_version", "kind", "verdict"), [
    ("3.0.0", "major-up", Verdict.RISKY),
    ("1.0.0", "major-down", Verdict.RISKY),
    ("2.32.0", "minor-up", Verdict.COMPATIBLE),
    ("2.30.0", "minor-down", Verdict.COMPATIBLE),
    ("2.31.1", "patch-up", Verdict.COMPATIBLE),
    ("2.31.0rc1", "patch-down", Verdict.COMPATIBLE),
    (None, "removed", Verdict.COMPATIBLE),
])
def test_other_package_verdicts(new_version, kind, verdict):
    result = diff_environments(env(), with_package("requests", new_version), NEEDED)
    (change,) = result.changes
    assert (change.name, change.kind, change.needed) == ("requests", kind, False)
    assert change.verdict is verdict
    assert result.verdict is verdict


def test_other_package_added_is_compatible():
    result = diff_environments(env(), with_package("pandas", "2.2.0"), NEEDED)
    (change,) = result.changes
    assert (change.kind, change.verdict, change.label) == ("added", Verdict.COMPATIBLE, "added")


def test_overall_verdict_is_the_worst_and_reasons_name_it():
    right = env(python="3.11.9", packages=BASE_PACKAGES | {
        "rich": "14.0.0",  # other major: risky
        "numpy": "2.2.0",  # needed minor: incompatible
        "requests": "2.31.1",  # other patch: compatible
    })
    result = diff_environments(env(), right, NEEDED)
    verdicts = {c.name: c.verdict for c in result.all_changes}
    assert verdicts == {"python": Verdict.COMPATIBLE, "rich": Verdict.RISKY,
                        "numpy": Verdict.INCOMPATIBLE, "requests": Verdict.COMPATIBLE}
    assert result.verdict is Verdict.INCOMPATIBLE
    assert result.reasons == ["numpy 2.1.0 -> 2.2.0 (minor up) (the model's artifact needs it)"]
    without_numpy = diff_environments(env(), env(packages=right.packages | {"numpy": "2.1.0"}),
                                      NEEDED)
    assert without_numpy.verdict is Verdict.RISKY


def test_change_labels():
    result = diff_environments(env(), env(packages=BASE_PACKAGES | {
        "numpy": "2.0.0", "rich": "13.8.0", "requests": "3.0.0"}), NEEDED)
    labels = {c.name: c.label for c in result.changes}
    assert labels == {"numpy": "breaking", "rich": "upgraded", "requests": "upgraded"}
    down = diff_environments(env(), env(packages=BASE_PACKAGES | {"rich": "13.6.0"}))
    assert down.changes[0].label == "downgraded"


def test_package_names_are_normalised():
    assert normalize_package_name("Scikit_Learn") == "scikit-learn"
    assert normalize_package_name("zope.interface") == "zope-interface"
    assert normalize_package_name("A__b--C..d") == "a-b-c-d"
    left = env(packages={"Scikit_Learn": "1.5.2", "NumPy": "2.1.0"})
    right = env(packages={"scikit-learn": "1.5.2", "numpy": "2.1.0"})
    same = diff_environments(left, right, ("SCIKIT.learn",))
    assert same.changes == () and same.identical == 2
    changed = diff_environments(left, env(packages={"scikit-learn": "1.6.0", "numpy": "2.1.0"}),
                                ("scikit_learn",))
    (change,) = changed.changes
    assert change.name == "scikit-learn" and change.needed
    assert changed.verdict is Verdict.INCOMPATIBLE


def test_requirements_comparison_ignores_packages_absent_from_the_file():
    requirements = EnvSnapshot(hash="r", python_version="", implementation="", platform="",
                               packages={"scikit-learn": "1.5.2", "requests": "2.31.0"})
    partial = diff_environments(env(), requirements, NEEDED, compare_missing=False)
    assert partial.changes == ()
    assert partial.python is None  # a requirements file names no Python
    assert partial.verdict is Verdict.COMPATIBLE
    assert partial.identical == 2
    # the same comparison as a full environment: numpy and rich would be "removed"
    full = diff_environments(env(), requirements, NEEDED, compare_missing=True)
    assert {c.name: c.kind for c in full.changes} == {"numpy": "removed", "rich": "removed"}
    assert full.verdict is Verdict.INCOMPATIBLE
    # a pin the file does give is still judged
    pinned = EnvSnapshot(hash="r2", python_version="", implementation="", platform="",
                         packages={"scikit-learn": "1.6.0"})
    assert diff_environments(env(), pinned, NEEDED, compare_missing=False).verdict is (
        Verdict.INCOMPATIBLE)


# -- fingerprints ------------------------------------------------------------------------


def test_environment_hash_ignores_package_order_and_spelling():
    packages = {"numpy": "2.1.0", "scikit-learn": "1.5.2", "rich": "13.7.1"}
    reordered = dict(reversed(list(packages.items())))
    respelled = {"NumPy": "2.1.0", "Scikit_Learn": "1.5.2", "Rich": "13.7.1"}
    reference = environment_hash("3.11.7", "CPython", "linux-x86_64", packages)
    assert environment_hash("3.11.7", "CPython", "linux-x86_64", reordered) == reference
    assert environment_hash("3.11.7", "CPython", "linux-x86_64", respelled) == reference
    assert len(reference) == 64 and int(reference, 16) >= 0


@pytest.mark.parametrize("field", ["python", "implementation", "platform", "version", "added",
                                   "removed"])
def test_environment_hash_changes_with_every_field(field):
    args = {"python_version": "3.11.7", "implementation": "CPython",
            "platform": "linux-x86_64", "packages": {"numpy": "2.1.0", "rich": "13.7.1"}}
    reference = environment_hash(**args)
    changed = {**args, "packages": dict(args["packages"])}
    if field == "python":
        changed["python_version"] = "3.11.8"
    elif field == "implementation":
        changed["implementation"] = "PyPy"
    elif field == "platform":
        changed["platform"] = "linux-aarch64"
    elif field == "version":
        changed["packages"]["numpy"] = "2.1.1"
    elif field == "added":
        changed["packages"]["pandas"] = "2.2.0"
    else:
        del changed["packages"]["rich"]
    assert environment_hash(**changed) != reference


def test_manifest_hash_is_order_independent_and_content_sensitive():
    files = [("train.py", "a" * 64), ("requirements.txt", "b" * 64), ("lib/util.py", "c" * 64)]
    reference = manifest_hash(files)
    assert manifest_hash(reversed(files)) == reference
    assert manifest_hash(iter(sorted(files))) == reference
    assert manifest_hash([("train.py", "d" * 64)] + files[1:]) != reference  # content
    assert manifest_hash([("train2.py", "a" * 64)] + files[1:]) != reference  # path
    assert manifest_hash(files[:2]) != reference  # a file less
    assert manifest_hash([]) != reference


def test_pipeline_fingerprint_changes_with_each_input():
    reference = pipeline_fingerprint("code", "lock", "3.11.7", "sha256:img")
    assert pipeline_fingerprint("code", "lock", "3.11.7", "sha256:img") == reference
    for changed in (("code2", "lock", "3.11.7", "sha256:img"),
                    ("code", "lock2", "3.11.7", "sha256:img"),
                    ("code", "lock", "3.12.0", "sha256:img"),
                    ("code", "lock", "3.11.7", None)):
        assert pipeline_fingerprint(*changed) != reference
