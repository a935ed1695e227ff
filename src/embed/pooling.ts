// Pooling and normalisation of model outputs into one vector per row, as sentence-transformers does it.

/**
 * Attention-masked mean over tokens: sum(h * mask) / max(sum(mask), 1e-9), per row.
 * `hidden` is [batch, seq, dim] row-major; `mask` is [batch, seq] (0/1, number or bigint).
 */
export function meanPool(
  hidden: Float32Array,
  mask: ArrayLike<number | bigint>,
  batch: number,
  seq: number,
  dim: number,
): Float32Array {
  if (hidden.length !== batch * seq * dim) {
    throw new Error(`meanPool: hidden has ${hidden.length} values, expected ${batch}×${seq}×${dim}`);
  }
  const out = new Float32Array(batch * dim);
  const acc = new Float64Array(dim);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    let count = 0;
    for (let s = 0; s < seq; s++) {
      const m = Number(mask[b * seq + s]);
      if (m === 0) continue;
      count += m;
      const base = (b * seq + s) * dim;
      for (let k = 0; k < dim; k++) acc[k] += hidden[base + k] * m;
    }
    const denom = Math.max(count, 1e-9);
    for (let k = 0; k < dim; k++) out[b * dim + k] = acc[k] / denom;
  }
  return out;
}

/**
 * Global average pooling of a [batch, dim, h, w] feature map into [batch, dim]
 * (h = w = 1 is the common already-pooled case).
 */
export function spatialMeanPool(features: Float32Array, batch: number, dim: number, spatial: number): Float32Array {
  if (features.length !== batch * dim * spatial) {
    throw new Error(`spatialMeanPool: got ${features.length} values, expected ${batch}×${dim}×${spatial}`);
  }
  if (spatial === 1) return features;
  const out = new Float32Array(batch * dim);
  for (let i = 0; i < batch * dim; i++) {
    let sum = 0;
    const base = i * spatial;
    for (let s = 0; s < spatial; s++) sum += features[base + s];
    out[i] = sum / spatial;
  }
  return out;
}

/** L2-normalises each `dim`-long row in place, as torch.nn.functional.normalize (eps 1e-12). */
export function l2Normalize(vectors: Float32Array, dim: number): Float32Array {
  const rows = vectors.length / dim;
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sq = 0;
    for (let k = 0; k < dim; k++) sq += vectors[base + k] * vectors[base + k];
    const norm = Math.max(Math.sqrt(sq), 1e-12);
    for (let k = 0; k < dim; k++) vectors[base + k] /= norm;
  }
  return vectors;
}
