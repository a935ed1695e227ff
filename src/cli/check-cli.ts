// `categorize check` wiring: flags into CheckOptions, the readable summary (and GitHub annotations) on stdout, exit 3
// when a check fails. Kept out of main.ts so the command is one registration line there.
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { checkAnnotations, checkCommand, checkLabel, DEFAULT_FLAG_PRECISION, DEFAULT_LOW_CONFIDENCE, DEFAULT_MIN_CONFIDENCE, DEFAULT_THRESHOLDS, formatFinding, listedFindings, type CheckOutcome, type CheckResult, type CheckThresholds } from '../commands/check.js';
import { ExitCode, UsageError } from '../errors.js';
import { displayWidth } from '../report/table.js';
import { MIN_PATH_SCORE_HELP, floatOption, intOption, levelShares, listOption, oneTargetPrecision, targetShares, type LevelShare, type TargetShares } from './options.js';
import { addPipelineOptions, cliLog, pipelineOptions, type Io, type PipelineFlags } from './pipeline-options.js';
import { makeProgress } from './progress.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface CheckFlags extends PipelineFlags, Omit<CheckThresholds, 'maxDisagreementRateByLevel' | 'maxDisagreementRate' | 'maxLowConfidenceRate' | 'attributes'> {
  model: string;
  maxDisagreementRate: TargetShares;
  maxLowConfidenceRate: TargetShares;
  attributes?: string[];
  maxDisagreementRateLevel?: LevelShare[];
  minPathScore?: number;
  targetPrecision?: number;
  labelColumn?: string;
  minConfidence?: number;
  lowConfidence?: number;
  flagPrecision?: number;
  junit?: string;
  json?: string;
  annotations?: 'github';
  maxListed: number;
  maxAnnotations: number;
}

const ESC = '\u001b[';
const paint = (on: boolean, s: string, codes: string) => (on ? `${ESC}${codes}m${s}${ESC}0m` : s);
const STATUS = { pass: ['PASS', '32'], fail: ['FAIL', '1;31'], skip: ['SKIP', '2'] } as const;

/** Ids, categories and error texts are user data: a control character could rewrite the terminal or fake a workflow command. */
const clean = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

const pctText = (x: number) => `${(100 * x).toFixed(2)}%`;

function threshold(c: CheckOutcome): string {
  const main = c.threshold.on === 'rate' ? `max ${pctText(c.threshold.max)}` : `max ${c.threshold.max}`;
  return `${main} (${c.threshold.flag})${levelThresholds(c)}`;
}

/** A path bundle's level limits, after the overall one: "; level 1 max 0.00% (--max-disagreement-rate-level)". */
function levelThresholds(c: CheckOutcome): string {
  const limited = (c.levels ?? []).filter((l) => l.max !== null);
  if (limited.length === 0) return '';
  return `; ${limited.map((l) => `level ${l.level} max ${pctText(l.max!)}`).join(', ')} (--max-disagreement-rate-level)`;
}

/** One line per check, then the rows behind each failing check (up to maxListed), then the verdict. */
export function formatCheckSummary(r: CheckResult, opts: { color: boolean; maxListed: number }): string {
  const nameWidth = Math.max(...r.checks.map((c) => displayWidth(checkLabel(c))));
  const out = [`categorize check: ${r.rows} rows of ${clean(r.input === '-' ? 'stdin' : r.input)} · model ${clean(r.model)}`];
  for (const c of r.checks) {
    const [word, codes] = STATUS[c.status];
    const name = checkLabel(c) + ' '.repeat(nameWidth - displayWidth(checkLabel(c)));
    out.push(`  ${paint(opts.color, word, codes)}  ${name}  ${clean(c.summary)}${c.status === 'skip' ? '' : ` · ${threshold(c)}`}`);
  }
  for (const c of r.checks.filter((x) => x.status === 'fail')) {
    const listed = listedFindings(c);
    if (listed.length === 0 || opts.maxListed === 0) continue;
    const what = c.name === 'unknown_category' ? plural(listed.length, 'category', 'categories') : plural(listed.length, 'row', 'rows');
    out.push('', `${paint(opts.color, checkLabel(c), '1')}: ${what}${listed.length > opts.maxListed ? `, first ${opts.maxListed}` : ''}`);
    for (const f of listed.slice(0, opts.maxListed)) out.push(`  ${clean(formatFinding(f))}`);
    if (listed.length > opts.maxListed) out.push(`  … ${listed.length - opts.maxListed} more (--max-listed, or --json for all)`);
  }
  const ran = r.checks.filter((c) => c.status !== 'skip').length;
  const skipped = r.checks.length - ran;
  out.push(
    '',
    r.failed.length > 0
      ? paint(opts.color, `categorize check: FAILED: ${r.failed.join(', ')} (${r.failed.length} of ${ran} checks)`, '1;31')
      : paint(opts.color, `categorize check: passed (${ran} checks${skipped ? `, ${skipped} skipped` : ''})`, '32'),
  );
  return out.join('\n');
}

/** Attribute limits given as attribute:r, by attribute (only when some are, so a report without them keeps its shape). */
function attributeLimits(flags: Pick<CheckFlags, 'maxDisagreementRate' | 'maxLowConfidenceRate'>): Pick<CheckThresholds, 'attributes'> {
  const limits: NonNullable<CheckThresholds['attributes']> = {};
  for (const a of flags.maxDisagreementRate.attributes) (limits[a.attribute] ??= {}).maxDisagreementRate = a.share;
  for (const a of flags.maxLowConfidenceRate.attributes) (limits[a.attribute] ??= {}).maxLowConfidenceRate = a.share;
  return Object.keys(limits).length > 0 ? { attributes: limits } : {};
}

export function addCheckCommand(program: Command, io: Io, env: NodeJS.ProcessEnv, setCode: (c: number) => void): void {
  const d = DEFAULT_THRESHOLDS;
  addPipelineOptions(
    program
      .command('check')
      .description(
        "Data-quality gate for CI: run the bundle over a catalog (run's pipeline) and check labels, confidence, ids, titles, images; exit 3 when a check exceeds its threshold.",
      )
      .argument('<input>', "catalog CSV or TSV file, or '-' for stdin")
      .requiredOption('-m, --model <dir>', 'model bundle folder')
      .option('--label-column <name>', "column holding each row's stored category, or category path with a path bundle (split on the bundle's separator); without it, disagreement and unknown_category are skipped")
      // No commander defaults for these two: a value given must be told from none, which leaves the bundle's target in charge.
      .option(
        '--target-precision <p>',
        "judge low confidence by run's accept/review decision at this target precision: a row it would send for review (the threshold the bundle's held-out rows vouch for; default: the first target train stored; without one, --low-confidence); disagreement too where --flag-precision does not apply (path bundles, older bundles): a row run would accept whose answer differs",
        oneTargetPrecision,
      )
      .option(
        '--flag-precision <p>',
        `flat classes and attributes (bundles trained by this version): a disagreement is a stored label the model finds at most c probable (and does not answer), c the largest cutoff at which at least this share of the flagged rows are mislabelled, a 95% bound from the bundle's held-out rows; none flagged when no cutoff is vouched for (default: ${DEFAULT_FLAG_PRECISION})`,
        floatOption(0, 1),
      )
      .option(
        '--min-confidence <p>',
        `a prediction at least this probable that differs from the stored category is a disagreement (path bundles: probable at the highest level where the paths differ); overrides --flag-precision and the target precision (default for path and older bundles: the target's threshold, else ${DEFAULT_MIN_CONFIDENCE})`,
        floatOption(0, 1),
      )
      .option(
        '--low-confidence <p>',
        `a top score below this is low confidence (path bundles: the answered node's score; an unanswered row is always low); overrides the target precision (default: rows decided review at the target, else below ${DEFAULT_LOW_CONFIDENCE})`,
        floatOption(0, 1),
      )
      .option('--min-path-score <p>', MIN_PATH_SCORE_HELP, floatOption(0, 1))
      .option('--max-disagreement-rate <r|attribute:r>', "fail when the share of labelled rows flagged for disagreement (an improbable stored label, or a confident prediction against it) exceeds r (path bundles: at any level); attribute:r sets a bundle attribute's own limit (its column checked like the category's; default r)", targetShares('a maximum rate'), { category: d.maxDisagreementRate, attributes: [] })
      .option('--attributes <a,b>', "check only these of the bundle's attributes (each against its own column, when the catalog has it); default all", listOption)
      .option(
        '--max-disagreement-rate-level <level:r,...>',
        'path bundles: also fail when the share of labelled rows whose path first differs at that level (1 = top) exceeds r; pairs comma-separated or repeated, e.g. 1:0,3:0.05. Every limit must hold: to allow sibling leaves but no wrong top level, --max-disagreement-rate 0.1 --max-disagreement-rate-level 1:0 (default: no level limit)',
        levelShares,
      )
      .option('--max-low-confidence-rate <r|attribute:r>', "fail when the share of predicted rows of low confidence (for review at the target precision, or scoring below --low-confidence) exceeds r; attribute:r sets a bundle attribute's own limit", targetShares('a maximum rate'), { category: d.maxLowConfidenceRate, attributes: [] })
      .option('--max-duplicate-ids <n>', 'fail when more than n ids appear more than once', intOption(0), d.maxDuplicateIds)
      .option('--max-empty-titles <n>', 'fail when more than n rows have an empty title', intOption(0), d.maxEmptyTitles)
      .option('--max-image-problem-rate <r>', 'fail when the share of rows with a missing or unreadable image exceeds r (bundles that use images)', floatOption(0, 1), d.maxImageProblemRate)
      .option('--max-unknown-categories <n>', 'fail when more than n distinct stored categories are unknown to the model', intOption(0), d.maxUnknownCategories)
      .option('--max-error-rate <r>', 'fail when the share of rows that could not be predicted exceeds r', floatOption(0, 1), d.maxErrorRate)
      .option('--junit <file>', 'write a JUnit XML report (one test case per check) for CI test viewers')
      .option('--json <file>', 'write settings, every check and every offending row as JSON')
      .addOption(new Option('--annotations <format>', 'also print CI annotations on stdout, pointing at the CSV lines (needs a file, not stdin)').choices(['github']))
      .option('--max-listed <n>', 'offending rows quoted per failing check in the summary and the JUnit report', intOption(0), 10)
      .option('--max-annotations <n>', 'row annotations at most, in all (GitHub shows only so many)', intOption(0), 50),
    'override',
  ).action(async (input: string, flags: CheckFlags) => {
    if (flags.annotations && input === '-') {
      throw new UsageError('--annotations needs the catalog as a file path (annotations point at its lines); stdin has none');
    }
    const log = cliLog(flags, io);
    log.event('start', { command: 'check', version: pkg.version, input, model: flags.model, labelColumn: flags.labelColumn ?? null });
    const result = await checkCommand({
      ...pipelineOptions(flags, io, env),
      input,
      labelColumn: flags.labelColumn,
      model: flags.model,
      attributes: flags.attributes,
      minPathScore: flags.minPathScore,
      targetPrecision: flags.targetPrecision,
      minConfidence: flags.minConfidence,
      lowConfidence: flags.lowConfidence,
      flagPrecision: flags.flagPrecision,
      thresholds: {
        maxDisagreementRate: flags.maxDisagreementRate.category ?? d.maxDisagreementRate,
        maxLowConfidenceRate: flags.maxLowConfidenceRate.category ?? d.maxLowConfidenceRate,
        ...attributeLimits(flags),
        maxDuplicateIds: flags.maxDuplicateIds,
        maxEmptyTitles: flags.maxEmptyTitles,
        maxImageProblemRate: flags.maxImageProblemRate,
        maxUnknownCategories: flags.maxUnknownCategories,
        maxErrorRate: flags.maxErrorRate,
        // Only when given, so a flat bundle's JSON report keeps its shape.
        ...(flags.maxDisagreementRateLevel ? { maxDisagreementRateByLevel: flags.maxDisagreementRateLevel } : {}),
      },
      json: flags.json,
      junit: flags.junit,
      maxListed: flags.maxListed,
      toolVersion: pkg.version,
      progress: makeProgress(io.stderr, { quiet: flags.quiet, label: 'checking', json: flags.logFormat === 'json' }),
    });
    // The summary is the command's result: stdout, so CI logs and pipes get it; logs stay on stderr.
    io.stdout.write(formatCheckSummary(result, { color: Boolean(io.stderr.isTTY) && env.NO_COLOR === undefined, maxListed: flags.maxListed }) + '\n');
    if (flags.annotations === 'github') {
      for (const line of checkAnnotations(result, { file: input, maxAnnotations: flags.maxAnnotations })) io.stdout.write(line + '\n');
    }
    log.event('summary', {
      rows: result.rows,
      failed: result.failed,
      targetPrecision: result.decision,
      checks: result.checks.map((c) => ({ name: c.name, status: c.status, count: c.count, rate: c.rate, max: c.threshold.max, ...(c.cutoff ? { cutoff: c.cutoff.criterion } : {}) })),
      elapsedSeconds: result.elapsedSeconds,
    });
    if (result.failed.length > 0) {
      log.line(`check failed: ${result.failed.join(', ')}`, true);
      setCode(ExitCode.threshold);
    }
  });
}
