#!/usr/bin/python3
# Writes test/golden/sklearn-metrics.json: scikit-learn's evaluation metrics on deterministic labelled problems.
# Run by hand with Debian's python3-sklearn 1.2.1: /usr/bin/python3 scripts/reference/metrics_reference.py (CI never does).
import json
import os
import sys
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                             top_k_accuracy_score)
from sklearn.utils.multiclass import unique_labels

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "test", "golden")

# Model classes in no particular order; the names cover code-point ordering traps: accents, Greek, CJK, a
# fullwidth letter (U+FF46, below the surrogates in UTF-16 but above them as a code point) and an astral letter.
MAIN_MODEL = ["Audio & Hi-Fi", "Bücher", "Café & Thé", "Électroménager", "Küche & Haushalt", "Ελληνικά",
              "玩具", "ｆｕｌｌ-width", "𝒜ccessoires"]
NEVER_PREDICTED = "Bücher"      # the model knows it, and it occurs in y_true, but it never wins the argmax
PREDICTED_ONLY = "Électroménager"  # the model predicts it, but no row is truly labelled with it
UNSEEN = "Épicerie fine"         # labelled rows the model cannot know: always errors, absent from the scores


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make_problem(rng, model_classes, true_labels, true_weights, n, signal, never_predicted=()):
    """Rows with a true label drawn with imbalance; scores favour the true class by `signal` logits."""
    y_true = rng.choice(np.array(true_labels, dtype=object), size=n, p=np.array(true_weights) / sum(true_weights))
    index = {c: i for i, c in enumerate(model_classes)}
    logits = rng.normal(0.0, 1.0, size=(n, len(model_classes)))
    for i, t in enumerate(y_true):
        if t in index:
            logits[i, index[t]] += signal
    scores = softmax(logits)
    never = [index[c] for c in never_predicted]
    for i in range(n):
        row = scores[i]
        allowed = [j for j in np.argsort(-row, kind="stable") if j not in never]
        best, below = row[allowed[0]], row[allowed[1]]
        for t, k in enumerate(never):
            if row[k] > best:
                # Just below the best allowed class, above the next one: it stays near the top of the ranking.
                row[k] = best - (best - below) * (t + 1) / (len(never) + 1)
    order = np.argsort(-scores, axis=1, kind="stable")
    for row in scores:  # the ranking must not depend on how ties are broken
        assert len(set(row.tolist())) == len(row)
    y_pred = np.array([model_classes[o[0]] for o in order], dtype=object)
    return [str(t) for t in y_true], [str(p) for p in y_pred], scores, order


def metrics_case(name, model_classes, y_true, y_pred, scores, order, note):
    labels = unique_labels(y_true, y_pred)  # sorted by code point, as Python sorts str
    k = 3
    # top_k_accuracy_score needs every y_true label among `labels` with a score column: labels the model does
    # not know get a column of -1 (probabilities are >= 0), so they can never be in the top k (k < #classes).
    all_labels = np.array(sorted(set(model_classes) | set(y_true)), dtype=object)
    col = {c: j for j, c in enumerate(model_classes)}
    full = np.full((len(y_true), len(all_labels)), -1.0)
    for j, lab in enumerate(all_labels):
        if lab in col:
            full[:, j] = scores[:, col[lab]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        if len(all_labels) == 2:
            top3 = top_k_accuracy_score(y_true, full[:, 1], k=k, labels=all_labels)
        else:
            top3 = top_k_accuracy_score(y_true, full, k=k, labels=all_labels)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=None, average=None, zero_division=0)
        case = {
            "name": name,
            "note": note,
            "n": len(y_true),
            "model_classes": model_classes,
            "y_true": y_true,
            "y_pred": y_pred,
            # Model classes by descending score, first three (all when fewer), from the same scores as top3.
            "ranked": [[model_classes[j] for j in o[:k]] for o in order],
            "labels": [str(x) for x in labels],
            "accuracy": accuracy_score(y_true, y_pred),
            "f1_macro": f1_score(y_true, y_pred, average="macro", zero_division=0),
            "f1_weighted": f1_score(y_true, y_pred, average="weighted", zero_division=0),
            "precision": p.tolist(),
            "recall": r.tolist(),
            "f1": f.tolist(),
            "support": s.tolist(),
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "top3_accuracy": float(top3),
        }
    # The label order sklearn used must be the code-point order the TypeScript side reproduces.
    assert case["labels"] == sorted(case["labels"])
    return case


def main_case():
    rng = np.random.default_rng(20240611)
    true_labels = [c for c in MAIN_MODEL if c != PREDICTED_ONLY] + [UNSEEN]
    weights = [30, 6, 15, 8, 10, 5, 9, 7, 4]  # "Audio & Hi-Fi" dominant, unseen rare
    y_true, y_pred, scores, order = make_problem(rng, MAIN_MODEL, true_labels, weights, 400, 1.6,
                                                 never_predicted=[NEVER_PREDICTED])
    assert NEVER_PREDICTED in y_true and NEVER_PREDICTED not in y_pred
    assert PREDICTED_ONLY in y_pred and PREDICTED_ONLY not in y_true
    assert UNSEEN in y_true
    return metrics_case("main", MAIN_MODEL, y_true, y_pred, scores, order,
                        "400 rows, 9 model classes; one never predicted, one predicted only, one true label unseen")


def many_case():
    rng = np.random.default_rng(7)
    model = [f"Kategorie {i:02d} – {'ÄÖÜéøß'[i % 6]}{'<&>'[i % 3] if i % 10 == 0 else ''}" for i in range(53)]
    weights = [1.0 / (1 + i) ** 0.8 for i in range(53)]  # Zipf-like imbalance
    y_true, y_pred, scores, order = make_problem(rng, model, model, weights, 1500, 2.2,
                                                 never_predicted=[model[40], model[51]])
    assert model[40] not in y_pred and model[51] not in y_pred
    return metrics_case("many", model, y_true, y_pred, scores, order, "1500 rows, 53 classes, Zipf imbalance")


def binary_case():
    rng = np.random.default_rng(3)
    model = ["no", "yes"]
    y_true, y_pred, scores, order = make_problem(rng, model, model, [3, 1], 60, 1.0)
    return metrics_case("binary", model, y_true, y_pred, scores, order, "two classes: top-3 covers all classes")


def main():
    obj = {
        "generator": "scripts/reference/metrics_reference.py",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "cases": [main_case(), many_case(), binary_case()],
    }
    os.makedirs(GOLDEN, exist_ok=True)
    path = os.path.join(GOLDEN, "sklearn-metrics.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    for c in obj["cases"]:
        print(f"{c['name']}: n={c['n']} labels={len(c['labels'])} accuracy={c['accuracy']:.4f} "
              f"macroF1={c['f1_macro']:.6f} weightedF1={c['f1_weighted']:.6f} top3={c['top3_accuracy']:.4f}")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
