"""Default training pipeline for the car-model paint line: predict paint adhesion (MPa).

Entry points, called by the host or inside a retrain container:

- ``train(frame, params) -> estimator`` fits and returns a scikit-learn ``Pipeline``;
- ``predict(estimator, frame) -> numpy.ndarray`` scores a frame with it.

The estimator is imputation + scaling for numeric columns and one-hot encoding for categorical
columns, then pairwise polynomial features and ridge regression. Adhesion depends on the
process through linear, interaction and curvature terms, which a degree-2 ridge captures;
every fitted type is a plain scikit-learn/numpy object, so skops persists it and the artifact
stays small. This module imports only numpy, pandas and scikit-learn: containers that run it
do not have the host tool installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

#: Hyperparameter defaults; params.toml next to this file documents and may override them.
DEFAULTS: dict[str, Any] = {
    "degree": 2,
    "interaction_only": False,
    "alpha": 1.0,
    "numeric_impute_strategy": "median",
}
REQUIRED = ("features_numeric", "features_categorical", "label")


def _settings(params: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `params`; fails clearly when a required key is missing."""
    missing = [key for key in REQUIRED if key not in params]
    if missing:
        raise KeyError(f"params lack required keys: {', '.join(missing)}")
    settings = {**DEFAULTS, **params}
    settings["features_numeric"] = list(settings["features_numeric"])
    settings["features_categorical"] = list(settings["features_categorical"])
    if not settings["features_numeric"] and not settings["features_categorical"]:
        raise ValueError("params name no feature columns")
    return settings


def build(params: dict[str, Any]) -> Pipeline:
    """The unfitted estimator described by `params` (see DEFAULTS for hyperparameters)."""
    settings = _settings(params)
    transformers = []
    if settings["features_numeric"]:
        numeric = Pipeline(
            [
                ("impute", SimpleImputer(strategy=settings["numeric_impute_strategy"])),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("numeric", numeric, settings["features_numeric"]))
    if settings["features_categorical"]:
        categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", categorical, settings["features_categorical"]))
    return Pipeline(
        [
            ("prepare", ColumnTransformer(transformers, remainder="drop")),
            (
                "expand",
                PolynomialFeatures(
                    degree=int(settings["degree"]),
                    interaction_only=bool(settings["interaction_only"]),
                    include_bias=False,
                ),
            ),
            ("model", Ridge(alpha=float(settings["alpha"]))),
        ]
    )


def _features(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The named feature columns of `frame`, or a clear error naming the absent ones."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise KeyError(f"frame lacks feature columns: {', '.join(absent)}")
    return frame[columns]


def train(frame: pd.DataFrame, params: dict[str, Any]) -> Pipeline:
    """Fit the pipeline on the labelled rows of `frame` and return it.

    `frame` holds the feature columns and the label (other columns are ignored). `params` must
    give `features_numeric` (list), `features_categorical` (list) and `label` (str); the other
    keys are hyperparameters overriding DEFAULTS. Rows without a label are skipped.
    """
    settings = _settings(params)
    label = str(settings["label"])
    if label not in frame.columns:
        raise KeyError(f"frame lacks label column {label!r}")
    labelled = frame[frame[label].notna()]
    if len(labelled) < 2:
        raise ValueError(f"need at least 2 labelled rows to train, got {len(labelled)}")
    columns = settings["features_numeric"] + settings["features_categorical"]
    estimator = build(settings)
    estimator.fit(_features(labelled, columns), labelled[label].to_numpy(dtype=np.float64))
    return estimator


def predict(estimator: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Predictions for every row of `frame`, using the columns the estimator was fitted on."""
    columns = [str(c) for c in estimator.feature_names_in_]
    return np.asarray(estimator.predict(_features(frame, columns)), dtype=np.float64)
