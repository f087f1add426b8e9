import type { FieldMap } from '@pothos/core';
import type { Context } from '../context.js';
import { builder } from './builder.js';
import { toUserErrors, type UserErrorShape } from '../domain/errors.js';

export const UserErrorRef = builder.objectRef<UserErrorShape>('UserError').implement({
  description:
    'An expected failure of a mutation. `code` is stable: NOT_FOUND, VALIDATION, DUPLICATE, INVALID_TRANSITION, NOTHING_DUE, FORBIDDEN_FOR_ROLE, LIMIT_EXCEEDED, INVALID_CREDENTIALS.',
  fields: (t) => ({
    code: t.string({ resolve: (e) => e.code }),
    message: t.string({ description: 'For people: what was wrong and what to do.', resolve: (e) => e.message }),
    field: t.stringList({
      nullable: true,
      description: 'Path to the input field at fault, when there is one.',
      resolve: (e) => e.field,
    }),
  }),
});

export type Payload<T> = Partial<T> & { userErrors: UserErrorShape[] };

/**
 * Run a mutation's service call: its result plus `userErrors: []`, or only the userErrors when
 * the service refused with an expected error. Anything else propagates (masked, logged).
 */
export async function withUserErrors<T extends object>(_ctx: Context, run: () => Promise<T>): Promise<Payload<T>> {
  try {
    return { ...(await run()), userErrors: [] };
  } catch (error) {
    const userErrors = toUserErrors(error);
    if (userErrors) return { userErrors } as Payload<T>;
    throw error;
  }
}

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/**
 * A mutation payload type: the given result fields plus `userErrors: [UserError!]!`. On refusal
 * the result fields are null and userErrors says why.
 */
export function payloadType<T extends object>(
  name: string,
  description: string,
  fields: (t: PothosSchemaTypes.ObjectFieldBuilder<Types, Payload<T>>) => FieldMap,
) {
  return builder.objectRef<Payload<T>>(name).implement({
    description,
    fields: (t) => ({
      ...fields(t),
      userErrors: t.field({
        type: [UserErrorRef],
        description: 'Expected failures; empty on success.',
        resolve: (p) => p.userErrors,
      }),
    }),
  });
}
