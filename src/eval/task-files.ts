// Local downstream task files: olmo-ts's own JSONL format (one pre-formatted question per line),
// the Hugging Face layout of OLMo's tasks (a `datasets` split saved as JSON lines), and the
// original releases' layouts where they are simple (AI2's ARC and OpenBookQA JSONL, SciQ's JSON
// array, HellaSwag's JSONL, PIQA's JSONL plus its -labels.lst, SuperGLUE's CB/RTE JSONL).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as os from 'node:os';
import { DataError } from '../data/errors';
import { Doc, FormattedDoc, TASKS, TaskSpec } from './tasks';

/** A formatted document and where it came from (for messages). */
export interface TaskDoc {
  doc: FormattedDoc;
  file: string;
  line: number;
}

/** Where downstream task files are looked up when an evaluator names no paths: $OLMO_TS_EVAL_DATA, else $OLMO_TS_CACHE/eval (~/.cache/olmo-ts/eval). */
export function taskDataDir(): string {
  return process.env.OLMO_TS_EVAL_DATA || path.join(process.env.OLMO_TS_CACHE || path.join(os.homedir(), '.cache', 'olmo-ts'), 'eval');
}

const EXTENSIONS = ['.jsonl', '.json', '.jsonl.gz', '.json.gz'];

/** The task files of a downstream evaluator: its data.paths, else <taskDataDir>/<label>.{jsonl,json,...}. */
export function findTaskFiles(label: string, paths: string[] | null | undefined, key: string): string[] {
  if (paths && paths.length) {
    paths.forEach((p, i) => {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) throw new DataError(`${JSON.stringify(p)} is a remote URL; downstream task files must be local (download the file first)`, { key: `${key}[${i}]` });
      if (!fs.existsSync(p)) throw new DataError(`task file ${JSON.stringify(p)} not found`, { key: `${key}[${i}]` });
    });
    return paths;
  }
  const dir = taskDataDir();
  for (const ext of EXTENSIONS) {
    const p = path.join(dir, label + ext);
    if (fs.existsSync(p)) return [p];
  }
  const task = TASKS.get(label);
  const what = task ? `OLMo reads it from Hugging Face (${task.source}); save that split as JSON lines` : 'write it in olmo-ts\'s task JSONL format';
  throw new DataError(
    `downstream task ${JSON.stringify(label)} has no local file: set ${key} to the task file, or put ${label}.jsonl in ${dir} ` +
      `($OLMO_TS_EVAL_DATA); ${what} (see README, "Evaluation")`,
    { key },
  );
}

/** Parsed records of one file with their 1-based line numbers (a JSON array counts as line 1..n by element). */
function readRecords(file: string): Array<{ rec: unknown; line: number }> {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DataError(`cannot read task file: ${(e as Error).message}`, { file, cause: e });
  }
  if (file.endsWith('.gz')) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new DataError(`not a gzip file: ${(e as Error).message}`, { file, cause: e });
    }
  }
  const text = buf.toString('utf8');
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    // SciQ's release: one JSON array per split.
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new DataError(`invalid JSON: ${(e as Error).message}`, { file, cause: e });
    }
    return (arr as unknown[]).map((rec, i) => ({ rec, line: i + 1 }));
  }
  const out: Array<{ rec: unknown; line: number }> = [];
  text.split('\n').forEach((l, i) => {
    if (!l.trim()) return;
    try {
      out.push({ rec: JSON.parse(l), line: i + 1 });
    } catch (e) {
      throw new DataError(`invalid JSON line: ${(e as Error).message}`, { file, line: i + 1, cause: e });
    }
  });
  return out;
}

/** PIQA's labels file: one 0/1 per line, in the order of the questions file. */
function readLabels(file: string): number[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.map((l, i) => {
    if (!/^-?\d+$/.test(l)) throw new DataError(`expected an integer label, got ${JSON.stringify(l)}`, { file, line: i + 1 });
    return Number(l);
  });
}

/** `valid.jsonl` -> `valid-labels.lst` (PIQA's naming), when that file exists. */
function siblingLabels(file: string): string | null {
  const base = file.replace(/\.gz$/, '').replace(/\.jsonl?$/, '');
  const p = `${base}-labels.lst`;
  return fs.existsSync(p) ? p : null;
}

/** olmo-ts's own format: {"context", "continuations", "label", optional "domain_conditional"}. */
export function isGenericRecord(r: Doc): boolean {
  return 'continuations' in r && 'context' in r;
}

function genericDoc(r: Doc): FormattedDoc {
  const { context, continuations, label } = r;
  if (typeof context !== 'string') throw new Error(`"context" should be a string, got ${JSON.stringify(context)}`);
  if (!Array.isArray(continuations) || continuations.length === 0 || continuations.some((c) => typeof c !== 'string')) {
    throw new Error(`"continuations" should be a non-empty list of strings, got ${JSON.stringify(continuations)}`);
  }
  if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= continuations.length) {
    throw new Error(`"label" should be the index (0..${continuations.length - 1}) of the correct continuation, got ${JSON.stringify(label)}`);
  }
  const dc = r.domain_conditional ?? ' ';
  if (typeof dc !== 'string') throw new Error(`"domain_conditional" should be a string, got ${JSON.stringify(dc)}`);
  return { context, continuations: continuations as string[], label, domainConditional: dc };
}

/** Original releases' layouts rewritten to the Hugging Face layout OLMo formats. */
function toHfLayout(task: TaskSpec, r: Doc): Doc {
  const q = r.question;
  if ((task.label === 'arc_easy' || task.label === 'arc_challenge' || task.label === 'openbook_qa') && q && typeof q === 'object' && !Array.isArray(q)) {
    // AI2's ARC / OpenBookQA JSONL: {"question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}.
    const qq = q as Doc;
    const choices = Array.isArray(qq.choices) ? (qq.choices as Doc[]) : [];
    const hf: Doc = { ...r, choices: { text: choices.map((c) => c?.text), label: choices.map((c) => c?.label) } };
    if (task.label === 'openbook_qa') hf.question_stem = qq.stem;
    else hf.question = qq.stem;
    return hf;
  }
  if (task.label === 'commitment_bank' && typeof r.label === 'string') {
    // SuperGLUE's CB JSONL names the label; the HF dataset numbers them.
    return { ...r, label: ['entailment', 'contradiction', 'neutral'].indexOf(r.label) };
  }
  if (task.label === 'rte' && 'premise' in r && !('sentence1' in r)) {
    // SuperGLUE's RTE JSONL: premise/hypothesis, label "entailment" | "not_entailment".
    return { ...r, sentence1: r.premise, sentence2: r.hypothesis, label: typeof r.label === 'string' ? ['entailment', 'not_entailment'].indexOf(r.label) : r.label };
  }
  return r;
}

/**
 * Reads a downstream task's documents from local files, in file order: olmo-ts JSONL records as
 * they are, task documents (any file layout above) formatted as OLMo formats the task `label`.
 * A `.lst` path (or a `<name>-labels.lst` beside `<name>.jsonl`) supplies PIQA-style labels.
 * Every problem names the file and line.
 */
export function readTaskDocs(label: string, files: string[]): TaskDoc[] {
  const task = TASKS.get(label);
  const out: TaskDoc[] = [];
  const jsonFiles = files.filter((f) => !f.endsWith('.lst'));
  const explicitLabels = files.filter((f) => f.endsWith('.lst'));
  if (explicitLabels.length > jsonFiles.length) throw new DataError(`more labels files (.lst) than task files`, { file: explicitLabels[0] });
  jsonFiles.forEach((file, fi) => {
    const records = readRecords(file);
    const labelsFile = explicitLabels[fi] ?? siblingLabels(file);
    const labels = labelsFile ? readLabels(labelsFile) : null;
    if (labels && labels.length !== records.length) {
      throw new DataError(`has ${labels.length} labels for ${records.length} documents in ${file}`, { file: labelsFile! });
    }
    const keepSubjects = task?.subjects ? new Set(task.subjects) : null;
    const bySubject: Array<{ subject: number; d: TaskDoc }> = [];
    records.forEach(({ rec, line }, i) => {
      if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw new DataError(`expected a JSON object, got ${JSON.stringify(rec)?.slice(0, 60)}`, { file, line });
      let r = rec as Doc;
      if (labels) r = { ...r, label: labels[i] };
      try {
        if (isGenericRecord(r)) {
          out.push({ doc: genericDoc(r), file, line });
          return;
        }
        if (!task) {
          throw new Error(`${JSON.stringify(label)} is not one of OLMo's tasks (${[...TASKS.keys()].slice(0, 13).join(', ')}, mmlu_*), so each line must be olmo-ts's task format: {"context": ..., "continuations": [...], "label": N}`);
        }
        r = toHfLayout(task, r);
        const missing = task.fields.filter((f) => !(f in r));
        if (missing.length) throw new Error(`a ${label} document needs ${missing.map((m) => JSON.stringify(m)).join(', ')} (the Hugging Face layout of ${task.source}, or olmo-ts's task format)`);
        const d: TaskDoc = { doc: task.format(r), file, line };
        if (keepSubjects && typeof r.subject === 'string') {
          // MMLU: OLMo concatenates its category's subjects in table order.
          if (!keepSubjects.has(r.subject)) return;
          bySubject.push({ subject: task.subjects!.indexOf(r.subject), d });
        } else out.push(d);
      } catch (e) {
        if (e instanceof DataError) throw e;
        throw new DataError((e as Error).message, { file, line });
      }
    });
    bySubject.sort((a, b) => a.subject - b.subject); // stable: file order within a subject
    out.push(...bySubject.map((x) => x.d));
  });
  if (out.length === 0) throw new DataError(`no ${label} documents in ${files.join(', ')}`, { file: files[0] });
  return out;
}
