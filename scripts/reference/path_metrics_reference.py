#!/usr/bin/python3
# Writes test/golden/sklearn-path-metrics.json: hierarchical precision/recall/F1 (Kiritchenko et al.: each path
# with its ancestors, micro-averaged) and per-level accuracy / macro-F1, computed with scikit-learn on seeded
# (true path, predicted node) pairs over a ragged tree: backed-off answers, no answer, siblings, wrong top levels.
# Run by hand with Debian's python3-sklearn 1.2.1: OPENBLAS_CORETYPE=Haswell /usr/bin/python3 scripts/reference/path_metrics_reference.py
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEP = " > "
# A ragged tree: leaves at depth 1 to 4, an inner node that is itself a label ("Home > Kitchen"), accents.
PATHS = ["Books", "Clothing > Men > Shirts", "Clothing > Men > Jeans", "Clothing > Women > Dresses",
         "Clothing > Women > Lingerie > Bras", "Clothing > Women > Lingerie > Nightwear", "Home > Kitchen",
         "Home > Kitchen > Cups", "Home > Kitchen > Pans", "Home > Décor > Clocks", "Toys"]
NONE = "\u2205"  # no prediction at this level (never a node name)


def ancestors(p):
    levels = p.split(SEP)
    return [SEP.join(levels[:d + 1]) for d in range(len(levels))]


def main():
    rng = np.random.default_rng(20261203)
    rows = []
    for _ in range(80):
        t = PATHS[rng.integers(len(PATHS))]
        u = rng.random()
        if u < 0.45:
            p = t                                   # exact
        elif u < 0.65:
            lv = t.split(SEP)                       # backed off to an ancestor (or the same when depth 1)
            p = SEP.join(lv[:max(1, rng.integers(1, len(lv) + 1) - 1)]) if len(lv) > 1 else t
        elif u < 0.75:
            p = None                                # no answer
        else:
            p = PATHS[rng.integers(len(PATHS))]     # anything: a sibling, a wrong top level, deeper than the truth
        rows.append({"true": t, "pred": p})
    truth = [set(ancestors(r["true"])) for r in rows]
    pred = [set(ancestors(r["pred"])) if r["pred"] is not None else set() for r in rows]
    mlb = MultiLabelBinarizer().fit(truth + pred)
    hp, hr, hf, _ = precision_recall_fscore_support(mlb.transform(truth), mlb.transform(pred), average="micro", zero_division=0)
    levels = []
    for level in range(1, 5):
        idx = [i for i, r in enumerate(rows) if len(r["true"].split(SEP)) >= level]
        yt = [SEP.join(rows[i]["true"].split(SEP)[:level]) for i in idx]
        yp = []
        for i in idx:
            p = rows[i]["pred"]
            yp.append(SEP.join(p.split(SEP)[:level]) if p is not None and len(p.split(SEP)) >= level else NONE)
        labels = sorted(set(yt) | (set(yp) - {NONE}))
        levels.append({"level": level, "rows": len(idx), "accuracy": accuracy_score(yt, yp),
                       "macroF1": f1_score(yt, yp, labels=labels, average="macro", zero_division=0)})
    out = {"sklearn": sklearn.__version__, "rows": rows,
           "hierarchical": {"precision": hp, "recall": hr, "f1": hf}, "levels": levels}
    with open(os.path.join(ROOT, "test", "golden", "sklearn-path-metrics.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


main()
