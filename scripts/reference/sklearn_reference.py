#!/usr/bin/python3
# Writes test/golden/sklearn-{tfidf,scaler,logistic}.json from data built here with fixed seeds and literal texts.
# Run by hand with Debian's python3-sklearn 1.2.1: /usr/bin/python3 scripts/reference/sklearn_reference.py (CI never does).
import json
import os
import sys

import numpy as np
import scipy
import scipy.optimize
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._linear_loss import LinearModelLoss
from sklearn._loss.loss import HalfMultinomialLoss
from sklearn.preprocessing import StandardScaler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "test", "golden")

# Product-like rows: punctuation, digits, accents, non-Latin scripts, astral letters (code-point sort order),
# underscores, repeated words, stop words, one-letter tokens and texts that are only stop words.
TEXTS = [
    "Organic Green Tea, 500g - loose leaf green tea from Japan",
    "Green tea bags (20 x 2g) organic",
    "Black tea: Earl Grey 250g tin",
    "Café crème brûlée flavoured coffee beans 1kg",
    "Espresso coffee beans, dark roast, 1 kg bag",
    "Decaf coffee, ground, 250 g",
    "Instant coffee 200g jar - the best coffee for the office",
    "Stainless steel water bottle 750ml",
    "Water bottle, BPA-free plastic, 1L",
    "Insulated steel bottle keeps drinks cold for 24h",
    "Men's running shoes size 42 - blue",
    "Women's running shoes, size 38, pink/white",
    "Trail running shoes waterproof GORE-TEX",
    "Kids' shoes with velcro straps",
    "Cotton T-shirt, white, size M",
    "T-shirt 100% cotton black XL",
    "Organic cotton hoodie grey",
    "Wool socks (3 pairs) - hiking",
    "USB-C charging cable 2m usb_c braided",
    "USB-A to USB-C adapter",
    "Wireless charger 15W for phone",
    "Phone case for iPhone 14, silicone, black",
    "Screen protector tempered glass iPhone 14",
    "Bluetooth headphones noise cancelling",
    "Wireless earbuds with charging case",
    "Laptop stand aluminium adjustable",
    "Mechanical keyboard RGB, brown switches",
    "Wireless mouse ergonomic 2.4GHz",
    "HDMI cable 4K 2m",
    "Ñandú plush toy for kids",
    "Wooden puzzle 100 pieces for kids ages 3+",
    "Building blocks set 500 pieces",
    "Board game for the whole family",
    "Plüschtier Bär, groß, Straße-Edition",
    "STRASSE street map of Berlin",
    "ΚΑΦΕΣ ελληνικός 200g",
    "Ελληνικός καφές, αλεσμένος",
    "緑茶 ティーバッグ 20袋",
    "Matcha 緑茶 powder 30g",
    "ＡＢＣ full-width letters ＡＢＣ",
    "𝐁𝐨𝐥𝐝 mathematical letters 𝐁𝐨𝐥𝐝 sale",
    "İstanbul coffee cup set",
    "Olive oil extra virgin 1L, Italy",
    "Olive oil 500ml spray",
    "Balsamic vinegar of Modena 250ml",
    "Sea salt flakes 250g",
    "Black pepper whole 100g",
    "Pasta spaghetti 500g, durum wheat",
    "Pasta penne rigate 500g",
    "Tomato sauce basil 400g jar",
    "Dog food chicken & rice 12kg",
    "Cat food salmon 85g pouch x 12",
    "Cat litter clumping 10L",
    "Dog leash 2m reflective",
    "Garden hose 25m with spray nozzle",
    "Garden gloves size 8",
    "LED bulb E27 9W warm white",
    "LED strip lights 5m RGB",
    "the and of to a in is it",
    "x²  ½ cup measuring jug 500ml ①②",
    "Green green GREEN tea tea tea tea",
    "coffee coffee coffee beans",
    "Caf\u00e9  cr\u00e8me\tbr\u00fbl\u00e9e \U0001F600 mug,  a  x",
]

# Texts never seen in fit: out-of-vocabulary words, empty, punctuation only.
UNSEEN = [
    "green coffee beans, organic",
    "Brand new unseen product zzz",
    "",
    "!!! --- ???",
    "tea tea tea green usb",
]

TFIDF_CASES = {
    "defaults": {},
    "bigrams_stop_mindf2": {"ngram_range": (1, 2), "stop_words": "english", "min_df": 2},
    "max_features_20": {"max_features": 20},
    "bigrams_max_features_50": {"ngram_range": (1, 2), "max_features": 50},
    "max_df_0.5": {"max_df": 0.5},
    "sublinear_nosmooth_nonorm": {"sublinear_tf": True, "smooth_idf": False, "norm": None},
    "trigrams_only_mindf_prop": {"ngram_range": (2, 3), "min_df": 0.03, "lowercase": False},
    "char_wb_2_5": {"analyzer": "char_wb", "ngram_range": (2, 5)},
    "char_wb_1_3_sublinear": {"analyzer": "char_wb", "ngram_range": (1, 3), "sublinear_tf": True, "min_df": 2},
    "char_1_4": {"analyzer": "char", "ngram_range": (1, 4), "lowercase": False},
    "char_3_5_max_features": {"analyzer": "char", "ngram_range": (3, 5), "max_features": 300},
}


def sparse_rows(M):
    M = M.tocsr()
    M.sort_indices()
    rows = []
    for i in range(M.shape[0]):
        a, b = M.indptr[i], M.indptr[i + 1]
        rows.append({"indices": M.indices[a:b].tolist(), "values": M.data[a:b].tolist()})
    return rows


def top_tags(row, terms, k):
    pairs = [(v, terms[j]) for j, v in zip(row["indices"], row["values"]) if v > 0]
    pairs.sort(key=lambda p: (-p[0], p[1]))
    return [t for _, t in pairs[:k]]


def tfidf_golden():
    cases = []
    for name, params in TFIDF_CASES.items():
        vec = TfidfVectorizer(**params)
        X = vec.fit_transform(TEXTS)
        terms = vec.get_feature_names_out().tolist()
        assert terms == sorted(terms), name
        train_rows = sparse_rows(X)
        unseen_rows = sparse_rows(vec.transform(UNSEEN))
        p = dict(params)
        if "ngram_range" in p:
            p["ngram_range"] = list(p["ngram_range"])
        cases.append({
            "name": name,
            "params": p,
            # int vs float matters for min_df/max_df, so it is spelled out rather than left to JSON.
            "min_df_kind": "count" if isinstance(params.get("min_df", 1), int) else "proportion",
            "max_df_kind": "count" if isinstance(params.get("max_df", 1.0), int) else "proportion",
            "terms": terms,
            "idf": vec.idf_.tolist(),
            "train": train_rows,
            "unseen": unseen_rows,
            "top3_train": [top_tags(r, terms, 3) for r in train_rows],
            "top3_unseen": [top_tags(r, terms, 3) for r in unseen_rows],
            "cutoff_tie": cutoff_tie(vec, params),
        })
    return {"texts": TEXTS, "unseen": UNSEEN, "cases": cases, "argsort_cases": argsort_cases()}


def cutoff_tie(vec, params):
    """Whether max_features cut through equal term frequencies, and whether a stable sort would keep other terms."""
    k = params.get("max_features")
    if k is None:
        return None
    counts = TfidfVectorizer(**{**params, "max_features": None, "use_idf": False, "norm": None}).fit_transform(TEXTS)
    tfs = np.asarray(counts.sum(axis=0)).ravel()
    by_tf = np.sort(tfs)[::-1]
    default_keep = set(np.argsort(-tfs)[:k].tolist())
    stable_keep = set(np.argsort(-tfs, kind="stable")[:k].tolist())
    return {"tied": bool(len(tfs) > k and by_tf[k - 1] == by_tf[k]), "stable_sort_differs": default_keep != stable_keep}


def argsort_cases():
    # np.argsort's default (introsort, not stable) decides ties at the max_features cut; these pin its order.
    rng = np.random.RandomState(7)
    out = []
    for n in (5, 16, 17, 40, 200, 1000):
        v = -rng.randint(1, 6, size=n).astype(np.float64)
        out.append({"values": v.tolist(), "argsort": np.argsort(v).tolist()})
    v = -np.ones(300)
    out.append({"values": v.tolist(), "argsort": np.argsort(v).tolist()})
    v = -np.arange(300, dtype=np.float64) % 7
    out.append({"values": v.tolist(), "argsort": np.argsort(v).tolist()})
    return out


def make_dataset():
    rng = np.random.RandomState(20240611)
    n_classes, d = 5, 20
    sizes = [90, 75, 60, 45, 30]
    # Overlapping classes (~85% train accuracy) so probabilities stay away from 0/1 and some rows are near ties.
    centers = rng.normal(0.0, 0.4, size=(n_classes, d))
    X, y = [], []
    for k, m in enumerate(sizes):
        X.append(centers[k] + rng.normal(0.0, 1.0, size=(m, d)))
        y.extend([k] * m)
    X = np.vstack(X)
    y = np.asarray(y, dtype=np.int64)
    perm = rng.permutation(len(y))
    X, y = X[perm], y[perm]
    # Per-feature offsets and scales the scaler has to undo, plus one constant feature (scale must become 1).
    X = X * rng.uniform(0.1, 50.0, size=d) + rng.uniform(-100.0, 100.0, size=d)
    X[:, 7] = 3.25
    return X, y, n_classes


def scaler_golden(X):
    sc = StandardScaler().fit(X)
    X32 = X.astype(np.float32)
    sc32 = StandardScaler().fit(X32)
    return {
        "n": X.shape[0],
        "d": X.shape[1],
        "X": X.ravel().tolist(),
        "mean": sc.mean_.tolist(),
        "scale": sc.scale_.tolist(),
        "var": sc.var_.tolist(),
        "transformed": sc.transform(X).ravel().tolist(),
        "float32": {
            "X": X32.astype(np.float64).ravel().tolist(),
            "mean": sc32.mean_.tolist(),
            "scale": sc32.scale_.tolist(),
        },
    }


def objective(coef_full, Xs, y, n_classes, sw, C):
    """sklearn's own lbfgs objective: sum_i sw_i * CE_i + ||W||^2 / (2C), parameters as (K, d+1)."""
    loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=n_classes), fit_intercept=True)
    w = np.asfortranarray(coef_full).ravel(order="F")
    f, g = loss.loss_gradient(w, Xs, y.astype(np.float64), sw, 1.0 / C, 1)
    return loss, w, f, g


def newton_polish(w, Xs, y, n_classes, sw, C, steps=5):
    """A few exact Newton steps on sklearn's objective, so the recorded optimum has |grad| near 1e-12.

    The Hessian is singular along "add a constant to every intercept"; lstsq's minimum-norm step keeps the
    intercepts' sum where lbfgs left it (zero), which is also where the TypeScript solver keeps it.
    """
    loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=n_classes), fit_intercept=True)
    yf = y.astype(np.float64)
    n, d = Xs.shape
    Xt = np.hstack([Xs, np.ones((n, 1))])
    K, D = n_classes, d + 1
    for _ in range(steps):
        f, g = loss.loss_gradient(w, Xs, yf, sw, 1.0 / C, 1)
        W = w.reshape((K, D), order="F")
        z = Xt @ W.T
        z -= z.max(axis=1, keepdims=True)
        P = np.exp(z)
        P /= P.sum(axis=1, keepdims=True)
        # H[(k,a),(l,b)] = sum_i sw_i (P_ik d_kl - P_ik P_il) Xt_ia Xt_ib, parameters ordered (k, a) row-major.
        H = np.zeros((K * D, K * D))
        for k in range(K):
            for l in range(K):
                c = sw * (P[:, k] * ((k == l) - P[:, l]))
                H[k * D:(k + 1) * D, l * D:(l + 1) * D] = (Xt * c[:, None]).T @ Xt
        for k in range(K):
            H[k * D + np.arange(d), k * D + np.arange(d)] += 1.0 / C
        G = g.reshape((K, D), order="F").ravel()
        step = np.linalg.lstsq(H, G, rcond=None)[0]
        W = W - step.reshape((K, D))
        w = np.asfortranarray(W).ravel(order="F")
    f, g = loss.loss_gradient(w, Xs, yf, sw, 1.0 / C, 1)
    return w, g


def logistic_golden(Xs, y, n_classes):
    rng = np.random.RandomState(99)
    sample_weight = rng.uniform(0.2, 3.0, size=len(y))
    cases = []
    specs = [
        ("C1", {"C": 1.0}, None),
        ("C0.1", {"C": 0.1}, None),
        ("C1_balanced", {"C": 1.0, "class_weight": "balanced"}, None),
        ("C0.5_sample_weight", {"C": 0.5}, sample_weight),
    ]
    for name, params, sw in specs:
        clf = LogisticRegression(multi_class="multinomial", solver="lbfgs", tol=1e-10, max_iter=10000, **params)
        clf.fit(Xs, y, sample_weight=sw)
        # Effective per-row weights, as sklearn's _logistic_regression_path builds them.
        eff = np.ones(len(y)) if sw is None else sw.copy()
        if params.get("class_weight") == "balanced":
            eff *= (len(y) / (n_classes * np.bincount(y)))[y]
        full = np.hstack([clf.coef_, clf.intercept_[:, None]])
        loss, w0, f, g = objective(full, Xs, y, n_classes, eff, params["C"])
        # sklearn 1.2.1 keeps scipy's default ftol (2.2e-9), so it can stop short of tol=1e-10; a refined run
        # from its answer pins the true optimum the TypeScript solver should reach.
        res = scipy.optimize.minimize(
            loss.loss_gradient, w0, method="L-BFGS-B", jac=True,
            args=(Xs, y.astype(np.float64), eff, 1.0 / params["C"], 1),
            options={"gtol": 1e-13, "ftol": 0.0, "maxiter": 20000, "maxls": 50},
        )
        w_opt, g_opt = newton_polish(res.x, Xs, y, n_classes, eff, params["C"])
        ref = w_opt.reshape((n_classes, -1), order="F")
        ref_coef, ref_int = ref[:, :-1], ref[:, -1]
        z = Xs @ ref_coef.T + ref_int
        z -= z.max(axis=1, keepdims=True)
        ref_proba = np.exp(z)
        ref_proba /= ref_proba.sum(axis=1, keepdims=True)
        cases.append({
            "name": name,
            "C": params["C"],
            "class_weight": params.get("class_weight"),
            "sample_weight": None if sw is None else sw.tolist(),
            "coef": clf.coef_.ravel().tolist(),
            "intercept": clf.intercept_.tolist(),
            "n_iter": int(clf.n_iter_[0]),
            "loss": float(f),
            "grad_max_abs": float(np.abs(g).max()),
            "predict": clf.predict(Xs).tolist(),
            "predict_proba": clf.predict_proba(Xs).ravel().tolist(),
            "optimum": {
                "coef": ref_coef.ravel().tolist(),
                "intercept": ref_int.tolist(),
                "loss": float(loss.loss_gradient(w_opt, Xs, y.astype(np.float64), eff, 1.0 / params["C"], 1)[0]),
                "grad_max_abs": float(np.abs(g_opt).max()),
                "predict_proba": ref_proba.ravel().tolist(),
            },
        })
    # X is sklearn-scaler.json's "transformed" (StandardScaler().fit_transform of the same rows), not repeated here.
    return {"n": Xs.shape[0], "d": Xs.shape[1], "n_classes": n_classes, "X_from": "sklearn-scaler.json#transformed",
            "y": y.tolist(), "cases": cases}


def write(name, obj):
    obj = {"generator": "scripts/reference/sklearn_reference.py",
           "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                        "python": sys.version.split()[0]},
           **obj}
    path = os.path.join(GOLDEN, name)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    tf = tfidf_golden()
    for c in tf["cases"]:
        print(f"tfidf {c['name']}: {len(c['terms'])} terms, cutoff_tie={c['cutoff_tie']}")
    write("sklearn-tfidf.json", tf)
    X, y, n_classes = make_dataset()
    sc = scaler_golden(X)
    write("sklearn-scaler.json", sc)
    Xs = StandardScaler().fit_transform(X)
    assert np.array_equal(Xs.ravel(), np.asarray(sc["transformed"]))
    lg = logistic_golden(Xs, y, n_classes)
    for c in lg["cases"]:
        o = c["optimum"]
        dp = np.abs(np.asarray(c["predict_proba"]) - np.asarray(o["predict_proba"])).max()
        print(f"logistic {c['name']}: n_iter={c['n_iter']} sklearn |g|max={c['grad_max_abs']:.2e} "
              f"optimum |g|max={o['grad_max_abs']:.2e} max|dproba| sklearn vs optimum={dp:.2e} "
              f"train acc={np.mean(np.asarray(c['predict']) == y):.3f}")
    write("sklearn-logistic.json", lg)


if __name__ == "__main__":
    main()
