// Category paths: parsing a label into levels, the tree over a target's classes, and the path answer — the
// deepest node the model is sure of, where a node's probability is the sum over the classes at and below it.
import { UsageError } from '../errors.js';

/** The separator a label column's paths are split on unless --path-separator says otherwise. */
export const DEFAULT_PATH_SEPARATOR = '>';
/** How stored paths (class names) join their levels, whatever the catalog's separator. */
export const PATH_JOIN = ' > ';
/** The answer stops above a node whose probability is below this, unless the bundle or --min-path-score says otherwise. */
export const DEFAULT_MIN_PATH_SCORE = 0.5;

/** The levels of one label: split on `separator`, each level trimmed, empty levels (a doubled or trailing separator) dropped. */
export function parsePath(label: string, separator: string): string[] {
  if (separator === '') throw new UsageError('--path-separator cannot be empty', 'path_separator');
  return label
    .split(separator)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** A label in its stored form: levels joined by " > ". A label without the separator is its own one-level path. */
export function canonicalPath(label: string, separator: string): string {
  return parsePath(label, separator).join(PATH_JOIN);
}

/** The stored form's levels (class names are always joined by PATH_JOIN). */
export function pathLevels(path: string): string[] {
  return path.split(PATH_JOIN);
}

/** True when some label has more than one level: the column holds paths rather than flat classes. */
export function holdsPaths(labels: Iterable<string>, separator: string): boolean {
  for (const l of labels) if (parsePath(l, separator).length > 1) return true;
  return false;
}

/** The stored path truncated to its first `depth` levels (the whole path when it is shallower). */
export function pathPrefix(path: string, depth: number): string {
  return pathLevels(path).slice(0, depth).join(PATH_JOIN);
}

/** A path with its ancestors: ["A", "A > B", "A > B > C"] for "A > B > C" (the sets hierarchical metrics compare). */
export function withAncestors(path: string): string[] {
  const levels = pathLevels(path);
  return levels.map((_, d) => levels.slice(0, d + 1).join(PATH_JOIN));
}

/** A share (0–1) for one path level: a limit on it (check) or a minimum (eval). Level 1 is the top. */
export interface LevelShare {
  level: number;
  share: number;
}

/** Where a path answer stopped, with the probability at each level of it. */
export interface PathAnswer {
  /** The answered node (stored form), or null when no top-level node reaches the threshold. */
  node: string | null;
  /** The answered node's probability; with no answer, the most probable top-level node's. */
  score: number;
  /** Levels answered: 0 (none) up to the node's depth. */
  depth: number;
  /** Each level of the answered path, top first: the node and its probability (never rising going down). */
  levels: { node: string; prob: number }[];
  /** True when the answer is a class the model was trained on, reached without stopping for lack of confidence. */
  complete: boolean;
  /** The most probable class (full path) and its probability. */
  full: { path: string; prob: number };
}

interface TreeNode {
  key: string;
  depth: number;
  /** Child node indices, and this node's own class index (-1: an inner node no row was filed at). */
  children: number[];
  classIndex: number;
}

/**
 * The tree of a target's classes: every prefix of every class path is a node. A class may be an inner node
 * (a product filed at "A > B" while others are under "A > B > C"); its own probability is then one of the
 * options at that node, beside its children's subtrees.
 */
export class Taxonomy {
  private readonly nodes: TreeNode[] = [];
  /** Top-level node indices. */
  private readonly roots: number[] = [];
  /** Per class, the node indices of its path, top first. */
  private readonly classNodes: number[][];
  /** Per class, the index (in `roots`) of its top level; and each top level's index by name. */
  private readonly rootOfClass: Int32Array;
  private readonly rootIndex: Map<string, number>;
  private readonly nodeIndex: Map<string, number>;

  constructor(readonly classes: readonly string[]) {
    const index = new Map<string, number>();
    this.classNodes = classes.map((cls, k) => {
      const levels = pathLevels(cls);
      const chain: number[] = [];
      for (let d = 0; d < levels.length; d++) {
        const key = levels.slice(0, d + 1).join(PATH_JOIN);
        let n = index.get(key);
        if (n === undefined) {
          n = this.nodes.length;
          index.set(key, n);
          this.nodes.push({ key, depth: d + 1, children: [], classIndex: -1 });
          if (d === 0) this.roots.push(n);
          else this.nodes[chain[d - 1]].children.push(n);
        }
        chain.push(n);
      }
      this.nodes[chain[chain.length - 1]].classIndex = k;
      return chain;
    });
    this.nodeIndex = index;
    this.rootIndex = new Map(this.roots.map((n, r) => [this.nodes[n].key, r]));
    this.rootOfClass = Int32Array.from(this.classNodes, (chain) => this.rootIndex.get(this.nodes[chain[0]].key)!);
  }

  /** Whether `path` (stored form) is a node: a class or an ancestor of one. */
  has(path: string): boolean {
    return this.nodeIndex.has(path);
  }

  /** Nodes in the tree (every distinct prefix). */
  get size(): number {
    return this.nodes.length;
  }

  /** Deepest class path, in levels. */
  get maxDepth(): number {
    return this.nodes.reduce((m, n) => Math.max(m, n.depth), 0);
  }

  /** The top-level names, in the order their nodes were first met (classes order). */
  get topLevels(): string[] {
    return this.roots.map((n) => this.nodes[n].key);
  }

  /**
   * The flat head's class probabilities with their top-level marginals replaced by a top-level head's:
   * p(class) = p_flat(class | its top level) · p_top(its top level). Within a top level the flat head's ranking is
   * kept; across them the top-level head decides, which pools every row of a department (the flat head's sums
   * favour departments with many leaves). `top` is over `topClasses` (names); a top level it lacks gets 0. A top level
   * whose flat mass underflowed to 0 shares its probability equally among its classes.
   */
  withTopLevel(probs: ArrayLike<number>, top: ArrayLike<number>, topClasses: readonly string[], out: Float64Array<ArrayBufferLike> = new Float64Array(this.classes.length)): Float64Array<ArrayBufferLike> {
    const R = this.roots.length;
    const topProb = new Float64Array(R);
    topClasses.forEach((name, j) => {
      const r = this.rootIndex.get(name);
      if (r !== undefined) topProb[r] = top[j];
    });
    const mass = new Float64Array(R);
    const count = new Float64Array(R);
    for (let k = 0; k < this.rootOfClass.length; k++) {
      mass[this.rootOfClass[k]] += probs[k];
      count[this.rootOfClass[k]]++;
    }
    for (let k = 0; k < this.rootOfClass.length; k++) {
      const r = this.rootOfClass[k];
      out[k] = mass[r] > 0 ? (probs[k] / mass[r]) * topProb[r] : topProb[r] / count[r];
    }
    return out;
  }

  /** Per node, its probability: the sum of the class probabilities at and below it. Costs classes × depth. */
  nodeScores(probs: ArrayLike<number>): Float64Array {
    const out = new Float64Array(this.nodes.length);
    for (let k = 0; k < this.classNodes.length; k++) {
      const p = probs[k];
      for (const n of this.classNodes[k]) out[n] += p;
    }
    return out;
  }

  /**
   * The path answer: from the top, take the most probable option at each node — a child's subtree, or the node's
   * own class — while its probability reaches `minScore`; stop at the deepest node so reached. Ties go to the
   * node's own class, then to the child whose name sorts first, so the answer does not depend on class order.
   */
  answer(probs: ArrayLike<number>, minScore: number): PathAnswer {
    return this.answerFrom(probs, this.nodeScores(probs), minScore);
  }

  /** `answer` with the node scores already computed (one row answered at many thresholds). */
  answerFrom(probs: ArrayLike<number>, scores: Float64Array, minScore: number): PathAnswer {
    const levels: PathAnswer['levels'] = [];
    let at = -1;
    let complete = false;
    let options = this.roots;
    let best = this.bestOf(options, scores);
    let topScore = scores[best];
    for (;;) {
      const own = at >= 0 ? this.nodes[at].classIndex : -1;
      const ownProb = own >= 0 ? probs[own] : -Infinity;
      if (at >= 0 && own >= 0 && ownProb >= (best >= 0 ? scores[best] : -Infinity)) {
        // The node's own class is the likeliest option: the answer is this class, complete when it is sure enough.
        complete = ownProb >= minScore;
        break;
      }
      if (best < 0 || scores[best] < minScore) break;
      at = best;
      levels.push({ node: this.nodes[at].key, prob: scores[at] });
      options = this.nodes[at].children;
      best = this.bestOf(options, scores);
      if (at >= 0 && options.length === 0) {
        complete = true;
        break;
      }
    }
    if (at >= 0) topScore = scores[at];
    let arg = 0;
    for (let k = 1; k < this.classes.length; k++) if (probs[k] > probs[arg]) arg = k;
    return {
      node: at >= 0 ? this.nodes[at].key : null,
      score: topScore,
      depth: levels.length,
      levels,
      complete,
      full: { path: this.classes[arg], prob: probs[arg] },
    };
  }

  private bestOf(options: number[], scores: Float64Array): number {
    let best = -1;
    for (const n of options) {
      if (best < 0 || scores[n] > scores[best] || (scores[n] === scores[best] && this.nodes[n].key < this.nodes[best].key)) best = n;
    }
    return best;
  }
}
