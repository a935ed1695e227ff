#!/usr/bin/python3
"""Late fusion, early fusion and stacking side by side, in scikit-learn, on the same heads and the same rows.
Issue 19 asks whether selection should also choose stacking (a LogisticRegression over the heads' out-of-fold
log-probabilities). This measures the three kinds with fixed, plain heads, per label column:
  text:    attributes_reference.py's text pipeline (TF-IDF word 1-2 + char_wb 2-5, LogisticRegression(C=--C-text));
  image:   its image pipeline (StandardScaler + LogisticRegression(C=--C-image)) on the exported pooled features;
  late:    argmax w log p_text + (1-w) log p_image, w by macro-F1 on 5-fold out-of-fold probabilities (as there);
  stacked: LogisticRegression, C from 0.01..1000 by log-loss on 5 inner folds, over [log p_text | log p_image] of the
           out-of-fold rows, applied to the log-probabilities of the heads refitted on all train rows;
  early:   one LogisticRegression(C=--C-text) over [TF-IDF | --early-weight x standardised image] (the issue's myntra
           reference uses 0.05).
Dev rows whose value train kept are scored (accuracy, macro-F1). Rows without a photo: image probabilities are the
train prior (late: text alone; stacked and early: that prior / zero image block).
Usage (Debian's python3-sklearn, run by hand, never a runtime dependency; features from export-image-features):
  OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/fusion_kinds_reference.py CATALOG \
      --train-features F/train-image --dev-features F/dev-image [--labels category,colour] [--jobs 2] --out X.json
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from attributes_reference import (EPS, WEIGHTS, fuse, heads_oof_and_dev, image_pipeline, label_data, read_inputs, scores,
                                  text_pipeline)

STACK_CS = [0.01, 0.1, 1, 10, 100, 1000]


def logp(p):
    return np.log(np.clip(p, EPS, None))


def fit_stacker(Z, y, K, folds):
    """LogisticRegression over Z with C from STACK_CS by inner-fold log-loss over all K classes (a rare class may be
    missing from an inner fold, which LogisticRegressionCV's scorer cannot take), refitted on all rows."""
    inner = list(StratifiedKFold(folds, shuffle=True, random_state=1).split(Z, y))
    losses = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning))
        for C in STACK_CS:
            P = np.zeros((len(y), K))
            for f_tr, f_te in inner:
                m = LogisticRegression(C=C, max_iter=2000).fit(Z[f_tr], y[f_tr])
                P[np.ix_(f_te, m.classes_)] = m.predict_proba(Z[f_te])
            losses[C] = float(-np.mean(logp(P[np.arange(len(y)), y])))
        best = min(STACK_CS, key=lambda C: losses[C])
        return LogisticRegression(C=best, max_iter=2000).fit(Z, y), losses


def run_label(label, tr_rows, dv_rows, Xtr_img, oktr_all, Xdv_img, okdv_all, a):
    t0 = time.time()
    d = label_data(label, tr_rows, dv_rows, Xtr_img, oktr_all, Xdv_img, okdv_all, a)
    classes, K, tr, dv, Ttr, Tdv, ytr, ydv = d.classes, d.K, d.tr, d.dv, d.Ttr, d.Tdv, d.ytr, d.ydv
    Itr, Idv, oktr, okdv = d.Itr, d.Idv, d.oktr, d.okdv
    tp = text_pipeline(a.C_text)
    oof, pt, pi, _, _ = heads_oof_and_dev(d, tp, image_pipeline(a.C_image), a.jobs)
    grid = [float(f1_score(ytr, fuse(oof["text"], oof["image"], w, oktr), average="macro")) for w in WEIGHTS]
    w = WEIGHTS[int(np.argmax(grid))]
    # Stacking: an LR over the out-of-fold log-probabilities, C by inner cross-validated log-loss.
    stacker, stack_losses = fit_stacker(np.hstack([logp(oof["text"]), logp(oof["image"])]), ytr, K, a.folds)
    ps = np.zeros((len(dv), K))
    ps[:, stacker.classes_] = stacker.predict_proba(np.hstack([logp(pt), logp(pi)]))
    # Early fusion: one LR over the TF-IDF block and the weighted standardised image block.
    feats = tp.named_steps["features"]
    Xt_tr = feats.fit_transform(Ttr)
    Xt_dv = feats.transform(Tdv)
    sc = StandardScaler().fit(Itr[oktr])
    img = lambda I, ok: sp.csr_matrix(np.where(ok[:, None], sc.transform(I) * a.early_weight, 0.0))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        early = LogisticRegression(C=a.C_text, max_iter=1000).fit(sp.hstack([Xt_tr, img(Itr, oktr)]).tocsr(), ytr)
    pe = np.zeros((len(dv), K))
    pe[:, early.classes_] = early.predict_proba(sp.hstack([Xt_dv, img(Idv, okdv)]).tocsr())
    dev = {"text": scores(classes, ydv, pt.argmax(1)), "image": scores(classes, ydv, pi.argmax(1)),
           "late": scores(classes, ydv, fuse(pt, pi, w, okdv)), "stacked": scores(classes, ydv, ps.argmax(1)),
           "early": scores(classes, ydv, pe.argmax(1))}
    out = {"label": label, "classes": K, "rows": {"train": len(tr), "dev": len(dv)}, "w": w, "stackC": stacker.C,
           "stackLogLossByC": {str(c): v for c, v in stack_losses.items()}, "earlyWeight": a.early_weight, "dev": dev,
           "seconds": time.time() - t0}
    print(f"{label}: {K} classes; " + "; ".join(f"{k} {v['accuracy']:.4f}/{v['macroF1']:.4f}" for k, v in dev.items())
          + f"; w {w}, stack C {out['stackC']}; {out['seconds']:.0f} s", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="catalog folder holding the train and dev CSVs")
    ap.add_argument("--train-features", required=True)
    ap.add_argument("--dev-features", required=True)
    ap.add_argument("--labels", default="category")
    ap.add_argument("--train", default="train.csv")
    ap.add_argument("--dev", default="dev.csv")
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--C-text", type=float, default=10.0)
    ap.add_argument("--C-image", type=float, default=0.05)
    ap.add_argument("--early-weight", type=float, default=0.05)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tr_rows, dv_rows, (Xtr, oktr, _), (Xdv, okdv, _) = read_inputs(a)
    results = [run_label(label, tr_rows, dv_rows, Xtr, oktr, Xdv, okdv, a) for label in a.labels.split(",")]
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"catalog": os.path.basename(os.path.normpath(a.folder)), "train": a.train, "dev": a.dev,
                   "results": results}, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
