import { GraphQLError } from 'graphql';
import { Validator } from '../domain/errors.js';
import { checkMetadata } from '../domain/metadata.js';
import type { Context } from '../context.js';
import type { Prisma } from '../generated/prisma/client.js';

export const METADATA_DESCRIPTION =
  'Your own fields: a JSON object of at most 50 top-level keys and 8 KiB as JSON ({} when none was given). ' +
  'Null for a PARTNER credential: metadata is the company’s, not shown in partner portals.';

/** Metadata as a field shows it: the company's own, so never to a PARTNER credential. */
export function visibleMetadata(row: { metadata: unknown }, ctx: Context): unknown {
  return ctx.auth?.role === 'PARTNER' ? null : row.metadata;
}

export const METADATA_FILTER_DESCRIPTION =
  'Only rows whose metadata contains this JSON object: every key given, with the same value (nested objects match the ' +
  'same way, arrays by containment). { "plan": "pro" } matches { "plan": "pro", "seats": 5 }. An index serves it.';

/**
 * The where-clause part of a metadata containment filter (`metadata @> filter`), or undefined when
 * none is given. Prisma cannot say `@>` of an object, so it goes through the generated
 * `metadataMatch` column (`[metadata]`, see the partner_operations migration): one-element arrays
 * contain each other exactly when their objects do. A filter that is not an object, or too big,
 * is a request error.
 */
export function metadataWhere(
  filter: unknown,
  argument: string,
): { metadataMatch: { array_contains: Prisma.InputJsonValue } } | undefined {
  if (filter === null || filter === undefined) return undefined;
  const v = new Validator();
  checkMetadata(v, filter, [argument]);
  try {
    v.throwIfAny();
  } catch (error) {
    throw new GraphQLError(`${argument}: ${(error as Error).message}`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return { metadataMatch: { array_contains: [filter as Prisma.InputJsonObject] } };
}
