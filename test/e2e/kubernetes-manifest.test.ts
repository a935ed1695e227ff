// The Kubernetes example, dry-run: parse the Jobs in docs/kubernetes/ and execute each pod's exact
// shell command locally (JOB_COMPLETION_INDEX set as Kubernetes sets it, the volume paths pointed at a tmp dir),
// then the merge Job's command; the merged file must equal a plain, unsharded run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { bin, demo, ensureDemo, readJsonl, runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

interface Container {
  command: string[];
  args: string[];
  env: { name: string; value: string }[];
}
interface Job {
  kind: string;
  apiVersion: string;
  metadata: { name: string };
  spec: { completionMode?: string; completions?: number; parallelism?: number; template: { spec: { restartPolicy: string; containers: Container[] } } };
}

function sh(container: Container, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(container.command[0]!, [...container.command.slice(1), ...container.args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('the Indexed Job manifest runs as written: one shard per completion index, then merge restores the catalog', async () => {
  await ensureDemo();
  const docs = ['categorize-indexed-job.yaml', 'categorize-merge-job.yaml'].flatMap((f) =>
    parseAllDocuments(fs.readFileSync(path.join(repoRoot, 'docs', 'kubernetes', f), 'utf8')).map((d) => d.toJS() as Job),
  );
  const shards = docs.find((d) => d.metadata.name === 'categorize-shards')!;
  const merge = docs.find((d) => d.metadata.name === 'categorize-merge')!;
  for (const job of [shards, merge]) {
    assert.equal(job.apiVersion, 'batch/v1');
    assert.equal(job.kind, 'Job');
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
  }
  assert.equal(shards.spec.completionMode, 'Indexed');
  const pod = shards.spec.template.spec.containers[0]!;
  const podEnv = Object.fromEntries(pod.env.map((e) => [e.name, e.value]));
  const n = shards.spec.completions!;
  assert.equal(Number(podEnv.SHARDS), n, 'SHARDS must equal completions');
  assert.equal(shards.spec.parallelism, n);

  // The volume, locally: the catalog and bundle where the manifest expects them; `categorize` on the PATH.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-k8s-'));
  const binDir = path.join(tmp, 'bin');
  fs.mkdirSync(binDir);
  fs.writeFileSync(path.join(binDir, 'categorize'), `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`, { mode: 0o755 });
  const catalog = path.join(tmp, 'catalog.csv');
  fs.writeFileSync(catalog, fs.readFileSync(demo.catalog, 'utf8').replace(/,images\//g, `,${path.dirname(demo.catalog)}/images/`));
  const local = { CATALOG: catalog, BUNDLE: demo.bundle, OUT: path.join(tmp, 'out'), CATEGORIZE_CACHE: path.join(tmp, 'cache'), PATH: `${binDir}:${process.env.PATH}` };

  for (let index = 0; index < n; index++) {
    const r = await sh(pod, { ...podEnv, ...local, JOB_COMPLETION_INDEX: String(index) });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; shard?: string });
    assert.equal(events.at(-1)!.event, 'summary');
    assert.equal(events.at(-1)!.shard, `${index}/${n}`);
  }
  // A pod retried after a crash re-runs the same command: --resume makes that a no-op here.
  assert.equal((await sh(pod, { ...podEnv, ...local, JOB_COMPLETION_INDEX: '0' })).code, 0);

  const mergePod = merge.spec.template.spec.containers[0]!;
  const mergeEnv = Object.fromEntries(mergePod.env.map((e) => [e.name, e.value]));
  const r = await sh(mergePod, { ...mergeEnv, ...local });
  assert.equal(r.code, 0, r.stderr);

  const plain = path.join(tmp, 'plain.jsonl');
  assert.equal((await runCli(['run', catalog, '--model', demo.bundle, '-o', plain, '-q'])).code, 0);
  const merged = readJsonl(path.join(local.OUT, 'predictions.jsonl'));
  const expected = readJsonl(plain);
  assert.deepEqual(merged.map((x) => [x.id, x.category, x.tags]), expected.map((x) => [x.id, x.category, x.tags]));
  fs.rmSync(tmp, { recursive: true, force: true });
});
