// Writes a trained standardize + multinomial logistic-regression head as one ONNX graph whose interface matches
// skl2onnx's (zipmap=False): input `features`, outputs `label` int64 [N] and `probabilities` float32 [N, C].
import { ConfigError } from '../errors.js';
import { GraphBuilder } from '../models/onnx-graph.js';

export interface ClassifierParams {
  mean: Float64Array | number[];
  /** Per-feature divisor; the caller passes 1 for zero-variance features. */
  scale: Float64Array | number[];
  /**
   * C×D row-major. For nClasses = 2 a single row w (sklearn's binary form) is also accepted and written as
   * rows [-w/2, w/2] with intercepts [-b/2, b/2], whose softmax equals sklearn's [1 - sigmoid(z), sigmoid(z)].
   */
  coef: Float64Array | number[];
  intercept: Float64Array | number[];
  nClasses: number;
  nFeatures: number;
}

function expandBinary(p: ClassifierParams): { coef: ArrayLike<number>; intercept: ArrayLike<number> } {
  const { coef, intercept, nClasses: c, nFeatures: d } = p;
  if (c === 2 && coef.length === d && intercept.length === 1) {
    const w = Float64Array.from(coef);
    const b = intercept[0]!;
    const both = new Float64Array(2 * d);
    for (let j = 0; j < d; j++) { both[j] = -w[j]! / 2; both[d + j] = w[j]! / 2; }
    return { coef: both, intercept: [-b / 2, b / 2] };
  }
  return { coef, intercept };
}

export function buildClassifierOnnx(params: ClassifierParams): Uint8Array {
  const { mean, scale, nClasses: c, nFeatures: d } = params;
  const { coef, intercept } = expandBinary(params);
  const check = (what: string, got: number, want: number): void => {
    if (got !== want) throw new ConfigError(`classifier head: ${what} has ${got} values, expected ${want}`, 'head_shape');
  };
  if (!Number.isInteger(c) || c < 2) throw new ConfigError(`classifier head: nClasses must be >= 2, got ${c}`, 'head_shape');
  if (!Number.isInteger(d) || d < 1) throw new ConfigError(`classifier head: nFeatures must be >= 1, got ${d}`, 'head_shape');
  check('mean', mean.length, d);
  check('scale', scale.length, d);
  check('coef', coef.length, c * d);
  check('intercept', intercept.length, c);

  // MatMul wants [D, C], so the row-major [C, D] coefficients are transposed here rather than in the graph.
  const coefT = new Float32Array(d * c);
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) coefT[j * c + k] = coef[k * d + j]!;

  const g = new GraphBuilder('categorize_head');
  const x = g.input('features', 'float', ['batch', d]);
  const meanT = g.initializer('mean', Float32Array.from(mean), [d]);
  const scaleT = g.initializer('scale', Float32Array.from(scale), [d]);
  const w = g.initializer('coef_t', coefT, [d, c]);
  const b = g.initializer('intercept', Float32Array.from(intercept), [c]);

  const centered = g.op('Sub', [x, meanT]);
  const standardized = g.op('Div', [centered, scaleT]);
  const logits = g.op('Add', [g.op('MatMul', [standardized, w]), b]);
  g.node('Softmax', [logits], ['probabilities'], { axis: -1 });
  g.node('ArgMax', ['probabilities'], ['label'], { axis: 1, keepdims: 0 });
  g.output('label', 'int64', ['batch']);
  g.output('probabilities', 'float', ['batch', c]);
  return g.toBytes({ opset: 17, producer: 'categorize' });
}
