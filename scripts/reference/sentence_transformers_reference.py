#!/usr/bin/env python3
"""sentence-transformers' own encode(..., normalize_embeddings=True) on the project's ST reference model.

Needs torch, transformers, sentence-transformers, onnx (the device machine has them; Debian does not ship
sentence-transformers). Usage:
    node dist/fixtures/st-reference.js WORK/model > WORK/texts.json
    python3 scripts/reference/sentence_transformers_reference.py WORK [MINILM_TOKENIZER_DIR] > test/golden/sentence-transformers.json
The ONNX initializers are loaded into a transformers BertModel (dense weights transposed from MatMul's
[in, out] to Linear's [out, in]); the tokenizer is the model folder's tokenizer.json through HF's Rust
tokenizer. Nothing here runs onnxruntime, so the numbers are independent of the code under test.
"""
import json, os, shutil, sys, hashlib
import numpy as np
import onnx
from onnx import numpy_helper
import torch
import transformers
import sentence_transformers
from sentence_transformers import SentenceTransformer, models
from transformers import AutoTokenizer, BertConfig, BertModel

work = sys.argv[1]
model_dir = os.path.join(work, 'model')
spec = json.load(open(os.path.join(work, 'texts.json')))
texts, max_len = spec['texts'], spec['maxLength']

onnx_path = os.path.join(model_dir, 'model.onnx')
weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(onnx_path).graph.initializer}
cfg = json.load(open(os.path.join(model_dir, 'config.json')))
config = BertConfig(**{k: v for k, v in cfg.items() if k not in ('architectures',)})
bert = BertModel(config, add_pooling_layer=False).eval()
state = {}
for name, param in bert.state_dict().items():
    if name.endswith('position_ids') or name.endswith('token_type_ids'):
        continue
    w = weights[name]
    if name.endswith('.weight') and w.ndim == 2 and 'embeddings' not in name:
        w = w.T  # MatMul [in, out] -> Linear [out, in]
    assert tuple(w.shape) == tuple(param.shape), (name, w.shape, param.shape)
    state[name] = torch.from_numpy(np.ascontiguousarray(w))
missing, unexpected = bert.load_state_dict(state, strict=False)
assert not [m for m in missing if not m.endswith(('position_ids', 'token_type_ids'))], missing

hf_dir = os.path.join(work, 'hf')
bert.save_pretrained(hf_dir)
for f in ('tokenizer.json', 'tokenizer_config.json'):
    shutil.copy(os.path.join(model_dir, f), hf_dir)

word = models.Transformer(hf_dir, max_seq_length=max_len)
pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode='mean')
st = SentenceTransformer(modules=[word, pool, models.Normalize()], device='cpu')
emb = st.encode(texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
tok = AutoTokenizer.from_pretrained(hf_dir)
ids = [tok(t, truncation=True, max_length=max_len)['input_ids'] for t in texts]

out = {
    'generator': 'scripts/reference/sentence_transformers_reference.py',
    'versions': {'sentence_transformers': sentence_transformers.__version__, 'transformers': transformers.__version__, 'torch': torch.__version__},
    'model_sha256': hashlib.sha256(open(onnx_path, 'rb').read()).hexdigest(),
    'max_length': max_len,
    'texts': texts,
    'input_ids': ids,
    'embeddings': [[float(x) for x in row] for row in emb.astype(np.float64)],
}
if len(sys.argv) > 2:
    real = AutoTokenizer.from_pretrained(sys.argv[2])
    out['minilm_tokenizer_ids'] = [real(t, truncation=True, max_length=256)['input_ids'] for t in texts]
json.dump(out, sys.stdout, indent=1)
sys.stdout.write('\n')
