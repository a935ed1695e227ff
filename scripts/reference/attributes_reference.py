#!/usr/bin/python3
"""What a careful scikit-learn user gets predicting several attributes of a catalog from text, photo and both.

Per label column (default category, gender, colour, usage, season): train rows with a non-empty value, values seen
fewer than --min-count (2) times in train dropped (and reported); dev rows whose value was kept are scored.
  text:  Pipeline(FeatureUnion(TfidfVectorizer word 1-2 sublinear, TfidfVectorizer char_wb 2-5 sublinear max 100k)
         on title + " " + description, LogisticRegression(C=10, max_iter=1000));
  image: the project's pooled MobileNetV2 features (scripts/export-image-features.ts), Pipeline(StandardScaler,
         LogisticRegression(C=0.05, max_iter=1000));
  fused: late fusion, argmax of w*log p_text + (1-w)*log p_image, w in 0, 0.05, ..., 1 chosen by macro-F1 on 5-fold
         out-of-fold probabilities on train (StratifiedKFold(5, shuffle=True, random_state=0), the same folds for both
         pipelines, so the vectorizer and scaler are fitted inside each fold; probability columns aligned to the full
         class list, a class absent from a fold's training rows gets probability 0); ties: the smallest w.
Then both pipelines are refitted on all kept train rows and predict dev. Accuracy and macro-F1 (sklearn f1_score
average='macro': over the dev labels and the predictions) per attribute and kind; the chosen w and the OOF macro-F1
of every w; row counts; wall time of each attribute's fits. A row whose photo failed (ok false in the export) is left
out of the image fits; its image probabilities are the train class frequencies, and fused uses its text alone.

Usage (Debian's python3-sklearn 1.2.1, run by hand, never a runtime dependency):
  CATEGORIZE_CACHE=DIR node dist/scripts/export-image-features.js CATALOG/train.csv --cache EMB --out F/train-image
  CATEGORIZE_CACHE=DIR node dist/scripts/export-image-features.js CATALOG/dev.csv --cache EMB --out F/dev-image
  OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/attributes_reference.py CATALOG \
      --train-features F/train-image --dev-features F/dev-image [--labels category,gender,colour,usage,season] \
      [--train train.csv] [--dev dev.csv] [--jobs 1] --out X.json
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
from collections import Counter
from types import SimpleNamespace

import numpy as np
import scipy
import sklearn
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

LABELS = ["category", "gender", "colour", "usage", "season"]
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
EPS = 1e-15  # log(0) of a class absent from a fold's training rows


def read_rows(path):
    return list(csv.DictReader(open(path, encoding="utf-8", newline="")))


def row_text(r):
    """What the text pipeline reads of a row: title + " " + description."""
    return (r["title"] + " " + (r.get("description") or "")).strip()


def read_features(prefix, ids):
    meta = json.load(open(prefix + ".json", encoding="utf-8"))
    if meta["ids"] != ids:
        sys.exit(f"{prefix}.json: ids differ from the CSV's (not exported from this file, or reordered)")
    X = np.fromfile(prefix + ".f32", dtype="<f4").reshape(len(ids), meta["dim"])
    return X, np.array(meta["ok"], dtype=bool), meta


def read_inputs(a):
    """The train and dev rows (a.folder's a.train, a.dev) and their exported image features (features, ok, meta)."""
    tr_rows = read_rows(os.path.join(a.folder, a.train))
    dv_rows = read_rows(os.path.join(a.folder, a.dev))
    return (tr_rows, dv_rows, read_features(a.train_features, [r["id"] for r in tr_rows]),
            read_features(a.dev_features, [r["id"] for r in dv_rows]))


def text_pipeline(C):
    return Pipeline([
        ("features", FeatureUnion([
            ("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=100000))])),
        ("clf", LogisticRegression(C=C, max_iter=1000))])


def image_pipeline(C):
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C, max_iter=1000))])


def fit_predict(model, Xtr, ytr, Xte, K):
    """Fits a clone; probabilities of Xte with columns aligned to classes 0..K-1 (absent ones 0); convergence warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        m = clone(model).fit(Xtr, ytr)
        p = m.predict_proba(Xte)
    out = np.zeros((p.shape[0], K))
    out[:, m.classes_] = p
    return out, sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def take(X, idx):
    return [X[i] for i in idx] if isinstance(X, list) else X[idx]


def image_probs(model, Xtr, ytr, oktr, Xte, okte, K, prior):
    """Image probabilities: fitted on the train rows with a photo; rows without one get the class prior."""
    out = np.tile(prior, (len(okte), 1))
    p, conv = fit_predict(model, Xtr[oktr], ytr[oktr], Xte[okte], K)
    out[okte] = p
    return out, conv


def fuse(pt, pi, w, ok):
    """argmax of w log p_text + (1-w) log p_image; rows without a photo: text alone."""
    s = w * np.log(np.clip(pt, EPS, None)) + (1 - w) * np.log(np.clip(pi, EPS, None))
    s[~ok] = np.log(np.clip(pt[~ok], EPS, None))
    return s.argmax(1)


def scores(classes, y, pred):
    yt, yp = classes[y], classes[pred]
    return {"accuracy": float(accuracy_score(yt, yp)), "macroF1": float(f1_score(yt, yp, average="macro"))}


def label_data(label, tr_rows, dv_rows, Xtr_img, oktr_all, Xdv_img, okdv_all, a):
    """One label column's kept values (seen --min-count+ times in train), its train and dev rows with a kept value,
    their texts, labels and image features, the train prior over rows with a photo, and the seeded folds."""
    value = lambda r: (r.get(label) or "").strip()  # noqa: E731
    counts = Counter(value(r) for r in tr_rows if value(r))
    classes = np.array(sorted(v for v, n in counts.items() if n >= a.min_count))
    index = {c: i for i, c in enumerate(classes)}
    K = len(classes)
    tr = [i for i, r in enumerate(tr_rows) if value(r) in index]
    dv = [i for i, r in enumerate(dv_rows) if value(r) in index]
    text = lambda rows, idx: [row_text(rows[i]) for i in idx]  # noqa: E731
    ytr = np.array([index[value(tr_rows[i])] for i in tr])
    oktr = oktr_all[tr]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class with fewer members than folds: expected, reported
        folds = list(StratifiedKFold(a.folds, shuffle=True, random_state=0).split(np.zeros(len(ytr)), ytr))
    return SimpleNamespace(
        value=value, counts=counts, dropped={v: n for v, n in sorted(counts.items()) if n < a.min_count},
        classes=classes, index=index, K=K, tr=tr, dv=dv,
        dv_out=Counter(value(r) or "(empty)" for r in dv_rows if value(r) not in index),
        Ttr=text(tr_rows, tr), Tdv=text(dv_rows, dv), ytr=ytr, ydv=np.array([index[value(dv_rows[i])] for i in dv]),
        Itr=Xtr_img[tr], Idv=Xdv_img[dv], oktr=oktr, okdv=okdv_all[dv],
        prior=np.bincount(ytr[oktr], minlength=K) / max(1, oktr.sum()), folds=folds)


def heads_oof_and_dev(d, tp, ip, jobs):
    """The text and image pipelines' out-of-fold train probabilities (d.folds) and, refitted on all train rows,
    their dev probabilities; convergence warnings and seconds per step."""
    seconds = {}

    def oof_fold(kind, f_tr, f_te):
        if kind == "text":
            return fit_predict(tp, take(d.Ttr, f_tr), d.ytr[f_tr], take(d.Ttr, f_te), d.K)
        return image_probs(ip, d.Itr[f_tr], d.ytr[f_tr], d.oktr[f_tr], d.Itr[f_te], d.oktr[f_te], d.K, d.prior)

    conv = {}
    oof = {}
    for kind in ("text", "image"):
        t = time.time()
        res = Parallel(n_jobs=jobs)(delayed(oof_fold)(kind, f_tr, f_te) for f_tr, f_te in d.folds)
        P = np.zeros((len(d.ytr), d.K))
        for (f_tr, f_te), (p, _) in zip(d.folds, res):
            P[f_te] = p
        oof[kind] = P
        conv[kind] = sum(c for _, c in res)
        seconds[f"{kind}Oof"] = time.time() - t
    t = time.time()
    pt, c1 = fit_predict(tp, d.Ttr, d.ytr, d.Tdv, d.K)
    seconds["textFitAndPredictDev"] = time.time() - t
    t = time.time()
    pi, c2 = image_probs(ip, d.Itr, d.ytr, d.oktr, d.Idv, d.okdv, d.K, d.prior)
    seconds["imageFitAndPredictDev"] = time.time() - t
    conv["text"] += c1
    conv["image"] += c2
    return oof, pt, pi, conv, seconds


def run_label(label, tr_rows, dv_rows, Xtr_img, oktr_all, Xdv_img, okdv_all, a):
    t0 = time.time()
    d = label_data(label, tr_rows, dv_rows, Xtr_img, oktr_all, Xdv_img, okdv_all, a)
    value, dropped, classes, K, tr, dv, dv_out = d.value, d.dropped, d.classes, d.K, d.tr, d.dv, d.dv_out
    ytr, ydv, oktr, okdv = d.ytr, d.ydv, d.oktr, d.okdv
    oof, pt, pi, conv, seconds = heads_oof_and_dev(d, text_pipeline(a.C_text), image_pipeline(a.C_image), a.jobs)
    grid = [float(f1_score(ytr, fuse(oof["text"], oof["image"], w, oktr), average="macro")) for w in WEIGHTS]
    w = WEIGHTS[int(np.argmax(grid))]
    dev = {"text": scores(classes, ydv, pt.argmax(1)), "image": scores(classes, ydv, pi.argmax(1)),
           "fused": scores(classes, ydv, fuse(pt, pi, w, okdv))}
    oof_scores = {"text": scores(classes, ytr, oof["text"].argmax(1)), "image": scores(classes, ytr, oof["image"].argmax(1)),
                  "fused": scores(classes, ytr, fuse(oof["text"], oof["image"], w, oktr))}
    seconds["wall"] = time.time() - t0
    out = {
        "label": label, "classes": K,
        "droppedValues": dropped,
        "rows": {"trainRead": len(tr_rows), "train": len(tr), "trainEmpty": sum(1 for r in tr_rows if not value(r)),
                 "trainDroppedRare": sum(dropped.values()), "dev": len(dv), "devRead": len(dv_rows),
                 "devLeftOut": dict(sorted(dv_out.items())), "trainWithoutPhoto": int((~oktr).sum()),
                 "devWithoutPhoto": int((~okdv).sum())},
        "w": w, "oofMacroF1ByW": dict(zip([str(x) for x in WEIGHTS], grid)),
        "dev": dev, "oof": oof_scores,
        "convergenceWarnings": conv, "seconds": seconds,
    }
    print(f"{label}: {K} classes, {len(tr)}/{len(dv)} rows, w={w}; " + "; ".join(
        f"{k} {v['accuracy']:.4f}/{v['macroF1']:.4f}" for k, v in dev.items()) + f"; {seconds['wall']:.1f} s",
        file=sys.stderr)
    return out


def table(results):
    lines = [f"{'attribute':<10}{'cls':>4}{'train':>6}{'dev':>6}  {'text acc/F1':>13}  {'image acc/F1':>13}  "
             f"{'fused acc/F1':>13}{'w':>6}{'sec':>7}"]
    for r in results:
        d = r["dev"]
        cell = lambda k: f"{d[k]['accuracy']:.3f}/{d[k]['macroF1']:.3f}"  # noqa: E731
        lines.append(f"{r['label']:<10}{r['classes']:>4}{r['rows']['train']:>6}{r['rows']['dev']:>6}  {cell('text'):>13}  "
                     f"{cell('image'):>13}  {cell('fused'):>13}{r['w']:>6.2f}{r['seconds']['wall']:>7.1f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="catalog folder holding the train and dev CSVs")
    ap.add_argument("--train-features", required=True, help="prefix of the train CSV's export (.f32 + .json)")
    ap.add_argument("--dev-features", required=True, help="prefix of the dev CSV's export (.f32 + .json)")
    ap.add_argument("--labels", default=",".join(LABELS))
    ap.add_argument("--train", default="train.csv")
    ap.add_argument("--dev", default="dev.csv")
    ap.add_argument("--min-count", type=int, default=2, help="train values seen fewer times are dropped")
    ap.add_argument("--C-text", type=float, default=10.0)
    ap.add_argument("--C-image", type=float, default=0.05)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1, help="folds fitted at once (joblib); 1 for comparable times")
    ap.add_argument("--out", required=True, help="JSON path")
    a = ap.parse_args()
    t0 = time.time()
    tr_rows, dv_rows, (Xtr, oktr, mtr), (Xdv, okdv, mdv) = read_inputs(a)
    results = [run_label(label, tr_rows, dv_rows, Xtr, oktr, Xdv, okdv, a) for label in a.labels.split(",")]
    out = {
        "catalog": os.path.basename(os.path.normpath(a.folder)),
        "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "procedure": "text: Pipeline(FeatureUnion(tfidf word 1-2 sublinear, tfidf char_wb 2-5 sublinear max 100k) on "
                     f"title + ' ' + description, LogisticRegression(C={a.C_text}, max_iter=1000)); image: exported "
                     f"pooled features, Pipeline(StandardScaler, LogisticRegression(C={a.C_image}, max_iter=1000)); "
                     "fused: argmax w log p_text + (1-w) log p_image, w in 0..1 step 0.05 by macro-F1 on OOF "
                     f"probabilities (StratifiedKFold({a.folds}, shuffle=True, random_state=0), columns aligned to all "
                     "classes; ties: smallest w); refit on all kept train rows; dev rows whose value was kept; "
                     f"values seen < {a.min_count} times in train dropped",
        "minCount": a.min_count, "folds": a.folds, "jobs": a.jobs,
        "imageFeatures": {"dim": int(Xtr.shape[1]), "model": mtr["model"], "trainWithoutPhoto": int((~oktr).sum()),
                          "devWithoutPhoto": int((~okdv).sum()), "trainFailed": mtr.get("failed", []),
                          "devFailed": mdv.get("failed", [])},
        "attributes": results,
        "seconds": {"wall": time.time() - t0},
        "processPeakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(table(results))


if __name__ == "__main__":
    main()
