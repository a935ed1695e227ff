#!/usr/bin/python3
# The scikit-learn side of bench/train-vs-sklearn.ts: fits LogisticRegression(lbfgs) on the bench data set and
# evaluates sklearn's and our solutions with one float64 numpy objective. Prints one JSON line on stdout.
#
# Run by the Node bench with Debian's /usr/bin/python3 (python3-sklearn); by hand:
#   /usr/bin/python3 bench/train_sklearn.py --data bench/.data/<tag> --max-iter 100 --tol 1e-4 [--ours FILE.f64]
import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.linear_model import LogisticRegression, _logistic
from sklearn.preprocessing import StandardScaler


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load(data_dir):
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    n, d = meta["rows"], meta["features"]
    y = np.fromfile(os.path.join(data_dir, "y.i32"), dtype=np.int32)
    t0 = time.perf_counter()
    dense = None
    if d > 0:
        raw = np.fromfile(os.path.join(data_dir, "X.f32"), dtype=np.float32).reshape(n, d)
        # As our pipeline: float64 statistics; sklearn's lbfgs works in float64, so it gets float64 rows.
        dense = StandardScaler().fit_transform(raw.astype(np.float64))
        del raw
    std_s = time.perf_counter() - t0
    X = dense
    if meta["tfidfVocab"] > 0:
        csr = sp.csr_matrix(
            (
                np.fromfile(os.path.join(data_dir, "values.f32"), dtype=np.float32).astype(np.float64),
                np.fromfile(os.path.join(data_dir, "indices.i32"), dtype=np.int32),
                np.fromfile(os.path.join(data_dir, "indptr.i32"), dtype=np.int32),
            ),
            shape=(n, meta["tfidfVocab"]),
        )
        X = csr if dense is None else sp.hstack([sp.csr_matrix(dense), csr], format="csr")
        del dense
    return meta, X, y, std_s


def objective(X, y, W, b, C, chunk=16384):
    """sum_i CE_i + ||W||^2 / (2C), its gradient's max |.| and train accuracy, in float64, chunked."""
    n = X.shape[0]
    K = W.shape[0]
    loss = 0.0
    G = np.zeros_like(W)
    gb = np.zeros(K)
    correct = 0
    for s in range(0, n, chunk):
        Xc = X[s : s + chunk]
        yc = y[s : s + chunk]
        Z = np.asarray(Xc @ W.T) + b
        m = Z.max(axis=1, keepdims=True)
        E = np.exp(Z - m)
        se = E.sum(axis=1, keepdims=True)
        rows = np.arange(len(yc))
        loss += float(np.sum(np.log(se[:, 0]) + m[:, 0] - Z[rows, yc]))
        correct += int(np.sum(Z.argmax(axis=1) == yc))
        R = E / se
        R[rows, yc] -= 1.0
        G += np.asarray((Xc.T @ R).T)
        gb += R.sum(axis=0)
    loss += 0.5 / C * float(np.sum(W * W))
    G += W / C
    gmax = max(float(np.abs(G).max()), float(np.abs(gb).max()))
    return {"loss": loss, "grad_max_abs": gmax, "train_accuracy": correct / n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--ours", help="our solution: float64 [coef (K×d) | intercept (K)]")
    ap.add_argument("--no-fit", action="store_true", help="only evaluate --ours")
    a = ap.parse_args()

    meta, X, y, std_s = load(a.data)
    K = meta["classes"]
    d = X.shape[1]
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: v for k, v in i.items() if k in ("internal_api", "version", "num_threads", "architecture", "threading_layer")} for i in threadpool_info()]
    except Exception as e:  # threadpoolctl ships with sklearn; report rather than fail
        blas = str(e)
    out = {
        "versions": {
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "blas": blas,
        "standardize_seconds": std_s,
        "sklearn": None,
        "eval": {},
    }

    if not a.no_fit:
        # Record what scipy's L-BFGS-B did (evaluations, its own time) without changing the fit.
        stats = {}
        orig = _logistic.optimize.minimize

        def timed_minimize(*args, **kwargs):
            t = time.perf_counter()
            r = orig(*args, **kwargs)
            stats.update(seconds=time.perf_counter() - t, nfev=int(r.nfev), nit=int(r.nit), message=str(r.message), fun=float(r.fun))
            return r

        _logistic.optimize.minimize = timed_minimize
        clf = LogisticRegression(solver="lbfgs", C=a.C, max_iter=a.max_iter, tol=a.tol, multi_class="multinomial")
        log(f"sklearn {sklearn.__version__}: fitting {X.shape[0]} x {d}, {K} classes ...")
        load0 = os.getloadavg()[0]
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        clf.fit(X, y)
        fit_s = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        load1 = os.getloadavg()[0]
        _logistic.optimize.minimize = orig
        log(f"sklearn: {int(clf.n_iter_[0])} iterations, {stats.get('nfev')} evaluations, {fit_s:.2f} s")
        out["sklearn"] = {
            "fit_seconds": fit_s,
            # user + system over all threads (OpenBLAS's included): less sensitive to other load than wall time
            "fit_cpu_seconds": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "loadavg_before": load0,
            "loadavg_after": load1,
            "minimize_seconds": stats.get("seconds"),
            "n_iter": int(clf.n_iter_[0]),
            "nfev": stats.get("nfev"),
            "message": stats.get("message"),
            "solver_loss": stats.get("fun"),
        }
        out["eval"]["sklearn"] = objective(X, y, clf.coef_, clf.intercept_, a.C)

    if a.ours:
        p = np.fromfile(a.ours, dtype=np.float64)
        if p.size != K * d + K:
            raise SystemExit(f"{a.ours}: {p.size} values, expected {K * d + K}")
        out["eval"]["ours"] = objective(X, y, p[: K * d].reshape(K, d), p[K * d :], a.C)

    print(json.dumps(out))


if __name__ == "__main__":
    main()
