#!/usr/bin/python3
# scikit-learn's time for the procedure of ../shared/tools/train_time_peer.py, fold by fold, in the memory a single fit
# needs. The peer's LogisticRegressionCV keeps every fold's coefficients at every C (5 folds × 6 Cs × classes ×
# features × 8 bytes): on flipkart-taxonomy (657 paths × 118,058 features) that is 18.6 GB on top of L-BFGS-B's own
# ~13 GB, and it is killed on a 24 GB machine. This script does the same computation — the same TF-IDF (fitted on all
# rows, as the peer does), the same StratifiedKFold(5) that LogisticRegressionCV's cv=5 means, the same lbfgs fits
# (multinomial, tol 1e-4, max_iter 1000) along the same C path, each fold's fits warm-started from the previous C as
# scikit-learn's path does, scored by log-loss on the held-out fold — but keeps only the current coefficients.
# It prints each fit's wall time, iterations and held-out log-loss as it goes, so a run stopped early still bounds the
# peer's time from below (the peer runs every fold's path, then refits on all rows).
# Run by hand with Debian's python3-sklearn 1.2.1:
#   OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/train_time_peer_folds.py CSV LABEL_COLUMN [FOLDS]
# FOLDS: how many of the 5 folds to run (default 5; then the refit at the best mean log-loss's C too, from zeros,
# where the peer starts it from the folds' mean coefficients: that last step may take longer here).
import csv
import resource
import sys
import time
import warnings

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion

warnings.filterwarnings("ignore")
CS = [0.01, 0.1, 1, 10, 100, 1000]


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
    label = sys.argv[2] if len(sys.argv) > 2 else "category"
    n_folds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    start = time.time()
    vec = FeatureUnion([("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                        ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=100000))])
    X = vec.fit_transform([(r["title"] + " " + r.get("description", "")).strip() for r in rows]).tocsr()
    y = np.array([r[label] for r in rows])
    classes = np.unique(y)
    print(f"{len(rows)} rows, {X.shape[1]} features, {len(classes)} classes; TF-IDF {time.time() - start:.1f} s", flush=True)
    losses = np.zeros((n_folds, len(CS)))
    folds = list(StratifiedKFold(5).split(X, y))[:n_folds]
    for f, (tr, te) in enumerate(folds):
        model = LogisticRegression(max_iter=1000, tol=1e-4, warm_start=True)
        for i, C in enumerate(CS):
            t = time.time()
            model.set_params(C=C).fit(X[tr], y[tr])
            p = np.zeros((len(te), len(classes)))
            p[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(X[te])
            losses[f, i] = log_loss(y[te], p, labels=classes)
            print(f"fold {f} C {C}: {time.time() - t:.1f} s, {int(model.n_iter_[0])} iterations, held-out log-loss "
                  f"{losses[f, i]:.4f}; elapsed {time.time() - start:.1f} s, peak RSS {rss_mb():.0f} MB", flush=True)
        del model
    if n_folds == 5:
        best = CS[int(np.argmin(losses.mean(axis=0)))]
        t = time.time()
        LogisticRegression(C=best, max_iter=1000, tol=1e-4).fit(X, y)
        print(f"refit C {best}: {time.time() - t:.1f} s", flush=True)
    print(f"total wall {time.time() - start:.1f} s ({n_folds} of 5 folds{', refit' if n_folds == 5 else ', no refit'}), "
          f"peak RSS {rss_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
