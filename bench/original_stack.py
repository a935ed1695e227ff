#!/usr/bin/python3
# The original service's code path (FastAPI POST /predict, Python), re-run over a catalog CSV so that `npm run bench`
# can compare `categorize run` with it on the same rows. Per row: PIL decode -> torchvision Resize(256)/CenterCrop(224)/
# ToTensor/Normalize -> ResNet-50 (fc = Identity) 2048-d; title + " " + description -> WordPiece -> a 6-layer BERT
# (hidden 384, 12 heads, FFN 1536, vocab 30522, max 256 tokens) -> masked mean pooling -> L2 384-d; concatenate ->
# StandardScaler -> multinomial LogisticRegression.predict_proba -> category, score, top-3; TfidfVectorizer top-5 tags.
#
# Weights are random (default init, torch.manual_seed): only speed is compared. The scaler, LR and TF-IDF are fitted
# at start-up on a sample of the catalog itself (its category column, random features of the right width); start-up
# is reported separately and is not in rows/s.
#
# Needs torch, torchvision, scikit-learn, Pillow, numpy (Debian's /usr/bin/python3 here). Run under an interpreter
# without them, it re-runs itself under one that has them ($ORIGINAL_STACK_PYTHON, then /usr/bin/python3); if none
# has, it prints {"skipped": "reason"} and exits 0 (CI machines have no torch).
#
#   python3 bench/original_stack.py --catalog fixtures/demo/catalog.csv --image-root fixtures/demo \
#       --tokenizer models/demo/encoders/text/tokenizer.json --mode per-request|batched \
#       [--batch-size 32] [--rows N] [--threads 2] [--seed 1]
#
# stdout: one JSON line {"mode", "rows", "startupSeconds", "seconds", "rowsPerSecond", "peakRssMB", "torch",
# "torchvision", "sklearn", "threads", "tokenizer", "batchSize", ...}; progress on stderr.
import time

T_PROCESS0 = time.perf_counter()

import argparse
import csv
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import unicodedata

NEEDED = ("numpy", "torch", "torchvision", "sklearn", "PIL")
REEXEC_ENV = "ORIGINAL_STACK_REEXEC"
IMAGE_DIM = 2048
TEXT_DIM = 384
VOCAB = 30522
MAX_POSITIONS = 512
EXTENSIONS_TSV = (".tsv", ".tab")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


# --------------------------------------------------------------------------------------------------------------------
# WordPiece (BERT) tokenizer in plain Python: HF tokenizers' BertNormalizer (clean text, CJK padding, accents stripped
# when lowercasing, lowercase) + BertPreTokenizer (whitespace, each punctuation char alone) + greedy longest-match-first
# WordPiece with "##" continuations, then [CLS] ... [SEP], truncated to max_length with [SEP] kept.
# --------------------------------------------------------------------------------------------------------------------


def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cn", "Co", "Cs")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese_char(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class PyWordPiece:
    """BERT WordPiece from an HF tokenizers JSON file (model.vocab); no dependency beyond the standard library."""

    name = "python-wordpiece"

    def __init__(self, path, max_length):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec.get("model") or {}
        if model.get("type", "WordPiece") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise ValueError(f"{path}: not a WordPiece tokenizer.json (model.type={model.get('type')!r})")
        self.vocab = model["vocab"]
        self.unk = model.get("unk_token", "[UNK]")
        self.prefix = model.get("continuing_subword_prefix", "##")
        self.max_chars = int(model.get("max_input_chars_per_word", 100))
        norm = spec.get("normalizer") or {}
        if norm.get("type") != "BertNormalizer":
            norm = {}
        self.clean_text = norm.get("clean_text", True)
        self.chinese = norm.get("handle_chinese_chars", True)
        self.lowercase = norm.get("lowercase", True)
        strip = norm.get("strip_accents")
        self.strip_accents = self.lowercase if strip is None else bool(strip)
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.unk_id = self.vocab[self.unk]
        self.pad_id = self.vocab.get("[PAD]", 0)
        self.max_length = max_length
        self._cache = {}

    def _normalize(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if self.clean_text:
                if cp == 0 or cp == 0xFFFD or _is_control(ch):
                    continue
                if _is_whitespace(ch):
                    out.append(" ")
                    continue
            if self.chinese and _is_chinese_char(cp):
                out.append(" " + ch + " ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.lower()
        return text

    def _pre_tokenize(self, text):
        words = []
        for chunk in text.split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def _word_ids(self, word):
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        if len(word) > self.max_chars:
            ids = [self.unk_id]
        else:
            ids = []
            start = 0
            n = len(word)
            while start < n:
                end = n
                found = None
                while start < end:
                    piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                    found = self.vocab.get(piece)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    ids = [self.unk_id]
                    break
                ids.append(found)
                start = end
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        limit = self.max_length - 2
        for word in self._pre_tokenize(self._normalize(text)):
            ids.extend(self._word_ids(word))
            if len(ids) >= limit:
                break
        return [self.cls_id] + ids[:limit] + [self.sep_id]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


class HFTokenizers:
    """The `tokenizers` package (Rust), as the original service used through sentence-transformers."""

    name = "tokenizers"

    def __init__(self, path, max_length):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(path)
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_length)
        self.pad_id = self.tok.token_to_id("[PAD]") or 0

    def encode(self, text):
        return self.tok.encode(text).ids

    def encode_batch(self, texts):
        return [e.ids for e in self.tok.encode_batch(texts)]


def load_tokenizer(path, max_length, which):
    if which in ("auto", "tokenizers"):
        try:
            return HFTokenizers(path, max_length)
        except ImportError:
            pass
    if which == "tokenizers":
        raise SystemExit("--tokenizer-impl tokenizers: the `tokenizers` package is not importable")
    return PyWordPiece(path, max_length)


# --------------------------------------------------------------------------------------------------------------------
# Interpreter check: torch & co. here, or under another interpreter, or skip.
# --------------------------------------------------------------------------------------------------------------------


def missing_modules():
    import importlib

    missing = []
    for name in NEEDED:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a broken install (e.g. numpy ABI mismatch)
            missing.append(f"{name} ({type(e).__name__}: {e})")
    return missing


def find_other_python():
    candidates = []
    if os.environ.get("ORIGINAL_STACK_PYTHON"):
        candidates.append(os.environ["ORIGINAL_STACK_PYTHON"])
    candidates.append("/usr/bin/python3")
    here = os.path.realpath(sys.executable or "")
    probe = "import " + ", ".join(NEEDED)
    for c in candidates:
        if not os.path.isfile(c) or not os.access(c, os.X_OK) or os.path.realpath(c) == here:
            continue
        try:
            r = subprocess.run([c, "-c", probe], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return c
    return None


# --------------------------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------------------------


def open_catalog(path, delimiter=None):
    """Yields dicts with id, title, description, image, category (case-insensitive column names; "" when absent)."""
    f = open(path, newline="", encoding="utf-8-sig")
    header = f.readline()
    f.seek(0)
    if delimiter is None:
        if path.lower().endswith(EXTENSIONS_TSV):
            delimiter = "\t"
        else:
            counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
            delimiter = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    reader = csv.reader(f, delimiter=delimiter)
    names = [h.strip().lower() for h in next(reader, [])]

    def col(*options):
        for o in options:
            if o in names:
                return names.index(o)
        return None

    idx = {
        "id": col("id"),
        "title": col("title"),
        "description": col("description"),
        "image": col("image", "image_path"),
        "category": col("category"),
    }

    def rows():
        try:
            for n, fields in enumerate(reader, start=1):
                if not fields:
                    continue
                row = {k: (fields[i] if i is not None and i < len(fields) else "") for k, i in idx.items()}
                if not row["id"]:
                    row["id"] = str(n)
                row["ragged"] = len(fields) != len(names)
                yield row
        finally:
            f.close()

    return idx, rows()


def row_text(row):
    return (row["title"] + " " + row["description"]).strip()


def resolve_image(ref, image_root):
    if not ref:
        return None
    if ref.startswith(("http://", "https://")):
        return ref
    return ref if os.path.isabs(ref) else os.path.join(image_root, ref)


# --------------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------------


def run(a):
    import numpy as np
    import PIL
    import sklearn
    import torch
    import torch.nn.functional as F
    import torchvision
    from PIL import Image
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from torchvision import transforms

    import warnings

    warnings.filterwarnings("ignore")  # ConvergenceWarning on random features, torchvision deprecations
    import_s = time.perf_counter() - T_PROCESS0  # from process start: the interpreter check imported them already

    threads = a.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(threads)
    blas_limited = False
    try:  # numpy/scipy BLAS (scaler, LR) on the same number of threads
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
        blas_limited = True
    except Exception:
        pass
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    # ---- models -----------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    preprocess = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    resnet = torchvision.models.resnet50()
    resnet.fc = torch.nn.Identity()
    resnet.eval()

    class BertLayer(torch.nn.Module):
        """A post-LN BERT layer as transformers' BertLayer computes it (eager attention, additive padding mask)."""

        def __init__(self, hidden=TEXT_DIM, heads=12, ffn=1536, eps=1e-12):
            super().__init__()
            self.heads, self.dh = heads, hidden // heads
            self.query = torch.nn.Linear(hidden, hidden)
            self.key = torch.nn.Linear(hidden, hidden)
            self.value = torch.nn.Linear(hidden, hidden)
            self.attn_out = torch.nn.Linear(hidden, hidden)
            self.ln1 = torch.nn.LayerNorm(hidden, eps=eps)
            self.inter = torch.nn.Linear(hidden, ffn)
            self.out = torch.nn.Linear(ffn, hidden)
            self.ln2 = torch.nn.LayerNorm(hidden, eps=eps)

        def forward(self, x, additive):
            b, s, h = x.shape

            def split(t):
                return t.view(b, s, self.heads, self.dh).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / (self.dh**0.5) + additive
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, h)
            x = self.ln1(self.attn_out(ctx) + x)
            return self.ln2(self.out(F.gelu(self.inter(x))) + x)

    class TextEncoder(torch.nn.Module):
        """all-MiniLM-L6-v2's shape: BERT embeddings + 6 layers, masked mean pooling, L2."""

        def __init__(self, impl, layers=6):
            super().__init__()
            self.impl = impl
            self.word = torch.nn.Embedding(VOCAB, TEXT_DIM, padding_idx=0)
            self.position = torch.nn.Embedding(MAX_POSITIONS, TEXT_DIM)
            self.token_type = torch.nn.Embedding(2, TEXT_DIM)
            self.ln = torch.nn.LayerNorm(TEXT_DIM, eps=1e-12)
            if impl == "hf-eager":
                self.layers = torch.nn.ModuleList([BertLayer() for _ in range(layers)])
            else:
                layer = torch.nn.TransformerEncoderLayer(
                    d_model=TEXT_DIM, nhead=12, dim_feedforward=1536, activation="gelu",
                    batch_first=True, norm_first=False, layer_norm_eps=1e-12,
                )
                self.encoder = torch.nn.TransformerEncoder(layer, num_layers=layers)

        def forward(self, ids, mask):
            s = ids.shape[1]
            pos = torch.arange(s, dtype=torch.long).unsqueeze(0)
            x = self.ln(self.word(ids) + self.position(pos) + self.token_type(torch.zeros_like(ids)))
            if self.impl == "hf-eager":
                additive = ((1.0 - mask.to(x.dtype)) * torch.finfo(x.dtype).min)[:, None, None, :]
                for layer in self.layers:
                    x = layer(x, additive)
            else:
                x = self.encoder(x, src_key_padding_mask=mask == 0)
            m = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1)

    text_model = TextEncoder(a.text_impl).eval()
    tokenizer = load_tokenizer(a.tokenizer, a.max_length, a.tokenizer_impl)
    models_s = time.perf_counter() - t0

    # ---- head + tags fitted on a sample of the catalog ----------------------------------------------------------
    t0 = time.perf_counter()
    _, sample_rows = open_catalog(a.catalog, a.delimiter)
    sample = []
    for row in sample_rows:
        sample.append(row)
        if len(sample) >= a.fit_rows:
            break
    if not sample:
        raise SystemExit(f"{a.catalog}: no rows")
    labels = [r["category"] for r in sample]
    synthetic_labels = len(set(l for l in labels if l)) < 2
    if synthetic_labels:  # no usable category column: 8 made-up classes
        labels = [f"class{i % 8}" for i in range(len(sample))]
    X_fit = rng.standard_normal((len(sample), IMAGE_DIM + TEXT_DIM)).astype(np.float32)
    scaler = StandardScaler().fit(X_fit)
    clf = LogisticRegression(multi_class="multinomial", solver="lbfgs", max_iter=100)
    clf.fit(scaler.transform(X_fit), labels)
    classes = clf.classes_
    tfidf = TfidfVectorizer(stop_words="english")
    fit_texts = [row_text(r) for r in sample]
    try:
        tfidf.fit(fit_texts)
    except ValueError:  # empty vocabulary
        tfidf.fit(fit_texts + ["placeholder vocabulary"])
    terms = tfidf.get_feature_names_out()
    image_mean = scaler.mean_[:IMAGE_DIM].astype(np.float32)
    text_mean = scaler.mean_[IMAGE_DIM:].astype(np.float32)
    head_s = time.perf_counter() - t0

    # ---- per-row pieces ------------------------------------------------------------------------------------------
    stages = dict.fromkeys(("imageDecode", "imageModel", "tokenize", "textModel", "headTags"), 0.0)
    counts = {"ok": 0, "errors": 0, "imageErrors": 0, "imageMissing": 0, "textMissing": 0, "textRows": 0, "tokens": 0}

    def load_image(row):
        """Preprocessed [3, 224, 224] tensor, or None (empty cell / failure, counted)."""
        ref = resolve_image(row["image"], a.image_root)
        if ref is None:
            counts["imageMissing"] += 1
            return None
        try:
            if ref.startswith(("http://", "https://")):
                raise OSError("URLs are not fetched by this bench")
            with Image.open(ref) as im:
                return preprocess(im.convert("RGB"))
        except Exception as e:
            counts["imageErrors"] += 1
            if counts["imageErrors"] <= 5:
                log(f"row {row['id']}: image error: {type(e).__name__}: {e}")
            return None

    def encode_texts(texts):
        t = time.perf_counter()
        seqs = tokenizer.encode_batch(texts)
        s = max(len(q) for q in seqs)
        ids = torch.full((len(seqs), s), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), s), dtype=torch.long)
        for i, q in enumerate(seqs):
            ids[i, : len(q)] = torch.tensor(q, dtype=torch.long)
            mask[i, : len(q)] = 1
            counts["tokens"] += len(q)
        t1 = time.perf_counter()
        stages["tokenize"] += t1 - t
        with torch.no_grad():
            out = text_model(ids, mask).numpy()
        stages["textModel"] += time.perf_counter() - t1
        return out

    def head_and_tags(features, texts):
        proba = clf.predict_proba(scaler.transform(features))
        tfm = tfidf.transform(texts)
        results = []
        for i in range(len(texts)):
            order = np.argsort(-proba[i], kind="stable")[: a.top_n]
            lo, hi = tfm.indptr[i], tfm.indptr[i + 1]
            idx, w = tfm.indices[lo:hi], tfm.data[lo:hi]
            top = idx[np.lexsort((idx, -w))][: a.top_k_tags]
            results.append(
                {
                    "category": classes[order[0]],
                    "score": float(proba[i, order[0]]),
                    "top_categories": [{"category": classes[j], "prob": float(proba[i, j])} for j in order],
                    "tags": [terms[j] for j in top],
                }
            )
        return results

    def process(rows):
        """One forward pass per model for these rows (batch 1 in per-request mode)."""
        ragged = sum(1 for r in rows if r["ragged"])
        if ragged:  # wrong number of fields: an error row, never sent to the models
            counts["errors"] += ragged
            rows = [r for r in rows if not r["ragged"]]
            if not rows:
                return []
        t = time.perf_counter()
        images = [load_image(r) for r in rows]
        stages["imageDecode"] += time.perf_counter() - t
        texts = [row_text(r) for r in rows]
        features = np.empty((len(rows), IMAGE_DIM + TEXT_DIM), dtype=np.float32)
        features[:, :IMAGE_DIM] = image_mean
        features[:, IMAGE_DIM:] = text_mean
        good = [i for i, t in enumerate(images) if t is not None]
        if good:
            t = time.perf_counter()
            with torch.no_grad():
                features[good, :IMAGE_DIM] = resnet(torch.stack([images[i] for i in good])).numpy()
            stages["imageModel"] += time.perf_counter() - t
        with_text = [i for i, t in enumerate(texts) if t]
        counts["textMissing"] += len(rows) - len(with_text)
        counts["textRows"] += len(with_text)
        if with_text:
            features[with_text, IMAGE_DIM:] = encode_texts([texts[i] for i in with_text])
        usable = [i for i in range(len(rows)) if images[i] is not None or texts[i]]
        counts["errors"] += len(rows) - len(usable)
        if usable:
            t = time.perf_counter()
            out = head_and_tags(features[usable], [texts[i] for i in usable])
            stages["headTags"] += time.perf_counter() - t
            counts["ok"] += len(out)
            return out
        return []

    # ---- warm-up (first-call allocations), part of start-up -----------------------------------------------------
    t0 = time.perf_counter()
    with torch.no_grad():
        resnet(torch.zeros(1, 3, 224, 224))
        text_model(torch.tensor([[tokenizer.pad_id] * 4]), torch.ones(1, 4, dtype=torch.long))
    warmup_s = time.perf_counter() - t0
    startup_s = time.perf_counter() - T_PROCESS0
    log(
        f"start-up {startup_s:.2f} s (imports {import_s:.2f}, models {models_s:.2f}, head+tfidf fit on {len(sample)} rows "
        f"{head_s:.2f}, warm-up {warmup_s:.2f}); torch {torch.__version__}, {threads} threads, tokenizer {tokenizer.name}, "
        f"text {a.text_impl}; mode {a.mode}"
    )

    # ---- timed loop -----------------------------------------------------------------------------------------------
    batch_size = 1 if a.mode == "per-request" else a.batch_size
    _, rows_iter = open_catalog(a.catalog, a.delimiter)
    done = 0
    first_category = None
    t_start = time.perf_counter()
    t_log = t_start
    batch = []
    digest = hashlib.sha1()  # predicted categories + tags, in order: the same in both modes

    def flush():
        nonlocal first_category, done
        out = process(batch)
        if first_category is None and out:
            first_category = out[0]
        for r in out:
            digest.update(("\t".join([str(r["category"])] + [str(t) for t in r["tags"]]) + "\n").encode())
        done += len(batch)
        batch.clear()

    for row in rows_iter:
        if a.rows is not None and done + len(batch) >= a.rows:
            break
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
            now = time.perf_counter()
            if now - t_log >= a.progress_seconds:
                t_log = now
                log(f"{done} rows, {done / (now - t_start):.2f} rows/s")
    if batch:
        flush()
    seconds = time.perf_counter() - t_start

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    log(f"{done} rows in {seconds:.2f} s: {done / seconds if seconds > 0 else 0:.2f} rows/s; peak RSS {peak_mb:.0f} MB")
    emit(
        {
            "mode": a.mode,
            "rows": done,
            "startupSeconds": round(startup_s, 4),
            "seconds": round(seconds, 4),
            "rowsPerSecond": round(done / seconds, 4) if seconds > 0 else None,
            "peakRssMB": round(peak_mb, 1),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "sklearn": sklearn.__version__,
            "threads": threads,
            "tokenizer": tokenizer.name,
            "batchSize": batch_size,
            "ok": counts["ok"],
            "errors": counts["errors"],
            "imageErrors": counts["imageErrors"],
            "imageMissing": counts["imageMissing"],
            "textMissing": counts["textMissing"],
            "meanTokens": round(counts["tokens"] / max(1, counts["textRows"]), 2),
            "textImpl": a.text_impl,
            "stageSeconds": {k: round(v, 4) for k, v in stages.items()},
            "startup": {
                "imports": round(import_s, 4),
                "models": round(models_s, 4),
                "headFit": round(head_s, 4),
                "warmup": round(warmup_s, 4),
                "fitRows": len(sample),
                "classes": len(classes),
                "syntheticLabels": synthetic_labels,
                "tfidfTerms": len(terms),
            },
            "blasThreadsLimited": blas_limited,
            "python": platform.python_version(),
            "executable": sys.executable,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "predictionsDigest": digest.hexdigest(),
            "example": first_category,
        }
    )


def main():
    ap = argparse.ArgumentParser(description="The original Python service's per-row path over a catalog CSV (speed only).")
    ap.add_argument("--catalog", required=True, help="CSV/TSV with id, title, description, image[, category]")
    ap.add_argument("--image-root", help="base folder of relative image paths (default: the catalog's folder)")
    ap.add_argument("--tokenizer", required=True, help="HF tokenizers JSON (WordPiece) file")
    ap.add_argument("--mode", required=True, choices=("per-request", "batched"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rows", type=int, help="only the first N rows")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: CPU count)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fit-rows", type=int, default=200, help="catalog rows the scaler/LR/TF-IDF are fitted on")
    ap.add_argument("--max-length", type=int, default=256, help="max tokens, [CLS] and [SEP] included")
    ap.add_argument("--top-n", type=int, default=3)
    ap.add_argument("--top-k-tags", type=int, default=5)
    ap.add_argument("--delimiter", help="field delimiter (default: from the header; .tsv is tab)")
    ap.add_argument("--tokenizer-impl", choices=("auto", "tokenizers", "python"), default="auto",
                    help="auto: the `tokenizers` package when importable, else the pure-Python WordPiece")
    ap.add_argument("--text-impl", choices=("hf-eager", "nn-transformer"), default="hf-eager",
                    help="hf-eager: BERT layers as transformers computes them (the original); nn-transformer: "
                         "torch.nn.TransformerEncoder (its fused fast path in eval/no_grad)")
    ap.add_argument("--progress-seconds", type=float, default=5.0)
    ap.add_argument("--no-reexec", action="store_true", help="never re-run under another interpreter")
    a = ap.parse_args()
    if a.batch_size < 1 or (a.rows is not None and a.rows < 0) or (a.threads is not None and a.threads < 1):
        ap.error("--batch-size and --threads must be >= 1, --rows >= 0")
    if not 2 < a.max_length <= MAX_POSITIONS:
        ap.error(f"--max-length must be in 3..{MAX_POSITIONS}")
    for p in (a.catalog, a.tokenizer):
        if not os.path.isfile(p):
            ap.error(f"no such file: {p}")
    if a.image_root is None:
        a.image_root = os.path.dirname(os.path.abspath(a.catalog))

    missing = missing_modules()
    if missing:
        other = None if (a.no_reexec or os.environ.get(REEXEC_ENV)) else find_other_python()
        if other:
            log(f"{sys.executable} lacks {', '.join(m.split(' ')[0] for m in missing)}: re-running under {other}")
            os.environ[REEXEC_ENV] = "1"
            sys.stdout.flush()
            os.execv(other, [other, os.path.abspath(__file__)] + sys.argv[1:])
        emit({"skipped": f"missing under {sys.executable}: {'; '.join(missing)}"})
        return 0
    run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
