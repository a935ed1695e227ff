#!/usr/bin/python3
# Independent reference for the text path: re-implements the tiny BERT encoder's forward pass in numpy from the
# ONNX file's initializers (no onnxruntime) plus sentence-transformers' mean pooling + L2, and writes the golden file.
#
# Run with Debian's interpreter (needs python3-onnx, python3-numpy) after `npx tsc -p tsconfig.json`:
#   /usr/bin/python3 scripts/reference/text_encoder_reference.py                 # -> test/golden/text-encoder.json
#   /usr/bin/python3 scripts/reference/text_encoder_reference.py --work DIR --out FILE
# The model, tokenizer and token ids come from `node dist/fixtures/reference-text-model.js DIR` (same seed, same
# transformers.js tokenization the app uses); everything numeric after that is computed here in float64.

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LN_EPS = 1e-12
erf = np.vectorize(math.erf)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def layer_norm(x, w, prefix):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w[prefix + '.weight'] + w[prefix + '.bias']


def dense(x, w, prefix):
    # Weights are stored [in, out], as MatMul initializers are in exported BERT graphs.
    return x @ w[prefix + '.weight'] + w[prefix + '.bias']


def encode(w, cfg, ids, mask):
    """last_hidden_state [B, S, H] of a post-LN BERT encoder, with token_type_ids all zero."""
    ids = np.asarray(ids, dtype=np.int64)
    mask = np.asarray(mask, dtype=np.float64)
    b, s = ids.shape
    h = cfg['hidden_size']
    nh = cfg['num_attention_heads']
    dh = h // nh
    x = (w['embeddings.word_embeddings.weight'][ids]
         + w['embeddings.position_embeddings.weight'][np.arange(s)][None]
         + w['embeddings.token_type_embeddings.weight'][np.zeros_like(ids)])
    x = layer_norm(x, w, 'embeddings.LayerNorm')
    additive = ((1.0 - mask) * -10000.0)[:, None, None, :]

    def heads(t):
        return t.reshape(b, s, nh, dh).transpose(0, 2, 1, 3)

    for layer in range(cfg['num_hidden_layers']):
        p = f'encoder.layer.{layer}'
        q = heads(dense(x, w, p + '.attention.self.query'))
        k = heads(dense(x, w, p + '.attention.self.key'))
        v = heads(dense(x, w, p + '.attention.self.value'))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + additive
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        x = layer_norm(dense(ctx, w, p + '.attention.output.dense') + x, w, p + '.attention.output.LayerNorm')
        inter = dense(x, w, p + '.intermediate.dense')
        gelu = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))
        x = layer_norm(dense(gelu, w, p + '.output.dense') + x, w, p + '.output.LayerNorm')
    return x


def mean_pool_normalize(hidden, mask):
    """sentence-transformers Pooling(mean) + Normalize (torch.nn.functional.normalize, eps 1e-12)."""
    m = np.asarray(mask, dtype=np.float64)[..., None]
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def summary(hidden, mask):
    """A few last_hidden_state numbers per row: first token's and last real token's first 4 values, mean |h|."""
    rows = []
    for r in range(hidden.shape[0]):
        n = int(sum(mask[r]))
        rows.append({
            'first': rnd(hidden[r, 0, :4]),
            'last': rnd(hidden[r, n - 1, :4]),
            'meanAbs': round(float(np.abs(hidden[r, :n]).mean()), 10),
        })
    return rows


def rnd(a):
    return [round(float(v), 10) for v in np.ravel(a)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', help='folder written by dist/fixtures/reference-text-model.js (default: a fresh temp one)')
    ap.add_argument('--out', default=os.path.join(REPO, 'test', 'golden', 'text-encoder.json'))
    args = ap.parse_args()
    if args.work:
        write_golden(args.work, args.out)
        return
    with tempfile.TemporaryDirectory(prefix='text-ref-') as work:
        subprocess.run(['node', os.path.join(REPO, 'dist', 'fixtures', 'reference-text-model.js'), work], check=True)
        write_golden(work, args.out)


def write_golden(work, out):
    """Reads WORK/model/ and WORK/inputs.json, computes the reference, writes the golden JSON to OUT."""
    model_dir = os.path.join(work, 'model')
    model_path = os.path.join(model_dir, 'model.onnx')
    model = onnx.load(model_path)
    onnx.checker.check_model(model)
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    with open(os.path.join(model_dir, 'config.json')) as f:
        cfg = json.load(f)
    with open(os.path.join(work, 'inputs.json')) as f:
        inputs = json.load(f)

    single = []
    for tok in inputs['single']:
        hidden = encode(w, cfg, tok['ids'], tok['mask'])
        emb = mean_pool_normalize(hidden, tok['mask'])
        single.append({'ids': tok['ids'][0], 'mask': tok['mask'][0], 'hidden': summary(hidden, tok['mask'])[0],
                       'embedding': rnd(emb[0])})

    batch = inputs['batch']
    hidden = encode(w, cfg, batch['ids'], batch['mask'])
    embs = mean_pool_normalize(hidden, batch['mask'])
    for r, one in enumerate(single):
        # Masked keys get exp(-10000) == 0, so padding must not move a row at all (up to float64 rounding).
        gap = np.abs(embs[r] - np.asarray(one['embedding'])).max()
        assert gap < 1e-9, f'padding changed row {r} by {gap}'

    golden = {
        '_generated_by': 'scripts/reference/text_encoder_reference.py (numpy forward pass, float64); do not edit',
        'seed': inputs['seed'],
        'encoder': inputs['encoder'],
        'texts': inputs['texts'],
        'modelSha256': sha256(model_path),
        'tokenizerSha256': sha256(os.path.join(model_dir, 'tokenizer.json')),
        'dim': cfg['hidden_size'],
        'single': single,
        'batch': {'seq': batch['seq'], 'ids': batch['ids'], 'mask': batch['mask'],
                  'hidden': summary(hidden, batch['mask']), 'embeddings': [rnd(e) for e in embs]},
    }
    text = json.dumps(golden, indent=1)
    # One line per list of numbers keeps the file reviewable.
    text = re.sub(r'\[\s+([^\[\]{}"]*?)\s+\]', lambda m: '[' + ' '.join(m.group(1).split()) + ']', text)
    with open(out, 'w') as f:
        f.write(text + '\n')
    print(f'wrote {out} ({len(single)} texts, dim {golden["dim"]}, batch seq {batch["seq"]})', file=sys.stderr)


if __name__ == '__main__':
    main()
