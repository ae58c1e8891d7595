"""Calibration maths: fit the cost model's parameters to measured per-layer cycles.

Given per-block facts the cost model is linear in a parameter vector theta
(:func:`tinymeter.sim.costmodel.layer_features`), so every emulated layer is one row
``x`` with ``x @ theta`` = estimated cycles, and calibration is linear least squares
against the measured cycles.  Choices, and why:

* rows are weighted by 1 / measured cycles: the error that matters is relative, and a
  100-cycle layer should not be ignored next to a million-cycle one;
* unknowns are ratios to the prior (TRM) values, regularized toward 1 with a small
  ridge: classes the data never exercises (no divides, no FPU) keep their datasheet
  value instead of drifting, and near-collinear directions (branch instructions vs
  the taken-branch term, which always co-occur in NN layers) are split like the prior
  splits them;
* NN layers alone leave most parameters collinear, so the calibration microbenchmarks
  (:mod:`tinymeter.apps.microbench`, ``role="microbench"`` samples) are fitted together
  with the models; they are never held out, and leave-one-out scores models only;
* non-negativity (Lawson-Hanson NNLS on the augmented system): a negative cycle cost is
  never physical, and clamping after the fact would bias the others;
* each parameter's identifiability is the diagonal of the resolution matrix
  ``(A'A + L)^-1 A'A``: 1 = set by the data, 0 = set by the prior; reports show it;
* the parameters are grouped into mechanisms (core timings, load pipelining, dual
  issue, LDM/STM per register, address / narrow-load / FPU-result dependency stalls,
  branch refill, instruction-fetch and data-memory stalls,
  per-mnemonic overrides) and each mechanism's movement from the datasheet -- the
  change of the cycles it contributes to the NN models, as a share of their measured
  cycles, with its standard error from the fit's covariance -- is ranked, so one run on
  a board says which mechanism the datasheet model got wrong (:func:`mechanism_shifts`).

Errors are reported before (prior) and after the fit, in-sample and with
leave-one-model-out cross-validation.  Power is fitted as ``E = P * t`` over the
models with energy measurements.  No I/O except :func:`save_calibration`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tinymeter.core.errors import ConfigError
from tinymeter.sim.costmodel import (
    CostParameters,
    feature_names,
    parameter_vector,
    parameters_from_vector,
)
from tinymeter.sim.energy import ENERGY_PARAMETERS, EnergyParameters

log = logging.getLogger(__name__)

#: Splits of physical parameters no per-layer cycle measurement can make, because the
#: cost model's features only ever see their sum.  Since the native hook counts branch
#: outcomes and simulates stalls per mechanism, every parameter has its own column:
#: nothing is inseparable by construction any more (identifiability still depends on
#: the data, see :meth:`Fit.identified`).
NOT_SEPARABLE: dict[str, str] = {}

DEFAULT_REGULARIZATION = 1e-8
#: A parameter counts as identified when its relative standard error is below this:
#: two standard errors inside the +-2% a calibration is meant to reach.
IDENTIFIED_STDERR = 0.01
#: ... and its resolution at least this (below, the prior biases it: collinear directions).
MIN_RESOLUTION = 0.98
#: Relative noise floor of a per-layer measurement (DWT read overhead, jitter).
NOISE_FLOOR = 1e-4


@dataclass(frozen=True)
class ModelSample:
    """One model's layers on one board: emulated features and measured cycles."""

    model: str
    ops: tuple[str, ...]
    features: np.ndarray        # [layers, parameters]
    measured: np.ndarray        # [layers] median cycles
    energy_uj: float | None = None  # per inference
    latency_s: float | None = None
    #: ``"model"`` (an NN model: held out in turn by leave-one-out) or ``"microbench"``
    #: (calibration loops: always trained on, since they alone separate the parameters).
    role: str = "model"
    #: Per layer: energy features (``sim.energy.energy_features``: measured time, emulated
    #: flash reads and SRAM accesses) and the energy the power trace measured (uJ).
    energy_features: np.ndarray | None = None
    layer_energy_uj: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.role not in ("model", "microbench"):
            raise ConfigError(f"calibration sample {self.model}: unknown role {self.role!r}")

    @property
    def has_layer_energy(self) -> bool:
        return (self.energy_features is not None and self.layer_energy_uj is not None
                and len(self.layer_energy_uj) == len(self.energy_features) > 0)


@dataclass(frozen=True)
class ErrorStats:
    """Relative errors of a prediction (fractions, not percent)."""

    layer_mape: float        # mean |est - meas| / meas over layers
    layer_max: float
    model_mape: float        # mean over models of |sum est - sum meas| / sum meas
    model_max: float
    per_model: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Fit:
    """A fitted parameter vector and how well the data determined each entry."""

    theta: np.ndarray
    params: CostParameters
    names: tuple[str, ...]
    resolution: np.ndarray  # per parameter, 0..1
    #: Relative standard error of each parameter (noise propagated through the fit).
    stderr: np.ndarray
    #: Relative residual noise of the weighted fit (per layer).
    sigma: float
    #: Per parameter: some calibration layer executes its feature at all.
    exercised: np.ndarray | None = None
    #: Covariance of theta (cycles^2; noise propagated through the fit), for the
    #: uncertainty of combinations such as a mechanism's movement.
    covariance: np.ndarray | None = None

    def identified(self, max_stderr: float = IDENTIFIED_STDERR) -> dict[str, bool]:
        """Parameters the data pin down (the rest stay near the prior)."""
        return {n: bool(e <= max_stderr and r >= MIN_RESOLUTION)
                for n, e, r in zip(self.names, self.stderr.tolist(), self.resolution.tolist())}

    def unidentified(self, absent: Mapping[str, str] | None = None) -> dict[str, str]:
        """Why each parameter the data do not pin down is not: never executed (with the
        architectural reason from *absent* when the core lacks the instructions),
        collinear with other features (the prior splits them), or too noisy."""
        out: dict[str, str] = {}
        absent = absent or {}
        exercised = (self.exercised if self.exercised is not None
                     else np.ones(len(self.names), dtype=bool))
        for i, (name, ok) in enumerate(self.identified().items()):
            if ok:
                continue
            if not exercised[i]:
                out[name] = ("not executed: " + absent[name] if name in absent else
                             "not executed by any calibration layer (kept at the datasheet value)")
            elif self.resolution[i] < MIN_RESOLUTION:
                out[name] = (f"collinear with other features (resolution {self.resolution[i]:.2f}): "
                             "the datasheet prior splits the combination")
            else:
                out[name] = f"uncertain (relative standard error {100 * self.stderr[i]:.2f}%)"
        return out


@dataclass(frozen=True)
class CalibrationResult:
    """Everything `tinymeter calibrate` reports and saves."""

    prior: CostParameters
    fit: Fit
    before: ErrorStats
    after: ErrorStats
    loo_before: ErrorStats
    loo_after: ErrorStats
    active_mw: float | None
    models: tuple[str, ...]
    #: Parameter -> why the data do not identify it (see :meth:`Fit.unidentified`).
    unidentified: dict[str, str] = field(default_factory=dict)
    #: Mechanisms ranked by how far the fit moved them from the datasheet
    #: (:func:`mechanism_shifts`).
    mechanisms: tuple[MechanismShift, ...] = ()
    #: Signed mean over the NN models of (measured - datasheet estimate) / measured: the
    #: gap the mechanisms' movements explain (their sum; the rest stays as residual).
    datasheet_gap: float = 0.0
    #: The energy-by-activity fit over the layers with measured energy (None without).
    energy: EnergyFit | None = None

    def summary(self) -> dict[str, object]:
        return {
            "mechanisms": [m.to_dict() for m in self.mechanisms],
            "datasheet_gap": self.datasheet_gap,
            "energy": self.energy.to_dict() if self.energy is not None else None,
            "models": list(self.models),
            "unidentified": dict(self.unidentified),
            "not_separable": dict(NOT_SEPARABLE),
            "error_before": self.before.to_dict(), "error_after": self.after.to_dict(),
            "loo_error_before": self.loo_before.to_dict(), "loo_error_after": self.loo_after.to_dict(),
            "parameters": {n: {"prior": float(p), "fitted": float(f), "resolution": float(r),
                               "stderr": float(e), "identified": ident}
                           for n, p, f, r, e, ident in zip(
                               self.fit.names, parameter_vector(self.prior), self.fit.theta,
                               self.fit.resolution, self.fit.stderr,
                               self.fit.identified().values())},
            "residual_sigma": self.fit.sigma,
            "active_mw": self.active_mw,
        }


@dataclass(frozen=True)
class EnergyFit:
    """Energy-by-activity parameters fitted to per-layer measured energies, with the
    errors of the prior (board file) and of the fit on the same layers."""

    prior: EnergyParameters
    params: EnergyParameters
    before: ErrorStats
    after: ErrorStats
    #: Per parameter: some layer has its feature (time, flash reads, SRAM accesses).
    exercised: dict[str, bool] = field(default_factory=dict)
    #: Per parameter: relative standard error (residual noise through the fit); large
    #: when the layers' traffic is collinear with their time (flash and SRAM accesses in
    #: the same proportion everywhere), which the microbenchmarks' load loops break.
    stderr: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"prior": self.prior.to_dict(), "fitted": self.params.to_dict(),
                "error_before": self.before.to_dict(), "error_after": self.after.to_dict(),
                "exercised": dict(self.exercised), "stderr": dict(self.stderr)}


#: Scale of an access energy whose prior is 0 (the constant-power model): unknowns are
#: ratios to a scale, so the ridge and NNLS see numbers of order 1.
_ENERGY_SCALE_NJ = 1.0


def _layer_energy(sample: ModelSample) -> tuple[np.ndarray, np.ndarray]:
    """(energy features, measured uJ) per layer of a sample with ``has_layer_energy``."""
    if sample.energy_features is None or sample.layer_energy_uj is None:
        raise ConfigError(f"calibration sample {sample.model}: no per-layer energies")
    return sample.energy_features, sample.layer_energy_uj


def fit_energy(samples: Sequence[ModelSample], prior: EnergyParameters, *,
               regularization: float = DEFAULT_REGULARIZATION) -> EnergyFit | None:
    """Non-negative least squares of ``E = core_mw * t + flash_read_nj * flash_reads +
    sram_access_nj * sram_accesses`` over every layer with a measured energy, rows
    weighted by 1 / measured energy (relative error, as the cycle fit), a small ridge
    toward the prior keeping a parameter no layer exercises at its prior.  None when
    no sample has per-layer energies."""
    used = [s for s in samples if s.has_layer_energy]
    if not used:
        return None
    x = np.vstack([_layer_energy(s)[0] for s in used])
    y = np.concatenate([_layer_energy(s)[1] for s in used]).astype(np.float64)
    keep = y > 0
    if not keep.any():
        raise ConfigError("energy calibration: every measured layer energy is 0")
    x, y = x[keep], y[keep]
    theta0 = prior.vector()
    scale = np.where(theta0 > 0, theta0, _ENERGY_SCALE_NJ)
    a = (x / y[:, None]) * scale[None, :]
    lam = math.sqrt(regularization)
    a_aug = np.vstack([a, lam * np.eye(len(theta0))])
    b_aug = np.concatenate([np.ones(len(y)), lam * theta0 / scale])
    r = nnls(a_aug, b_aug)
    theta = r * scale
    params = EnergyParameters.from_vector(theta)
    dof = max(len(y) - len(theta0), 1)
    sigma = max(float(np.linalg.norm(a @ r - 1.0)) / math.sqrt(dof), NOISE_FLOOR)
    cov = sigma ** 2 * np.linalg.pinv(a.T @ a + regularization * np.eye(len(theta0)))
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None)) / np.where(r > 1e-12, r, 1.0)

    def predict(t: np.ndarray) -> dict[str, np.ndarray]:
        return {s.model: _layer_energy(s)[0] @ t for s in used}

    measured = [replace(s, measured=np.asarray(s.layer_energy_uj, dtype=np.float64))
                for s in used]
    return EnergyFit(prior, params, errors(measured, predict(theta0)),
                     errors(measured, predict(theta)),
                     dict(zip(ENERGY_PARAMETERS, (np.abs(x).sum(axis=0) > 0).tolist())),
                     dict(zip(ENERGY_PARAMETERS, (float(v) for v in stderr))))


#: The cost model's mechanisms and the parameters (feature names, ``*`` = prefix) each
#: owns, in the order reports list them before ranking.
MECHANISMS: tuple[tuple[str, str], ...] = (
    ("core timings", "cpi.*"),
    ("load pipelining", "load.pipelined"),
    ("dual issue", "alu.dual"),
    ("LDM/STM per register", "per_register"),
    ("address dependency", "dep.address"),
    ("narrow load use", "dep.narrow_load"),
    ("FPU result dependency", "dep.fp_result"),
    ("branch prediction", "branch.mispredict"),
    ("branch refill", "branch.taken"),
    ("instruction fetch stall", "stall.ifetch"),
    ("data memory stall", "stall.data"),
    ("unaligned access", "unaligned"),
    ("per-mnemonic overrides", "mnemonic.*"),
)
#: A mechanism's movement counts as determined when its standard error (fraction of the
#: models' cycles) is below this ...
MOVEMENT_STDERR = 0.005


def mechanism_of(name: str) -> str:
    """The mechanism (:data:`MECHANISMS`) parameter *name* belongs to."""
    for mechanism, pattern in MECHANISMS:
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return mechanism
    raise ConfigError(f"calibration: parameter {name!r} belongs to no mechanism")


@dataclass(frozen=True)
class MechanismShift:
    """How far the fit moved one mechanism from its datasheet prior, on the NN models.

    ``moved`` is the change of the cycles the mechanism contributes (fitted minus
    datasheet), as a fraction of each model's measured cycles, averaged over models
    (signed: + = the silicon spends more there than the datasheet says); ``ratio`` the
    mechanism's fitted cycles over its datasheet cycles; ``stderr`` the standard error of
    ``moved`` propagated from the fit's covariance (collinearity with other mechanisms
    and noise both raise it); ``resolution`` the cycle-weighted mean resolution of its
    parameters (1 = set by the data, 0 = left at the prior).
    """

    mechanism: str
    parameters: tuple[str, ...]
    share: float                  # datasheet cycles of the mechanism / measured cycles
    moved: float
    stderr: float
    ratio: float | None
    largest: str                  # the parameter of the mechanism that moved most
    largest_ratio: float | None   # its fitted / datasheet value
    resolution: float
    #: Whether any NN model executes the mechanism at all (else it cannot move).
    exercised: bool = True

    @property
    def determined(self) -> bool:
        """The data pin the movement down: exercised, small standard error, mostly set by
        the data rather than the prior."""
        return self.exercised and self.stderr <= MOVEMENT_STDERR and self.resolution >= 0.5

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "parameters": list(self.parameters),
                "determined": self.determined}


def _model_weights(samples: Sequence[ModelSample]) -> np.ndarray:
    """Per parameter: mean over the NN models (all samples if there are none) of the
    feature sums over the model's layers, each divided by the model's measured cycles."""
    scored = [s for s in samples if s.role == "model"] or list(samples)
    return np.mean([s.features.sum(axis=0) / s.measured.sum() for s in scored], axis=0)


def mechanism_shifts(samples: Sequence[ModelSample], fit: Fit,
                     prior: CostParameters) -> tuple[MechanismShift, ...]:
    """Every mechanism's movement from the datasheet, ranked by ``|moved|`` (largest first):
    what one calibration run says about where the datasheet model was off."""
    weights = _model_weights(samples)
    theta0 = parameter_vector(prior)
    names = fit.names
    cov = fit.covariance if fit.covariance is not None else np.zeros((len(names), len(names)))
    out = []
    for mechanism, _pattern in MECHANISMS:
        idx = [i for i, n in enumerate(names) if mechanism_of(n) == mechanism]
        if not idx:
            continue
        g = np.zeros(len(names))
        g[idx] = weights[idx]
        before, after = float(g @ theta0), float(g @ fit.theta)
        contrib = np.abs(weights[idx] * fit.theta[idx])
        resolution = (float(contrib @ fit.resolution[idx] / contrib.sum()) if contrib.sum() > 0
                      else float(np.min(fit.resolution[idx])))
        ratios = {names[i]: (fit.theta[i] / theta0[i] if theta0[i] > 0 else None) for i in idx}
        # the parameter that moved the most cycles; among unexercised ones, the largest ratio
        largest = names[max(idx, key=lambda i: (abs(weights[i] * (fit.theta[i] - theta0[i])),
                                                abs(math.log(ratios[names[i]] or 1.0))))]
        out.append(MechanismShift(
            mechanism=mechanism, parameters=tuple(names[i] for i in idx), share=before,
            moved=after - before, stderr=float(math.sqrt(max(float(g @ cov @ g), 0.0))),
            ratio=after / before if before > 0 else None, largest=largest,
            largest_ratio=ratios.get(largest), resolution=resolution,
            exercised=bool(np.any(weights[idx] != 0))))
    return tuple(sorted(out, key=lambda m: -abs(m.moved)))


def datasheet_gap(samples: Sequence[ModelSample], prior: CostParameters) -> float:
    """Signed mean over the NN models (all samples if none) of how far the datasheet
    estimate falls short of the measurement, as a fraction of the measurement."""
    scored = [s for s in samples if s.role == "model"] or list(samples)
    theta0 = parameter_vector(prior)
    return float(np.mean([1.0 - (s.features @ theta0).sum() / s.measured.sum() for s in scored]))


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """Non-negative least squares, ``min ||a x - b|| s.t. x >= 0`` (scipy's Lawson-Hanson
    implementation: maintained, tested, faster than a hand-written loop)."""
    from scipy.optimize import nnls as scipy_nnls

    try:
        x, _residual = scipy_nnls(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                  maxiter=max_iter)
    except RuntimeError as exc:  # iteration limit: an ill-posed fit, not a crash
        raise ConfigError(f"calibration fit did not converge: {exc}") from None
    return np.asarray(x)


def _stack(samples: Sequence[ModelSample]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not samples:
        raise ConfigError("calibration needs at least one measured model")
    x = np.vstack([s.features for s in samples])
    y = np.concatenate([s.measured for s in samples]).astype(np.float64)
    owner = [s.model for s in samples for _ in range(len(s.measured))]
    if np.any(y <= 0):
        raise ConfigError("calibration: measured cycles must be positive (DWT not running?)")
    return x, y, owner


def fit_parameters(samples: Sequence[ModelSample], prior: CostParameters, *,
                   regularization: float = DEFAULT_REGULARIZATION,
                   nonnegative: bool = True) -> Fit:
    """Weighted, prior-regularized (non-negative) least squares over every layer."""
    if not (math.isfinite(regularization) and regularization >= 0):
        raise ConfigError(f"regularization must be a finite number >= 0, got {regularization!r}")
    x, y, _ = _stack(samples)
    names = feature_names(prior)
    if x.shape[1] != len(names):
        raise ConfigError(f"feature matrix has {x.shape[1]} columns, the prior {len(names)}")
    theta0 = parameter_vector(prior)
    scale = np.where(np.abs(theta0) > 1e-9, np.abs(theta0), 1.0)
    a = (x / y[:, None]) * scale[None, :]  # unknowns: r = theta / scale, rows relative
    b = np.ones(len(y))
    r0 = theta0 / scale
    lam = math.sqrt(regularization)
    a_aug = np.vstack([a, lam * np.eye(len(names))])
    b_aug = np.concatenate([b, lam * r0])
    r = nnls(a_aug, b_aug) if nonnegative else np.linalg.lstsq(a_aug, b_aug, rcond=None)[0]
    theta = r * scale
    ata = a.T @ a
    inv = np.linalg.pinv(ata + regularization * np.eye(len(names)))
    resolution = np.clip(np.diag(inv @ ata), 0.0, 1.0)
    dof = max(len(y) - float(resolution.sum()), 1.0)
    sigma = max(float(np.linalg.norm(a @ r - b)) / math.sqrt(dof), NOISE_FLOOR)
    cov = sigma ** 2 * inv @ ata @ inv
    # relative to the larger of prior and fit (r is in units of the prior; a zero prior
    # counts as one cycle): a parameter fitted near zero is judged by its absolute error
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None)) / np.maximum(r, 1.0)
    exercised = np.abs(x).sum(axis=0) > 0
    return Fit(theta, parameters_from_vector(theta, prior), names, resolution, stderr, sigma,
               exercised, cov * np.outer(scale, scale))


def errors(samples: Sequence[ModelSample], predict: dict[str, np.ndarray]) -> ErrorStats:
    """Relative errors of per-layer predictions ``predict[model]`` against measurements."""
    layer_errs: list[float] = []
    per_model: dict[str, float] = {}
    for s in samples:
        est = predict[s.model]
        layer_errs.extend((np.abs(est - s.measured) / s.measured).tolist())
        per_model[s.model] = float(abs(est.sum() - s.measured.sum()) / s.measured.sum())
    model_errs = list(per_model.values())
    return ErrorStats(layer_mape=float(np.mean(layer_errs)), layer_max=float(np.max(layer_errs)),
                      model_mape=float(np.mean(model_errs)), model_max=float(np.max(model_errs)),
                      per_model=per_model)


def predictions(samples: Sequence[ModelSample], theta: np.ndarray) -> dict[str, np.ndarray]:
    return {s.model: s.features @ theta for s in samples}


def leave_one_out(samples: Sequence[ModelSample], prior: CostParameters,
                  **fit_kw: float) -> tuple[ErrorStats, ErrorStats]:
    """Errors on each NN model predicted by the prior and by a fit *without* that model.

    Microbenchmark samples are never held out (nor scored): they are the calibration
    procedure itself, and the question leave-one-out answers is how well an unseen
    *model* is predicted.
    """
    if len({s.model for s in samples}) != len(samples):
        raise ConfigError("calibration samples must have distinct model names")
    theta0 = parameter_vector(prior)
    scored = [s for s in samples if s.role == "model"]
    if not scored:
        raise ConfigError("leave-one-out needs at least one NN model sample")
    held: dict[str, np.ndarray] = {}
    for s in scored:
        rest = [t for t in samples if t is not s]
        theta = fit_parameters(rest, prior, **fit_kw).theta if rest else theta0  # type: ignore[arg-type]
        held[s.model] = s.features @ theta
    return errors(scored, predictions(scored, theta0)), errors(scored, held)


def fit_power(samples: Sequence[ModelSample]) -> float | None:
    """Active power (mW) from energy = power * latency over the models that have both."""
    pairs = [(s.energy_uj, s.latency_s) for s in samples
             if s.energy_uj is not None and s.latency_s is not None and s.latency_s > 0]
    if not pairs:
        return None
    e = np.array([p[0] for p in pairs]) * 1e-6
    t = np.array([p[1] for p in pairs])
    return float((e @ t) / (t @ t) * 1e3)


def calibrate(samples: Sequence[ModelSample], prior: CostParameters, *,
              regularization: float = DEFAULT_REGULARIZATION,
              absent: Mapping[str, str] | None = None,
              energy_prior: EnergyParameters | None = None) -> CalibrationResult:
    """Fit on all samples (models and microbenchmarks); report errors before/after,
    in-sample and leave-one-model-out, and why any parameter stays unidentified
    (*absent*: parameters whose instructions the core lacks, with the reason).  With
    *energy_prior*, the energy-by-activity parameters are fitted too (:func:`fit_energy`)."""
    fit = fit_parameters(samples, prior, regularization=regularization)
    theta0 = parameter_vector(prior)
    before = errors(samples, predictions(samples, theta0))
    after = errors(samples, predictions(samples, fit.theta))
    n_models = sum(s.role == "model" for s in samples)
    if n_models > 1 or (n_models == 1 and len(samples) > 1):
        loo_before, loo_after = leave_one_out(samples, prior, regularization=regularization)
    else:
        loo_before, loo_after = before, after
    log.info("calibration: layer error %.2f%% -> %.2f%%, leave-one-out model error %.2f%% -> %.2f%%",
             100 * before.layer_mape, 100 * after.layer_mape, 100 * loo_before.model_mape,
             100 * loo_after.model_mape)
    return CalibrationResult(prior, fit, before, after, loo_before, loo_after, fit_power(samples),
                             tuple(s.model for s in samples), fit.unidentified(absent),
                             mechanisms=mechanism_shifts(samples, fit, prior),
                             datasheet_gap=datasheet_gap(samples, prior),
                             energy=fit_energy(samples, energy_prior) if energy_prior else None)


def calibration_json(result: CalibrationResult, board: str) -> dict[str, object]:
    """The calibration file's content: what ``sim.costmodel.load_calibration`` reads,
    plus a ``fit`` section for humans (the loader ignores it)."""
    p = result.fit.params
    out: dict[str, object] = {
        "cpi": p.cpi, "per_register": p.per_register, "branch_refill": p.branch_refill,
        "pipelined_load": p.pipelined_load, "dual_issue_alu": p.dual_issue_alu,
        "ifetch_weight": p.ifetch_weight, "data_weight": p.data_weight,
        "agu_stall": p.agu_stall, "narrow_load_use": p.narrow_load_use,
        "fp_result_stall": p.fp_result_stall, "branch_mispredict": p.branch_mispredict,
        "mnemonic_cycles": p.mnemonic_cycles,
    }
    if result.active_mw is not None:
        out["active_mw"] = result.active_mw
    if result.energy is not None:
        out["energy"] = result.energy.params.to_dict()
    out["fit"] = {"board": board, **result.summary()}
    return out


def save_calibration(result: CalibrationResult, path: Path, board: str) -> Path:
    """Write the calibration file (atomically); a read-only location is a clear error."""
    path = Path(path)
    text = json.dumps(calibration_json(result, board), indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write calibration file {path}: {exc.strerror or exc}; "
                          "choose another location with --out") from None
    return path
