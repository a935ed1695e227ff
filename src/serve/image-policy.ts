// Which image references a /predict/batch row may make the server read. A client names files on the server's disk
// and URLs the server fetches, so both are refused unless the operator allowed them: files only under
// --image-root (symlinks followed, so a link cannot lead out), URLs only with --allow-image-urls.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CatalogRow } from '../io/catalog-reader.js';
import { UsageError } from '../errors.js';

export interface ImagePolicy {
  /** Real path of --image-root, or undefined: no file is read. */
  root: string | undefined;
  allowUrls: boolean;
}

/** Checks --image-root once at start-up (exit 2 when it is not a folder) and returns its real path. */
export async function imagePolicy(imageRoot: string | undefined, allowUrls: boolean): Promise<ImagePolicy> {
  if (imageRoot === undefined) return { root: undefined, allowUrls };
  let root: string;
  try {
    root = await fs.realpath(imageRoot);
  } catch {
    throw new UsageError(`--image-root ${imageRoot} does not exist`, 'image_root');
  }
  if (!(await fs.stat(root)).isDirectory()) throw new UsageError(`--image-root ${imageRoot} is not a folder`, 'image_root');
  return { root, allowUrls };
}

function inside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

const refused = (row: CatalogRow, why: string): CatalogRow => ({ ...row, error: `image_ref_refused: ${why}` });

/**
 * The row with its image cell made an absolute path the policy allows, or marked with an `image_ref_refused`
 * error. Cells the pipeline will refuse anyway (unknown schemes) pass unchanged, to get its usual warning.
 */
export async function screenImageRef(row: CatalogRow, policy: ImagePolicy): Promise<CatalogRow> {
  const cell = row.image.trim();
  if (row.error || row.imageBytes || cell === '') return row;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]+):/.exec(cell)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    return policy.allowUrls ? row : refused(row, 'this server does not fetch image URLs (start it with --allow-image-urls)');
  }
  let file: string;
  if (scheme === 'file') {
    try {
      file = fileURLToPath(cell);
    } catch {
      return row;
    }
  } else if (scheme !== undefined) {
    return row;
  } else {
    file = cell;
  }
  if (!policy.root) return refused(row, 'this server reads no image files (start it with --image-root DIR)');
  const resolved = path.resolve(policy.root, file);
  if (!inside(policy.root, resolved)) return refused(row, `${cell} is outside the server's --image-root`);
  // A missing file stays as it is (the pipeline reports image_not_found); an existing one must really be inside.
  const real = await fs.realpath(resolved).catch(() => undefined);
  if (real !== undefined && !inside(policy.root, real)) return refused(row, `${cell} is outside the server's --image-root`);
  return { ...row, image: real ?? resolved };
}
