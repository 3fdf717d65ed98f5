/**
 * `approvers.yaml`: the people who may decide at a gate, and the groups playbooks name them by.
 */
import { z } from 'zod';
import { IdSchema } from './common';

export const ApproversFileSchema = z
  .object({
    people: z
      .array(
        z
          .object({
            id: z.string().regex(/^[^\s*:]{1,200}$/, 'must be an identity without spaces, "*" or ":"'),
            name: z.string().min(1),
          })
          .strict(),
      )
      .default([]),
    groups: z
      .array(z.object({ id: IdSchema, members: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    const people = new Set<string>();
    file.people.forEach((p, i) => {
      if (people.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['people', i, 'id'], message: `duplicate person "${p.id}"` });
      people.add(p.id);
    });
    const groups = new Set<string>();
    file.groups.forEach((g, i) => {
      if (groups.has(g.id))
        ctx.addIssue({ code: 'custom', path: ['groups', i, 'id'], message: `duplicate group "${g.id}"` });
      groups.add(g.id);
      g.members.forEach((m, j) => {
        if (!people.has(m))
          ctx.addIssue({
            code: 'custom',
            path: ['groups', i, 'members', j],
            message: `"${m}" is not declared under people`,
          });
      });
    });
  });
export type ApproversFile = z.infer<typeof ApproversFileSchema>;

/** Expands group references to people; `"*"` stays as is. Unknown references are left out (config:check reports them). */
export function resolveApprovers(refs: readonly string[], file: ApproversFile): string[] {
  const out = new Set<string>();
  for (const ref of refs) {
    if (ref === '*') out.add('*');
    else if (ref.startsWith('group:'))
      file.groups.find((g) => g.id === ref.slice(6))?.members.forEach((m) => out.add(m));
    else if (file.people.some((p) => p.id === ref)) out.add(ref);
  }
  return [...out];
}
