#!/usr/bin/python3
# Writes fixtures/sklearn-import/: small scikit-learn heads fitted here with fixed seeds, imported with
# scripts/import-sklearn.py into bundles, and golden.json with scikit-learn's predict_proba and top-5 TF-IDF tags
# of held-out rows. test/unit/sklearn-import.test.ts checks categorize against it without Python.
# Run by hand with Debian's python3-sklearn 1.2.1: /usr/bin/python3 scripts/make-sklearn-golden.py (CI never does).
import json
import os
import shutil
import subprocess
import sys
import tempfile

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder, StandardScaler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "fixtures", "sklearn-import")
IMPORTER = os.path.join(ROOT, "scripts", "import-sklearn.py")
TEXT_DIM, IMAGE_DIM = 8, 12
TOP_K = 5
SOURCE_DATE_EPOCH = "1700000000"

# Product-title vocabulary: words repeat across rows (so document frequencies, and hence tied weights, repeat),
# with stop words, digits, punctuation and a few non-ASCII words.
ADJECTIVES = ["organic", "green", "black", "stainless", "wireless", "wooden", "cotton", "leather", "blue", "red", "large", "small", "crème", "groß"]
NOUNS = ["tea", "coffee", "bottle", "charger", "puzzle", "shirt", "shoes", "wallet", "lamp", "mug", "headphones", "socks", "café", "kettle"]
EXTRAS = ["for the kitchen", "with free shipping", "set of 2", "500g", "1l", "for kids", "and more", "gift box", "usb-c", "size 42", "made in Japan", "eco friendly"]
CLASSES = ["Kitchen", "Fashion", "Electronics", "Toys & Games"]


def random_text(rng):
    words = [rng.choice(ADJECTIVES), rng.choice(NOUNS)]
    if rng.random() < 0.6:
        words.append(rng.choice(EXTRAS))
    if rng.random() < 0.5:
        words += [rng.choice(ADJECTIVES), rng.choice(NOUNS)]
    title = " ".join(words)
    return title if rng.random() < 0.3 else title[0].upper() + title[1:] + " - " + rng.choice(EXTRAS)


# Held-out texts: unseen words, case, punctuation, repeats, only stop words, nothing at all, fewer than k terms.
HELD_OUT_TEXTS = [
    "Organic green tea 500g for the kitchen",
    "Wireless charger usb-c, wireless headphones",
    "Wooden puzzle for kids - gift box",
    "Stainless steel kettle 1l",
    "BLUE COTTON SOCKS size 42",
    "Leather wallet black leather",
    "Red mug and more",
    "Crème café - groß",
    "Small lamp",
    "eco friendly bottle made in Japan",
    "the and of for with",
    "",
    "unseen words only here",
    "tea tea tea coffee",
    "Large green shirt, large red shirt",
    "set of 2 mugs",
    "Wireless",
    "black coffee black tea green tea",
    "Shoes shoes SHOES wallet",
    "gift box for the kitchen: kettle, mug, tea",
]


def features(rng, y, centers, offset, spread):
    """Per-class clusters, then a shift and per-feature scale so the scaler matters; rounded to float32 values
    with short decimal forms, which is what both sides then compute on."""
    x = centers[y] + rng.normal(0, 1.0, (len(y), centers.shape[1]))
    x = offset + spread * x
    return np.round(x, 4).astype(np.float32).astype(np.float64)


def short_floats(a):
    """float32 values written in their shortest decimal form (JS Float32Array rounds them back exactly)."""
    return [[float(str(np.float32(v))) for v in row] for row in a]


def golden_tags(vec, texts, k):
    """The top-k terms of each row of vec.transform: weight descending, equal weights by column (the vocabulary in
    code-point order, as fit sorts it); only terms with weight > 0."""
    terms = vec.get_feature_names_out()
    X = vec.transform(texts).tocsr()
    X.sort_indices()
    out = []
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        cols, vals = X.indices[a:b], X.data[a:b]
        keep = vals > 0
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:k]
        out.append([str(terms[cols[j]]) for j in order])
    return out


def idiom_tags(vec, texts, k):
    """Two one-liners a service might have used, for the report only: they disagree with each other and with the
    rule above on equal weights (and the first pads with zero-weight terms)."""
    terms = vec.get_feature_names_out()
    dense = vec.transform(texts).toarray()
    reversed_argsort = [[str(terms[j]) for j in row.argsort()[::-1][:k]] for row in dense]
    argsort_neg = [[str(terms[j]) for j in (-row).argsort()[:k] if row[j] > 0] for row in dense]
    return reversed_argsort, argsort_neg


def fit_case(tmp, name, rng, *, classes, lr, scaler, vec, train_texts, n_train=200, n_test=20):
    k = len(classes)
    centers = rng.normal(0, 1.2, (k, TEXT_DIM + IMAGE_DIM))
    offset = rng.normal(0, 2.0, TEXT_DIM + IMAGE_DIM)
    spread = rng.uniform(0.2, 3.0, TEXT_DIM + IMAGE_DIM)
    labels = [classes[i % k] for i in range(n_train + n_test)]
    rng.shuffle(labels)
    le = LabelEncoder().fit(labels)
    y = le.transform(labels)
    X = features(rng, y, centers, offset, spread)
    Xtr, ytr, Xte = X[:n_train], y[:n_train], X[n_train:]
    scaler.fit(Xtr)
    lr.fit(scaler.transform(Xtr), ytr)
    vec.fit(train_texts)
    # Two attributes would make tfidf.joblib (and the sha256 the manifest records) differ between runs: the terms
    # pruned by min_df/max_df, kept only for introspection (a set, pickled in hash-seed order), and a cache key that
    # is the id() of the stop-word list (getattr'ed with a default, so deleting it only costs a re-check).
    del vec.stop_words_
    vec.__dict__.pop("_stop_words_id", None)
    src = os.path.join(tmp, name)
    os.makedirs(src)
    for obj, file in ((lr, "classifier.joblib"), (scaler, "scaler.joblib"), (le, "label_encoder.joblib"), (vec, "tfidf.joblib")):
        joblib.dump(obj, os.path.join(src, file))
    bundle = os.path.join(OUT, name)
    shutil.rmtree(bundle, ignore_errors=True)
    subprocess.run(
        [sys.executable, IMPORTER, "--from", src, "-o", bundle, "--text-dim", str(TEXT_DIM), "--image-dim", str(IMAGE_DIM)],
        check=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
    )
    probs = lr.predict_proba(scaler.transform(Xte))
    tags = golden_tags(vec, HELD_OUT_TEXTS, TOP_K)
    rev, neg = idiom_tags(vec, HELD_OUT_TEXTS, TOP_K)
    differing = lambda other: sum(a != b for a, b in zip(tags, other))  # noqa: E731
    print(f"{name}: {len(le.classes_)} classes, {len(vec.vocabulary_)} terms; rows whose tags differ from the golden rule: "
          f"argsort()[::-1] {differing(rev)}/{len(tags)}, (-row).argsort() {differing(neg)}/{len(tags)}")
    return {
        "name": name,
        "bundle": name,
        "classes": [str(le.classes_[c]) for c in lr.classes_],
        "features": short_floats(Xte),
        "probabilities": probs.tolist(),
        "texts": HELD_OUT_TEXTS,
        "tags": tags,
        "idioms": {
            "argsortReversedDense": {"rowsDiffering": differing(rev)},
            "argsortNegatedDense": {"rowsDiffering": differing(neg)},
        },
    }


def main():
    rng = np.random.default_rng(20240607)
    corpus = [random_text(rng) for _ in range(160)]
    small_corpus = corpus[:12]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(OUT, exist_ok=True)
        cases = [
            # The original service: multinomial logistic regression, English stop words, uni- and bigrams.
            fit_case(
                tmp, "bundle", rng,
                classes=CLASSES,
                lr=LogisticRegression(multi_class="multinomial", C=1.0, max_iter=2000),
                scaler=StandardScaler(),
                vec=TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                train_texts=corpus,
            ),
            # Two classes: predict_proba is [1 - sigmoid(z), sigmoid(z)]; a custom stop-word list with unigrams.
            fit_case(
                tmp, "binary", rng,
                classes=["no", "yes"],
                lr=LogisticRegression(C=0.5, max_iter=2000),
                scaler=StandardScaler(),
                vec=TfidfVectorizer(stop_words=["tea", "for", "the"]),
                train_texts=small_corpus,
                n_train=120,
            ),
            # One-vs-rest with an uncentred scaler: normalised sigmoids, no mean subtraction.
            fit_case(
                tmp, "ovr", rng,
                classes=CLASSES[:3],
                lr=LogisticRegression(multi_class="ovr", C=2.0, max_iter=2000),
                scaler=StandardScaler(with_mean=False),
                vec=TfidfVectorizer(norm=None, use_idf=False, sublinear_tf=True),
                train_texts=small_corpus,
                n_train=150,
            ),
        ]
    golden = {
        "generator": "scripts/make-sklearn-golden.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "textDim": TEXT_DIM,
        "imageDim": IMAGE_DIM,
        "topK": TOP_K,
        "cases": cases,
    }
    with open(os.path.join(OUT, "golden.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(golden, ensure_ascii=False) + "\n")
    for dirpath, _, files in sorted(os.walk(OUT)):
        for file in sorted(files):
            p = os.path.join(dirpath, file)
            print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
