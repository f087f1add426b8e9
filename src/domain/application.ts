import type { Validator } from './errors.js';

// Applications: the questions a program asks partners who apply, and the answers an enrollment
// carries. Pure checks (no database, no GraphQL): program.service.ts checks questions,
// enrollment.service.ts checks answers against the program's questions.

/** At most this many questions per program (and so at most this many answers). */
export const APPLICATION_QUESTIONS_MAX = 20;
/** A question's key: a lower-case identifier, the key of its answer in `answers`. */
export const QUESTION_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
/** The longest question label (trimmed). */
export const QUESTION_LABEL_MAX = 200;
/** The longest answer (trimmed). */
export const ANSWER_MAX = 2000;
/** At most this many bytes of answers, as compact UTF-8 JSON (the cap metadata has too). */
export const ANSWERS_MAX_BYTES = 8 * 1024;

export interface ApplicationQuestion {
  key: string;
  label: string;
  required: boolean;
}

export type Answers = Record<string, string>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "an array", "an object", "a number", … for messages. */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * The questions as stored: keys as given (they must match QUESTION_KEY_PATTERN, each once),
 * labels trimmed (1–QUESTION_LABEL_MAX), `required` false unless true. Problems go to `v`, each
 * at `[...field, index, "key" | "label"]`, or at `field` for too many questions.
 */
export function checkApplicationQuestions(
  v: Validator,
  questions: ReadonlyArray<{ key: string; label: string; required?: boolean | null }>,
  field: string[],
): ApplicationQuestion[] {
  v.check(
    questions.length <= APPLICATION_QUESTIONS_MAX,
    field,
    `A program asks at most ${APPLICATION_QUESTIONS_MAX} application questions; got ${questions.length}.`,
  );
  const checked: ApplicationQuestion[] = [];
  const seen = new Set<string>();
  questions.slice(0, APPLICATION_QUESTIONS_MAX).forEach((q, i) => {
    const at = [...field, String(i)];
    if (!QUESTION_KEY_PATTERN.test(q.key)) {
      v.check(
        false,
        [...at, 'key'],
        `A question key is 1 to 64 characters: a lower-case letter, then lower-case letters, digits or "_" (e.g. "website"); got ${JSON.stringify(q.key.slice(0, 80))}.`,
      );
    } else if (seen.has(q.key)) {
      v.check(false, [...at, 'key'], `The question key "${q.key}" is used twice: each question needs its own key.`);
    }
    seen.add(q.key);
    const label = q.label.trim();
    v.check(
      label.length >= 1 && label.length <= QUESTION_LABEL_MAX,
      [...at, 'label'],
      `A question label must be 1 to ${QUESTION_LABEL_MAX} characters long (after trimming spaces).`,
    );
    checked.push({ key: q.key, label, required: q.required === true });
  });
  return checked;
}

/**
 * The stored questions of a program (the JSON column), read defensively: anything that is not a
 * question is skipped.
 */
export function storedQuestions(value: unknown): ApplicationQuestion[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((q: unknown) =>
    isPlainObject(q) && typeof q.key === 'string' && typeof q.label === 'string'
      ? [{ key: q.key, label: q.label, required: q.required === true }]
      : [],
  );
}

/**
 * Answers checked against a program's questions, as stored: each answer trimmed, blank (or null)
 * answers dropped. Refused, each at `[...field, key]` unless said: not an object (at `field`); a
 * key no question has; a value that is not a string (or null); an answer over ANSWER_MAX
 * characters; a required question without a non-blank answer; more than ANSWERS_MAX_BYTES in all
 * (at `field`). `undefined` and `null` are no answers at all (required questions still apply):
 * null is returned then.
 */
export function checkAnswers(
  v: Validator,
  questions: readonly ApplicationQuestion[],
  value: unknown,
  field: string[],
): Answers | null {
  if (value !== undefined && value !== null && !isPlainObject(value)) {
    v.check(
      false,
      field,
      `answers must be a JSON object of { questionKey: "answer" } such as {"website": "https://example.com"}; got ${kindOf(value)}.`,
    );
    return null;
  }
  const given = value ?? {};
  const keys = Object.keys(given);
  const known = new Map(questions.map((q) => [q.key, q]));
  const answers: Answers = {};
  const unknown = keys.filter((key) => !known.has(key));
  // Bounded: a client cannot make thousands of userErrors out of one big object.
  if (unknown.length > APPLICATION_QUESTIONS_MAX) {
    v.check(
      false,
      field,
      `answers has ${unknown.length} keys that are not questions of this program; answer only its questions (${questions.map((q) => q.key).join(', ') || 'it asks none'}).`,
    );
  } else {
    for (const key of unknown) {
      v.check(
        false,
        [...field, key],
        questions.length === 0
          ? 'This program asks no application questions: send no answers.'
          : `This program has no question "${key.slice(0, 80)}"; its questions are: ${questions.map((q) => q.key).join(', ')}.`,
      );
    }
  }
  for (const question of questions) {
    // Own keys only: a question may be called "constructor" or "toString".
    const raw = Object.hasOwn(given, question.key) ? given[question.key] : undefined;
    const at = [...field, question.key];
    if (raw !== undefined && raw !== null && typeof raw !== 'string') {
      v.check(false, at, `The answer to "${question.label}" must be a string; got ${kindOf(raw)}.`);
      continue;
    }
    const text = raw?.trim() ?? '';
    if (text.length > ANSWER_MAX) {
      v.check(
        false,
        at,
        `The answer to "${question.label}" must be at most ${ANSWER_MAX} characters long; got ${text.length}.`,
      );
      continue;
    }
    if (text) answers[question.key] = text;
    else v.check(!question.required, at, `"${question.label}" is required: give a non-blank answer.`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(answers), 'utf8');
  v.check(
    bytes <= ANSWERS_MAX_BYTES,
    field,
    `answers may be at most ${ANSWERS_MAX_BYTES} bytes as JSON; got ${bytes}. Shorten the longest answers.`,
  );
  return value === undefined || value === null ? null : answers;
}
