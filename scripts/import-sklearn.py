#!/usr/bin/env python3
# Converts the original Python service's scikit-learn head (classifier.joblib, scaler.joblib, label_encoder.joblib,
# tfidf.joblib) into a categorize model bundle: classifier.onnx, tfidf.json, imputation.json, manifest.json.
#
# Needs Python 3 with scikit-learn, joblib, numpy and onnx (Debian: python3-sklearn python3-onnx). joblib files are
# pickles: loading one runs whatever code it names, so import only files you trust.
import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import warnings

DESCRIPTION = """Import a scikit-learn head (StandardScaler + LogisticRegression + LabelEncoder + TfidfVectorizer,
saved with joblib) as a categorize model bundle. The features must be [text embedding | image embedding] as the
registry's default models compute them (all-MiniLM-L6-v2, 384-d; ResNet-50 pooled, 2048-d)."""

# scikit-learn's ENGLISH_STOP_WORDS as categorize ships it (src/head/stop-words-en.ts: 318 words): sha256 of the
# words sorted and joined by newlines. test/unit/sklearn-import.test.ts checks it against the TypeScript list.
CATEGORIZE_STOP_WORDS_SHA256 = "40e0a284c5b9a220efffd18d4d739fbd3270091d6ce2c75b6effe289d3be5487"

# The token patterns categorize's TF-IDF reproduces (src/head/tfidf.ts SUPPORTED_PATTERNS).
SUPPORTED_TOKEN_PATTERNS = {r"(?u)\b\w\w+\b", r"\b\w\w+\b"}

ONNX_OPSET = 17  # onnx 1.12 writes it, onnxruntime-node 1.30 runs it; the head categorize trains uses the same
ONNX_IR_VERSION = 8  # the IR version that introduced opset 17; every onnxruntime since 1.12 reads it

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class ImportFailure(Exception):
    """A problem with the inputs: reported as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"import-sklearn: error: {message} (see --help)\n")
        sys.exit(2)


def note(msg):
    sys.stderr.write(f"import-sklearn: {msg}\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_joblib(path, what):
    import joblib

    if not os.path.isfile(path):
        raise ImportFailure(f"{what}: {path} not found")
    caught = []
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            obj = joblib.load(path)
        except ModuleNotFoundError as e:
            raise ImportFailure(f"{what}: cannot load {path}: it needs the Python module '{e.name}', which is not installed")
        except Exception as e:  # noqa: BLE001 - any unpickling failure is the input's problem
            detail = f"{type(e).__name__}: {str(e).splitlines()[0]}" if str(e) else type(e).__name__
            raise ImportFailure(f"{what}: cannot load {path}: not a readable joblib file ({detail})")
    pickled_with = None
    for w in ws:
        msg = str(w.message)
        version = getattr(w.message, "original_sklearn_version", None)
        if version is None:
            m = re.search(r"from version (\S+) when using version", msg)
            version = m.group(1) if m else None
        if version is not None:
            pickled_with = version
        caught.append(msg.splitlines()[0])
    for msg in dict.fromkeys(caught):
        note(f"warning while loading {os.path.basename(path)}: {msg}")
    return obj, pickled_with


def qualname(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


# ---------------------------------------------------------------------------------------------------------------
# Classifier: scaler + linear model -> ONNX


def scaler_params(scaler, n_features):
    import numpy as np

    from sklearn.preprocessing import StandardScaler

    if not isinstance(scaler, StandardScaler):
        raise ImportFailure(f"scaler: expected a StandardScaler, got {qualname(scaler)}")
    if not hasattr(scaler, "n_features_in_"):
        raise ImportFailure("scaler: StandardScaler is not fitted (no n_features_in_)")
    if scaler.n_features_in_ != n_features:
        raise ImportFailure(f"scaler: StandardScaler has {scaler.n_features_in_} features but the classifier has {n_features}")
    # transform() subtracts mean_ only with with_mean and divides by scale_ only with with_std (mean_/scale_ may be
    # None otherwise; scale_ already has 1 in place of zero variances).
    mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean and scaler.mean_ is not None else None
    scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std and scaler.scale_ is not None else None
    return mean, scale


def classifier_params(clf):
    import numpy as np

    for a in ("coef_", "intercept_", "classes_"):
        if not hasattr(clf, a):
            raise ImportFailure(f"classifier: expected a fitted linear classifier such as LogisticRegression, got {qualname(clf)} (no {a})")
    if not hasattr(clf, "predict_proba"):
        raise ImportFailure(f"classifier: {qualname(clf)} has no predict_proba")
    coef = np.atleast_2d(np.asarray(clf.coef_, dtype=np.float64))
    intercept = np.broadcast_to(np.asarray(clf.intercept_, dtype=np.float64), (coef.shape[0],)).copy()
    return coef, intercept


def decision(X, mean, scale, coef, intercept):
    Z = X.copy()
    if mean is not None:
        Z = Z - mean
    if scale is not None:
        Z = Z / scale
    return Z @ coef.T + intercept


def candidate_probs(kind, d):
    """What predict_proba computes from the decision function, per formula scikit-learn uses."""
    import numpy as np
    from scipy.special import expit, softmax

    if d.shape[1] == 1:
        z = d[:, 0]
        if kind == "softmax":  # multinomial with two classes: softmax([-z, z])
            return softmax(np.c_[-z, z], axis=1)
        p = expit(z)  # one-vs-rest: [1 - sigmoid(z), sigmoid(z)]
        return np.c_[1 - p, p]
    if kind == "softmax":
        return softmax(d, axis=1)
    p = expit(d)  # one-vs-rest: sigmoids normalised to sum 1
    return p / p.sum(axis=1, keepdims=True)


def probe_rows(mean, scale, n_features, n=256, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centre = mean if mean is not None else np.zeros(n_features)
    spread = scale if scale is not None else np.ones(n_features)
    return centre + spread * rng.standard_normal((n, n_features))


def detect_formula(clf, scaler, mean, scale, coef, intercept):
    """Which formula this estimator's predict_proba uses (it depends on multi_class, solver and the version)."""
    import numpy as np

    X = probe_rows(mean, scale, coef.shape[1])
    want = clf.predict_proba(scaler.transform(X))
    d = decision(X, mean, scale, coef, intercept)
    diffs = {}
    for kind in ("softmax", "ovr"):
        got = candidate_probs(kind, d)
        diffs[kind] = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    kind = min(diffs, key=diffs.get)
    if not diffs[kind] <= 1e-9:
        raise ImportFailure(
            f"classifier: {type(clf).__name__}.predict_proba matches neither softmax nor one-vs-rest of its decision function "
            f"(max differences {diffs['softmax']:.3g}, {diffs['ovr']:.3g}); only logistic-regression heads are supported"
        )
    return kind, diffs[kind], X.shape[0]


def build_onnx(mean, scale, coef, intercept, n_classes, formula):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d = coef.shape[1]
    if coef.shape[0] == 1:
        # Binary: one row w. softmax([-w·x/2, w·x/2]) = [1 - sigmoid(w·x), sigmoid(w·x)] (one-vs-rest form, also what
        # categorize's own head writes); softmax([-w·x, w·x]) is the multinomial form.
        half = 0.5 if formula == "ovr" else 1.0
        coef = np.vstack([-half * coef[0], half * coef[0]])
        intercept = np.array([-half * intercept[0], half * intercept[0]])
        formula = "softmax"
    if coef.shape[0] != n_classes:
        raise ImportFailure(f"classifier: coef_ has {coef.shape[0]} rows for {n_classes} classes")

    inits = []
    nodes = []
    x = "features"
    if mean is not None:
        inits.append(numpy_helper.from_array(mean.astype(np.float32), "mean"))
        nodes.append(helper.make_node("Sub", [x, "mean"], ["centered"]))
        x = "centered"
    if scale is not None:
        inits.append(numpy_helper.from_array(scale.astype(np.float32), "scale"))
        nodes.append(helper.make_node("Div", [x, "scale"], ["standardized"]))
        x = "standardized"
    inits.append(numpy_helper.from_array(np.ascontiguousarray(coef.T).astype(np.float32), "coef_t"))
    inits.append(numpy_helper.from_array(intercept.astype(np.float32), "intercept"))
    nodes.append(helper.make_node("MatMul", [x, "coef_t"], ["scores"]))
    nodes.append(helper.make_node("Add", ["scores", "intercept"], ["logits"]))
    if formula == "softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    else:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "class_axis"))
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["sigmoids"]))
        nodes.append(helper.make_node("ReduceSum", ["sigmoids", "class_axis"], ["sigmoid_sum"], keepdims=1))
        nodes.append(helper.make_node("Div", ["sigmoids", "sigmoid_sum"], ["probabilities"]))
    nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes,
        "sklearn_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", d])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_classes]),
        ],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="categorize import-sklearn",
        ir_version=ONNX_IR_VERSION,
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def class_names(clf, encoder):
    """Column k of predict_proba is clf.classes_[k]: encoded labels (mapped through the LabelEncoder) or the names."""
    import numpy as np

    from sklearn.preprocessing import LabelEncoder

    if not isinstance(encoder, LabelEncoder):
        raise ImportFailure(f"label encoder: expected a LabelEncoder, got {qualname(encoder)}")
    if not hasattr(encoder, "classes_"):
        raise ImportFailure("label encoder: LabelEncoder is not fitted (no classes_)")
    names = [str(c) for c in encoder.classes_]
    cols = np.asarray(clf.classes_)
    if cols.dtype.kind in "iu":
        if cols.min() < 0 or cols.max() >= len(names):
            raise ImportFailure(f"classifier: classes_ {cols.tolist()} are not indices into the LabelEncoder's {len(names)} classes")
        out = [names[int(k)] for k in cols]
    else:
        out = [str(c) for c in cols]
        unknown = [c for c in out if c not in names]
        if unknown:
            raise ImportFailure(f"classifier: classes {unknown[:5]} are not in the LabelEncoder's classes")
    if len(out) < 2:
        raise ImportFailure(f"classifier: {len(out)} class; at least two are needed")
    if len(set(out)) != len(out):
        raise ImportFailure("label encoder: class names are not unique once written as strings")
    if len(out) != len(names):
        note(f"warning: the LabelEncoder knows {len(names)} classes but the classifier only {len(out)}; the bundle lists the classifier's")
    return out


# ---------------------------------------------------------------------------------------------------------------
# TfidfVectorizer -> tfidf.json (src/head/tfidf.ts: TfidfConfig, tfidfFromJSON)


def df_bound(value, name):
    import numbers

    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        # min_df=0 keeps what min_df=1 keeps: every vocabulary term occurs in at least one document.
        return {"count": max(int(value), 1)}
    if isinstance(value, numbers.Real) and 0 <= float(value) <= 1:
        return {"proportion": float(value)}
    raise ImportFailure(f"tfidf: {name}={value!r} cannot be expressed (expected an integer count or a proportion in [0, 1])")


def stop_words_hash(words):
    return hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()


def tfidf_json(vec):
    import numpy as np

    from sklearn.feature_extraction.text import TfidfVectorizer

    if not isinstance(vec, TfidfVectorizer):
        raise ImportFailure(f"tfidf: expected a TfidfVectorizer, got {qualname(vec)}")
    if not hasattr(vec, "vocabulary_"):
        raise ImportFailure("tfidf: TfidfVectorizer is not fitted (no vocabulary_)")
    notes = []

    def refuse(setting, value, why):
        shown = value if isinstance(value, str) and value.startswith("<") else repr(value)
        raise ImportFailure(f"tfidf: {setting}={shown} is not supported by categorize's TF-IDF ({why})")

    if vec.input != "content":
        refuse("input", vec.input, "documents are the title and description text")
    if vec.analyzer != "word":
        refuse("analyzer", vec.analyzer if isinstance(vec.analyzer, str) else "<callable>", "only analyzer='word' is reproduced")
    if vec.preprocessor is not None:
        refuse("preprocessor", "<callable>", "only the built-in lowercasing is reproduced")
    if vec.tokenizer is not None:
        refuse("tokenizer", "<callable>", "only token_pattern tokenisation is reproduced")
    if vec.strip_accents is not None:
        refuse("strip_accents", vec.strip_accents if isinstance(vec.strip_accents, str) else "<callable>", "accents are kept")
    if vec.token_pattern not in SUPPORTED_TOKEN_PATTERNS:
        refuse("token_pattern", vec.token_pattern, "only the default (?u)\\b\\w\\w+\\b is reproduced")
    if vec.binary:
        refuse("binary", True, "term counts are used as they are")
    if vec.norm not in ("l2", None):
        if vec.norm == "l1":
            # Tags rank the terms of one row, and scaling a row by a positive number keeps the order.
            notes.append("norm='l1' exported as 'l2': tags rank terms within a row, which a row's positive scale does not change")
        else:
            refuse("norm", vec.norm, "only 'l2' or None")
    if np.dtype(vec.dtype) != np.float64:
        notes.append(f"dtype={np.dtype(vec.dtype).name}: categorize computes in float64; weights may differ in the last digits")
    lo, hi = vec.ngram_range
    if not (1 <= lo <= hi):
        refuse("ngram_range", vec.ngram_range, "needs 1 <= min <= max")

    # Columns must be in code-point order (scikit-learn's own order after fit; ties between equal weights follow it).
    vocab = vec.vocabulary_
    terms = [None] * len(vocab)
    for term, col in vocab.items():
        terms[int(col)] = term
    if any(t is None for t in terms):
        raise ImportFailure("tfidf: vocabulary_ column indices are not 0..n-1")
    if vec.use_idf:
        idf = np.asarray(vec.idf_, dtype=np.float64)
    else:
        idf = np.ones(len(terms))  # use_idf=False: weights are the (sublinear) term frequencies
        notes.append("use_idf=False exported as idf = 1 for every term")
    if terms != sorted(terms):
        refuse("vocabulary", "<fixed, not sorted>", "columns must be in code-point order, as fit() leaves them; equal-weight tags are ordered by column")

    # Stop words: the format knows 'english' (categorize's copy of scikit-learn's list) or none.
    stop = vec.get_stop_words()
    stop_words = None
    drop = set()
    if stop is not None:
        stop = frozenset(stop)
        if stop_words_hash(stop) == CATEGORIZE_STOP_WORDS_SHA256:
            stop_words = "english"
        elif hi == 1:
            # With unigrams a stop word only ever matters as a vocabulary term (fit never keeps one; a fixed
            # vocabulary might): dropping those terms reproduces transform() without a stop list.
            drop = {t for t in terms if t in stop}
            which = "stop_words='english' of this scikit-learn (differs from categorize's copy)" if vec.stop_words == "english" else "a custom stop_words list"
            notes.append(f"{which} exported as none: with ngram_range max 1 only vocabulary terms count" + (f"; dropped {len(drop)} stop words from the vocabulary" if drop else ""))
        else:
            what = "'english' (this scikit-learn's list differs from categorize's)" if vec.stop_words == "english" else "<custom list>"
            refuse("stop_words", what, "with n-grams longer than 1 only categorize's copy of scikit-learn's English list is reproduced")
    keep = [i for i, t in enumerate(terms) if t not in drop]
    if not keep:
        raise ImportFailure("tfidf: the vocabulary is empty")
    bad = [terms[i] for i in keep if not (np.isfinite(idf[i]) and idf[i] > 0)]
    if bad:
        raise ImportFailure(f"tfidf: idf_ of {bad[0]!r} is {idf[terms.index(bad[0])]!r} (must be finite and > 0)")
    config = {
        "lowercase": bool(vec.lowercase),
        "tokenPattern": vec.token_pattern,
        "ngramRange": [int(lo), int(hi)],
        "stopWords": stop_words,
        "minDf": df_bound(vec.min_df, "min_df"),
        "maxDf": df_bound(vec.max_df, "max_df"),
        "maxFeatures": None if vec.max_features is None else int(vec.max_features),
        "smoothIdf": bool(vec.smooth_idf),
        "sublinearTf": bool(vec.sublinear_tf),
        "norm": "l2" if vec.norm in ("l2", "l1") else None,
    }
    doc = {
        "format": "categorize-tfidf",
        "version": 1,
        "config": config,
        "terms": [terms[i] for i in keep],
        "idf": [float(idf[i]) for i in keep],
    }
    return doc, notes


def sklearn_tfidf_params(vec):
    out = {}
    for k, v in vec.get_params().items():
        if callable(v) and not isinstance(v, type):
            v = "<callable>"
        elif isinstance(v, type):
            v = v.__name__
        elif isinstance(v, (set, frozenset)):
            v = sorted(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif k == "vocabulary" and v is not None:
            v = "<fixed>"
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------------------------
# Manifest


def registry_entry(registry, kind):
    want = (registry.get("defaults") or {}).get(kind)
    for e in registry.get("models", []):
        if e.get("id") == want:
            return e
    raise ImportFailure(f"registry: no default {kind} model")


def model_ref(entry):
    """What `categorize train` records for a registry model, less the revision (the commit `models pull` fetched:
    without one, `run` uses the commit the cache holds) and the tapped file's hash (only `pull` knows it)."""
    variant = entry.get("defaultVariant") or ("fp32" if "fp32" in entry["variants"] else next(iter(entry["variants"])))
    v = entry["variants"][variant]
    ref = {"id": entry["id"]}
    if entry.get("repository"):
        ref["repository"] = entry["repository"]
    if entry.get("revision"):
        ref["revision"] = entry["revision"]
    ref["variant"] = variant
    ref["file"] = v["file"]
    if v.get("sha256") and not entry.get("tap"):
        ref["sha256"] = v["sha256"]
    return ref


def feature_blocks(registry, text_dim, image_dim):
    text = registry_entry(registry, "text")
    image = registry_entry(registry, "image")
    for entry, dim in ((text, text_dim), (image, image_dim)):
        if entry.get("dim") is not None and entry["dim"] != dim:
            note(f"warning: {entry['kind']} dim {dim} differs from {entry['id']}'s {entry['dim']}: `categorize run` will refuse this bundle with that model")
    pre = image.get("preprocess") or {}
    missing = [k for k in ("resize", "crop", "mean", "std") if k not in pre]
    if missing:
        raise ImportFailure(f"registry: {image['id']} has no preprocess {', '.join(missing)}")
    return [
        {
            "kind": "text",
            "offset": 0,
            "dim": text_dim,
            "model": model_ref(text),
            "preprocess": {
                "maxLength": (text.get("preprocess") or {}).get("maxLength", 256),
                "pooling": text.get("pooling", "mean"),
                "normalize": text.get("normalize", True),
            },
        },
        {
            "kind": "image",
            "offset": text_dim,
            "dim": image_dim,
            "model": model_ref(image),
            "preprocess": {"resize": pre["resize"], "crop": pre["crop"], "mean": pre["mean"], "std": pre["std"]},
        },
    ]


def created_at():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        if not re.fullmatch(r"\d+", epoch):
            raise ImportFailure(f"SOURCE_DATE_EPOCH must be whole seconds, got {epoch!r}")
        t = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    else:
        t = datetime.datetime.now(tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def tool_version():
    try:
        with open(os.path.join(ROOT, "package.json"), encoding="utf-8") as f:
            return json.load(f).get("version", "unknown")
    except (OSError, ValueError):
        return "unknown"


# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv):
    p = OneLineParser(prog="import-sklearn.py", description=DESCRIPTION)
    p.add_argument("--from", dest="src", required=True, metavar="DIR", help="folder with the joblib files")
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE_DIR", help="bundle folder to write (must not exist, or be empty, unless --force)")
    p.add_argument("--text-dim", type=int, default=None, metavar="N", help="width of the text block (default: the registry's default text model, 384)")
    p.add_argument("--image-dim", type=int, default=None, metavar="N", help="width of the image block (default: the registry's default image model, 2048)")
    p.add_argument("--classifier", default="classifier.joblib", metavar="FILE", help="in DIR (default %(default)s)")
    p.add_argument("--scaler", default="scaler.joblib", metavar="FILE", help="in DIR (default %(default)s)")
    p.add_argument("--label-encoder", default="label_encoder.joblib", metavar="FILE", help="in DIR (default %(default)s)")
    p.add_argument("--tfidf", default="tfidf.joblib", metavar="FILE", help="in DIR (default %(default)s)")
    p.add_argument("--registry", default=os.path.join(ROOT, "models", "registry.json"), metavar="FILE", help="model registry naming the default text and image models (default: models/registry.json)")
    p.add_argument("--force", action="store_true", help="overwrite the files of an existing bundle folder")
    return p.parse_args(argv)


def run(args):
    try:
        import numpy as np  # noqa: F401
        import onnx  # noqa: F401
        import sklearn
    except ImportError as e:
        raise ImportFailure(f"this script needs numpy, scikit-learn, joblib and onnx ({e}); e.g. apt-get install python3-sklearn python3-onnx, or pip install scikit-learn onnx")

    if not os.path.isdir(args.src):
        raise ImportFailure(f"--from {args.src}: not a folder")
    try:
        with open(args.registry, encoding="utf-8") as f:
            registry = json.load(f)
    except (OSError, ValueError) as e:
        raise ImportFailure(f"--registry {args.registry}: {e}")
    text_dim = args.text_dim if args.text_dim is not None else registry_entry(registry, "text").get("dim") or 384
    image_dim = args.image_dim if args.image_dim is not None else registry_entry(registry, "image").get("dim") or 2048
    if text_dim < 1 or image_dim < 1:
        raise ImportFailure(f"--text-dim and --image-dim must be >= 1, got {text_dim} and {image_dim}")
    out = os.path.abspath(args.output)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ImportFailure(f"-o {args.output}: exists and is not a folder")
        if os.listdir(out) and not args.force:
            raise ImportFailure(f"-o {args.output}: folder exists and is not empty (pass --force to overwrite)")

    paths = {
        "classifier": os.path.join(args.src, args.classifier),
        "scaler": os.path.join(args.src, args.scaler),
        "label encoder": os.path.join(args.src, args.label_encoder),
        "tfidf": os.path.join(args.src, args.tfidf),
    }
    loaded = {}
    pickled = {}
    for what, path in paths.items():
        loaded[what], pickled[what] = load_joblib(path, what)
    clf, scaler, encoder, vec = loaded["classifier"], loaded["scaler"], loaded["label encoder"], loaded["tfidf"]

    coef, intercept = classifier_params(clf)
    width = coef.shape[1]
    if width != text_dim + image_dim:
        raise ImportFailure(
            f"classifier: {type(clf).__name__} takes {width} features, but text-dim {text_dim} + image-dim {image_dim} = {text_dim + image_dim}"
            " (pass --text-dim/--image-dim if the service used other encoders)"
        )
    mean, scale = scaler_params(scaler, width)
    classes = class_names(clf, encoder)
    formula, verify_diff, verify_rows = detect_formula(clf, scaler, mean, scale, coef, intercept)
    onnx_bytes = build_onnx(mean, scale, coef, intercept, len(classes), formula)
    tfidf_doc, tfidf_notes = tfidf_json(vec)
    for n in tfidf_notes:
        note(f"note: {n}")

    # The service kept no training means; StandardScaler.mean_ is exactly the training mean of every feature
    # (computed even with with_mean=False, unless with_std=False too).
    if getattr(scaler, "mean_", None) is not None:
        full_mean = np.asarray(scaler.mean_, dtype=np.float64)
        imputation_source = "StandardScaler.mean_ (the training mean of each feature)"
    else:
        full_mean = np.zeros(width)
        imputation_source = "zeros: the StandardScaler kept no mean_ (with_mean=False, with_std=False)"
        note("warning: the scaler has no mean_; a missing image or text is imputed with zeros")
    f32 = lambda v: [float(x) for x in np.asarray(v, dtype=np.float32)]  # noqa: E731 - loaded as Float32Array
    means = {"text": f32(full_mean[:text_dim]), "image": f32(full_mean[text_dim:])}

    lr_params = {}
    if hasattr(clf, "get_params"):
        for k in ("C", "penalty", "solver", "multi_class", "fit_intercept", "class_weight", "max_iter", "tol", "l1_ratio"):
            v = clf.get_params().get(k, None)
            if k in clf.get_params():
                lr_params[k] = v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
    manifest = {
        "format": "categorize-bundle",
        "formatVersion": 1,
        "toolVersion": tool_version(),
        "createdAt": created_at(),
        "classes": classes,
        "features": feature_blocks(registry, text_dim, image_dim),
        "classifier": {"file": "classifier.onnx", "input": "features", "output": "probabilities"},
        "imputation": {"file": "imputation.json"},
        "tfidf": {"file": "tfidf.json"},
        "training": {
            "importedFrom": "scikit-learn",
            "tool": "scripts/import-sklearn.py",
            "sklearnVersion": sklearn.__version__,
            **({"pickledWithSklearn": sorted({v for v in pickled.values() if v})} if any(pickled.values()) else {}),
            "files": {
                os.path.basename(p): {"sha256": sha256_file(p), "object": qualname(loaded[w])} for w, p in paths.items()
            },
            "classifier": {
                "probabilities": "softmax of the decision function" if formula == "softmax" else "one-vs-rest sigmoids, normalised",
                "params": lr_params,
                "checkedAgainstPredictProba": {"rows": verify_rows, "maxAbsDiffFloat64": verify_diff},
            },
            "scaler": {"withMean": bool(scaler.with_mean), "withStd": bool(scaler.with_std)},
            "tfidf": sklearn_tfidf_params(vec),
            **({"tfidfNotes": tfidf_notes} if tfidf_notes else {}),
            "imputation": imputation_source,
        },
    }

    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "manifest.json")):
        os.remove(os.path.join(out, "manifest.json"))
    with open(os.path.join(out, "classifier.onnx"), "wb") as f:
        f.write(onnx_bytes)
    with open(os.path.join(out, "imputation.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"means": means}, separators=(",", ":")) + "\n")
    with open(os.path.join(out, "tfidf.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(tfidf_doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    # The manifest last: a folder without one is not a bundle, so an interrupted import is never mistaken for one.
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    note(
        f"wrote {args.output}: {len(classes)} classes, {width} features (text {text_dim} + image {image_dim}), "
        f"{len(tfidf_doc['terms'])} tf-idf terms; predict_proba reproduced to {verify_diff:.1e} (float64)"
    )


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ImportFailure as e:
        sys.stderr.write(f"import-sklearn: error: {e}\n")
        return 2
    except Exception as e:  # noqa: BLE001 - one line, as every other failure
        sys.stderr.write(f"import-sklearn: error: unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
