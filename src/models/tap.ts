// Exposes an image classifier's global-average-pooled features as an extra float graph output, so a model
// that only outputs class logits (ResNet-50 export, int8 MobileNetV2) can serve as an image encoder.
import { ConfigError } from '../errors.js';
import { makeValueInfo, onnx, readModel, tensorDims, toNumber, writeModel, initializerToInts, type Dim } from './onnx-graph.js';

export interface TapInfo {
  /** Name of the graph output that now carries the float features (e.g. 'pooled'). */
  output: string;
  /** Tensor tapped inside the graph. */
  source: string;
  /** 'GlobalAveragePool' | 'QLinearGlobalAveragePool' | 'ReduceMean' | 'named' (a string: callers record others). */
  op: string;
  /** A DequantizeLinear was added (quantised source). */
  dequantized: boolean;
  /** Feature width, when the graph tells (value_info, initializer shapes); else null. */
  dim: number | null;
}

export type TapMode = 'auto' | 'logits' | { tensor: string };

export interface PooledTensor {
  source: string;
  op: 'GlobalAveragePool' | 'QLinearGlobalAveragePool' | 'ReduceMean';
  /** Set for a quantised pool: the initializers/tensors that dequantise `source`. */
  quant?: { scale: string; zeroPoint: string };
  /** Channels, when the graph tells; else null. */
  dim: number | null;
}

const DataType = onnx.TensorProto.DataType;
const MS_DOMAIN = 'com.microsoft';
const isDefaultDomain = (d: string | null | undefined): boolean => !d || d === 'ai.onnx';

/** Lookups over one graph that every step below needs. */
class GraphIndex {
  readonly producer = new Map<string, { node: onnx.INodeProto; index: number }>();
  readonly consumers = new Map<string, onnx.INodeProto[]>();
  readonly initializers = new Map<string, onnx.ITensorProto>();
  /** value_info, inputs and outputs: whatever declares a type for a name. */
  readonly declared = new Map<string, onnx.IValueInfoProto>();
  readonly outputs: string[];
  readonly inputs: string[];
  readonly nodes: onnx.INodeProto[];

  constructor(readonly model: onnx.IModelProto) {
    const g = model.graph;
    if (!g) throw new ConfigError('ONNX model has no graph', 'tap');
    this.nodes = g.node ?? [];
    this.nodes.forEach((node, index) => {
      for (const o of node.output ?? []) if (o) this.producer.set(o, { node, index });
      for (const i of node.input ?? []) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(node); else this.consumers.set(i, [node]);
      }
    });
    for (const t of g.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const v of [...(g.input ?? []), ...(g.valueInfo ?? []), ...(g.output ?? [])]) if (v.name) this.declared.set(v.name, v);
    this.inputs = (g.input ?? []).map((v) => v.name ?? '').filter((n) => n && !this.initializers.has(n));
    this.outputs = (g.output ?? []).map((v) => v.name ?? '');
  }

  /** Default-domain opset version (ONNX's rule: absent means 1). */
  opset(domain = ''): number {
    const imp = (this.model.opsetImport ?? []).find((o) => (domain === '' ? isDefaultDomain(o.domain) : o.domain === domain));
    return imp ? toNumber(imp.version) : domain === '' ? 1 : 0;
  }

  /** Indices of the nodes the graph outputs depend on. */
  ancestorsOfOutputs(): Set<number> {
    const seen = new Set<number>();
    const stack = [...this.outputs];
    const visited = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (visited.has(name)) continue;
      visited.add(name);
      const p = this.producer.get(name);
      if (!p || seen.has(p.index)) continue;
      seen.add(p.index);
      for (const i of p.node.input ?? []) if (i) stack.push(i);
    }
    return seen;
  }

  /** Integer constant behind a name: an initializer or a Constant node's value. */
  constantInts(name: string): number[] | null {
    const init = this.initializers.get(name);
    if (init) return safeInts(init);
    const p = this.producer.get(name);
    if (p && p.node.opType === 'Constant') {
      const value = (p.node.attribute ?? []).find((a) => a.name === 'value');
      if (value?.t) return safeInts(value.t);
      const ints = (p.node.attribute ?? []).find((a) => a.name === 'value_ints');
      if (ints) return (ints.ints ?? []).map((v) => toNumber(v));
    }
    return null;
  }

  /** Declared shape of a value, or null when nothing declares one. */
  shape(name: string): Dim[] | null {
    const tt = this.declared.get(name)?.type?.tensorType;
    if (!tt?.shape) return null;
    return (tt.shape.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0
      ? toNumber(d.dimValue) : d.dimParam ? d.dimParam : null));
  }

  elemType(name: string): onnx.TensorProto.DataType | null {
    const init = this.initializers.get(name);
    if (init) return init.dataType ?? null;
    return this.declared.get(name)?.type?.tensorType?.elemType ?? null;
  }

  exists(name: string): boolean {
    return this.producer.has(name) || this.initializers.has(name) || this.declared.has(name);
  }

  /** Every name in the graph (values and nodes), for collision-free new names. */
  allNames(): Set<string> {
    const names = new Set<string>([...this.producer.keys(), ...this.initializers.keys(), ...this.declared.keys()]);
    for (const n of this.nodes) if (n.name) names.add(n.name);
    return names;
  }
}

function safeInts(t: onnx.ITensorProto): number[] | null {
  try {
    return initializerToInts(t);
  } catch {
    return null;
  }
}

function attrInt(node: onnx.INodeProto, name: string, fallback: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a ? toNumber(a.i) : fallback;
}

function attrInts(node: onnx.INodeProto, name: string): number[] | null {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a ? (a.ints ?? []).map((v) => toNumber(v)) : null;
}

/** ReduceMean over the two spatial axes of an NCHW tensor (timm / some exporters pool this way). */
function isSpatialReduceMean(node: onnx.INodeProto, idx: GraphIndex): boolean {
  if (node.opType !== 'ReduceMean' || !isDefaultDomain(node.domain)) return false;
  // axes moved from attribute to second input in opset 18.
  const axes = attrInts(node, 'axes') ?? (node.input?.[1] ? idx.constantInts(node.input[1]) : null);
  if (!axes || axes.length !== 2) return false;
  const norm = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
  return norm[0] === 2 && norm[1] === 3;
}

function poolOp(node: onnx.INodeProto, idx: GraphIndex): PooledTensor['op'] | null {
  if (node.opType === 'GlobalAveragePool' && isDefaultDomain(node.domain)) return 'GlobalAveragePool';
  if (node.opType === 'QLinearGlobalAveragePool' && node.domain === MS_DOMAIN) return 'QLinearGlobalAveragePool';
  if (isSpatialReduceMean(node, idx)) return 'ReduceMean';
  return null;
}

/** Ops that keep the channel count of their first input (walked back from the pool to the conv that sets it). */
const CHANNEL_PRESERVING = new Set([
  'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Mul', 'Add', 'Sum', 'BatchNormalization',
  'Identity', 'DequantizeLinear', 'QuantizeLinear', 'QLinearAdd', 'QLinearMul', 'QLinearLeakyRelu', 'QLinearSigmoid',
  'MaxPool', 'AveragePool', 'QLinearAveragePool', 'Dropout', 'Elu', 'Selu', 'Tanh', 'PRelu',
]);

/** Ops that only move or reshape data, walked forward from the pool to the classifier that reads it. */
const RESHAPING = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'DequantizeLinear', 'QuantizeLinear', 'Dropout']);

/** Channel count of `name`'s producer chain: the output channels of the conv that makes it, if any. */
function channelsFromProducers(name: string, idx: GraphIndex): number | null {
  let current = name;
  for (let steps = 0; steps < 64; steps++) {
    const s = idx.shape(current);
    if (s && s.length >= 2 && typeof s[1] === 'number') return s[1];
    const p = idx.producer.get(current)?.node;
    if (!p) return null;
    const weight = p.opType === 'Conv' || p.opType === 'ConvInteger' ? p.input?.[1]
      : p.opType === 'QLinearConv' ? p.input?.[3] : undefined;
    if (weight !== undefined) {
      const w = idx.initializers.get(weight);
      return w ? tensorDims(w)[0] ?? null : null;
    }
    if (!CHANNEL_PRESERVING.has(p.opType ?? '') || !p.input?.[0]) return null;
    current = p.input[0];
  }
  return null;
}

/** Input width of the classifier that reads `name` (through Flatten/Reshape), from its weight's shape. */
function channelsFromConsumers(name: string, idx: GraphIndex): number | null {
  const stack = [name];
  for (let steps = 0; steps < 64 && stack.length > 0; steps++) {
    const current = stack.pop()!;
    for (const c of idx.consumers.get(current) ?? []) {
      const op = c.opType ?? '';
      const inputs = c.input ?? [];
      let weight: string | undefined;
      let col = false; // width is the weight's second dim (Gemm/QGemm with transB=1)
      if (op === 'Gemm' || op === 'QGemm') {
        weight = inputs[op === 'Gemm' ? 1 : 3];
        col = attrInt(c, 'transB', 0) === 1;
        if (inputs[0] !== current) weight = undefined;
      } else if (op === 'MatMul' || op === 'MatMulInteger') {
        weight = inputs[0] === current ? inputs[1] : undefined;
      } else if (op === 'QLinearMatMul') {
        weight = inputs[0] === current ? inputs[3] : undefined;
      } else if (RESHAPING.has(op) && inputs[0] === current) {
        for (const o of c.output ?? []) if (o) stack.push(o);
        continue;
      }
      const w = weight ? idx.initializers.get(weight) : undefined;
      if (w) {
        const dims = tensorDims(w);
        if (dims.length === 2) return col ? dims[1]! : dims[0]!;
      }
    }
  }
  return null;
}

function poolDim(node: onnx.INodeProto, idx: GraphIndex): number | null {
  const out = node.output![0]!;
  const s = idx.shape(out);
  if (s && s.length >= 2 && typeof s[1] === 'number') {
    // channels_last QLinearGlobalAveragePool writes [N, 1, 1, C].
    const channelsLast = node.opType === 'QLinearGlobalAveragePool' && attrInt(node, 'channels_last', 0) === 1;
    const c = channelsLast ? s[s.length - 1] : s[1];
    if (typeof c === 'number') return c;
  }
  return channelsFromProducers(node.input![0]!, idx) ?? channelsFromConsumers(out, idx);
}

function describePool(node: onnx.INodeProto, op: PooledTensor['op'], idx: GraphIndex): PooledTensor {
  const source = node.output![0]!;
  const found: PooledTensor = { source, op, dim: poolDim(node, idx) };
  if (op === 'QLinearGlobalAveragePool') found.quant = { scale: node.input![3]!, zeroPoint: node.input?.[4] ?? '' };
  return found;
}

function findPooled(idx: GraphIndex): PooledTensor | null {
  const live = idx.ancestorsOfOutputs();
  // Nodes are topologically sorted (an ONNX requirement), so the highest index is the pool nearest the outputs.
  for (let i = idx.nodes.length - 1; i >= 0; i--) {
    if (!live.has(i)) continue;
    const node = idx.nodes[i]!;
    const op = poolOp(node, idx);
    if (op && node.output?.[0]) return describePool(node, op, idx);
  }
  return null;
}

/**
 * Finds the pooled tensor: the last global average pool (float GlobalAveragePool, com.microsoft
 * QLinearGlobalAveragePool, or ReduceMean over axes [2,3] / [-2,-1]) on the path to the outputs. null when none.
 */
export function findPooledTensor(model: onnx.IModelProto): PooledTensor | null {
  return findPooled(new GraphIndex(model));
}

/** Ops that turn a feature vector into class scores. */
const CLASSIFIER_OPS = new Set(['Gemm', 'MatMul', 'QLinearMatMul', 'QGemm', 'MatMulInteger']);

/** Does `name` reach a matrix product as its data input through reshapes (and (de)quantisation) only? */
function feedsClassifier(name: string, idx: GraphIndex): boolean {
  const stack = [name];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    for (const c of idx.consumers.get(current) ?? []) {
      if (c.input?.[0] !== current) continue;
      if (CLASSIFIER_OPS.has(c.opType ?? '')) return true;
      if (RESHAPING.has(c.opType ?? '')) for (const o of c.output ?? []) if (o) stack.push(o);
    }
  }
  return false;
}

/**
 * What a model given as a file offers as an image embedding. `pooled`: findPooledTensor's pool, only where it feeds
 * the classifier (a pool inside a block of a feature extractor, such as squeeze-excitation, is not the embedding);
 * `classifier`: the graph's outputs depend on a matrix product; `outputs`: the graph's output names, in order.
 */
export function classifierFeature(model: onnx.IModelProto): { pooled: PooledTensor | null; classifier: boolean; outputs: string[] } {
  const idx = new GraphIndex(model);
  const pooled = findPooled(idx);
  return { pooled: pooled && feedsClassifier(pooled.source, idx) ? pooled : null, classifier: classifierInput(idx) !== null, outputs: idx.outputs };
}

/** Where a quantised tensor's y_scale / y_zero_point sit among its producer's inputs. */
const QUANT_OUTPUT_PARAMS: Record<string, [number, number]> = {
  QuantizeLinear: [1, 2],
  QLinearConv: [6, 7],
  QLinearMatMul: [6, 7],
  QLinearAdd: [6, 7],
  QLinearMul: [6, 7],
  QLinearGlobalAveragePool: [3, 4],
  QLinearAveragePool: [3, 4],
  QLinearLeakyRelu: [3, 4],
  QLinearSigmoid: [3, 4],
  QLinearSoftmax: [3, 4],
  QLinearReduceMean: [3, 4],
  QLinearConcat: [0, 1],
  QGemm: [7, 8],
};

/** Ops that pass a quantised tensor on with the same scale and zero point. */
const QUANT_TRANSPARENT = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity', 'MaxPool']);

const QUANTIZED_TYPES = new Set<number>([DataType.UINT8, DataType.INT8]);

/**
 * The scale and zero point that dequantise `name`, from the QLinear op (or QuantizeLinear) that wrote it,
 * looking through reshapes; null when no quantising producer is found.
 */
function quantParamsOf(name: string, idx: GraphIndex): { scale: string; zeroPoint: string } | null {
  let current = name;
  for (let steps = 0; steps < 64; steps++) {
    const p = idx.producer.get(current)?.node;
    if (!p) return null;
    const op = p.opType ?? '';
    const at = QUANT_OUTPUT_PARAMS[op];
    if (at) {
      const scale = p.input?.[at[0]];
      // QGemm without y_scale writes float: not quantised.
      if (!scale) return null;
      return { scale, zeroPoint: p.input?.[at[1]] ?? '' };
    }
    if (op.startsWith('QLinear')) {
      // An unlisted QLinear op: the contrib ops put y_scale/y_zp right after their data inputs.
      const n = p.input?.length ?? 0;
      if (n === 5) return { scale: p.input![3]!, zeroPoint: p.input![4]! };
      if (n === 8) return { scale: p.input![6]!, zeroPoint: p.input![7]! };
      return null;
    }
    if (!QUANT_TRANSPARENT.has(op) || !p.input?.[0]) return null;
    current = p.input[0];
  }
  return null;
}

function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let n = 1; taken.has(name); n++) name = `${base}_${n}`;
  taken.add(name);
  return name;
}

/**
 * A graph output that is `source` itself or `source` only reshaped (for a quantised source: and dequantised,
 * since a uint8 output is not the float feature promised).
 */
function exposedAs(source: string, idx: GraphIndex, quantised: boolean): string | null {
  const outputs = new Set(idx.outputs);
  const stack: [string, boolean][] = [[source, !quantised]];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const [cur, isFloat] = stack.pop()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    if (isFloat && outputs.has(cur)) return cur;
    for (const c of idx.consumers.get(cur) ?? []) {
      const op = c.opType ?? '';
      if (c.input?.[0] !== cur || !c.output?.[0]) continue;
      if (['Flatten', 'Squeeze', 'Identity', 'Reshape'].includes(op)) stack.push([c.output[0], isFloat]);
      else if (op === 'DequantizeLinear' && !isFloat) stack.push([c.output[0], true]);
    }
  }
  return null;
}

/** Rank 4 (NCHW) when declared, or when the tensor comes from a conv or pool through element-wise ops. */
function isRank4(name: string, idx: GraphIndex): boolean {
  const s = idx.shape(name);
  if (s) return s.length === 4;
  let current = name;
  for (let steps = 0; steps < 64; steps++) {
    const p = idx.producer.get(current)?.node;
    if (!p) return false;
    const op = p.opType ?? '';
    if (['Conv', 'QLinearConv', 'ConvInteger', 'GlobalAveragePool', 'QLinearGlobalAveragePool', 'GlobalMaxPool'].includes(op)) return true;
    if (op === 'ReduceMean') return poolOp(p, idx) !== null && attrInt(p, 'keepdims', 1) === 1;
    if (!CHANNEL_PRESERVING.has(op) || !p.input?.[0]) return false;
    current = p.input[0];
  }
  return false;
}

function fail(label: string | undefined, what: string): never {
  throw new ConfigError(`${label ?? 'ONNX model'}: ${what}`, 'tap');
}

/** Input of the last matrix product on the path to the outputs: the tensor to suggest for --tap. */
function classifierInput(idx: GraphIndex): string | null {
  const live = idx.ancestorsOfOutputs();
  for (let i = idx.nodes.length - 1; i >= 0; i--) {
    const n = idx.nodes[i]!;
    if (live.has(i) && ['Gemm', 'MatMul', 'QLinearMatMul', 'QGemm', 'MatMulInteger'].includes(n.opType ?? '') && n.input?.[0]) {
      return n.input[0];
    }
  }
  return null;
}

function batchDim(idx: GraphIndex): Dim {
  const first = idx.inputs[0];
  const s = first ? idx.shape(first) : null;
  return s?.[0] ?? 'batch';
}

/** Feature width of a named tensor from its declared shape ([N, ...] flattened), else from conv/classifier weights. */
function namedDim(name: string, idx: GraphIndex): number | null {
  const s = idx.shape(name);
  if (s && s.length >= 2) {
    const rest = s.slice(1);
    if (rest.every((d) => typeof d === 'number')) return (rest as number[]).reduce((a, b) => a * b, 1);
  }
  const p = idx.producer.get(name)?.node;
  if (p && poolOp(p, idx)) return poolDim(p, idx);
  return channelsFromConsumers(name, idx);
}

/**
 * Returns new model bytes with the tap added as an extra float graph output (existing outputs kept, so the
 * logits stay available for checks), flattened to [N, C].
 * - 'logits': bytes unchanged, tap null.
 * - 'auto': the pool found by findPooledTensor; none → ConfigError suggesting --tap <tensor>.
 * - { tensor }: float → exposed as is (Flatten if 4-d); quantised (written by a QLinear op or QuantizeLinear)
 *   → DequantizeLinear with that op's y_scale / y_zero_point.
 * A model that already outputs the pooled tensor comes back unchanged, with that output as the tap.
 */
export function tapModel(bytes: Uint8Array, mode: TapMode, label?: string): { bytes: Uint8Array; tap: TapInfo | null } {
  if (mode === 'logits') return { bytes, tap: null };
  let model: onnx.ModelProto;
  try {
    model = readModel(bytes);
  } catch (err) {
    fail(label, `not a readable ONNX model (${err instanceof Error ? err.message : String(err)})`);
  }
  const idx = new GraphIndex(model);

  let source: string;
  let op: TapInfo['op'];
  let quant: { scale: string; zeroPoint: string } | null;
  let dim: number | null;
  let rank4: boolean;
  if (mode === 'auto') {
    const found = findPooled(idx);
    if (!found) {
      const hint = classifierInput(idx);
      fail(label, 'no global average pool (GlobalAveragePool, QLinearGlobalAveragePool, or ReduceMean over H,W) '
        + `on the path to the outputs; name the feature tensor with --tap <tensor>${hint ? ` (the classifier reads '${hint}')` : ''}`);
    }
    ({ source, op } = found);
    quant = found.quant ?? null;
    dim = found.dim;
    // Pools keep [N, C, 1, 1] (ReduceMean with keepdims=0 gives [N, C], which Flatten leaves alone).
    rank4 = true;
  } else {
    source = mode.tensor;
    op = 'named';
    if (!idx.producer.has(source) && !idx.inputs.includes(source)) {
      const why = idx.initializers.has(source) ? 'is a weight (initializer), not an activation' : 'is not a tensor in the graph';
      const found = findPooled(idx);
      fail(label, `--tap '${source}' ${why}${found ? `; the pooled tensor is '${found.source}'` : ''}`);
    }
    const t = idx.elemType(source);
    quant = quantParamsOf(source, idx);
    if (!quant && t !== null && QUANTIZED_TYPES.has(t)) {
      fail(label, `--tap '${source}' is ${DataType[t]} but no QLinear op or QuantizeLinear says how to dequantise it`);
    }
    if (t !== null && !quant && t !== DataType.FLOAT) {
      fail(label, `--tap '${source}' is ${DataType[t]}; a float (or int8/uint8 quantised) tensor is needed`);
    }
    dim = namedDim(source, idx);
    rank4 = isRank4(source, idx);
  }

  const already = exposedAs(source, idx, quant !== null);
  if (already) return { bytes, tap: { output: already, source, op, dequantized: false, dim } };

  const graph = model.graph!;
  const taken = idx.allNames();
  let value = source;
  let dequantized = false;
  const newNodes: onnx.NodeProto[] = [];
  if (quant) {
    // DequantizeLinear joined the default domain in opset 10; before that only ORT's contrib op has it.
    const domain = idx.opset('') >= 10 ? '' : MS_DOMAIN;
    if (domain === MS_DOMAIN && idx.opset(MS_DOMAIN) === 0) model.opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version: 1 }));
    const out = uniqueName(taken, rank4 ? `${source}_dequantized` : 'pooled');
    newNodes.push(onnx.NodeProto.create({
      opType: 'DequantizeLinear', domain, name: uniqueName(taken, 'tap_DequantizeLinear'),
      input: quant.zeroPoint ? [source, quant.scale, quant.zeroPoint] : [source, quant.scale], output: [out],
    }));
    value = out;
    dequantized = true;
  }
  if (rank4) {
    const out = uniqueName(taken, 'pooled');
    newNodes.push(onnx.NodeProto.create({
      opType: 'Flatten', domain: '', name: uniqueName(taken, 'tap_Flatten'), input: [value], output: [out],
      attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
    }));
    value = out;
  }
  if (value === source) {
    // A float tensor of another rank, exposed as is: an Identity keeps the output name ours and predictable.
    const out = uniqueName(taken, 'pooled');
    newNodes.push(onnx.NodeProto.create({ opType: 'Identity', domain: '', name: uniqueName(taken, 'tap_Identity'), input: [value], output: [out] }));
    value = out;
  }
  (graph.node ??= []).push(...newNodes);
  const outDims: Dim[] = rank4 ? [batchDim(idx), dim] : (idx.shape(source) ?? []);
  (graph.output ??= []).push(rank4 || idx.shape(source) ? makeValueInfo(value, 'float', outDims)
    : onnx.ValueInfoProto.create({ name: value, type: { tensorType: { elemType: DataType.FLOAT } } }));
  return { bytes: writeModel(model), tap: { output: value, source, op, dequantized, dim } };
}
