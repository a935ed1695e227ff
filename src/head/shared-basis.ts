// One row-space basis for every head fitted on some of the same rows with the same TF-IDF: a bundle's text head, its
// early-fusion joint head and each attribute's heads all solve their TF-IDF block over (a subset of) the final rows.
// The basis (a Gram matrix and its pivoted Cholesky: about n³/6 multiply-adds, most of a head's cost at a few thousand
// rows) is built once, over the distinct TF-IDF rows of all of them; a head over a subset uses its rows' coordinates.
// Any orthonormal basis of a span that holds a head's rows gives that head the same optimum (the L2 penalty is the
// same in any orthonormal basis, and the iterates stay in the span of its rows), so sharing changes no fitted model
// beyond rounding; and it is the same basis whichever head asks first, so results do not depend on timing.
import crypto from 'node:crypto';
import type { CollectedRow } from '../pipeline/collect.js';
import type { CsrBlock } from './design-matrix.js';
import type { FitPool } from './fit-pool.js';
import type { HeadDesign } from './modality-head.js';
import { csrRows, sharedArray } from './modality-head.js';
import { ROW_SPACE_MAX_ROWS, type RowSpaceBasis } from './rowspace.js';
import { tfidfCsr } from './target.js';
import type { TfidfBlockModel } from './tfidf.js';

/** A stored TF-IDF row's identity: a digest of its column indices and values. */
function rowKey(S: CsrBlock, i: number): string {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const from = S.indptr[i]!;
  const to = S.indptr[i + 1]!;
  return crypto.createHash('sha1').update(bytes(S.indices.subarray(from, to))).update(bytes(S.values.subarray(from, to))).digest('base64');
}

/** A design takes the shared basis when it has at least this share of the universe's rows. */
const SHARE_MIN_FRACTION = 0.75;

export class SharedBasis {
  private readonly members: Set<CollectedRow>;
  private master: Promise<{ basis: RowSpaceBasis; rowOf: Map<string, number> }> | null = null;

  /** `universe`: every row a head using this basis may be fitted on; `tfidf`: the vectorizers all those heads share. */
  constructor(
    private readonly universe: readonly CollectedRow[],
    readonly tfidf: TfidfBlockModel,
    private readonly pool: FitPool,
  ) {
    this.members = new Set(universe);
  }

  /**
   * Whether a design over these rows (with this TF-IDF) takes its basis from here: all its rows are the universe's,
   * and most of them (a head over a small part of the rows is cheaper in a basis of its own: fits cost the basis's
   * size), and the universe is small enough for row space at all.
   */
  covers(rows: readonly CollectedRow[], tfidf: TfidfBlockModel): boolean {
    const universe = this.withText;
    return tfidf === this.tfidf && universe <= ROW_SPACE_MAX_ROWS && rows.length >= SHARE_MIN_FRACTION * universe && rows.every((r) => this.members.has(r));
  }

  private get withText(): number {
    return this.universe.reduce((n, r) => n + (r.text !== '' ? 1 : 0), 0);
  }

  private widthBound: number | null = null;

  /**
   * The basis's width at most, known before it is built: the universe's distinct non-empty texts (its rank is at
   * most its distinct TF-IDF rows). What a head sharing it pays per row, where its own basis would cost its rows.
   */
  get width(): number {
    this.widthBound ??= new Set(this.universe.filter((r) => r.text !== '').map((r) => r.text)).size;
    return this.widthBound;
  }

  /** The basis over the universe's distinct TF-IDF rows, built once (by whichever head asks first). */
  private build(): Promise<{ basis: RowSpaceBasis; rowOf: Map<string, number> }> {
    this.master ??= (async () => {
      const rows = this.universe.filter((r) => r.text !== '');
      const S = tfidfCsr(rows, this.tfidf, (len) => sharedArray(Int32Array, len), (len) => sharedArray(Float64Array, len));
      const rowOf = new Map<string, number>();
      const distinct: number[] = [];
      for (let i = 0; i < rows.length; i++) {
        const key = rowKey(S, i);
        if (rowOf.has(key)) continue;
        rowOf.set(key, distinct.length);
        distinct.push(i);
      }
      const basis = await this.pool.basis(S, Int32Array.from(distinct));
      // L's row a is distinct[a]; the pivots (rows of this S) are kept as rows of their own.
      return { basis: { ...basis, pivotRows: csrRows(S, basis.pivots) }, rowOf };
    })();
    return this.master;
  }

  /**
   * Gives `design` (whose rows are covered) the shared basis: each of its distinct rows' L row by its TF-IDF row.
   * False, leaving the design as it was, when one of its rows is not in the basis (it is then built for the design).
   */
  async attach(design: HeadDesign): Promise<boolean> {
    const { basis, rowOf } = await this.build();
    const S = design.sparse!;
    const basisRows = new Int32Array(design.distinct.length);
    for (let c = 0; c < design.distinct.length; c++) {
      const i = design.distinct[c]!;
      // An empty TF-IDF row (no text) has coordinates 0: any row of L would be wrong, so such designs keep their own.
      const at = S.indptr[i + 1]! > S.indptr[i]! ? rowOf.get(rowKey(S, i)) : undefined;
      if (at === undefined) return false;
      basisRows[c] = at;
    }
    design.basis = basis;
    design.basisRows = basisRows;
    return true;
  }
}
