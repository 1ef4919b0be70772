"""The retraining controller: train a challenger, score it and the champion on the same rows,
apply the promotion rule and the gates, and record the decision.

    outcome = retrain(params, paths, registry, trigger="manual")
    outcome = rollback(params, registry)

The champion is always re-scored on the evaluation window: its training-time metrics are never
part of the decision. Every model is registered by its sha256 with its card; promotion moves the
`champion` alias, whose history answers which model served when.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from driftgate.config import Params, Paths, Window
from driftgate.data.dataset import LABEL, TIME, feature_schema, features_frame, labels, load_dataset, select_window, training_rows
from driftgate.errors import ConfigError, DataError
from driftgate.gates import f1_gates
from driftgate.results import GateVerdicts, PromotionDecision
from driftgate.store.registry import ModelRegistry, sha256_bytes

Say = Callable[[str], None]


@dataclass(frozen=True)
class RetrainOutcome:
    decision: PromotionDecision
    decision_id: int
    champion: str  # sha256
    challenger: str  # sha256
    gates: GateVerdicts
    outcome: str  # promoted | rejected
    training_window: str = ""  # the challenger's
    champion_window: str | None = None  # as the champion's card says
    evaluation_window: str = ""


def _fit_to(dataset_path: str, params_file: str, out_file: str) -> None:
    """In a fresh interpreter: fit as `driftgate train` does and write ("ok", model bytes) or
    ("error", kind, where, problem, hint) to `out_file` (the parent raises it)."""
    import pickle

    from driftgate.errors import DriftgateError
    from driftgate.model import train

    params = pickle.loads(Path(params_file).read_bytes())
    try:
        dataset = load_dataset(dataset_path)
        fit_rows, _ = training_rows(dataset, params.windows.train, params.windows.holdout_fraction, "retraining.window")
        buffer = io.BytesIO()
        joblib.dump(train.fit(fit_rows, params, feature_schema(dataset, params.data)), buffer)
        answer = ("ok", buffer.getvalue())
    except DriftgateError as exc:
        answer = ("error", "config" if isinstance(exc, ConfigError) else "data", str(exc.where), exc.problem, exc.hint)
    Path(out_file).write_bytes(pickle.dumps(answer))


def fit_fresh(dataset_path: Path, params: Params) -> bytes:
    """The challenger fitted as the `train` stage fits it, in a fresh interpreter, so that its bytes
    (and sha256) are the ones `dvc repro` writes for the same params. In a process that has loaded
    another model, the same trees pickle differently (objects an unpickled model brought in are
    reused, and pickle's memo then writes a repeated string twice), which would give the registry's
    champion and the repository's model two hashes for one model."""
    import pickle
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="driftgate-fit-") as folder:
        params_file, out_file = Path(folder) / "params.pickle", Path(folder) / "answer.pickle"
        params_file.write_bytes(pickle.dumps(params))
        code = "import sys; from driftgate.retraining.controller import _fit_to; _fit_to(*sys.argv[1:])"
        done = subprocess.run([sys.executable, "-c", code, str(dataset_path), str(params_file), str(out_file)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out_file.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError("retraining: the challenger's fit", f"the training process ended with code {done.returncode} "
                            f"({last})", "run `driftgate train` with the same windows to see the error in full")
        answer = pickle.loads(out_file.read_bytes())
    if answer[0] == "ok":
        return answer[1]
    _, kind, where, problem, hint = answer
    raise (ConfigError if kind == "config" else DataError)(where, problem, hint)


def frame_sha256(frame: pd.DataFrame) -> str:
    """A content hash of a window's rows (values and order)."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def ensure_champion(registry: ModelRegistry, model_path: Path) -> str:
    """The current champion; with an empty registry, the served model becomes the first one."""
    current = registry.champion()
    if current:
        return current
    from driftgate.model import train

    _, card = train.load(model_path, Path(model_path).with_suffix(".json"))
    registry.register(card["model_sha256"], card, Path(model_path).read_bytes())
    registry.set_champion(card["model_sha256"], f"the served model ({model_path}) when the registry started")
    return card["model_sha256"]


def _windows(params: Params, champion_card: dict) -> tuple[Window, Window]:
    settings = params.retraining
    settings.require_windows()
    trained = champion_card.get("train_window")
    if trained:
        from driftgate.config import parse_window

        try:
            champion_window = parse_window(trained, "model card train_window")
        except ConfigError:
            champion_window = None
        if champion_window is not None and champion_window.overlaps(settings.evaluation):
            raise ConfigError("params.yaml: retraining.evaluation", f"{settings.evaluation.label} overlaps the champion's "
                              f"training window {trained}", "score both models on rows neither trained on")
    return settings.window, settings.evaluation


def retrain(params: Params, paths: Paths, registry: ModelRegistry, trigger: str = "manual", model_path: Path | None = None,
            say: Say | None = None) -> RetrainOutcome:
    """Train a challenger on retraining.window, score both models on retraining.evaluation, decide, record."""
    from driftgate.model import train
    from driftgate.retraining.rule import decide, f1_at

    say = say or (lambda _m: None)
    model_path = Path(model_path or paths.model)
    champion_sha = ensure_champion(registry, model_path)
    champion_card, champion_bytes = registry.model(champion_sha)
    window, evaluation = _windows(params, champion_card)
    dataset = load_dataset(paths.dataset)
    schema = feature_schema(dataset, params.data)
    fit_rows, holdout = training_rows(dataset, window, params.windows.holdout_fraction, "retraining.window")
    scored = select_window(dataset, evaluation, "retraining.evaluation")
    if scored[LABEL].isna().any() or not len(scored):
        raise DataError("retraining.evaluation", f"{evaluation.label} has no labelled rows to score the models on",
                        "choose a window whose labels are in")
    say(f"training the challenger on {len(fit_rows):,} {params.project.rows} ({window.label}, holdout {len(holdout):,})")
    challenger_params = params.model_copy(update={"windows": params.windows.model_copy(update={"train": window})})
    challenger_bytes = fit_fresh(paths.dataset, challenger_params)
    challenger_sha = sha256_bytes(challenger_bytes)
    pipeline = joblib.load(io.BytesIO(challenger_bytes))
    card = train.model_card(challenger_params, schema, fit_rows, train.data_hash(paths.dataset))
    card["model_sha256"] = challenger_sha
    registry.register(challenger_sha, card, challenger_bytes)

    say(f"scoring the champion {champion_sha[:12]} and the challenger {challenger_sha[:12]} on {len(scored):,} "
        f"{params.project.rows} of {evaluation.label}")
    champion = joblib.load(io.BytesIO(champion_bytes))
    y = labels(scored)
    champion_scores = champion.predict_proba(_as_features(scored, champion_card))[:, 1]
    challenger_scores = pipeline.predict_proba(features_frame(scored, schema))[:, 1]
    threshold = params.model.threshold
    count = params.retraining.replicas
    challenger_refits = _refits("challenger", fit_rows, challenger_params, schema, scored, y, threshold, count, say)
    champion_recipe = _champion_recipe(params, champion_card, dataset, say) if count else None
    champion_refits = (_refits("champion", champion_recipe[0], champion_recipe[1], champion_recipe[2], scored, y,
                               float(champion_card.get("threshold", threshold)), count, say) if champion_recipe else [])
    metrics = {"holdout": {"f1": f1_at(labels(holdout), pipeline.predict_proba(features_frame(holdout, schema))[:, 1], threshold)},
               "current": {"f1": f1_at(y, challenger_scores, threshold), "window": evaluation.label}}
    gates = GateVerdicts.of(f1_gates(metrics, params.gates, None, False))
    failed = "; ".join(f"{g.gate} {g.value:.3f} < {g.threshold:g}" if g.value is not None else g.gate for g in gates.failed)
    decision = decide(y, champion_scores, challenger_scores, float(champion_card.get("threshold", threshold)), threshold,
                      params.retraining, gates.passed, failed, *((champion_refits, challenger_refits) if count else ()))
    outcome = "promoted" if decision.promote else "rejected"
    row = {"trigger": trigger, "champion_sha256": champion_sha, "challenger_sha256": challenger_sha,
           "training_window": window.label, "evaluation_window": evaluation.label,
           "training_data_sha256": frame_sha256(fit_rows), "evaluation_data_sha256": frame_sha256(scored),
           "rows": decision.rows, "champion_f1": decision.champion_f1, "challenger_f1": decision.challenger_f1,
           "difference": decision.difference, "lower": decision.lower, "confidence": decision.confidence,
           "margin": decision.margin, "margin_kind": decision.margin_kind, "outcome": outcome, "reason": decision.reason,
           "details": {"gates": gates.to_json(), "fit_rows": len(fit_rows), "fit_time_range":
                       [str(fit_rows[TIME].min()), str(fit_rows[TIME].max())], "required": decision.required,
                       "champion_model_f1": decision.champion_model_f1, "challenger_model_f1": decision.challenger_model_f1,
                       "champion_refit_f1": [round(f, 6) for f in champion_refits],
                       "challenger_refit_f1": [round(f, 6) for f in challenger_refits],
                       "champion_sd": decision.champion_sd, "challenger_sd": decision.challenger_sd}}
    decision_id = registry.record_decision(row)
    if decision.promote:
        registry.set_champion(challenger_sha, f"promoted by decision {decision_id}: {decision.reason}")
    say(decision.reason)
    return RetrainOutcome(decision, decision_id, champion_sha, challenger_sha, gates, outcome, window.label,
                          champion_card.get("train_window"), evaluation.label)


def _refits(side: str, fit_rows: pd.DataFrame, params: Params, schema, scored: pd.DataFrame, y: np.ndarray,
            threshold: float, count: int, say: Say) -> list[float]:
    """One recipe's F1 on the evaluation rows when it is refitted `count` times, each time on a
    bootstrap resample (drawn with retraining.seed) of its training rows: what a retraining on
    freshly collected rows of the same process could have given."""
    from driftgate.model import train
    from driftgate.retraining.rule import f1_at

    if count < 2:
        return []
    say(f"refitting the {side}'s recipe {count} times on resampled {params.project.rows} ({len(fit_rows):,} each)")
    rng = np.random.default_rng(params.retraining.seed)
    features = features_frame(scored, schema)
    found = []
    for _ in range(count):
        picked = rng.integers(0, len(fit_rows), size=len(fit_rows))
        refit = train.fit(fit_rows.iloc[picked], params, schema)
        found.append(f1_at(y, refit.predict_proba(features)[:, 1], threshold))
    return found


def _champion_recipe(params: Params, card: dict, dataset: pd.DataFrame, say: Say):
    """(training rows, params, schema) the champion was fitted with, from its card; None (said)
    when the card or this dataset cannot give them: the rule then borrows the challenger's spread."""
    from driftgate.config import ModelConfig, parse_window
    from driftgate.data.dataset import FeatureSchema

    try:
        window = parse_window(card["train_window"], "the champion's card: train_window")
        model = ModelConfig.model_validate(card["params"])
        schema = FeatureSchema.from_dict(card["features"])
        rows, _ = training_rows(dataset, window, params.windows.holdout_fraction, "the champion's train_window")
    except (KeyError, TypeError, ValueError, DataError, ConfigError) as exc:
        say(f"the champion's recipe cannot be refitted ({exc}): its spread is taken to be the challenger's")
        return None
    if not len(rows) or rows[LABEL].nunique() < 2:
        say("the champion's training window has too few labelled rows here to refit: its spread is taken to be the challenger's")
        return None
    recipe = params.model_copy(update={"model": model, "windows": params.windows.model_copy(update={"train": window})})
    return rows, recipe, schema


def _as_features(frame: pd.DataFrame, card: dict) -> pd.DataFrame:
    """The champion's features as its card lists them, numbers as floats (what features_frame does)."""
    from driftgate.data.dataset import FeatureSchema

    return features_frame(frame, FeatureSchema.from_dict(card["features"]))


@dataclass(frozen=True)
class Rollback:
    restored: str
    replaced: str
    decision_id: int
    seconds: float


def rollback(registry: ModelRegistry, trigger: str = "manual") -> Rollback:
    """Make the previous champion serve again, and record it."""
    started = time.perf_counter()
    current, previous = registry.champion(), registry.previous_champion()
    if current is None or previous is None:
        raise DataError("model registry", "has no previous champion to roll back to" if current else "has no champion yet",
                        "`driftgate models` lists the history; a rollback needs at least one promotion")
    registry.model(previous)  # its hash is checked before it serves again
    reason = f"rolled back from {current[:12]} to the previous champion {previous[:12]}"
    decision_id = registry.record_decision({"trigger": trigger, "champion_sha256": current, "challenger_sha256": previous,
                                            "outcome": "rolled_back", "reason": reason})
    registry.set_champion(previous, f"rollback (decision {decision_id})")
    return Rollback(previous, current, decision_id, time.perf_counter() - started)


__all__ = ["RetrainOutcome", "Rollback", "ensure_champion", "frame_sha256", "retrain", "rollback"]
