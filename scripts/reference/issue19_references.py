#!/usr/bin/python3
"""Issue 19's scikit-learn references on one repeated split (repeated_splits.py), for the README's repeated-split table.

The issue names one reference per catalog; this fits it on SPLIT/train.csv and scores SPLIT/dev.csv (macro-F1 and
accuracy over the dev labels and the predictions, sklearn's f1_score average='macro'):
  amazon-electronics: LinearSVC(C=0.5, class_weight='balanced') on TF-IDF word 1-2 (English stop words) + char_wb 2-5,
                      both sublinear: the best of the issue's small grid;
  flipkart-products:  TF-IDF text alone, attributes_reference.py's text pipeline (word 1-2 + char_wb 2-5,
                      LogisticRegression(C=10));
  myntra-fashion:     titles blanked (SPLIT/dev-blank.csv, from repeated_splits.py --blank-titles 0.3): that text
                      pipeline on rows with a title, the image pipeline (StandardScaler + LogisticRegression(C=0.05))
                      alone on the rest. The issue's other myntra reference (one LogisticRegression over
                      [TF-IDF | 0.05 x standardised image]) is fusion_kinds_reference.py's "early".

Usage (Debian's python3-sklearn 1.2.1, run by hand, never a runtime dependency; image features for myntra from
scripts/export-image-features.ts, as attributes_reference.py):
  OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/issue19_references.py CATALOG SPLIT \
      [--train-features SPLIT/train-image --dev-features SPLIT/dev-image] [--out X.json]
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attributes_reference import image_pipeline, read_features, read_rows, row_text, text_pipeline  # noqa: E402


def figures(y_true, y_pred):
    return {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4), "macroF1": round(float(f1_score(y_true, y_pred, average="macro")), 4)}


def svc_pipeline():
    return Pipeline([
        ("features", FeatureUnion([
            ("w", TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True)),
            ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))])),
        ("clf", LinearSVC(C=0.5, class_weight="balanced"))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("catalog", choices=["amazon-electronics", "flipkart-products", "myntra-fashion"])
    ap.add_argument("split", help="a folder from repeated_splits.py: train.csv, dev.csv (and dev-blank.csv for myntra)")
    ap.add_argument("--label-column", default="category")
    ap.add_argument("--train-features", help="prefix of train.csv's image export (myntra)")
    ap.add_argument("--dev-features", help="prefix of dev.csv's image export (myntra)")
    ap.add_argument("--out")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    tr = read_rows(os.path.join(a.split, "train.csv"))
    y = np.array([r[a.label_column] for r in tr])
    out = {"catalog": a.catalog, "split": os.path.abspath(a.split), "trainRows": len(tr)}
    if a.catalog == "myntra-fashion":
        if not (a.train_features and a.dev_features):
            sys.exit("myntra-fashion needs --train-features and --dev-features")
        blank = read_rows(os.path.join(a.split, "dev-blank.csv"))
        dev_ids = [r["id"] for r in read_rows(os.path.join(a.split, "dev.csv"))]
        if [r["id"] for r in blank] != dev_ids:
            sys.exit("dev-blank.csv does not hold dev.csv's rows in its order")
        Xtr, oktr, _ = read_features(a.train_features, [r["id"] for r in tr])
        Xdv, okdv, _ = read_features(a.dev_features, dev_ids)
        text = clone(text_pipeline(10.0)).fit([row_text(r) for r in tr], y)
        image = clone(image_pipeline(0.05)).fit(Xtr[oktr], y[oktr])
        titled = np.array([row_text(r) != "" for r in blank])
        if not okdv[~titled].all():
            sys.exit("a row without a title has no photo features")
        pred = np.empty(len(blank), dtype=object)
        pred[titled] = text.predict([row_text(r) for r, t in zip(blank, titled) if t])
        pred[~titled] = image.predict(Xdv[~titled])
        out["reference"] = "blanked: text pipeline (LogisticRegression C 10) on rows with a title, image pipeline (C 0.05) on the rest"
        out["devRows"] = len(blank)
        out["withoutTitle"] = int((~titled).sum())
        out["figures"] = figures([r[a.label_column] for r in blank], pred)
    else:
        dv = read_rows(os.path.join(a.split, "dev.csv"))
        model = svc_pipeline() if a.catalog == "amazon-electronics" else clone(text_pipeline(10.0))
        model.fit([row_text(r) for r in tr], y)
        out["reference"] = ("LinearSVC(C=0.5, balanced), TF-IDF word 1-2 (English stop words) + char_wb 2-5" if a.catalog == "amazon-electronics"
                            else "text alone: TF-IDF word 1-2 + char_wb 2-5, LogisticRegression(C=10)")
        out["devRows"] = len(dv)
        out["figures"] = figures([r[a.label_column] for r in dv], model.predict([row_text(r) for r in dv]))
    print(json.dumps(out))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
