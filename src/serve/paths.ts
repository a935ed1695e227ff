// A path bundle as `serve` answers it: the tree and the server-wide threshold, and a record re-answered at a
// request's own `min_path_score` from the probabilities the predictor already computed (no second model call).
import type { BundleSession } from '../pipeline/bundle-session.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import { PATH_BACKOFF, PATH_UNANSWERED, pathRecord } from '../pipeline/predictor.js';
import { Taxonomy } from '../head/taxonomy.js';
import { parseUnitField, type FieldProblem } from './http-error.js';

/** What the server knows of a path bundle; null for a flat bundle. */
export interface ServePaths {
  tree: Taxonomy;
  /** The threshold in effect unless a request names its own: --min-path-score, else the bundle's. */
  minScore: number;
  separator: string;
  /** Where minScore came from, for the startup line. */
  source: '--min-path-score' | 'bundle';
}

export function servePaths(session: Pick<BundleSession, 'bundle'>, minPathScore: number | undefined): ServePaths | null {
  const paths = session.bundle.manifest.paths;
  if (!paths) return null;
  return {
    // Built once per server: the predictor has its own, but keeps it private, and requests only read this one.
    tree: new Taxonomy(session.bundle.manifest.classes),
    minScore: minPathScore ?? paths.minPathScore,
    separator: paths.separator,
    source: minPathScore === undefined ? 'bundle' : '--min-path-score',
  };
}

/**
 * `record` as the predictor would have made it with threshold `minScore`: category, score, path and the path
 * warning replaced, everything else (other warnings, their order, top_categories, tags) kept. Exactly what
 * `run --min-path-score minScore` writes for the row, since the answer is a function of the probabilities alone.
 */
export function answerAt(record: PredictionRecord, probs: ArrayLike<number>, tree: Taxonomy, minScore: number): PredictionRecord {
  const { warning, ...fields } = pathRecord(tree.answer(probs, minScore));
  // The predictor appends its path warning after the feature warnings: the replacement goes in the same place.
  const warnings = record.warnings.filter((w) => w !== PATH_BACKOFF && w !== PATH_UNANSWERED);
  return { ...record, ...fields, warnings: warning ? [...warnings, warning] : warnings };
}

/**
 * `min_path_score` (a form field of /predict, a query parameter of /predict/batch): a number from 0 to 1, or a
 * FastAPI-style field problem, as pydantic words them for a `float = Field(ge=0, le=1)`. Absent: undefined.
 */
export function parseScoreField(raw: string | undefined, field: string, loc: 'body' | 'query'): number | undefined | FieldProblem {
  return parseUnitField(raw, field, loc, false);
}
