// Typed helpers over onnx-proto for writing ONNX models (GraphBuilder) and for reading and editing them
// (readModel, writeModel, tensor decoding), so heads and test fixtures need no Python exporter.
import onnxProto from 'onnx-proto';

// onnx-proto is CommonJS with `module.exports = root`, so Node's ESM loader exposes no named export;
// this alias gives callers both the runtime classes and their types under one name.
export import onnx = onnxProto.onnx;

const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** Element types by their ONNX/onnxruntime names. */
export type ElemType = 'float' | 'double' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool' | 'string';

const ELEM_TYPES: Record<ElemType, onnx.TensorProto.DataType> = {
  float: DataType.FLOAT,
  double: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
  string: DataType.STRING,
};

export function elemTypeCode(t: ElemType): onnx.TensorProto.DataType {
  return ELEM_TYPES[t];
}

/** A dimension: a fixed size, a symbolic name such as "batch", or null for unknown. */
export type Dim = number | string | null;

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

/**
 * An attribute value. Plain numbers are INT when integral and FLOAT otherwise, which is wrong for a float
 * attribute that happens to be integral (e.g. alpha=1): wrap such values with attr.float / attr.floats.
 */
export type AttrValue = number | string | number[] | string[] | Float32Array | TypedAttr;
export type TypedAttr =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] }
  | { kind: 'tensor'; value: onnx.ITensorProto };

export const attr = {
  float: (value: number): TypedAttr => ({ kind: 'float', value }),
  int: (value: number): TypedAttr => ({ kind: 'int', value }),
  floats: (value: number[]): TypedAttr => ({ kind: 'floats', value }),
  ints: (value: number[]): TypedAttr => ({ kind: 'ints', value }),
  tensor: (value: onnx.ITensorProto): TypedAttr => ({ kind: 'tensor', value }),
};

function isTypedAttr(v: AttrValue): v is TypedAttr {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

export function makeAttribute(name: string, v: AttrValue): onnx.AttributeProto {
  const a = onnx.AttributeProto.create({ name });
  if (isTypedAttr(v)) {
    switch (v.kind) {
      case 'float': a.type = AttrType.FLOAT; a.f = v.value; break;
      case 'int': a.type = AttrType.INT; a.i = v.value; break;
      case 'floats': a.type = AttrType.FLOATS; a.floats = v.value; break;
      case 'ints': a.type = AttrType.INTS; a.ints = v.value; break;
      case 'tensor': a.type = AttrType.TENSOR; a.t = v.value; break;
    }
  } else if (typeof v === 'number') {
    if (Number.isInteger(v)) { a.type = AttrType.INT; a.i = v; } else { a.type = AttrType.FLOAT; a.f = v; }
  } else if (typeof v === 'string') {
    a.type = AttrType.STRING;
    a.s = new TextEncoder().encode(v);
  } else if (v instanceof Float32Array) {
    a.type = AttrType.FLOATS;
    a.floats = Array.from(v);
  } else if (v.length > 0 && typeof v[0] === 'string') {
    a.type = AttrType.STRINGS;
    a.strings = (v as string[]).map((s) => new TextEncoder().encode(s));
  } else {
    const nums = v as number[];
    if (nums.every((n) => Number.isInteger(n))) { a.type = AttrType.INTS; a.ints = nums; } else { a.type = AttrType.FLOATS; a.floats = nums; }
  }
  return a;
}

export function makeValueInfo(name: string, elemType: ElemType, dims: readonly Dim[]): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPES[elemType],
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
        },
      },
    },
  });
}

function dataTypeOf(data: TensorData): onnx.TensorProto.DataType {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Float64Array) return DataType.DOUBLE;
  if (data instanceof BigInt64Array) return DataType.INT64;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof Int8Array) return DataType.INT8;
  return DataType.UINT8;
}

/**
 * A tensor stored as raw_data (little-endian), the compact form exporters use for large weights.
 * raw_data is a view of `data`, not a copy, so a 90 MB encoder is not held twice while it is built.
 */
export function makeTensor(name: string, data: TensorData, dims: readonly number[]): onnx.TensorProto {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new Error(`tensor ${name}: ${data.length} values for dims [${dims.join(', ')}] (expected ${expected})`);
  }
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: dataTypeOf(data),
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

export interface ModelOptions {
  /** Default-domain opset (default 17, the first with LayerNormalization). */
  opset?: number;
  producer?: string;
  producerVersion?: string;
  /** Extra opset imports, e.g. { 'ai.onnx.ml': 3 }; domains used by nodes are imported at version 1 otherwise. */
  domains?: Record<string, number>;
}

/** Builds one graph node by node; names are checked for uniqueness so a typo cannot silently alias two values. */
export class GraphBuilder {
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly initializers: onnx.TensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly domains = new Set<string>();

  constructor(readonly graphName = 'graph') {}

  /** A name not used yet in this graph, derived from prefix. */
  uniqueName(prefix: string): string {
    let n = this.counters.get(prefix) ?? 0;
    let name = `${prefix}_${n}`;
    while (this.used.has(name)) name = `${prefix}_${++n}`;
    this.counters.set(prefix, n + 1);
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`duplicate value name in graph: ${name}`);
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(makeValueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares an existing value (a node output or an input) as a graph output. */
  output(name: string, elemType: ElemType, dims: readonly Dim[]): string {
    this.outputs.push(makeValueInfo(name, elemType, dims));
    return name;
  }

  initializer(name: string, data: TensorData, dims: readonly number[]): string {
    this.initializers.push(makeTensor(this.claim(name), data, dims));
    return name;
  }

  /** An initializer with a generated name, for small constants (shapes, axes, scalars). */
  constant(data: TensorData, dims: readonly number[], prefix = 'const'): string {
    const name = this.uniqueName(prefix);
    this.initializers.push(makeTensor(name, data, dims));
    return name;
  }

  /**
   * Adds a node. `outputs` is either explicit names or a count of names to generate from the op type.
   * An empty string in `inputs` marks an omitted optional input, as in ONNX.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    const outNames = typeof outputs === 'number'
      ? Array.from({ length: outputs }, () => this.uniqueName(opType.toLowerCase()))
      : outputs.map((o) => this.claim(o));
    if (domain !== '') this.domains.add(domain);
    this.nodes.push(onnx.NodeProto.create({
      opType,
      domain,
      name: this.uniqueName(`${opType}_node`),
      input: [...inputs],
      output: outNames,
      attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
    }));
    return outNames;
  }

  /** Single-output shorthand for node(). */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, domain = ''): string {
    return this.node(opType, inputs, 1, attrs, domain)[0]!;
  }

  /** Number of scalar values stored in initializers (the model's parameter count, constants included). */
  parameterCount(): number {
    return this.initializers.reduce((sum, t) => sum + t.dims.reduce<number>((a, d) => a * Number(d), 1), 0);
  }

  toModel(opts: ModelOptions = {}): onnx.ModelProto {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: opts.opset ?? 17 }];
    const extra = { ...opts.domains };
    for (const d of this.domains) extra[d] ??= 1;
    for (const [domain, version] of Object.entries(extra)) if (domain !== '') opsetImport.push({ domain, version });
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer ?? 'categorize',
      producerVersion: opts.producerVersion ?? '',
      opsetImport,
      graph: onnx.GraphProto.create({
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      }),
    });
  }

  toBytes(opts: ModelOptions = {}): Uint8Array {
    return writeModel(this.toModel(opts));
  }
}

export function readModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function writeModel(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** protobufjs decodes int64 fields as Long objects (or numbers); dims always fit in a double. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function tensorDims(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d));
}

function rawView(t: onnx.ITensorProto): DataView | null {
  const raw = t.rawData;
  if (!raw || raw.length === 0) return null;
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

/**
 * Float values of a FLOAT or DOUBLE tensor, whichever of float_data / double_data / raw_data holds them.
 * Always a fresh array: decoded raw_data is a view into the model buffer and may be misaligned.
 */
export function initializerToFloat32(t: onnx.ITensorProto): Float32Array {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new Error(`tensor ${t.name}: external data is not supported`);
  }
  const view = rawView(t);
  if (t.dataType === DataType.FLOAT) {
    if (view) {
      const out = new Float32Array(view.byteLength / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    return Float32Array.from(t.floatData ?? []);
  }
  if (t.dataType === DataType.DOUBLE) {
    if (view) {
      const out = new Float32Array(view.byteLength / 8);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    return Float32Array.from(t.doubleData ?? []);
  }
  throw new Error(`tensor ${t.name}: data type ${onnx.TensorProto.DataType[t.dataType ?? 0]} is not a float type`);
}

/** Values of an INT64 or INT32 tensor as numbers (shape and axes constants). */
export function initializerToInts(t: onnx.ITensorProto): number[] {
  const view = rawView(t);
  if (t.dataType === DataType.INT64) {
    if (view) return Array.from({ length: view.byteLength / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    return (t.int64Data ?? []).map((v) => toNumber(v));
  }
  if (t.dataType === DataType.INT32) {
    if (view) return Array.from({ length: view.byteLength / 4 }, (_, i) => view.getInt32(i * 4, true));
    return [...(t.int32Data ?? [])];
  }
  throw new Error(`tensor ${t.name}: data type ${onnx.TensorProto.DataType[t.dataType ?? 0]} is not an integer type`);
}
