/**
 * `publishers.yaml`: the public keys of the workers whose signature on a report's provenance
 * `npm run audit` accepts (docs/security.md, "Labelled, traceable output"). Read by the audit only:
 * it is not part of a task's config snapshot or digest, so adding or retiring a key changes no task.
 */
import { z } from 'zod';
import { Ed25519PublicKeyLineSchema } from './approvers';

export const PublishersFileSchema = z
  .object({
    publishers: z
      .array(
        z
          .object({
            /** Who holds the key, for people reading an audit (a worker deployment, a host). */
            id: z.string().regex(/^[^\s]{1,200}$/, 'must be a name without spaces'),
            /** Its Ed25519 public key as an OpenSSH line (`ssh-ed25519 AAAA… [comment]`, a `.pub` file). */
            publicKey: Ed25519PublicKeyLineSchema,
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.publishers.forEach((p, i) => {
      if (seen.has(p.id))
        ctx.addIssue({
          code: 'custom',
          path: ['publishers', i, 'id'],
          message: `duplicate publisher "${p.id}"`,
        });
      seen.add(p.id);
    });
  });
export type PublishersFile = z.infer<typeof PublishersFileSchema>;
export type Publisher = PublishersFile['publishers'][number];
