// Where the repository lives, seen from compiled tests in dist/test/...
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

function findRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${start}`);
    dir = up;
  }
  return dir;
}

export const repoRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const goldenDir = path.join(repoRoot, 'test', 'golden');
/** ../shared beside the checkout, when present (tests that need it skip otherwise). */
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const hasShared = fs.existsSync(path.join(sharedDir, 'models'));
