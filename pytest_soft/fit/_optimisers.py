"""The optimisers: small adapters from a problem to scipy (least squares, L-BFGS-B) or to a
first-order loop (Adam, SGD, with or without minibatches). Each returns a typed stop.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import NegativeScore
from ._model import LSQ_TOL_FLOOR, Progress
from ._problem import Problem, weighted_loss
from ._stops import TIME_BUDGET, Stop, StopKind, StopRun

NON_FINITE = Stop(StopKind.NON_FINITE, "stopped: the loss or its gradient became non-finite")

#: A start is left (see Run.leave_above) once this many iterations in a row each lowered its
#: loss by less than SETTLING times the loss, while it lay more than SETTLING times the lowest
#: loss already found above that.
SETTLING = 1e-3
SETTLING_ITERATIONS = 2
LEFT = Stop(StopKind.LEFT, "left early: its loss was settling above a loss already found")

# -- the optimisers ---------------------------------------------------------------------------


class Run:
    """Bookkeeping shared by all optimisers: best point seen, budgets, progress."""

    def __init__(
        self,
        problem: Problem,
        *,
        start: int,
        starts: int,
        max_iter: int,
        deadline: float,
        t0: float,
        progress: Callable[[Progress], None] | None,
    ):
        self.problem = problem
        self.start = start
        self.starts = starts
        self.max_iter = max_iter
        self.deadline = deadline
        self.t0 = t0
        self.progress = progress
        self.best_x: np.ndarray | None = None
        self.best_loss = math.inf
        self.iterations = 0
        self.history: list[float] = []
        self.nonfinite = 0
        #: Leave the run (StopKind.LEFT) once its loss settles above this: the loss at its
        #: valley floor will be about where it is, and a lower one is already known. None:
        #: never; -inf: whenever the loss settles (the first start, polished later if best).
        self.leave_above: float | None = None
        self._settling = 0
        self._last_loss = math.inf

    def seen(self, x: np.ndarray, loss: float) -> None:
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss = loss
            self.best_x = np.array(x, dtype=float)
        if time.monotonic() > self.deadline:
            raise StopRun(TIME_BUDGET)

    def iteration(self, loss: float, grad_norm: float) -> None:
        self.iterations += 1
        self.history.append(loss)
        if self.progress is not None:
            self.progress(
                Progress(
                    start=self.start,
                    starts=self.starts,
                    iteration=self.iterations,
                    loss=loss,
                    best_loss=self.best_loss,
                    grad_norm=grad_norm,
                    seconds=time.monotonic() - self.t0,
                )
            )
        if self.iterations >= self.max_iter:
            raise StopRun(Stop(StopKind.ITERATION_LIMIT, f"iteration limit ({self.max_iter})"))
        if self.leave_above is not None and math.isfinite(loss):
            # Above by more than it still drops per iteration: a start within that of the
            # lowest loss may be in the same valley, and is let finish (reaching the best).
            bound = self.leave_above
            above = bound == -math.inf or loss - bound > SETTLING * abs(bound)
            settling = above and self._last_loss - loss <= SETTLING * abs(loss)
            self._settling = self._settling + 1 if settling else 0
            self._last_loss = loss
            if self._settling >= SETTLING_ITERATIONS:
                raise StopRun(LEFT)
        if time.monotonic() > self.deadline:
            raise StopRun(TIME_BUDGET)


def loss_and_grad(problem: Problem, x: np.ndarray) -> tuple[float, np.ndarray, list]:
    # One reverse pass per term, summed: measured faster than one trace of the whole suite
    # (autograd's backward pass over one large graph costs more than many small ones).
    values, grads = problem.gradients(x)
    loss = weighted_loss(problem.weights, values)
    grad = np.zeros(problem.size)
    for w, g in zip(problem.weights, grads):
        grad += w * g
    return loss, grad, values


def residuals(problem: Problem, values: list[np.ndarray]) -> np.ndarray:
    """The least-squares residuals sqrt(w s), case by case."""
    parts = [np.sqrt(np.maximum(w * v, 0.0)) for w, v in zip(problem.weights, values)]
    return np.concatenate(parts) if parts else np.zeros(0)


def check_non_negative(problem: Problem, values: list[np.ndarray]) -> None:
    for term, v in zip(problem.terms, values):
        if np.any(v < 0):
            raise NegativeScore(
                f"soft test {term.name} scored {float(np.min(v))!r}, below 0: the least-squares "
                "method needs scores that are 0 or more (a loss). Use --fit-method lbfgs, or "
                "return a non-negative score."
            )


def residual_jacobian(
    problem: Problem, values: list[np.ndarray], jacs: list[np.ndarray]
) -> np.ndarray:
    """The Jacobian of the residuals sqrt(w s) from the scores' Jacobians."""
    rows = []
    for w, v, j in zip(problem.weights, values, jacs):
        r = np.sqrt(np.maximum(w * v, 0.0))
        # d sqrt(w s) = w ds / (2 sqrt(w s)); where a score is exactly 0 the square root
        # has no derivative, and the score's own gradient is 0 there too: the row is 0.
        scale = np.divide(w, 2.0 * r, out=np.zeros_like(r), where=r > 0)
        rows.append(j * scale[:, None])
    return np.concatenate(rows) if rows else np.zeros((0, problem.size))


def run_lsq(run: Run, x0: np.ndarray, tol: float, live: np.ndarray | None = None) -> Stop:
    from scipy.optimize import least_squares

    problem = run.problem
    # scipy's trust-region step stalls on a Jacobian column that is exactly 0: parameters no
    # score depends on (``live`` False, which the fit warns about) stay where they start.
    if live is None or not live.any():
        live = np.ones(problem.size, dtype=bool)

    def full(z: np.ndarray) -> np.ndarray:
        x = np.array(x0, dtype=float)
        x[live] = z
        return x

    def fun(z: np.ndarray) -> np.ndarray:
        x = full(z)
        values = problem.scores(x)
        check_non_negative(problem, values)
        r = residuals(problem, values)
        loss = float(np.dot(r, r))
        run.seen(x, loss)
        if not np.all(np.isfinite(r)):
            run.nonfinite += 1
            # A huge (finite) residual makes the solver step back from here.
            return np.full_like(r, 1e150)
        return r

    last_J: list[np.ndarray] = []

    def jac(z: np.ndarray) -> np.ndarray:
        values, jacs = problem.jacobians(full(z))
        J = residual_jacobian(problem, values, jacs)
        if not np.all(np.isfinite(J)):
            J = np.nan_to_num(J, nan=0.0, posinf=0.0, neginf=0.0)
        # A score f(x)**2 that a step has made exactly 0 (a linear f, say) would get a row of
        # 0s, and the next step, blind to it, would undo it. Its row from the last Jacobian is
        # +-f's gradient there, and the Gauss-Newton model does not depend on a row's sign:
        # keep that row. (Without, Powell's singular function took 5.4x scipy's evaluations;
        # benchmarks/problem_set.py.)
        r = residuals(problem, values)
        if last_J:
            zero = r == 0
            J[zero] = last_J[0][zero]
        last_J[:] = [J]
        run.iteration(float(np.dot(r, r)), float(np.linalg.norm(2.0 * J.T @ r)))
        return J[:, live]

    # least_squares requires a strictly feasible start only for trf's interior steps; it
    # nudges points on a bound itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = least_squares(
            fun,
            x0[live],
            jac=jac,
            bounds=(problem.lower[live], problem.upper[live]),
            method="trf",
            # --fit-tol bounds the relative step. The loss-change test (relative to the loss,
            # which stays large on noisy data) and the gradient test (absolute, so loose when
            # the loss is tiny) would stop sooner: with both at 1e-12, NIST ENSO ends with 5
            # correct digits and Lanczos3 with 6.4. Near a minimum the loss changes as the
            # square of the step, so they get tol squared, but not below LSQ_TOL_FLOOR.
            ftol=max(tol * tol, LSQ_TOL_FLOOR),
            xtol=tol,
            gtol=max(tol * tol, LSQ_TOL_FLOOR),
            # Unit scaling, scipy's own default for trf: scaling by the Jacobian's column norms
            # took 15x scipy's evaluations on Brown-Dennis (MGH 16), and where it saved some
            # (Meyer, Biggs EXP6) unit scaling stays within scipy's count
            # (benchmarks/lsq_defaults.py).
            x_scale=1.0,
            max_nfev=max(run.max_iter * 10, 100),
        )
    converged = {
        1: "converged: gradient below --fit-tol",
        2: "converged: loss changed by less than --fit-tol",
        3: "converged: step below --fit-tol",
        4: "converged: loss change and step below --fit-tol",
    }
    if result.status in converged:
        return Stop(StopKind.CONVERGED, converged[result.status])
    if result.status == 0:
        return Stop(StopKind.EVALUATION_LIMIT, "evaluation limit")
    return Stop(StopKind.FAILED, f"stopped: {result.message}")


_blas_controller: list[Any] = []


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread through threadpoolctl (a dependency; without it, no limit).

    scipy's L-BFGS-B (C since scipy 1.15) with multi-threaded OpenBLAS runs many times slower
    when the objective also calls BLAS (scipy issues 22438 and 23191): a 10,401-parameter MLP
    fit took 2.7x longer idle and 12x under load on 2 cores (benchmarks/scale.py). The
    controller is made once: making one scans the loaded libraries, which costs milliseconds.
    """
    if not _blas_controller:
        try:
            from threadpoolctl import ThreadpoolController

            _blas_controller.append(ThreadpoolController())
        except Exception:  # not installed, or it cannot inspect this process
            _blas_controller.append(None)
    controller = _blas_controller[0]
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def run_lbfgs(run: Run, x0: np.ndarray, tol: float) -> Stop:
    from scipy.optimize import minimize

    problem = run.problem
    last: dict[str, Any] = {}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad, _ = loss_and_grad(problem, x)
        run.seen(x, loss)
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            run.nonfinite += 1
            return 1e300, np.zeros_like(x)
        last["loss"], last["grad"] = loss, grad
        return loss, grad

    def callback(x: np.ndarray) -> None:
        run.iteration(last.get("loss", math.nan), float(np.linalg.norm(last.get("grad", 0.0))))

    bounds = [
        (None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi))
        for lo, hi in zip(problem.lower, problem.upper)
    ]
    with _one_blas_thread():
        result = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            callback=callback,
            options={
                "maxiter": run.max_iter + 1,
                "ftol": tol,
                "gtol": tol,
                "maxfun": 20 * run.max_iter,
            },
        )
    message = str(result.message)
    if "REL_REDUCTION" in message.upper() or "relative reduction" in message.lower():
        return Stop(StopKind.CONVERGED, "converged: loss changed by less than --fit-tol")
    if "PGTOL" in message.upper() or "projected gradient" in message.lower():
        return Stop(StopKind.CONVERGED, "converged: gradient below --fit-tol")
    if result.success:
        return Stop(StopKind.CONVERGED, f"converged: {message}")
    if run.nonfinite:
        return NON_FINITE
    if "ABNORMAL" in message.upper():
        return Stop(StopKind.NO_PROGRESS, "no progress: the line search found no lower loss")
    return Stop(StopKind.FAILED, f"stopped: {message}")


def run_derivative_free(run: Run, x0: np.ndarray, tol: float, method: str) -> Stop:
    """scipy's Powell or Nelder-Mead within the bounds: the loss alone, evaluated plainly, so
    the implementation may use math, float(), in-place assignment or other libraries."""
    from scipy.optimize import Bounds, minimize

    problem = run.problem
    last: dict[str, float] = {}

    def fun(x: np.ndarray) -> float:
        loss = problem.loss(x)
        run.seen(x, loss)
        if not math.isfinite(loss):
            run.nonfinite += 1
            return 1e300  # the simplex or line search moves away from here
        last["loss"] = loss
        return loss

    def callback(*args: Any) -> None:
        run.iteration(last.get("loss", math.nan), math.nan)

    bounded = np.isfinite(problem.lower).any() or np.isfinite(problem.upper).any()
    # Both take a starting point within the bounds (Nelder-Mead clips its simplex to them).
    x_start = np.clip(x0, problem.lower, problem.upper)
    options: dict[str, Any]
    if method == "powell":
        options = {"xtol": tol, "ftol": tol, "maxiter": run.max_iter}
        name = "Powell"
    else:
        # Nelder-Mead's tests are absolute; the loss test is made relative to the start's loss.
        scale = max(abs(problem.loss(x_start)), 1e-300)
        options = {"xatol": tol, "fatol": tol * scale, "maxiter": run.max_iter}
        # The adaptive parameters (Gao and Han) keep the simplex from stalling beyond a few
        # dimensions.
        options["adaptive"] = problem.size > 4
        name = "Nelder-Mead"
    options["maxfev"] = 50 * run.max_iter * max(problem.size, 1)
    # Powell's directions and Nelder-Mead's simplex can collapse and stop short of the minimum
    # (Powell within bounds: a 3-parameter exponential decay ended at 6 times the least loss),
    # so a converged run starts again from its end with fresh directions or a fresh simplex,
    # until a run no longer lowers the loss by more than --fit-tol.
    x, previous = x_start, math.inf
    while True:
        with _one_blas_thread():
            result = minimize(
                fun,
                x,
                method=name,
                bounds=Bounds(problem.lower, problem.upper) if bounded else None,
                callback=callback,
                options=options,
            )
        if not result.success or run.best_x is None:
            break
        if math.isfinite(previous) and not run.best_loss < previous - tol * abs(previous):
            return Stop(StopKind.CONVERGED, "converged: loss change and step below --fit-tol")
        x, previous = run.best_x, run.best_loss
    if run.nonfinite and not math.isfinite(run.best_loss):
        return Stop(StopKind.NON_FINITE, "stopped: the loss became non-finite")
    message = str(result.message)
    if "iterations" in message.lower():
        return Stop(StopKind.ITERATION_LIMIT, f"iteration limit ({run.max_iter})")
    if "evaluations" in message.lower():
        return Stop(StopKind.EVALUATION_LIMIT, "evaluation limit")
    return Stop(StopKind.FAILED, f"stopped: {message}")


class Minibatches:
    """Seeded minibatches of a problem's cases for Adam and SGD: each epoch visits every case
    once in a new random order; a batched term contributes the cases drawn from it."""

    def __init__(self, problem: Problem, size: int, seed: int):
        self.problem = problem
        self.units = [
            (t, c)
            for t, (term, n) in enumerate(zip(problem.terms, problem.cases))
            for c in (range(n) if term.select is not None and n > 1 else [None])
        ]
        self.size = min(size, len(self.units))
        self.rng = np.random.default_rng(seed)
        self.order = np.empty(0, dtype=int)
        self.epoch_end = False

    def next(self) -> Problem:
        if self.order.size == 0:
            self.order = self.rng.permutation(len(self.units))
        chosen, self.order = self.order[: self.size], self.order[self.size :]
        self.epoch_end = self.order.size == 0
        picked: dict[int, list[int]] = {}
        for unit in chosen:
            t, c = self.units[unit]
            picked.setdefault(t, []).append(-1 if c is None else c)
        terms = []
        for t, cases in picked.items():
            term = self.problem.terms[t]
            if term.select is not None and cases[0] >= 0:
                term = term.select(np.sort(np.array(cases)))
            terms.append(term)
        sub = Problem(terms, self.problem.slots)
        sub.cases = [
            len(cases) if cases[0] >= 0 else self.problem.cases[t] for t, cases in picked.items()
        ]
        return sub

    @property
    def scale(self) -> float:
        """Minibatch sums times this estimate the whole suite's."""
        return len(self.units) / self.size


def run_first_order(
    run: Run,
    x0: np.ndarray,
    tol: float,
    method: str,
    lr: float,
    minibatches: Minibatches | None = None,
    patience: int = 200,
) -> Stop:
    if minibatches is not None:
        return _run_minibatch(run, x0, tol, method, lr, minibatches)
    problem = run.problem
    x = np.clip(x0, problem.lower, problem.upper)
    state: dict[str, Any] = {}
    since_best = 0
    best_at_last_check = math.inf
    while True:
        loss, grad, _ = loss_and_grad(problem, x)
        run.seen(x, loss)
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            back = _step_back(run, lr)
            if back is None:
                return NON_FINITE
            x, lr, state = *back, {}
            continue
        gnorm = float(np.linalg.norm(grad))
        run.iteration(loss, gnorm)
        if gnorm <= tol:
            return Stop(StopKind.CONVERGED, "converged: gradient below --fit-tol")
        # (The first check compares with inf: inf - tol * inf would be NaN, never passed.)
        margin = tol * max(abs(best_at_last_check), 1e-300)
        if run.best_loss < best_at_last_check - (margin if math.isfinite(margin) else 0.0):
            best_at_last_check = run.best_loss
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                return Stop(
                    StopKind.NO_PROGRESS, f"no progress: no lower loss in {patience} iterations"
                )
        x = np.clip(_step(method, x, grad, state, lr), problem.lower, problem.upper)


def _step_back(run: Run, lr: float) -> tuple[np.ndarray, float] | None:
    """After a non-finite loss or gradient: go back to the best point and take smaller steps
    from there; None when there is no finite point to go back to, or it keeps happening."""
    run.nonfinite += 1
    if run.best_x is None or run.nonfinite > 20:
        return None
    return run.best_x.copy(), lr * 0.5


def _step(
    method: str, x: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float
) -> np.ndarray:
    """One Adam or SGD step (state holds Adam's moments and step count)."""
    if method != "adam":
        return x - lr * grad
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    state["t"] = t = state.get("t", 0) + 1
    state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    state["v"] = v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad**2
    return x - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def _run_minibatch(
    run: Run,
    x0: np.ndarray,
    tol: float,
    method: str,
    lr: float,
    minibatches: Minibatches,
    patience_epochs: int = 20,
) -> Stop:
    """Adam or SGD on seeded minibatches; the whole suite's loss is measured once an epoch,
    and that is what decides the best point and when progress has stopped."""
    problem = run.problem
    x = np.clip(x0, problem.lower, problem.upper)
    state: dict[str, Any] = {}
    best_epoch_loss = math.inf
    stale_epochs = 0
    run.seen(x, problem.loss(x))
    while True:
        batch = minibatches.next()
        loss, grad, _ = loss_and_grad(batch, x)
        problem.gradient_evaluations += 1
        loss *= minibatches.scale
        grad = grad * minibatches.scale
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            back = _step_back(run, lr)
            if back is None:
                return NON_FINITE
            x, lr, state = *back, {}
            continue
        run.iteration(loss, float(np.linalg.norm(grad)))
        x = np.clip(_step(method, x, grad, state, lr), problem.lower, problem.upper)
        if minibatches.epoch_end:
            epoch_loss = problem.loss(x)
            run.seen(x, epoch_loss)
            margin = tol * abs(best_epoch_loss) if math.isfinite(best_epoch_loss) else 0.0
            if epoch_loss < best_epoch_loss - margin:
                best_epoch_loss, stale_epochs = epoch_loss, 0
            else:
                stale_epochs += 1
                if stale_epochs >= patience_epochs:
                    return Stop(
                        StopKind.NO_PROGRESS,
                        f"no progress: no lower loss in {patience_epochs} epochs of minibatches",
                    )
