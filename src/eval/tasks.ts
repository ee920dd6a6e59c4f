// OLMo's downstream tasks (olmo/eval/downstream.py label_to_task_map, v0.2.5): for each label, the
// metric OLMo reports and how a document of the task's Hugging Face layout becomes a context,
// candidate continuations (with their leading space), the label and the domain-conditional
// prompt (used by pmi_dc). Documents come from local files (task-files.ts); nothing is downloaded.
import type { ICLMetricType } from './icl-metric';

/** A document turned into OLMo's (context, continuations, label) form. */
export type FormattedDoc =
  /** One context, one continuation per choice (every task but WinoGrande). */
  | { context: string; continuations: string[]; domainConditional: string; label: number }
  /** WinoGrande's form: one context per choice and a single shared continuation. */
  | { contexts: string[]; continuation: string; domainConditionals: string[]; label: number };

/** One downstream task as OLMo defines it. */
export interface TaskSpec {
  /** The evaluator label that selects it (OLMo's label_to_task_map key). */
  label: string;
  /** The metric OLMo reports for it (`eval/downstream/<label>_<metric>`). */
  metricType: ICLMetricType;
  /** Where OLMo reads it from (Hugging Face dataset, config, split) — for messages and docs. */
  source: string;
  /** Fields a document must have (Hugging Face layout). */
  fields: readonly string[];
  /** Formats one document; throws Error with a readable message on a bad one. */
  format(doc: Doc): FormattedDoc;
  /** MMLU: the subjects (in OLMo's order) the label covers; documents with a `subject` are filtered to them. */
  subjects?: readonly string[];
}

/** A task document as read from a file. */
export type Doc = Record<string, unknown>;

// ---------------------------------------------------------------- field access with clear errors
function str(doc: Doc, key: string): string {
  const v = doc[key];
  if (typeof v !== 'string') throw new Error(`field "${key}" should be a string, got ${JSON.stringify(v)}`);
  return v;
}
function int(doc: Doc, key: string): number {
  const v = doc[key];
  const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`field "${key}" should be an integer, got ${JSON.stringify(v)}`);
  return n;
}
function strList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string')) throw new Error(`${what} should be a non-empty list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}
function choiceTexts(doc: Doc): string[] {
  const c = doc.choices;
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`field "choices" should be {"text": [...], "label": [...]}, got ${JSON.stringify(c)}`);
  return strList((c as Doc).text, 'choices.text');
}
function indexOf(list: readonly string[], v: string, key: string): number {
  const i = list.indexOf(v);
  if (i < 0) throw new Error(`field "${key}" is ${JSON.stringify(v)}, expected one of ${list.join(', ')}`);
  return i;
}
function checkLabel(label: number, n: number): number {
  if (label < 0 || label >= n) throw new Error(`label ${label} is not the index of one of the ${n} continuations`);
  return label;
}

// ---------------------------------------------------------------- Python string semantics
/** Python's str.strip() whitespace. */
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g');
export function pyStrip(s: string): string {
  return s.replace(STRIP, '');
}
/** Python's str.capitalize(): first character upper-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const cps = [...s];
  return cps.length ? cps[0]!.toUpperCase() + cps.slice(1).join('').toLowerCase() : s;
}
/** `s.split(" ")[-1]`. */
function lastWord(s: string): string {
  const parts = s.split(' ');
  return parts[parts.length - 1]!;
}
/** HellaSwag's cleanup of WikiHow artefacts. */
export function hellaswagPreprocess(text: string): string {
  return pyStrip(text).replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}
/** MRPC/SST-2's detokenisation (glue's spaces before punctuation). */
export function glueDetokenize(s: string): string {
  return s.replaceAll(" n't", "n't").replaceAll(' )', ')').replaceAll('( ', '(').replaceAll('" ', '"').replaceAll(' "', '"').replace(/ (['.,])/g, '$1');
}

// ---------------------------------------------------------------- the tasks
const ANSWER = 'Answer:';
const spaced = (xs: string[]) => xs.map((x) => ' ' + x);

function multipleChoice(
  label: string, metricType: ICLMetricType, source: string, fields: string[],
  parts: (d: Doc) => { context: string; continuations: string[]; label: number; domainConditional: string },
): TaskSpec {
  return {
    label, metricType, source, fields,
    format: (d) => {
      const p = parts(d);
      return { ...p, label: checkLabel(p.label, p.continuations.length) };
    },
  };
}

const ARC_KEYS = ['A', 'B', 'C', 'D', 'E'];
const ARC_NUMERIC: Record<string, string> = { 1: 'A', 2: 'B', 3: 'C', 4: 'D', 5: 'E' };
const arc = (label: string, metricType: ICLMetricType, config: string) =>
  multipleChoice(label, metricType, `ai2_arc ${config}, validation`, ['question', 'choices', 'answerKey'], (d) => {
    const key = str(d, 'answerKey');
    return {
      context: `Question: ${str(d, 'question')}\n${ANSWER}`,
      continuations: spaced(choiceTexts(d)),
      label: indexOf(ARC_KEYS, ARC_NUMERIC[key] ?? key, 'answerKey'),
      domainConditional: ANSWER,
    };
  });

const TASK_LIST: TaskSpec[] = [
  multipleChoice('piqa', 'len_norm', 'piqa, validation', ['goal', 'sol1', 'sol2', 'label'], (d) => ({
    context: `Question: ${str(d, 'goal')}\n${ANSWER}`,
    continuations: spaced([str(d, 'sol1'), str(d, 'sol2')]),
    label: int(d, 'label'),
    domainConditional: ANSWER,
  })),
  multipleChoice('hellaswag', 'len_norm', 'hellaswag, validation', ['activity_label', 'ctx_a', 'ctx_b', 'endings', 'label'], (d) => {
    const dc = hellaswagPreprocess(pyCapitalize(str(d, 'ctx_b')));
    return {
      context: hellaswagPreprocess(`${str(d, 'activity_label')}: ${str(d, 'ctx_a')} ${pyCapitalize(str(d, 'ctx_b'))}`),
      continuations: strList(d.endings, 'endings').map((e) => ' ' + hellaswagPreprocess(e)),
      label: int(d, 'label'),
      domainConditional: dc.length ? dc : lastWord(hellaswagPreprocess(str(d, 'ctx_a'))),
    };
  }),
  {
    label: 'winogrande', metricType: 'acc', source: 'winogrande winogrande_xl, validation', fields: ['sentence', 'option1', 'option2', 'answer'],
    format: (d) => {
      const sentence = str(d, 'sentence');
      const at = sentence.indexOf('_');
      if (at < 0) throw new Error('field "sentence" has no "_" blank');
      const options = [str(d, 'option1'), str(d, 'option2')];
      return {
        contexts: options.map((o) => sentence.slice(0, at) + o),
        continuation: ' ' + pyStrip(sentence.slice(at + 1)),
        domainConditionals: options,
        label: checkLabel(int(d, 'answer') - 1, 2),
      };
    },
  },
  multipleChoice('openbook_qa', 'len_norm', 'openbookqa, validation', ['question_stem', 'choices', 'answerKey'], (d) => ({
    context: str(d, 'question_stem'),
    continuations: spaced(choiceTexts(d)),
    label: indexOf(['A', 'B', 'C', 'D'], pyStrip(str(d, 'answerKey')), 'answerKey'),
    domainConditional: lastWord(pyStrip(str(d, 'question_stem'))),
  })),
  multipleChoice('boolq', 'acc', 'boolq, validation', ['passage', 'question', 'answer'], (d) => ({
    context: `${str(d, 'passage')}\nQuestion: ${str(d, 'question')}?\n${ANSWER}`,
    continuations: [' yes', ' no'],
    label: d.answer ? 0 : 1,
    domainConditional: ANSWER,
  })),
  multipleChoice('sciq', 'acc', 'sciq, validation', ['support', 'question', 'distractor1', 'distractor2', 'distractor3', 'correct_answer'], (d) => ({
    context: `${pyStrip(str(d, 'support'))}\nQuestion: ${str(d, 'question')}\n${ANSWER}`,
    continuations: spaced([str(d, 'distractor1'), str(d, 'distractor2'), str(d, 'distractor3'), str(d, 'correct_answer')]),
    label: 3,
    domainConditional: ANSWER,
  })),
  arc('arc_easy', 'acc', 'ARC-Easy'),
  arc('arc_challenge', 'len_norm', 'ARC-Challenge'),
  multipleChoice('copa', 'acc', 'super_glue copa, validation', ['premise', 'choice1', 'choice2', 'question', 'label'], (d) => {
    const connector = str(d, 'question') === 'cause' ? 'because' : 'therefore';
    const lowerFirst = (s: string) => (s.length ? s[0]!.toLowerCase() + s.slice(1) : s);
    const premise = [...pyStrip(str(d, 'premise'))];
    return {
      context: `${premise.slice(0, -1).join('')} ${connector}`,
      continuations: spaced([lowerFirst(str(d, 'choice1')), lowerFirst(str(d, 'choice2'))]),
      label: int(d, 'label'),
      domainConditional: connector,
    };
  }),
  multipleChoice('rte', 'len_norm', 'glue rte, validation', ['sentence1', 'sentence2', 'label'], (d) => ({
    context: `${str(d, 'sentence1')}\nQuestion: ${str(d, 'sentence2')} True or False?\n${ANSWER}`,
    continuations: [' True', ' False'],
    label: int(d, 'label'),
    domainConditional: ANSWER,
  })),
  multipleChoice('commitment_bank', 'acc', 'super_glue cb, validation', ['premise', 'hypothesis', 'label'], (d) => ({
    context: `${str(d, 'premise')}\nQuestion: ${str(d, 'hypothesis')}. True, False or Neither?\n${ANSWER}`,
    continuations: [' True', ' False', ' Neither'],
    label: int(d, 'label'),
    domainConditional: ANSWER,
  })),
  multipleChoice('mrpc', 'f1', 'glue mrpc, validation', ['sentence1', 'sentence2', 'label'], (d) => ({
    context: `Sentence 1: ${glueDetokenize(str(d, 'sentence1'))}\nSentence 2: ${glueDetokenize(str(d, 'sentence2'))}\nQuestion: Do both sentences mean the same thing?\n${ANSWER}`,
    continuations: [' yes', ' no'],
    label: d.label ? 0 : 1,
    domainConditional: ANSWER,
  })),
  multipleChoice('sst2', 'acc', 'glue sst2, validation', ['sentence', 'label'], (d) => ({
    context: `${glueDetokenize(str(d, 'sentence'))}\nQuestion: Is this sentence positive or negative?\n${ANSWER}`,
    continuations: [' negative', ' positive'],
    label: int(d, 'label'),
    domainConditional: ANSWER,
  })),
];

// MMLU: OLMo's subject -> group table (dict order matters: it orders the concatenated subjects).
const MMLU_GROUP_OF = (
  'abstract_algebra:math anatomy:health astronomy:physics business_ethics:business clinical_knowledge:health ' +
  'college_biology:biology college_chemistry:chemistry college_computer_science:computer_science college_mathematics:math ' +
  'college_medicine:health college_physics:physics computer_security:computer_science conceptual_physics:physics ' +
  'econometrics:economics electrical_engineering:engineering elementary_mathematics:math formal_logic:philosophy ' +
  'global_facts:other high_school_biology:biology high_school_chemistry:chemistry high_school_computer_science:computer_science ' +
  'high_school_european_history:history high_school_geography:geography high_school_government_and_politics:politics ' +
  'high_school_macroeconomics:economics high_school_mathematics:math high_school_microeconomics:economics ' +
  'high_school_physics:physics high_school_psychology:psychology high_school_statistics:math high_school_us_history:history ' +
  'high_school_world_history:history human_aging:health human_sexuality:culture international_law:law jurisprudence:law ' +
  'logical_fallacies:philosophy machine_learning:computer_science management:business marketing:business ' +
  'medical_genetics:health miscellaneous:other moral_disputes:philosophy moral_scenarios:philosophy nutrition:health ' +
  'philosophy:philosophy prehistory:history professional_accounting:other professional_law:law professional_medicine:health ' +
  'professional_psychology:psychology public_relations:politics security_studies:politics sociology:culture ' +
  'us_foreign_policy:politics virology:health world_religions:philosophy'
).split(' ').map((p) => p.split(':') as [string, string]);
const MMLU_CATEGORIES: Record<string, string[]> = {
  stem: ['physics', 'chemistry', 'biology', 'computer_science', 'math', 'engineering'],
  humanities: ['history', 'philosophy', 'law'],
  social_sciences: ['politics', 'culture', 'economics', 'geography', 'psychology'],
  other: ['other', 'business', 'health'],
};
function mmluSubjects(category: string): string[] {
  const out: string[] = [];
  for (const group of MMLU_CATEGORIES[category]!) for (const [subject, g] of MMLU_GROUP_OF) if (g === group) out.push(subject);
  return out;
}
for (const category of Object.keys(MMLU_CATEGORIES)) {
  for (const split of ['validation', 'test']) {
    TASK_LIST.push({
      label: split === 'test' ? `mmlu_${category}_test` : `mmlu_${category}`,
      metricType: 'len_norm',
      source: `hails/mmlu_no_train (${category} subjects), ${split}`,
      fields: ['question', 'choices', 'answer'],
      subjects: mmluSubjects(category),
      format: (d) => {
        const continuations = spaced(strList(d.choices, 'choices'));
        return { context: `Question: ${str(d, 'question')}\n${ANSWER}`, continuations, domainConditional: ANSWER, label: checkLabel(int(d, 'answer'), continuations.length) };
      },
    });
  }
}

/** OLMo v0.2.5's downstream tasks by evaluator label. */
export const TASKS: ReadonlyMap<string, TaskSpec> = new Map(TASK_LIST.map((t) => [t.label, t]));

/** Labels OLMo knows that olmo-ts does not run, with the reason. */
export const UNSUPPORTED_TASKS: ReadonlyMap<string, string> = new Map(
  ['stem', 'humanities', 'social_sciences', 'other'].map((c) => [`mmlu_${c}_var`, 'MMLU prompt variations (instructions and 1-5 shots from the dev split) are not implemented; use mmlu_' + c]),
);
