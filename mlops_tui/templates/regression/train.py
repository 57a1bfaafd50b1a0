"""Training pipeline written by `mlops-tui init`: ridge regression on the [data] features.

The contract (configuration reference, [pipeline]): the training harness imports this
file and calls

- ``train(frame, params) -> estimator``: fit on a pandas frame of the training snapshot;
  ``params`` is params.toml next to this file plus ``features_numeric``,
  ``features_categorical`` and ``label`` from mlops.toml [data];
- ``estimator.predict(frame[features])`` on the holdout and when serving, so the returned
  object must do all of its preparation itself (a scikit-learn ``Pipeline``).

The weights are saved with skops: keep to scikit-learn and numpy types (anything else must be
added to [artifacts] trusted_types). Edit freely; every retrain snapshots this folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Defaults of the hyperparameters; params.toml overrides them.
DEFAULTS: dict[str, Any] = {"alpha": 1.0, "numeric_impute_strategy": "median"}


def build(params: dict[str, Any]) -> Pipeline:
    """The unfitted estimator: impute and scale numbers, one-hot encode text, then ridge."""
    settings = {**DEFAULTS, **params}
    transformers = []
    if settings["features_numeric"]:
        numeric = Pipeline([
            ("impute", SimpleImputer(strategy=settings["numeric_impute_strategy"])),
            ("scale", StandardScaler()),
        ])
        transformers.append(("numeric", numeric, list(settings["features_numeric"])))
    if settings["features_categorical"]:
        # a missing category is a category of its own; unseen ones encode as all zeros
        encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", encode, list(settings["features_categorical"])))
    return Pipeline([
        ("prepare", ColumnTransformer(transformers, remainder="drop")),
        ("model", Ridge(alpha=float(settings["alpha"]))),
    ])


def train(frame: pd.DataFrame, params: dict[str, Any]) -> Pipeline:
    """Fit on the rows of `frame` that have a label (the export keeps only those)."""
    label = str(params["label"])
    labelled = frame[frame[label].notna()]
    if len(labelled) < 2:
        raise ValueError(f"need at least 2 labelled rows to train, got {len(labelled)}")
    features = list(params["features_numeric"]) + list(params["features_categorical"])
    estimator = build(params)
    estimator.fit(labelled[features], labelled[label].to_numpy(dtype=np.float64))
    return estimator
