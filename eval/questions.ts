/**
 * The evaluation's question set: YAML validated with zod, every problem reported at once as
 * `<file>: <path>: <reason>` (the way `npm run config:check` reports config).
 */
import { promises as fs } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { MAX_QUESTION_CHARS } from '../contract/messages';

/**
 * How big a question is. The harness reports scores per kind, because whether a team of agents is
 * worth its cost should depend on it: a simple fact needs one look-up, a broad comparison many.
 */
export const QUESTION_KINDS = ['fact', 'focused', 'broad'] as const;
export type QuestionKind = (typeof QUESTION_KINDS)[number];

/**
 * The message for a missing field or one of the wrong type or value; other issues (unknown keys,
 * lengths) keep their own message.
 */
const expected =
  (what: string) =>
  (issue: { code?: string; input?: unknown }): string | undefined => {
    if (issue.code !== 'invalid_type' && issue.code !== 'invalid_value') return undefined;
    return issue.input === undefined ? 'is required' : `must be ${what}`;
  };

export const EvalQuestionSchema = z
  .object(
    {
      /** Stable id: names the question in results, tables and workflow ids. */
      id: z
        .string({ error: expected('a string') })
        .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'must be lower-case letters, digits and dashes (at most 48)'),
      kind: z.enum(QUESTION_KINDS, { error: expected(`one of ${QUESTION_KINDS.join(', ')}`) }),
      question: z
        .string({ error: expected('a string') })
        .trim()
        .min(1, 'must not be empty')
        .max(MAX_QUESTION_CHARS, `must be at most ${MAX_QUESTION_CHARS} characters`),
      /** What a judge checks an answer against: written by a person, never by a model. */
      reference: z
        .object(
          {
            /** The points a complete, correct answer makes. */
            keyPoints: z
              .array(
                z
                  .string({ error: expected('a string') })
                  .trim()
                  .min(1, 'must not be empty')
                  .max(1000),
                {
                  error: expected('a list of strings'),
                },
              )
              .min(1, 'must list at least one key point')
              .max(30, 'at most 30 key points'),
            /** Context for the judge: caveats, acceptable ranges, what not to penalise. */
            notes: z
              .string({ error: expected('a string') })
              .trim()
              .max(4000)
              .optional(),
          },
          { error: expected('an object with keyPoints (and optional notes)') },
        )
        .strict(),
    },
    { error: expected('an object with id, kind, question and reference') },
  )
  .strict();
export type EvalQuestion = z.infer<typeof EvalQuestionSchema>;

export const QuestionFileSchema = z
  .object(
    {
      version: z.literal(1, { error: expected('1') }),
      questions: z
        .array(EvalQuestionSchema, { error: expected('a list of questions') })
        .min(1, 'must list at least one question')
        .max(200, 'at most 200 questions'),
    },
    { error: expected('a mapping with version and questions') },
  )
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Map<string, number>();
    file.questions.forEach((q, i) => {
      const first = seen.get(q.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['questions', i, 'id'],
          message: `"${q.id}" is already the id of questions.${first}; ids must be unique`,
        });
      } else seen.set(q.id, i);
    });
  });
export type QuestionFile = z.infer<typeof QuestionFileSchema>;

/** An invalid question file; `problems` lists every problem, each as `<file>: <path>: <reason>`. */
export class QuestionFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid question file ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'QuestionFileError';
  }
}

/**
 * Parses and validates the text of a question file. `file` only names it in messages.
 * @throws QuestionFileError listing every YAML and schema problem.
 */
export function parseQuestionFile(text: string, file: string): QuestionFile {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new QuestionFileError(
      file,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        // The message's first line, without the position it repeats (given as file:line:col instead).
        const message = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        return `${file}${at ? `:${at.line}:${at.col}` : ''}: YAML: ${message}`;
      }),
    );
  }
  const result = QuestionFileSchema.safeParse(doc.toJS());
  if (!result.success) {
    throw new QuestionFileError(
      file,
      result.error.issues.map((i) => `${file}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  }
  return result.data;
}

/** Reads and validates a question file. @throws QuestionFileError, also when it cannot be read. */
export async function loadQuestionFile(file: string): Promise<QuestionFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new QuestionFileError(file, [
      `${file}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${(err as Error).message})`}`,
    ]);
  }
  return parseQuestionFile(text, file);
}
