// POST /predict: the replaced FastAPI service's endpoint, byte for byte where clients can tell. A multipart form
// (image file; title, description, top_k_tags fields) in, `{category, score, top_categories, tags}` out, through
// the same Predictor as `run`, so concurrent requests share micro-batches. A path bundle's answer keeps those keys
// and adds run's path fields after them (and takes a `min_path_score` field); with a target precision in effect (the
// server's, or a `target_precision` field), run's decision fields come last.
import type { FastifyRequest } from 'fastify';
import type { Predictor } from '../pipeline/predictor.js';
import type { CatalogRow } from '../io/catalog-reader.js';
import type { PredictionRecord, RecordDecision } from '../io/prediction-writer.js';
import type { Decision } from '../head/calibration.js';
import type { Taxonomy } from '../head/taxonomy.js';
import { sniffImageFormat } from '../embed/image-preprocess.js';
import { reasonCode } from '../errors.js';
import { HttpError, missingField, parseIntField, validationError, type FieldProblem } from './http-error.js';
import { MAX_TOP_K_TAGS } from './session.js';
import { answerAt, parseScoreField, type ServePaths } from './paths.js';
import { parseTargetField, withDecision } from './decision.js';

/** Largest text field (title, description): far above any real product text, small enough to hold many at once. */
export const MAX_FIELD_BYTES = 1024 * 1024;
export const DEFAULT_TOP_K_TAGS = 5;

export interface PredictForm {
  image: Buffer;
  title: string;
  description: string;
  topKTags: number;
  /** A path bundle's `min_path_score` field; undefined: the server's threshold. */
  minPathScore?: number;
  /** The `target_precision` field; undefined: the server's target, if it has one. */
  targetPrecision?: number;
}

/** The original response, exactly: no other keys (warnings go in the X-Categorize-Warnings header). */
export interface PredictResponse {
  category: string;
  score: number;
  top_categories: { category: string; prob: number }[];
  tags: string[];
}

/**
 * A path bundle's response: the original keys first, meaning what they mean in `run`'s records (category and score:
 * the answered node; top_categories: the likeliest full paths), then run's PATH_FIELDS, same names, same order.
 */
export interface PathPredictResponse extends PredictResponse {
  path_depth: number;
  path_complete: boolean;
  path_scores: number[];
  full_path: string;
  full_path_score: number;
}

/** What a response adds, last, when a target precision is in effect: run's DECISION_FIELDS, same names, same order. */
export interface DecisionResponse {
  decision: RecordDecision['decision'];
  target_precision: number;
}

/** An upload the image stage refused, as the status the original service's clients expect. */
const IMAGE_STATUS: Record<string, number> = { image_unsupported: 415, image_corrupt: 422, image_too_large: 422 };

const tooLarge = (detail: string, code: string) => new HttpError(413, detail, code, { connection: 'close' });

/**
 * Reads the form as it streams: the image is buffered up to `maxUploadBytes` and refused with 413 past that (the
 * rest is not read: the connection closes). Field problems are gathered and answered together, as FastAPI does.
 */
export async function readPredictForm(req: FastifyRequest, maxUploadBytes: number, opts: { paths?: boolean } = {}): Promise<PredictForm> {
  if (!req.isMultipart()) throw validationError([missingField('image')]);
  const fields = new Map<string, string>();
  let image: Buffer | undefined;
  try {
    const parts = req.parts({ limits: { fileSize: maxUploadBytes, files: 4, fields: 32, fieldSize: MAX_FIELD_BYTES, parts: 40 } });
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname === 'image' && image === undefined) image = await part.toBuffer();
        // Other files are no business of ours, but busboy only moves on once each is consumed.
        else part.file.resume();
      } else {
        if (part.valueTruncated) throw tooLarge(`form field ${part.fieldname} is over ${MAX_FIELD_BYTES} bytes`, 'field_too_large');
        if (!fields.has(part.fieldname)) fields.set(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(`image is over the ${maxUploadBytes}-byte upload limit (--max-upload-mb)`, 'upload_too_large');
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') throw tooLarge(`too many form parts (${(err as Error).message})`, 'too_many_parts');
    throw new HttpError(400, `There was an error parsing the body: ${(err as Error).message}`, 'bad_multipart', { connection: 'close' });
  }
  const problems: FieldProblem[] = [];
  if (image === undefined) {
    problems.push(
      fields.has('image')
        ? { type: 'value_error', loc: ['body', 'image'], msg: "Value error, Expected UploadFile, received: <class 'str'>", input: fields.get('image') }
        : missingField('image'),
    );
  }
  const topKTags = parseIntField(fields.get('top_k_tags'), 'top_k_tags', 'body', DEFAULT_TOP_K_TAGS, 0, MAX_TOP_K_TAGS);
  if (typeof topKTags !== 'number') problems.push(topKTags);
  // A flat bundle leaves min_path_score unread, as the original service left every field it did not know: a client
  // that sends it to both kinds of server gets from a flat one exactly what it got before.
  const minPathScore = opts.paths ? parseScoreField(fields.get('min_path_score'), 'min_path_score', 'body') : undefined;
  if (typeof minPathScore === 'object') problems.push(minPathScore);
  // Read whatever the bundle: no client of the original service sends it, and one that does wants to hear when the
  // bundle cannot decide at its target (a 400) rather than get an answer without a decision.
  const targetPrecision = parseTargetField(fields.get('target_precision'), 'target_precision', 'body');
  if (typeof targetPrecision === 'object') problems.push(targetPrecision);
  if (problems.length > 0) throw validationError(problems);
  return {
    image: image!,
    title: fields.get('title') ?? '',
    description: fields.get('description') ?? '',
    topKTags: topKTags as number,
    ...(typeof minPathScore === 'number' ? { minPathScore } : {}),
    ...(typeof targetPrecision === 'number' ? { targetPrecision } : {}),
  };
}

/**
 * Predicts one upload. The bytes are sniffed first, so a non-image costs no model call; a corrupt or oversized
 * image is found by the image stage, whose per-row reason becomes the status (the text is embedded by then:
 * the price of judging images by the same code as `run`). `decision`: the one this request gets (requestDecision), or
 * null for none.
 */
export async function predictUpload(
  predictor: Predictor,
  form: PredictForm,
  paths: ServePaths | null = null,
  decision: Decision | null = null,
): Promise<{ body: (PredictResponse | PathPredictResponse) & Partial<DecisionResponse>; warnings: string[] }> {
  if (form.image.length === 0) throw validationError([{ type: 'value_error', loc: ['body', 'image'], msg: 'Value error, the uploaded file is empty', input: null }]);
  if (!sniffImageFormat(form.image)) throw new HttpError(415, 'image: not an image (JPEG, PNG, WebP, GIF, TIFF or AVIF expected)', 'image_unsupported');
  const row: CatalogRow = { index: 0, line: 0, id: '', title: form.title, description: form.description, image: '', imageBytes: form.image, extra: {} };
  const { record: predicted, probs } = await predictor.predict(row);
  for (const reason of [...predicted.warnings, predicted.error ?? '']) {
    const code = reasonCode(reason);
    if (code.startsWith('image_') && code !== 'image_missing') {
      const why = reason.slice(code.length).replace(/^:\s*/, '').replace(/ \(and no text\)$/, '');
      throw new HttpError(IMAGE_STATUS[code] ?? 422, `image: ${why}`, code);
    }
  }
  if (paths) {
    // A path bundle's category is null when no top-level node is sure enough: an answer, not a failure.
    if (predicted.status !== 'ok' || probs === null || predicted.path === undefined) {
      throw new HttpError(500, `prediction failed: ${predicted.error ?? 'unknown error'}`, reasonCode(predicted.error ?? ''));
    }
    const answered = form.minPathScore === undefined || form.minPathScore === paths.minScore ? predicted : answerAt(predicted, probs, paths.tree, form.minPathScore);
    // Decided again: the answer at the request's min_path_score, or the request's target, may decide otherwise.
    const record = withDecision(answered, decision, predictor.predictedAttributes);
    return { body: { ...pathResponse(record, probs, paths.tree, form.topKTags), ...decisionResponse(record, decision), ...attributesResponse(record, predictor) }, warnings: record.warnings };
  }
  const record = withDecision(predicted, decision, predictor.predictedAttributes);
  if (record.status !== 'ok' || record.category === null || record.score === null) {
    throw new HttpError(500, `prediction failed: ${record.error ?? 'unknown error'}`, reasonCode(record.error ?? ''));
  }
  return {
    body: {
      category: record.category,
      score: record.score,
      top_categories: record.top_categories.map((t) => ({ category: t.category, prob: t.prob })),
      tags: record.tags.slice(0, form.topKTags),
      ...decisionResponse(record, decision),
      ...attributesResponse(record, predictor),
    },
    warnings: record.warnings,
  };
}

/** What a response adds, last, for a bundle with attributes: each attribute's value, score, top values and decision. */
export interface AttributesResponse {
  attributes: Record<string, { value: string | null; score: number | null; top: { value: string; prob: number }[]; decision?: RecordDecision['decision']; target_precision?: number }>;
}

/** A record's attributes as /predict answers them; nothing for a bundle without attributes (the original keys only). */
function attributesResponse(record: PredictionRecord, predictor: Predictor): AttributesResponse | Record<string, never> {
  const names = predictor.attributeNames;
  if (names.length === 0) return {};
  return {
    attributes: Object.fromEntries(
      names.map((name) => {
        const a = record.attributes?.[name];
        return [name, { value: a?.value ?? null, score: a?.score ?? null, top: a?.top ?? [], ...(a?.decision ? { decision: a.decision.decision, target_precision: a.decision.target } : {}) }];
      }),
    ),
  };
}

/** The decision fields of an answered record, or nothing without a decision (the response keeps its original keys). */
function decisionResponse(record: PredictionRecord, decision: Decision | null): DecisionResponse | Record<string, never> {
  if (!decision || !record.decision) return {};
  return { decision: record.decision.decision, target_precision: record.decision.target };
}

/**
 * A path bundle's record as /predict answers it. `run` writes `category: null, score: null` when no top-level node
 * reaches the threshold; the original service never answered null (its clients read a string and a number), so
 * here `category` is then the likeliest top-level node and `score` its probability — the least specific claim the
 * model can make, below the threshold, so a client that checks `score` against its own cut-off still refuses it.
 * A path-aware client sees the truth in `path_depth: 0` and the `path_unanswered` warning. (Not the likeliest full
 * path: that would make the most specific claim exactly when the model is least sure; it is in `full_path`.)
 */
export function pathResponse(record: PredictionRecord, probs: ArrayLike<number>, tree: Taxonomy, topKTags: number): PathPredictResponse {
  const p = record.path;
  if (!p) throw new HttpError(500, 'prediction failed: no path answer for a path bundle', 'internal');
  let category = record.category;
  let score = record.score;
  if (category === null || score === null) {
    // At threshold 0 the first level of the answer is the likeliest top-level node: the one the threshold refused.
    const top = tree.answer(probs, 0).levels[0];
    category = top.node;
    score = top.prob;
  }
  return {
    category,
    score,
    top_categories: record.top_categories.map((t) => ({ category: t.category, prob: t.prob })),
    tags: record.tags.slice(0, topKTags),
    path_depth: p.depth,
    path_complete: p.complete,
    path_scores: [...p.scores],
    full_path: p.full_path,
    full_path_score: p.full_path_score,
  };
}
