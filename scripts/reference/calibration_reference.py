#!/usr/bin/python3
# Writes test/golden/sklearn-calibration.json: temperature scaling (T fitted by scipy's bounded Brent on log T), log-loss,
# multiclass Brier, 15-bin ECE with per-bin figures, the precision-coverage curve over calibrated top-1 scores, Wilson
# one-sided lower bounds and the lowest threshold whose lower bound reaches a target precision, on seeded numpy
# probabilities: an overconfident model, an underconfident one, one with many duplicate rows (repeated scores) and a
# tiny one that cannot support a 0.98 target. Cross-checked against scikit-learn (log_loss, precision_recall_curve) and
# statsmodels (proportion_confint, method='wilson') when it is installed.
# Run by hand with Debian's python3-sklearn 1.2.1 (+ python3-statsmodels):
#   OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/calibration_reference.py
# The functions above main() are the definitions; scripts/reference/precision_target_reference.py imports them.
import json
import math
import os
import platform
import sys

import numpy as np
import scipy
import sklearn
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import precision_recall_curve

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EPS = 1e-15                       # log(max(p, EPS)) in temperature scaling; clip(p, EPS, 1) in log-loss
T_BOUNDS = (math.log(0.01), math.log(100.0))  # bounds on u = log T
N_BINS = 15
BIN_EDGES = np.linspace(0.0, 1.0, N_BINS + 1)  # numpy: edges[b] = b * (1/15), edges[15] = 1.0 exactly
TARGETS = [0.8, 0.9, 0.95, 0.98]
CONFIDENCE = 0.95


# ---------------------------------------------------------------- definitions
def round_sig(a, digits=12):
    """Each entry rounded to `digits` significant digits (through its decimal string, as the JSON carries it)."""
    return np.vectorize(lambda x: float(f"{x:.{digits}g}"), otypes=[np.float64])(np.asarray(a, dtype=np.float64))


def log_probs(probs):
    return np.log(np.maximum(probs, EPS))


def apply_temperature(probs, T):
    """p'_ik = softmax_k(log(max(p_ik, 1e-15)) / T)."""
    z = log_probs(probs) / T
    return np.exp(z - logsumexp(z, axis=1, keepdims=True))


def temperature_nll(probs, y, T):
    """Mean NLL of the calibrated probabilities: -mean_i log p'_{i,y_i} (no clipping: log-softmax is finite)."""
    z = log_probs(probs) / T
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def dnll_dbeta(probs, y, T):
    """d NLL / d beta at beta = 1/T: mean_i (sum_k p'_ik l_ik - l_{i,y_i}), l = log(max(p, 1e-15))."""
    l = log_probs(probs)
    p = apply_temperature(probs, T)
    return float(np.mean((p * l).sum(axis=1) - l[np.arange(len(y)), y]))


def fit_temperature(probs, y):
    """T = exp(u*), u* = argmin over [log 0.01, log 100] of the mean NLL (scipy bounded Brent, xatol 1e-12)."""
    res = minimize_scalar(lambda u: temperature_nll(probs, y, math.exp(u)), bounds=T_BOUNDS, method="bounded",
                          options={"xatol": 1e-12})
    return math.exp(res.x), res


def log_loss(probs, y):
    return float(np.mean(-np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1.0))))


def brier(probs, y):
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(((probs - onehot) ** 2).sum(axis=1)))


def top1(probs, y):
    """Confidence (max prob), prediction (argmax, lowest index on ties) and correctness per row."""
    pred = np.argmax(probs, axis=1)
    return probs[np.arange(len(y)), pred], pred, pred == np.asarray(y)


def ece(probs, y):
    """15 equal-width bins, row in bin b when edges[b] < c <= edges[b+1]; sum_b n_b/n |acc_b - conf_b|."""
    conf, _, correct = top1(probs, y)
    n = len(y)
    total = 0.0
    bins = []
    for b in range(N_BINS):
        m = (conf > BIN_EDGES[b]) & (conf <= BIN_EDGES[b + 1])
        nb = int(m.sum())
        if nb == 0:
            bins.append({"count": 0, "confidence": None, "accuracy": None})
            continue
        c, a = float(conf[m].mean()), float(correct[m].mean())
        total += nb / n * abs(a - c)
        bins.append({"count": nb, "confidence": c, "accuracy": a})
    return total, bins


def curve(scores, correct):
    """For each distinct score t, descending: accepted = #{s >= t}, correct = #{s >= t and correct}."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    s, c = scores[order], correct[order]
    cum = np.cumsum(c)
    last = np.r_[np.nonzero(s[1:] != s[:-1])[0], len(s) - 1]   # last index of each run of equal scores
    accepted = last + 1
    corr = cum[last]
    return {"thresholds": [float(v) for v in s[last]], "accepted": [int(v) for v in accepted],
            "correct": [int(v) for v in corr], "precision": [float(v) for v in corr / accepted],
            "coverage": [float(v) for v in accepted / len(s)]}


def wilson_lower(k, m, conf):
    z = float(norm.ppf(conf))
    p = k / m
    return (p + z * z / (2 * m) - z * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m)


def wilson_target(cv, target, conf):
    """Lowest threshold (largest coverage) whose Wilson lower bound of correct/accepted is >= target; None if none."""
    best = None
    for t, a, c in zip(cv["thresholds"], cv["accepted"], cv["correct"]):
        lo = wilson_lower(c, a, conf)
        if lo >= target:
            best = {"target": target, "confidence": conf, "threshold": t, "accepted": a, "precision": c / a, "lower": lo}
    return best or {"target": target, "confidence": conf, "threshold": None, "accepted": None, "precision": None,
                    "lower": None}


def metrics(probs, y):
    e, bins = ece(probs, y)
    return {"logLoss": log_loss(probs, y), "brier": brier(probs, y), "ece": e, "bins": bins}


# ---------------------------------------------------------------- cross-checks
def check_log_loss(probs, y):
    # eps given: scikit-learn 1.2's default eps='auto' clips at float64's machine epsilon (2.2e-16), not 1e-15.
    ours, theirs = log_loss(probs, y), sk_log_loss(y, probs, eps=EPS, labels=list(range(probs.shape[1])))
    assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12), (ours, theirs)


def check_curve(cv, scores, correct):
    prec, _, thr = precision_recall_curve(np.asarray(correct, dtype=int), scores)
    ours = dict(zip(cv["thresholds"], cv["precision"]))
    common = [t for t in thr if float(t) in ours]
    assert len(common) == len(thr) and len(common) > 0, (len(common), len(thr))
    for t, p in zip(thr, prec[:-1]):
        assert math.isclose(ours[float(t)], float(p), rel_tol=1e-12), (t, ours[float(t)], p)
    return len(common)


def check_wilson(k, m, conf):
    try:
        from statsmodels.stats.proportion import proportion_confint
    except ImportError:
        return False
    theirs = proportion_confint(k, m, alpha=2 * (1 - conf), method="wilson")[0]
    ours = wilson_lower(k, m, conf)
    assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-15), (k, m, conf, ours, theirs)
    return True


def check_bins(probs, y, bins):
    """Bin counts again through numpy's digitize (right=True: edges[b-1] < x <= edges[b])."""
    conf = probs.max(axis=1)
    counts = np.bincount(np.digitize(conf, BIN_EDGES, right=True) - 1, minlength=N_BINS)
    assert list(counts) == [b["count"] for b in bins], (counts, bins)


def check_stable(probs, y, T, cv_counts, bins):
    """The golden counts must not move when T moves by 1e-6 relative (the TS fit will not land on the same bits)."""
    for f in (1 - 1e-6, 1 + 1e-6):
        p = apply_temperature(probs, T * f)
        conf, _, correct = top1(p, y)
        cv = curve(conf, correct)
        assert (cv["accepted"], cv["correct"]) == cv_counts, ("curve moves with T", f)
        assert [b["count"] for b in ece(p, y)[1]] == [b["count"] for b in bins], ("bins move with T", f)


# ---------------------------------------------------------------- seeded cases
def softmax(z):
    return np.exp(z - logsumexp(z, axis=1, keepdims=True))


def sample(rng, p):
    """One class per row drawn from p (inverse CDF on one uniform per row)."""
    u = rng.random(len(p))
    return np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)


def skewed_case(rng, K, n, signal, t_true):
    """True logits (signal on a hidden class + N(0,1)); y drawn from softmax(true logits); the model reports
    softmax((true logits + N(0, 0.3)) / t_true): t_true < 1 sharpens (overconfident), > 1 flattens."""
    hidden = rng.integers(K, size=n)
    z = rng.normal(0.0, 1.0, size=(n, K))
    z[np.arange(n), hidden] += signal
    y = sample(rng, softmax(z))
    probs = softmax((z + rng.normal(0.0, 0.3, size=(n, K))) / t_true)
    return probs, y


def grid_rows(p, units=1_000_000):
    """Rows on a 1e-6 grid (every entry >= 1e-6), summing to 1: the largest entry absorbs the rounding."""
    q = np.maximum(np.rint(p * units), 1).astype(np.int64)
    q[np.arange(len(q)), q.argmax(axis=1)] += units - q.sum(axis=1)
    return q / units


def make_cases():
    rng = np.random.default_rng(20261203)
    cases = []

    probs, y = skewed_case(rng, 5, 400, 2.5, 0.5)
    probs = round_sig(probs)
    # Two rows exercise the 1e-15 clamps: a wrong class far below 1e-15 (temperature's log(max(p, 1e-15))) and a
    # true class below 1e-15 (log-loss clip; and the clamp again).
    probs[7] = [0.999999999999, 1e-17, 2.5e-13, 7.5e-13, 1e-18]
    y[7] = 0
    probs[11] = [3e-16, 0.4, 0.35, 0.25, 2e-18]
    y[11] = 0
    cases.append(("overconfident", "K=5, n=400: true logits + noise, sharpened by 1/0.5; rows 7 and 11 carry entries below "
                  "1e-15 (row 11's true class)", probs, y))

    probs, y = skewed_case(rng, 3, 300, 2.0, 2.0)
    cases.append(("underconfident", "K=3, n=300: true logits + noise, flattened by 1/2", round_sig(probs), y))

    K, n, protos = 20, 1000, 40
    hidden = rng.integers(K, size=protos)
    z = rng.normal(0.0, 1.0, size=(protos, K))
    z[np.arange(protos), hidden] += rng.uniform(1.0, 10.0, size=protos)
    proto_probs = grid_rows(softmax(z / 0.8))
    weights = rng.dirichlet(np.ones(protos))
    pick = rng.choice(protos, size=n - 200, p=weights)
    zu = rng.normal(0.0, 1.0, size=(200, K))
    zu[np.arange(200), rng.integers(K, size=200)] += rng.uniform(1.0, 6.0, size=200)
    probs = np.vstack([proto_probs[pick], grid_rows(softmax(zu / 0.8))])
    y = sample(rng, softmax(log_probs(probs) * 0.8))
    perm = rng.permutation(n)
    probs, y = round_sig(probs[perm]), y[perm]
    cases.append(("ties", "K=20, n=1000: 800 rows copied from 40 prototype rows, 200 unique; probabilities on a 1e-6 "
                  "grid; scores repeat", probs, y))

    probs, y = skewed_case(rng, 4, 30, 3.0, 0.9)
    cases.append(("tiny", "K=4, n=30: too few rows for a 0.98 (or 0.95) Wilson bound", round_sig(probs), y))
    return cases


def top_label(scores, correct):
    """Platt scaling of the top-1 probability: a, b of sigma(a * logit(s) + b), fitted by scikit-learn's logistic
    regression without a penalty on x = logit(clip(s, 1e-12, 1 - 1e-12)); checked against scipy on the same NLL."""
    from sklearn.linear_model import LogisticRegression
    from scipy.optimize import minimize
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-12, 1 - 1e-12)
    x = (np.log(s) - np.log1p(-s)).reshape(-1, 1)
    r = np.asarray(correct, dtype=np.int64)
    lr = LogisticRegression(penalty=None, tol=1e-12, max_iter=10000).fit(x, r)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    nll = lambda ab: float(np.mean(np.logaddexp(0, -(2 * r - 1) * (ab[0] * x[:, 0] + ab[1]))))
    opt = minimize(nll, [1.0, 0.0], method="BFGS", options={"gtol": 1e-12})
    assert abs(nll([a, b]) - opt.fun) < 1e-10, (a, b, opt.x)
    # lbfgs stops with a gradient near 1e-7; exact Newton steps on the 2 x 2 system take it to rounding.
    X = np.hstack([x, np.ones_like(x)])
    w = np.array([a, b])
    for _ in range(20):
        p = 1 / (1 + np.exp(-X @ w))
        g = X.T @ (p - r) / len(r)
        if np.abs(g).max() < 1e-15:
            break
        H = (X * (p * (1 - p))[:, None]).T @ X / len(r)
        w = w - np.linalg.solve(H, g)
    p = 1 / (1 + np.exp(-X @ w))
    g = X.T @ (p - r) / len(r)
    assert np.abs(g).max() < 1e-13 and abs(w[0] - a) < 1e-4 and abs(w[1] - b) < 1e-4, (g, w, a, b)
    return {"a": float(w[0]), "b": float(w[1]), "nll": nll(w), "gradient": [float(v) for v in g]}


def run_case(name, note, probs, y):
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    assert (probs > 0).all() and np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-11)
    T, res = fit_temperature(probs, y)
    assert T_BOUNDS[0] + 1e-3 < res.x < T_BOUNDS[1] - 1e-3, (name, T)
    d = dnll_dbeta(probs, y, T)
    assert abs(d) < 1e-6, (name, d)
    cal = apply_temperature(probs, T)
    for p in (probs, cal):
        check_log_loss(p, y)
    conf, _, correct = top1(cal, y)
    cv = curve(conf, correct)
    checked = check_curve(cv, conf, correct)
    before, after = metrics(probs, y), metrics(cal, y)
    check_bins(probs, y, before["bins"])
    check_bins(cal, y, after["bins"])
    check_stable(probs, y, T, (cv["accepted"], cv["correct"]), after["bins"])
    targets = [wilson_target(cv, P, CONFIDENCE) for P in TARGETS]
    for t in targets:
        if t["threshold"] is not None:
            check_wilson(cv["correct"][cv["thresholds"].index(t["threshold"])], t["accepted"], CONFIDENCE)
    print(f"{name}: T={T:.6f} dNLL/dbeta={d:.2e} nll {res.fun:.6f} ece {before['ece']:.4f} -> {after['ece']:.4f} "
          f"logloss {before['logLoss']:.4f} -> {after['logLoss']:.4f}, {len(cv['thresholds'])} thresholds "
          f"({checked} checked with precision_recall_curve), targets "
          + ", ".join(f"{t['target']}: {t['threshold'] if t['threshold'] is None else round(t['threshold'], 4)}"
                      for t in targets))
    platt = top_label(conf, correct) if 0 < int(np.sum(correct)) < len(correct) else None
    return {"name": name, "note": note, "K": int(probs.shape[1]), "n": int(len(y)),
            "probs": [[float(v) for v in row] for row in probs], "y": [int(v) for v in y],
            "temperature": T, "nll_at_optimum": float(res.fun), "dnll_dbeta_at_optimum": d,
            "before": before, "after": after, "curve": cv, "targets": targets,
            "topLabel": platt}


# ---------------------------------------------------------------- JSON: objects indented; flat objects, lists of scalars on one line
def dump(v, indent=0):
    pad = " " * indent
    if isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()) and len(json.dumps(v)) <= 160:
        return pad + json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(v, dict):
        items = [f'{pad} {json.dumps(k)}: {dump(x, indent + 1).lstrip()}' for k, x in v.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return pad + json.dumps(v, ensure_ascii=False)
        if all(isinstance(x, list) for x in v):   # a matrix: one row a line
            return pad + "[\n" + ",\n".join(pad + " " + json.dumps(x) for x in v) + "\n" + pad + "]"
        return pad + "[\n" + ",\n".join(dump(x, indent + 1) for x in v) + "\n" + pad + "]"
    return pad + json.dumps(v, ensure_ascii=False)


def main():
    wilson = []
    has_statsmodels = True
    for k, m, conf in [(0, 10, 0.95), (10, 10, 0.95), (30, 30, 0.95), (1, 1, 0.95), (95, 100, 0.95),
                       (50, 100, 0.9), (199, 200, 0.975), (980, 1000, 0.99), (7, 13, 0.8)]:
        has_statsmodels = check_wilson(k, m, conf) and has_statsmodels
        wilson.append({"k": k, "m": m, "conf": conf, "lower": wilson_lower(k, m, conf)})
    versions = {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    if has_statsmodels:
        import statsmodels
        versions["statsmodels"] = statsmodels.__version__
    out = {
        "generator": "scripts/reference/calibration_reference.py",
        "versions": versions,
        "definitions": {
            "temperature": "p'_ik = softmax_k(log(max(p_ik, 1e-15)) / T); u = log T minimises -mean_i log p'_{i,y_i} "
                           "(scipy minimize_scalar bounded on [log 0.01, log 100], xatol 1e-12)",
            "logLoss": "mean -log(clip(p_{i,y_i}, 1e-15, 1))", "brier": "mean_i sum_k (p_ik - [y_i = k])^2",
            "ece": "15 bins, edges = numpy linspace(0, 1, 16); row in bin b when edges[b] < max_k p_ik <= edges[b+1]",
            "curve": "on calibrated top-1 scores; per distinct score t descending: accepted = #{s >= t}",
            "topLabel": "on the calibrated top-1 scores s: a, b of sigma(a * logit(clip(s, 1e-12, 1 - 1e-12)) + b) by "
                        "maximum likelihood of top-1 correct (sklearn LogisticRegression, no penalty)",
            "targets": "lowest curve threshold whose Wilson one-sided lower bound (z = norm.ppf(confidence)) of "
                       "correct/accepted is >= target; null when none"},
        "wilson_source": "formula; checked against statsmodels proportion_confint(k, m, alpha=2*(1-conf), method='wilson')"
                         if has_statsmodels else "formula only (statsmodels not installed)",
        "binEdges": [float(v) for v in BIN_EDGES],
        "wilson": wilson,
        "cases": [run_case(*c) for c in make_cases()],
    }
    path = os.path.join(ROOT, "test", "golden", "sklearn-calibration.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(out) + "\n")
    with open(path, encoding="utf-8") as f:
        back = json.load(f)
    assert back["cases"][0]["probs"] == out["cases"][0]["probs"]
    print(f"wrote {path}: {os.path.getsize(path)} bytes; statsmodels check: {has_statsmodels}", file=sys.stderr)


if __name__ == "__main__":
    main()
