#!/usr/bin/python3
"""What a careful scikit-learn user does to pick a confidence threshold for a target precision on a text catalog.

TF-IDF word 1-2 + char_wb 2-5 (max 100k, sublinear; as /work/shared/tools/train_time_peer.py) and
LogisticRegression(C=10, max_iter=1000) (the catalogs' SOURCE.md setting) in one Pipeline; out-of-fold probabilities on
train from cross_val_predict(method='predict_proba') over StratifiedKFold(5, shuffle=True, random_state=0), so the
vectorizer is fitted inside each fold; a temperature fitted on those OOF probabilities (definitions imported from
calibration_reference.py); per target precision (0.95, 0.98) the lowest OOF calibrated-score threshold whose OOF
point-estimate precision is >= target (and, for comparison, the lowest whose Wilson 95% lower bound is). Then the
pipeline refitted on all of train predicts dev; the same T applies; dev accuracy, log-loss/Brier/ECE before and after,
and per target the dev rows accepted (calibrated score >= threshold): realized precision and coverage. Writes JSON.

Usage (Debian's python3-sklearn 1.2.1, run by hand, never a runtime dependency):
  OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/precision_target_reference.py \
      /work/shared/data/amazon-electronics [--label category] [--train train.csv] [--dev dev.csv] [--C 10] --out X.json
Several catalogs at once: give several folders; --out then holds a list, one entry per catalog.
"""
import argparse
import csv
import json
import os
import platform
import resource
import sys
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from calibration_reference import (apply_temperature, curve, dnll_dbeta, fit_temperature, metrics,  # noqa: E402
                                   top1, wilson_lower)

TARGETS = [0.95, 0.98]
WILSON_CONFIDENCE = 0.95


def read(path, label):
    rows = list(csv.DictReader(open(path, encoding="utf-8", newline="")))
    return [(r["title"] + " " + (r.get("description") or "")).strip() for r in rows], [r[label] for r in rows]


def pipeline(C):
    return Pipeline([
        ("features", FeatureUnion([
            ("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=100000))])),
        ("clf", LogisticRegression(C=C, max_iter=1000))])


def point_target(cv, target):
    """Lowest threshold (largest coverage) whose point-estimate precision correct/accepted is >= target."""
    best = None
    for i, p in enumerate(cv["precision"]):
        if p >= target:
            best = i
    return best


def wilson_target_index(cv, target, conf):
    best = None
    for i, (c, a) in enumerate(zip(cv["correct"], cv["accepted"])):
        if wilson_lower(c, a, conf) >= target:
            best = i
    return best


def realized(scores, correct, threshold):
    if threshold is None:
        return {"accepted": None, "correct": None, "precision": None, "coverage": None}
    m = scores >= threshold
    a, c = int(m.sum()), int(correct[m].sum())
    return {"accepted": a, "correct": c, "precision": c / a if a else None, "coverage": a / len(scores)}


def at(cv, i):
    if i is None:
        return {"threshold": None, "oofAccepted": None, "oofPrecision": None, "oofCoverage": None}
    return {"threshold": cv["thresholds"][i], "oofAccepted": cv["accepted"][i], "oofPrecision": cv["precision"][i],
            "oofCoverage": cv["coverage"][i]}


def run(folder, label, train_name, dev_name, C):
    t0 = time.time()
    Xtr, ytr_s = read(os.path.join(folder, train_name), label)
    Xdv, ydv_s = read(os.path.join(folder, dev_name), label)
    classes = sorted(set(ytr_s))
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(ydv_s) - set(classes))
    if unseen:
        sys.exit(f"{folder}: dev labels absent from train: {unseen[:5]}")
    ytr = np.array([index[v] for v in ytr_s])
    ydv = np.array([index[v] for v in ydv_s])
    n_conv = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t = time.time()
        oof = cross_val_predict(pipeline(C), Xtr, ytr, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                method="predict_proba")
        oof_s = time.time() - t
        t = time.time()
        model = pipeline(C).fit(Xtr, ytr)
        dev_probs = model.predict_proba(Xdv)
        fit_s = time.time() - t
        n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert list(model.classes_) == list(range(len(classes)))
    T, res = fit_temperature(oof, ytr)
    oof_cal = apply_temperature(oof, T)
    dev_cal = apply_temperature(dev_probs, T)
    oof_conf, oof_pred, oof_correct = top1(oof_cal, ytr)
    cv = curve(oof_conf, oof_correct)
    dev_conf, dev_pred, dev_correct = top1(dev_cal, ydv)
    targets = []
    for P in TARGETS:
        i = point_target(cv, P)
        e = {"target": P, **at(cv, i)}
        e["dev"] = realized(dev_conf, dev_correct, e["threshold"])
        j = wilson_target_index(cv, P, WILSON_CONFIDENCE)
        w = {"confidence": WILSON_CONFIDENCE, **at(cv, j),
             "oofLower": None if j is None else wilson_lower(cv["correct"][j], cv["accepted"][j], WILSON_CONFIDENCE)}
        w["dev"] = realized(dev_conf, dev_correct, w["threshold"])
        e["wilson"] = w
        targets.append(e)
    oof_acc = float(oof_correct.mean())
    out = {
        "catalog": os.path.basename(os.path.normpath(folder)), "label": label, "C": C,
        "rows": {"train": len(ytr), "dev": len(ydv)}, "classes": len(classes),
        "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "procedure": "Pipeline(FeatureUnion(tfidf word 1-2 sublinear, tfidf char_wb 2-5 sublinear max 100k), "
                     f"LogisticRegression(C={C}, max_iter=1000)); OOF = cross_val_predict(predict_proba, "
                     "StratifiedKFold(5, shuffle=True, random_state=0)); T fitted on OOF; threshold = lowest OOF "
                     "calibrated score whose OOF point precision >= target; refit on all train, dev scored with T",
        "convergenceWarnings": n_conv,
        "temperature": T, "oofNllAtT": float(res.fun), "dnll_dbeta_at_optimum": dnll_dbeta(oof, ytr, T),
        "oof": {"accuracy": oof_acc, "before": metrics(oof, ytr), "after": metrics(oof_cal, ytr),
                "distinctThresholds": len(cv["thresholds"])},
        "dev": {"accuracy": float(dev_correct.mean()), "before": metrics(dev_probs, ydv), "after": metrics(dev_cal, ydv)},
        "targets": targets,
        "seconds": {"oof": oof_s, "fitAndPredictDev": fit_s, "wall": time.time() - t0},
        "processPeakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # the process so far (all catalogs before)
    }
    d = out["dev"]
    print(f"{out['catalog']}: {len(ytr)}/{len(ydv)} rows, {len(classes)} classes, T={T:.4f}, oof acc {oof_acc:.4f}, dev acc "
          f"{d['accuracy']:.4f}, dev ECE {d['before']['ece']:.4f} -> {d['after']['ece']:.4f}; "
          + "; ".join(f"{e['target']}: t={e['threshold']} dev prec {e['dev']['precision']} cov {e['dev']['coverage']}"
                      for e in targets) + f"; wall {out['seconds']['wall']:.1f} s", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="catalog folder(s) holding the train and dev CSVs")
    ap.add_argument("--label", default="category")
    ap.add_argument("--train", default="train.csv")
    ap.add_argument("--dev", default="dev.csv")
    ap.add_argument("--C", type=float, default=10.0)
    ap.add_argument("--out", required=True, help="JSON path (one object for one folder, else a list)")
    a = ap.parse_args()
    results = [run(f, a.label, a.train, a.dev, a.C) for f in a.folders]
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(results[0] if len(results) == 1 else results, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
