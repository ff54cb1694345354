"""The planner: validates the request, verifies the batches, splits the parameters into
independent blocks, runs the starts of each block with an optimiser, verifies the fitted point
the exact way (refitting where a fast path was wrong) and assembles the result.

Over 500 lines on purpose: it is the one place that sequences a fit, and splitting the steps of
one block's starts from the loop that verifies them would scatter that sequence; each step's
work lives in the modules it calls.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._numeric import exact_sum
from ..errors import FitError, NegativeScore, NothingToFit, SoftWarning
from ..parameters import Parameters
from . import _optimisers as opt
from ._diagnostics import gradient_check, gradient_warning, uncertainty_at
from ._layout import Slot, choose_slots, independent_blocks
from ._model import (
    DEFAULT_LR,
    DEFAULT_MAX_ITER,
    DEFAULT_TOL,
    DERIVATIVE_FREE,
    MAX_JACOBIAN_PASSES,
    METHODS,
    MIN_IMPROVEMENT_ABS,
    FitResult,
    ParamChange,
    Progress,
    Term,
)
from ._problem import Problem, fit_backends, initial_reads, weighted_loss
from ._starts import (
    FIRST_STAGE,
    SCREEN_SHARE,
    distinct_minima,
    draw_start,
    screen_cost,
    screen_starts,
)
from ._stops import Stop, StopKind
from ._uncertainty import Uncertainty, merge
from ._verify import (
    disagreeing_batches,
    exact_terms,
    losses_agree,
    point,
    verify_batches,
)

#: With restarts, the methods whose starts are left early: a start whose loss settles (two
#: iterations in a row each lowering it by less than opt.SETTLING) above the lowest loss
#: already found is stopped there, the first start whenever its loss settles (and fitted on
#: to --fit-tol if it stays best). None by default. Chosen on benchmarks/multimodal.py's six
#: problems (with the two-stage screen, 3.5-6.2x fewer evaluations there), it lost answers
#: out of sample (benchmarks/restarts_audit.py, seeds 0-9, 5 and 10 restarts): with least
#: squares 12 of 660 fits ended worse (Rastrigin; 2 lost the global minimum), with L-BFGS-B
#: 27 of 640 (MGH Osborne 1 lost its published minimum in 15 of 20 fits; Meyer; Griewank).
#: A loss settling at under 0.1% an iteration can still fall a long way (L-BFGS-B crawls on
#: least-squares problems), and a first fit cut short also shrinks the screen sized from it.
#: A wrong minimum reported as the fit's answer costs more than the time saved.
LEAVE_EARLY: frozenset[str] = frozenset()


def fit(
    terms: Sequence[Term],
    *,
    params: Sequence[str] | None = None,
    method: str = "auto",
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    timeout: float | None = None,
    restarts: int = 0,
    seed: int = 0,
    lr: float | None = None,
    batch_size: int | None = None,
    holdout: Sequence[Term] = (),
    check_gradient: bool = True,
    progress: Callable[[Progress], None] | None = None,
    backend: str = "auto",
) -> FitResult:
    """Tune the parameters the terms read so that the weighted sum of their scores is smallest.

    ``params`` restricts the fit to some parameters (full names ``module.name`` or module
    names). ``backend`` differentiates the terms: ``auto`` (JAX for terms whose score is a JAX
    array, autograd for the others), ``autograd`` or ``jax``. Returns a :class:`FitResult`; the
    parameter groups themselves are unchanged until :meth:`FitResult.apply`.
    """
    with fit_backends(backend) as backends:
        import scipy.optimize  # noqa: F401  (once, before the clock: the budget is the fit's own)

        if restarts:
            from scipy.stats import qmc  # noqa: F401  (the screen's sampler; its import takes ~1 s)

        t0 = time.monotonic()
        if method not in METHODS:
            raise FitError(f"unknown fit method {method!r}; choose one of {', '.join(METHODS)}.")
        if max_iter < 1:
            raise FitError(f"the iteration limit must be at least 1, got {max_iter}.")
        if not tol > 0:
            raise FitError(f"the tolerance must be positive, got {tol!r}.")
        if restarts < 0:
            raise FitError(f"the number of restarts must be 0 or more, got {restarts}.")
        terms = list(terms)
        if not terms:
            raise NothingToFit("no soft tests selected: there is nothing to fit.")

        values0, reads = initial_reads(terms)
        if not any(reads):
            names = [name for t in terms for name in (t.case_names or [t.name])]
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            raise NothingToFit(
                f"the {len(names)} selected soft test(s) ({shown}) read no declared parameter, so "
                "there is nothing to tune. Declare the implementation's constants with "
                "Parameters(...) and read them at call time (theta.name)."
            )
        slots = choose_slots(set().union(*reads), params)
        if batch_size is not None and batch_size < 1:
            raise FitError(f"the minibatch size must be at least 1, got {batch_size}.")
        if batch_size is not None and method not in ("adam", "sgd"):
            raise FitError(
                f"minibatches (batch size {batch_size}) are for the adam and sgd methods; the "
                f"{method} method takes every soft test at each step. Choose adam or sgd, or drop "
                "the batch size."
            )
        settings = Settings(
            method, tol, max_iter, restarts, seed, lr, check_gradient, progress, batch_size
        )
        deadline = t0 + timeout if timeout else math.inf

        checked, kept, split = verify_batches(terms, slots, seed)
        start = None if split else (values0, reads)
        result = _fit_verified(checked, kept, split, slots, settings, t0, deadline, start)
        if holdout:
            held = Problem(exact_terms(holdout), slots)
            held_before, held_after = (
                held.scores(held.current()),
                held.scores(point(held, result._assignments)),
            )
            result.holdout_before = weighted_loss(held.weights, held_before)
            result.holdout_after = weighted_loss(held.weights, held_after)
            result.holdout_terms = len(held.terms)
            result.scores_before.update(_by_name(held.terms, held_before))
            result.scores_after.update(_by_name(held.terms, held_after))
        result.seconds = time.monotonic() - t0
    used = [kind for kind in ("autograd", "jax") if kind in backends.used]
    result.backend = " + ".join(used) or "autograd"
    if "jax" in used:
        result.compiled = backends.jax.compiled
        result.compile_seconds = backends.jax.compile_seconds
        result.float64 = backends.float64
    return result


def _fit_verified(
    terms: list[Term],
    kept: list[str],
    notes: list[str],
    slots: list[Slot],
    settings: Settings,
    t0: float,
    deadline: float,
    start: tuple[list[np.ndarray], list[set[tuple[Parameters, str]]]] | None = None,
) -> FitResult:
    """Fit, then verify before anything is written: the fast paths (batches, independent
    groups) computed the loss the optimiser saw; the result stands only where the suite's own
    loss, every soft test called the exact way, agrees at the fitted point. A batch at fault is
    split and the fit runs again; groups that were not independent after all are fitted as
    one. Each refit removes a batch or merges the groups, so this ends. ``start``: the terms'
    scores and reads at the start, when already known."""
    notes = list(notes)
    split_blocks = True
    while True:
        values0, reads = start if start is not None else initial_reads(terms)
        start = None  # the terms change before another round
        result = _fit_terms(terms, values0, reads, slots, settings, t0, deadline, split_blocks)
        exact = exact_terms(terms)
        problem = Problem(exact, slots)
        values_before = problem.scores(problem.current())
        values_after = problem.scores(point(problem, result._assignments))
        loss_after = weighted_loss(problem.weights, values_after)
        if losses_agree(result.loss_after, loss_after):
            break
        culprits = disagreeing_batches(terms, slots, point(problem, result._assignments))
        if culprits:
            for term, why in culprits:
                notes.append(
                    f"{term.name}: the batched call did not match the cases' own calls at the "
                    f"fitted point ({why}); refitted with its {len(term.exact or ())} cases "
                    "one by one"
                )
            at_fault = {id(t) for t, _ in culprits}
            terms = [e for t in terms for e in (exact_terms([t]) if id(t) in at_fault else [t])]
            gone = tuple(f"batched {t.name}:" for t, _ in culprits)
            kept = [line for line in kept if not line.startswith(gone)]
        elif result.blocks > 1 and split_blocks:
            split_blocks = False
            notes.append(
                "the parameter groups fitted separately turned out to interact (the suite's loss "
                f"at their combined result is {loss_after!r}, not {result.loss_after!r}); "
                "refitted as one"
            )
        else:
            notes.append(
                f"the suite's loss at the fitted point is {loss_after!r} each time it is "
                f"measured again, not the {result.loss_after!r} the optimiser saw: some soft "
                "test's score changes from one call to the next (state or randomness)"
            )
            break
    result.loss_before = weighted_loss(problem.weights, values_before)
    result.loss_after = loss_after
    result.scores_before = _by_name(exact, values_before)
    result.scores_after = _by_name(exact, values_after)
    result.verified = True
    result.batches = kept
    result.notes = notes
    return result


def _fit_terms(
    terms: list[Term],
    values0: list[np.ndarray],
    reads: list[set[tuple[Parameters, str]]],
    slots: list[Slot],
    settings: Settings,
    t0: float,
    deadline: float,
    split_blocks: bool,
) -> FitResult:
    """Optimise, block by block where the parameters split into independent groups."""
    blocks, constant = independent_blocks(reads, slots)
    if len(blocks) == 1 or not split_blocks:
        # One block: every term goes in, so thresholds and reports see the whole suite.
        blocks, constant = [(list(range(len(terms))), slots)], []
    outcomes = []
    for term_indices, block_slots in blocks:
        block_terms = [terms[i] for i in term_indices]
        block_values = [values0[i] for i in term_indices]
        outcomes.append(_fit_block(block_terms, block_values, block_slots, settings, t0, deadline))
        if time.monotonic() > deadline:
            break

    constant_loss = weighted_loss(
        (terms[i].weight for i in constant), (values0[i] for i in constant)
    )
    loss0 = weighted_loss((t.weight for t in terms), values0)
    done = len(outcomes)
    not_fitted = exact_sum(_block_loss(blocks[k], terms, values0) for k in range(done, len(blocks)))
    loss_after = constant_loss + exact_sum(o.loss_after for o in outcomes) + not_fitted
    history: list[float] = []
    for k, outcome in enumerate(outcomes):
        others = (
            constant_loss
            + exact_sum(o.loss_after for o in outcomes[:k])
            + exact_sum(_block_loss(blocks[j], terms, values0) for j in range(k + 1, len(blocks)))
        )
        history.extend(others + h for h in outcome.history)

    after_values = list(values0)
    for (term_indices, _), outcome in zip(blocks, outcomes):
        for i, v in zip(term_indices, outcome.after_values):
            after_values[i] = v
    assignments: dict[Parameters, dict[str, Any]] = {}
    changes: list[ParamChange] = []
    for outcome in outcomes:
        for group, values in outcome.assignments.items():
            assignments.setdefault(group, {}).update(values)
        changes.extend(outcome.changes)
    changes.sort(key=lambda c: c.full_name)
    fit_warnings = [w for o in outcomes for w in o.warnings]

    scores_before, scores_after = _by_name(terms, values0), _by_name(terms, after_values)
    if len(blocks) == 1:
        stop = outcomes[0].stop
    else:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.stop.detail] = counts.get(outcome.stop.detail, 0) + 1
        skipped = len(blocks) - done
        kinds = [o.stop.kind for o in outcomes] + [StopKind.TIME_BUDGET] * bool(skipped)
        stop = Stop(
            next((k for k in kinds if k is not StopKind.CONVERGED), StopKind.CONVERGED),
            f"{len(blocks)} independent parameter groups fitted one after another: "
            + "; ".join(f"{reason} ({n})" for reason, n in counts.items())
            + (f"; {skipped} not fitted: time budget" if skipped else ""),
        )
    methods = sorted({o.method for o in outcomes})
    return FitResult(
        method=methods[0] if len(methods) == 1 else ", ".join(methods),
        terms=sum(len(t.case_names) if t.case_names is not None else 1 for t in terms),
        cases=sum(int(v.shape[0]) for v in values0),
        parameters=changes,
        scalars=sum(slot.spec.size for slot in slots),
        loss_before=loss0,
        loss_after=loss_after,
        iterations=sum(o.iterations for o in outcomes),
        loss_evaluations=sum(o.loss_evaluations for o in outcomes),
        gradient_evaluations=sum(o.gradient_evaluations for o in outcomes),
        seconds=time.monotonic() - t0,
        stop=stop,
        history=history,
        starts=1 + settings.restarts,
        starts_run=max(o.starts_run for o in outcomes),
        starts_at_best=min(o.starts_at_best for o in outcomes),
        best_start=outcomes[0].best_start if len(outcomes) == 1 else 0,
        scores_before=scores_before,
        scores_after=scores_after,
        warnings=fit_warnings,
        blocks=len(blocks),
        screened=sum(o.screened for o in outcomes),
        minima=max(o.minima for o in outcomes),
        starts_left=max(o.starts_left for o in outcomes),
        uncertainty=merge([o.uncertainty for o in outcomes if o.uncertainty is not None]),
        _assignments=assignments,
    )


def _block_loss(
    block: tuple[list[int], list[Slot]], terms: Sequence[Term], values: Sequence[np.ndarray]
) -> float:
    return weighted_loss((terms[i].weight for i in block[0]), (values[i] for i in block[0]))


@dataclass(frozen=True)
class Settings:
    method: str
    tol: float
    max_iter: int
    restarts: int
    seed: int
    lr: float | None
    check_gradient: bool
    progress: Callable[[Progress], None] | None
    batch_size: int | None = None


@dataclass
class BlockOutcome:
    method: str
    loss_after: float
    after_values: list[np.ndarray]
    assignments: dict[Parameters, dict[str, Any]]
    changes: list[ParamChange]
    iterations: int
    loss_evaluations: int
    gradient_evaluations: int
    stop: Stop
    history: list[float]
    starts_run: int
    starts_at_best: int
    best_start: int
    warnings: list[str]
    uncertainty: Uncertainty | None = None
    screened: int = 0
    minima: int = 1
    starts_left: int = 0


def _fit_block(
    terms: list[Term],
    values0: list[np.ndarray],
    slots: list[Slot],
    settings: Settings,
    t0: float,
    deadline: float,
) -> BlockOutcome:
    """Fit the parameters of one block (terms that share parameters with no other block)."""
    method, tol, max_iter, seed = settings.method, settings.tol, settings.max_iter, settings.seed
    problem = Problem(terms, slots)
    problem.cases = [int(v.shape[0]) for v in values0]
    x0 = problem.current()
    before_assign = problem.assignments(x0)
    loss0 = weighted_loss((t.weight for t in terms), values0)
    fit_warnings: list[str] = []

    if method == "auto":
        # Least squares needs the Jacobian: one pass per case or per parameter, whichever is
        # fewer, for each term. Where that is costly (a large batch and many parameters),
        # L-BFGS-B needs one reverse pass per term.
        # With fewer residuals than fitted values, least squares' Gauss-Newton model of the
        # loss is rank-deficient and crawls (one score summing two squared terms of two
        # parameters: 1000 iterations not converged, where L-BFGS-B converges in 22).
        non_negative = all(np.all(v >= 0) for v in values0)
        cheap = all(min(n, problem.size) <= MAX_JACOBIAN_PASSES for n in problem.cases)
        enough = sum(problem.cases) >= problem.size
        method_used = "lsq" if non_negative and cheap and enough else "lbfgs"
    else:
        method_used = method
    if method_used == "lsq":
        opt.check_non_negative(problem, values0)

    # Which parameters does anything depend on? (A parameter read but without effect.)
    gradient_free = method_used in DERIVATIVE_FREE
    grads = [] if gradient_free else problem.gradients(x0)[1]
    column_used = np.zeros(problem.size, dtype=bool) | gradient_free
    for grad in grads:
        column_used |= grad != 0
    if not column_used.all():
        # A gradient of 0 can also mean the start is an optimum (a refit): look again a little
        # way off before calling a parameter unused.
        step = np.random.default_rng(seed).normal(size=problem.size)
        nearby = np.clip(
            x0 + 1e-3 * np.maximum(np.abs(x0), 1.0) * step, problem.lower, problem.upper
        )
        for grad in problem.gradients(nearby)[1]:
            column_used |= grad != 0
    for slot in slots:
        if not column_used[slot.start : slot.stop].any():
            message = (
                f"no selected soft test's score depends on parameter '{slot.spec.full_name}' "
                "(its gradient is 0 for every test at the start); the fit leaves it unchanged"
                " unless another parameter moves it into play."
            )
            fit_warnings.append(message)
            warnings.warn(SoftWarning(message), stacklevel=3)

    if settings.check_gradient and not gradient_free:
        suspects = gradient_check(problem, x0, seed)
        if suspects:
            message = gradient_warning(suspects)
            fit_warnings.append(message)
            warnings.warn(SoftWarning(message), stacklevel=3)

    # Scores 0 or more at the start are taken for losses (as "auto" does when choosing least
    # squares): only then does a loss of 0 mean no other start can do better.
    scores_are_losses = all(np.all(v >= 0) for v in values0)
    lr = settings.lr if settings.lr is not None else DEFAULT_LR.get(method_used, 0.01)
    rng = np.random.default_rng(seed)
    total_starts = 1 + settings.restarts
    best_loss, best_x, best_start = loss0, x0.copy(), -1
    finals: list[float] = []
    history: list[float] = []
    iterations = 0
    stop = Stop(StopKind.FAILED, "")
    starts_run = 0
    x_start = x_clipped = np.clip(x0, problem.lower, problem.upper)
    screen = screen_starts(problem, x_clipped, 0, seed, column_used, deadline, fit_warnings)
    ends: list[np.ndarray] = []
    runs: list[opt.Run] = []
    # Starts left early (see LEAVE_EARLY): none by default.
    leaving = settings.restarts > 0 and method_used in LEAVE_EARLY

    def local_fit(run: opt.Run, x_start: np.ndarray) -> Stop:
        nonlocal method_used
        # Overflow on the way to a non-finite loss is counted and reported below, not warned.
        saved_errors = np.seterr(over="ignore", invalid="ignore", divide="ignore")
        try:
            if method_used == "lsq":
                try:
                    ended = opt.run_lsq(run, x_start, tol, column_used)
                except NegativeScore:
                    if method != "auto":
                        raise
                    # auto chose least squares because every score was 0 or more at the
                    # start; one went below 0, so L-BFGS-B (any score) goes on from the best.
                    method_used = "lbfgs"
                    if "lbfgs" not in LEAVE_EARLY:
                        run.leave_above = None
                    x_best = run.best_x if run.best_x is not None else x_start
                    ended = opt.run_lbfgs(run, x_best, tol)
            elif method_used == "lbfgs":
                ended = opt.run_lbfgs(run, x_start, tol)
            elif gradient_free:
                ended = opt.run_derivative_free(run, x_start, tol, method_used)
            else:
                minibatches = None
                if settings.batch_size:
                    minibatches = opt.Minibatches(problem, settings.batch_size, seed + run.start)
                ended = opt.run_first_order(run, x_start, tol, method_used, lr, minibatches)
        except opt.StopRun as stopped:
            ended = stopped.stop
        finally:
            np.seterr(**saved_errors)
        if run.nonfinite and ended.kind is not StopKind.NON_FINITE:
            ended = Stop(
                ended.kind,
                f"{ended.detail} (the loss was non-finite at {run.nonfinite} point(s); kept the "
                "best finite one)",
            )
        return ended

    stops: list[Stop] = []
    skipped = ""  # why the starts not run were skipped
    queue: list[np.ndarray] = []
    ends_from: list[np.ndarray] = [x_start]  # each start's starting point
    spent_before = problem.loss_evaluations, problem.gradient_evaluations
    for start in range(total_starts):
        if start == 1:  # only once the initial value's fit leaves room to improve
            # The restarts' local fits will cost about what the first one did, each; the
            # screen is held to a share of that (see SCREEN_SHARE).
            first_fit = screen_cost(
                problem.loss_evaluations - spent_before[0],
                problem.gradient_evaluations - spent_before[1],
                int(column_used.sum()),
            )
            screen = screen_starts(
                problem,
                x_clipped,
                total_starts - 1,
                seed,
                column_used,
                deadline,
                fit_warnings,
                budget=int(min(SCREEN_SHARE * first_fit * (total_starts - 1), 2**30)),
                first_stage=FIRST_STAGE,
            )
            queue = list(screen.starts)
        elif start > 1 and screen.can_grow:
            # The first restart left something to gain: the rest of the sample is scored and
            # the starts chosen again from all of it (FIRST_STAGE).
            saved_errors = np.seterr(over="ignore", invalid="ignore", divide="ignore")
            try:
                screen.grow(problem.loss, ends_from[1:], deadline)
            finally:
                np.seterr(**saved_errors)
            queue = list(screen.starts)
        if start > 0:
            x_start = queue.pop(0) if queue else draw_start(problem, x0, rng, column_used)
            ends_from.append(x_start)
        run = opt.Run(
            problem,
            start=start,
            starts=total_starts,
            max_iter=max_iter,
            deadline=deadline,
            t0=t0,
            progress=settings.progress,
        )
        if leaving and method_used in LEAVE_EARLY:
            # The first start is left once its loss settles (and polished below if no restart
            # does better); a restart, once it settles above the lowest loss already seen, the
            # screen's included (opt.Run.leave_above).
            run.leave_above = -math.inf if start == 0 else min([best_loss, *screen.losses[:1]])
        starts_run += 1
        ended = local_fit(run, x_start)
        iterations += run.iterations
        history.extend(run.history)
        finals.append(run.best_loss)
        ends.append(run.best_x if run.best_x is not None else x_start)
        runs.append(run)
        stops.append(ended)
        if run.best_x is not None and run.best_loss < best_loss:
            best_loss, best_x, best_start = run.best_loss, run.best_x, start
        if start == 0 or best_start == start:
            stop = ended
        if ended.kind is StopKind.TIME_BUDGET:
            stop = ended
            break
        settled = _nothing_left_to_gain(problem, best_x, best_loss, scores_are_losses)
        if settled:
            if start < total_starts - 1:
                skipped = f"{settled}, so {total_starts - 1 - start} more start(s) skipped"
            break

    # A start left early that is still the best (the first, when no restart did better) is
    # polished: its fit goes on from where it was left, to --fit-tol.
    polish = max(best_start, 0)
    if polish < len(runs) and stops[polish].kind is StopKind.LEFT:
        run = runs[polish]
        run.leave_above = None
        before = run.iterations
        ended = local_fit(run, run.best_x if run.best_x is not None else ends[polish])
        iterations += run.iterations - before
        history.extend(run.history[before:])
        finals[polish] = run.best_loss
        ends[polish] = run.best_x if run.best_x is not None else ends[polish]
        stops[polish] = stop = ended
        if run.best_x is not None and run.best_loss < best_loss:
            best_loss, best_x, best_start = run.best_loss, run.best_x, polish
    if skipped:
        stop = Stop(stop.kind, f"{stop.detail}; {skipped}")
    finished = [k for k, s in enumerate(stops) if s.kind is not StopKind.LEFT]

    # The value put in is the best point seen; recompute its loss and scores plainly.
    after_values = problem.scores(best_x)
    loss_after = weighted_loss((t.weight for t in terms), after_values)
    if not math.isfinite(loss_after) or loss_after > loss0:
        best_x, loss_after, after_values = x0, loss0, values0
    at_best = sum(
        1 for f in finals if f <= best_loss + max(1e-6 * abs(best_loss), MIN_IMPROVEMENT_ABS)
    )
    after_assign = problem.assignments(best_x)
    uncertainty = uncertainty_at(problem, best_x, method_used)
    changes = [
        ParamChange(
            slot.spec.full_name,
            before_assign[slot.group][slot.spec.name],
            after_assign[slot.group][slot.spec.name],
        )
        for slot in slots
    ]
    return BlockOutcome(
        method=method_used,
        loss_after=loss_after,
        after_values=list(after_values),
        assignments=after_assign,
        changes=changes,
        iterations=iterations,
        loss_evaluations=problem.loss_evaluations,
        gradient_evaluations=problem.gradient_evaluations,
        stop=stop,
        history=history,
        starts_run=starts_run,
        starts_at_best=at_best,
        best_start=max(best_start, 0),
        warnings=fit_warnings,
        uncertainty=uncertainty,
        screened=screen.evaluations,
        minima=distinct_minima(
            [ends[k] for k in finished], [finals[k] for k in finished], screen.low, screen.high
        ),
        starts_left=len(stops) - len(finished),
    )


def _by_name(terms: Sequence[Term], values: Sequence[np.ndarray]) -> dict[str, float]:
    out: dict[str, float] = {}
    for term, v in zip(terms, values):
        out.update(term.per_case(v))
    return out


def _nothing_left_to_gain(
    problem: Problem, x: np.ndarray, loss: float, scores_are_losses: bool
) -> str:
    """Why no further start can do meaningfully better than the loss at x, or "": the loss is
    0 to rounding (for scores that are losses, 0 or more), or every soft test has a threshold
    and is within it."""
    # Scores that can go below 0 have no floor at 0: a loss of -0.4 (or of 0) says nothing
    # about what another start might reach (the restarts were skipped on every negative loss).
    if scores_are_losses and 0.0 <= loss <= MIN_IMPROVEMENT_ABS:
        return "the loss is 0 to rounding"
    if all(t.threshold is not None for t in problem.terms):
        scores = problem.scores(x)
        if all(t.within_threshold(s) for t, s in zip(problem.terms, scores)):
            return "every soft test is within its threshold"
    return ""
