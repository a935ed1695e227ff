// Local embedding models: resolve a folder or .onnx file into the model file and its spec (pooling, dims, preprocessing).
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { imagenetPreprocess, type ImagePreprocessSpec } from '../embed/image-preprocess.js';

export type ImagePreprocess = ImagePreprocessSpec;

export interface TextModelSpec {
  kind: 'text';
  /** The ONNX file. */
  modelPath: string;
  /** Folder holding tokenizer.json + tokenizer_config.json. */
  tokenizerDir: string;
  /** Output holding [N, S, H] token states. */
  output: string;
  pooling: 'mean';
  normalize: boolean;
  /** Tokens per text after truncation, special tokens included. */
  maxLength: number;
  /** Embedding size, when known before loading (checked against the model's output). */
  dim?: number;
}

export interface ImageModelSpec {
  kind: 'image';
  modelPath: string;
  /** Output taken as the embedding; undefined = the model's first output. */
  output?: string;
  preprocess: ImagePreprocess;
  dim?: number;
}

/** What a model folder's categorize-model.json may say; everything optional. */
interface ModelDescriptor {
  kind?: 'text' | 'image';
  file?: string;
  output?: string;
  pooling?: 'mean';
  normalize?: boolean;
  maxLength?: number;
  dim?: number;
  preprocess?: Partial<ImagePreprocess>;
}

const DESCRIPTOR = 'categorize-model.json';

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, 'model_files');
  }
}

function readDescriptor(dir: string): ModelDescriptor {
  const file = path.join(dir, DESCRIPTOR);
  return fs.existsSync(file) ? (readJson(file) as ModelDescriptor) : {};
}

const ONNX_IN_FOLDER = ['model.onnx', path.join('onnx', 'model.onnx')];

/** model.onnx, or the hub layout's onnx/model.onnx, in a folder; undefined when neither exists. */
export function onnxInFolder(dir: string): string | undefined {
  return ONNX_IN_FOLDER.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

/** The ONNX file inside a folder: the descriptor's `file`, model.onnx, or the hub layout's onnx/model.onnx. */
function findOnnx(dir: string, desc: ModelDescriptor, what: string): string {
  const candidates = desc.file ? [desc.file] : ONNX_IN_FOLDER;
  for (const c of candidates) {
    const p = path.resolve(dir, c);
    if (fs.existsSync(p)) return p;
  }
  throw new ConfigError(`${what} folder ${dir} has no ONNX model (looked for ${candidates.join(', ')})`, 'model_files');
}

function statOrThrow(p: string, what: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch {
    throw new ConfigError(`${what} not found: ${p}`, 'model_files');
  }
}

/** Resolves a text model folder (ONNX + tokenizer files). */
export function resolveTextModel(location: string, file?: string): TextModelSpec {
  const dir = path.resolve(location);
  if (!statOrThrow(dir, 'text model').isDirectory()) {
    throw new ConfigError(`text model must be a folder with model.onnx and tokenizer.json: ${dir}`, 'model_files');
  }
  const desc = readDescriptor(dir);
  const modelPath = file ? path.resolve(dir, file) : findOnnx(dir, desc, 'text model');
  statOrThrow(modelPath, 'text model file');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!fs.existsSync(path.join(dir, f))) throw new ConfigError(`text model folder ${dir} lacks ${f}`, 'model_files');
  }
  return {
    kind: 'text',
    modelPath,
    tokenizerDir: dir,
    output: desc.output ?? 'last_hidden_state',
    pooling: desc.pooling ?? 'mean',
    normalize: desc.normalize ?? true,
    maxLength: desc.maxLength ?? sentenceTransformersMaxLength(dir) ?? 256,
    dim: desc.dim,
  };
}

/** sentence-transformers keeps its truncation length in sentence_bert_config.json (256 for all-MiniLM-L6-v2). */
export function sentenceTransformersMaxLength(dir: string): number | undefined {
  const file = path.join(dir, 'sentence_bert_config.json');
  if (!fs.existsSync(file)) return undefined;
  const v = (readJson(file) as { max_seq_length?: unknown }).max_seq_length;
  return typeof v === 'number' && v > 0 ? v : undefined;
}

/** Resolves an image model: a folder (model.onnx + optional descriptor) or an .onnx file. */
export function resolveImageModel(location: string, file?: string): ImageModelSpec {
  const p = path.resolve(location);
  const st = statOrThrow(p, 'image model');
  const dir = st.isDirectory() ? p : path.dirname(p);
  const desc = st.isDirectory() ? readDescriptor(dir) : {};
  const modelPath = file ? path.resolve(dir, file) : st.isDirectory() ? findOnnx(dir, desc, 'image model') : p;
  statOrThrow(modelPath, 'image model file');
  return {
    kind: 'image',
    modelPath,
    output: desc.output,
    preprocess: { ...imagenetPreprocess, ...(desc.preprocess ?? {}) },
    dim: desc.dim,
  };
}

/**
 * The ONNX file of a local image model (a file, or a folder's model) whose embedding output nobody chose: a folder
 * whose categorize-model.json names an output or a dim is taken as it says. undefined when there is no such file.
 */
export function untappedImageOnnx(location: string): string | undefined {
  const p = path.resolve(location);
  if (!fs.existsSync(p)) return undefined;
  if (!fs.statSync(p).isDirectory()) return p;
  const desc = readDescriptor(p);
  if (desc.output !== undefined || desc.dim !== undefined) return undefined;
  const file = desc.file ? path.resolve(p, desc.file) : onnxInFolder(p);
  return file && fs.existsSync(file) ? file : undefined;
}
