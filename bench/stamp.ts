// Cached bench artefacts (trained bundles): rebuilt when what they were built from changes.
import fs from 'node:fs';
import { BUNDLE_FORMAT_VERSION } from '../src/models/bundle.js';

/**
 * Reuses `dir` while its stamp (what it was built from: inputs' hashes, the command, plus the tool's bundle format)
 * is unchanged, else runs `build` into it afresh. The stamp sits beside it as `<dir>.stamp.json`. True when built.
 */
export function buildUnlessStamped(dir: string, inputs: Record<string, unknown>, build: () => void): boolean {
  const stampFile = `${dir}.stamp.json`;
  const stamp = JSON.stringify({ ...inputs, format: BUNDLE_FORMAT_VERSION });
  if (fs.existsSync(`${dir}/manifest.json`) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return false;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(stampFile, { force: true });
  build();
  fs.writeFileSync(stampFile, stamp);
  return true;
}
