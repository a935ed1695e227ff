// Describes an ONNX file for `categorize models info ./file.onnx`: interface, opsets, size, parameters, and
// the pooled tensor a classifier export could be tapped at, so a user can tell whether a model fits before using it.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { sha256File } from './bundle.js';
import { onnx, readModel, tensorDims, toNumber } from './onnx-graph.js';
import { findPooledTensor } from './tap.js';

export interface TensorDesc {
  name: string;
  /** 'float32', 'int64', 'uint8'…; 'sequence' / 'map' / 'unknown' for non-tensor values. */
  type: string;
  /** Fixed sizes, symbolic names ('batch'), null for unknown; [] also when the rank is not declared. */
  shape: (number | string | null)[];
}

export interface OnnxDescription {
  file: string;
  size: number;
  sha256: string;
  irVersion: number;
  /** producer_name and producer_version, space-separated ('' when absent). */
  producer: string;
  /** The default domain appears as 'ai.onnx'. */
  opsets: { domain: string; version: number }[];
  /** Real inputs: graph inputs that are also initializers (old IR) are left out. */
  inputs: TensorDesc[];
  outputs: TensorDesc[];
  nodes: number;
  /** Sum of the element counts of all initializers (dense and sparse). */
  parameters: number;
  /** Where `--tap auto` would take an embedding from; dim is the channel count when the graph tells. */
  pooledTap: { source: string; op: string; dim: number | null } | null;
}

const TYPE_NAMES: Partial<Record<onnx.TensorProto.DataType, string>> = {
  [onnx.TensorProto.DataType.FLOAT]: 'float32',
  [onnx.TensorProto.DataType.DOUBLE]: 'float64',
  [onnx.TensorProto.DataType.FLOAT16]: 'float16',
  [onnx.TensorProto.DataType.BFLOAT16]: 'bfloat16',
  [onnx.TensorProto.DataType.INT8]: 'int8',
  [onnx.TensorProto.DataType.INT16]: 'int16',
  [onnx.TensorProto.DataType.INT32]: 'int32',
  [onnx.TensorProto.DataType.INT64]: 'int64',
  [onnx.TensorProto.DataType.UINT8]: 'uint8',
  [onnx.TensorProto.DataType.UINT16]: 'uint16',
  [onnx.TensorProto.DataType.UINT32]: 'uint32',
  [onnx.TensorProto.DataType.UINT64]: 'uint64',
  [onnx.TensorProto.DataType.BOOL]: 'bool',
  [onnx.TensorProto.DataType.STRING]: 'string',
  [onnx.TensorProto.DataType.COMPLEX64]: 'complex64',
  [onnx.TensorProto.DataType.COMPLEX128]: 'complex128',
};

function typeName(code: number | null | undefined): string {
  if (code === null || code === undefined) return 'unknown';
  return TYPE_NAMES[code as onnx.TensorProto.DataType] ?? (onnx.TensorProto.DataType[code]?.toLowerCase() ?? `type${code}`);
}

function describeValue(v: onnx.IValueInfoProto): TensorDesc {
  const t = v.type;
  const name = v.name ?? '';
  if (t?.tensorType) {
    const shape = (t.tensorType.shape?.dim ?? []).map((d): number | string | null => {
      if (d.dimValue !== null && d.dimValue !== undefined && toNumber(d.dimValue) > 0) return toNumber(d.dimValue);
      return d.dimParam ? d.dimParam : null;
    });
    return { name, type: typeName(t.tensorType.elemType), shape };
  }
  if (t?.sequenceType) return { name, type: 'sequence', shape: [] };
  if (t?.mapType) return { name, type: 'map', shape: [] };
  return { name, type: 'unknown', shape: [] };
}

const elementCount = (t: onnx.ITensorProto): number => tensorDims(t).reduce((a, b) => a * b, 1);

/** Reads and describes an ONNX file (read whole: models up to a few hundred MB are fine). */
export function describeOnnx(file: string): OnnxDescription {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? String(err)}`, 'model_file');
  }
  let model: onnx.ModelProto;
  try {
    model = readModel(bytes);
  } catch (err) {
    throw new ConfigError(`${file} is not an ONNX model (${err instanceof Error ? err.message : String(err)})`, 'model_file');
  }
  // protobuf decodes many byte strings without complaint; a model without a graph is not one we can use.
  const g = model.graph;
  if (!g) throw new ConfigError(`${file} is not an ONNX model (no graph)`, 'model_file');
  const initNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const sparse = (g.sparseInitializer ?? []).reduce((sum, s) => sum + (s.values ? elementCount(s.values) : 0), 0);
  const pooled = findPooledTensor(model);
  return {
    file,
    size: bytes.length,
    sha256: sha256File(file),
    irVersion: toNumber(model.irVersion),
    producer: [model.producerName ?? '', model.producerVersion ?? ''].filter(Boolean).join(' '),
    opsets: (model.opsetImport ?? []).map((o) => ({ domain: o.domain ? o.domain : 'ai.onnx', version: toNumber(o.version) })),
    inputs: (g.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(describeValue),
    outputs: (g.output ?? []).map(describeValue),
    nodes: (g.node ?? []).length,
    parameters: (g.initializer ?? []).reduce((sum, t) => sum + elementCount(t), 0) + sparse,
    pooledTap: pooled ? { source: pooled.source, op: pooled.op, dim: pooled.dim } : null,
  };
}

function formatShape(shape: (number | string | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** 3,504,872 -> '3.5M'; small counts stay exact. */
function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** Decimal MB, as model hubs list sizes; small files keep enough digits not to read as 0.0. */
function formatSize(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes >= 1e7 ? 0 : bytes >= 1e6 ? 1 : 3)} MB`;
}

/** A readable multi-line block for the terminal. */
export function formatOnnxDescription(d: OnnxDescription): string {
  const table = (rows: TensorDesc[]): string[] => {
    const w = Math.max(0, ...rows.map((r) => r.name.length));
    const tw = Math.max(0, ...rows.map((r) => r.type.length));
    return rows.length === 0 ? ['    (none)'] : rows.map((r) => `    ${r.name.padEnd(w)}  ${r.type.padEnd(tw)}  ${formatShape(r.shape)}`);
  };
  const lines = [
    `${path.basename(d.file)}  (${d.file})`,
    `  size        ${formatSize(d.size)} (${d.size.toLocaleString('en-US')} bytes)`,
    `  sha256      ${d.sha256}`,
    `  format      IR ${d.irVersion}${d.producer ? `, produced by ${d.producer}` : ''}`,
    `  opsets      ${d.opsets.map((o) => `${o.domain} ${o.version}`).join(', ') || '(none)'}`,
    `  graph       ${d.nodes.toLocaleString('en-US')} nodes, ${formatCount(d.parameters)} parameters`
      + (d.parameters >= 1e4 ? ` (${d.parameters.toLocaleString('en-US')})` : ''),
    '  inputs',
    ...table(d.inputs),
    '  outputs',
    ...table(d.outputs),
  ];
  if (d.pooledTap) {
    const dim = d.pooledTap.dim !== null ? `, ${d.pooledTap.dim}-d` : '';
    lines.push(`  pooled      ${d.pooledTap.source} (${d.pooledTap.op}${dim}): --tap auto exposes it as the image embedding`);
  } else {
    lines.push('  pooled      no global average pool found (--tap <tensor> names a feature tensor)');
  }
  return lines.join('\n');
}
