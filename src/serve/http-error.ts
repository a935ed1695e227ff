// Errors a request can end with, in the body shape FastAPI gives its clients: `{"detail": "..."}`, or for a form
// field that is missing or invalid, `{"detail": [{"type", "loc", "msg", "input"}]}` with status 422 — the shape
// clients of the replaced Python service already parse.

/** One invalid form field, as pydantic reports it. */
export interface FieldProblem {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** The response body's `detail`: a sentence, or the list of field problems. */
    readonly detail: string | FieldProblem[],
    /** Short snake_case reason, the `code` label of categorize_errors_total. */
    readonly code: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof detail === 'string' ? detail : detail.map((d) => `${d.loc.join('.')}: ${d.msg}`).join('; '));
  }
}

/** 422 naming the fields: what FastAPI answers when a Form/File parameter is missing or does not validate. */
export function validationError(problems: FieldProblem[]): HttpError {
  return new HttpError(422, problems, problems.length === 1 ? problems[0].type : 'validation');
}

export const missingField = (field: string): FieldProblem => ({ type: 'missing', loc: ['body', field], msg: 'Field required', input: null });

/** Busy (queue full, loading, shutting down): come back later. */
export function unavailable(detail: string, code: string, retryAfterSeconds = 1): HttpError {
  return new HttpError(503, detail, code, { 'retry-after': String(retryAfterSeconds) });
}

/**
 * A number field from 0 to 1 as pydantic checks a `float = Field(ge=0, le=1)` (`exclusive`: `Field(gt=0, lt=1)`):
 * decimal notation only (pydantic also takes "inf" and "nan", which no probability means), or the field problem
 * FastAPI words. Absent: undefined.
 */
export function parseUnitField(raw: string | undefined, field: string, loc: 'body' | 'query', exclusive: boolean): number | undefined | FieldProblem {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) {
    return { type: 'float_parsing', loc: [loc, field], msg: 'Input should be a valid number, unable to parse string as a number', input: raw };
  }
  const p = Number(s);
  if (exclusive ? !(p > 0) : p < 0) return { type: exclusive ? 'greater_than' : 'greater_than_equal', loc: [loc, field], msg: `Input should be greater than ${exclusive ? '' : 'or equal to '}0`, input: raw };
  if (exclusive ? !(p < 1) : p > 1) return { type: exclusive ? 'less_than' : 'less_than_equal', loc: [loc, field], msg: `Input should be less than ${exclusive ? '' : 'or equal to '}1`, input: raw };
  return p;
}

/** `top_k_tags` and the like: an integer from min to max, or a FastAPI-style field problem. */
export function parseIntField(raw: string | undefined, field: string, loc: 'body' | 'query', dflt: number, min: number, max: number): number | FieldProblem {
  if (raw === undefined) return dflt;
  const s = raw.trim();
  if (!/^[+-]?\d+$/.test(s)) {
    return { type: 'int_parsing', loc: [loc, field], msg: 'Input should be a valid integer, unable to parse string as an integer', input: raw };
  }
  const n = Number(s);
  if (n < min) return { type: 'greater_than_equal', loc: [loc, field], msg: `Input should be greater than or equal to ${min}`, input: raw };
  if (n > max) return { type: 'less_than_equal', loc: [loc, field], msg: `Input should be less than or equal to ${max}`, input: raw };
  return n;
}
