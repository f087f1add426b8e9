import SchemaBuilder from '@pothos/core';
import { GraphQLError, valueFromASTUntyped, type ValueNode } from 'graphql';
import { GraphQLDateTime, GraphQLJSON } from 'graphql-scalars';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ComplexityPlugin from '@pothos/plugin-complexity';
import type { Context } from '../context.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { forbiddenError, invalidInputValueError, unauthenticatedError } from './errors.js';
import InputTextPlugin from './input-text.js';
import { DEFAULT_PAGE_SIZE, fieldComplexity, MAX_PAGE_SIZE } from './limits.js';
import { parseDateTime } from '../lib/datetime.js';

/**
 * Scopes are declared on the fields they protect:
 * - `authenticated`: any valid credential;
 * - `reader`: ADMIN or READ_ONLY (workspace-wide reads);
 * - `admin`: ADMIN (every mutation except a partner's own links).
 */
export interface AuthScopes {
  authenticated: boolean;
  reader: boolean;
  admin: boolean;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: AuthScopes;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    Decimal: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string | number | bigint };
  };
}>({
  // InputTextPlugin is listed last, so it runs last before a resolver: after the auth scopes (see input-text.ts).
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ComplexityPlugin, InputTextPlugin],
  defaultFieldNullability: false,
  // Each field's cost estimate (see limits.ts). The limit is enforced before execution by
  // useOperationLimits, not by the plugin's per-resolver check, which stays off.
  complexity: { fieldComplexity, disabled: true },
  scopeAuth: {
    authScopes: (ctx) => ({
      authenticated: ctx.auth !== null,
      reader: ctx.auth?.role === 'ADMIN' || ctx.auth?.role === 'READ_ONLY',
      admin: ctx.auth?.role === 'ADMIN',
    }),
    // Check subscriptions when they start, not only on each event.
    authorizeOnSubscribe: true,
    unauthorizedError: (_parent, ctx) =>
      ctx.auth ? forbiddenError(ctx.auth.role) : unauthenticatedError(ctx.authError),
  },
  prisma: {
    // The client depends on the running app's database, so it comes from the context.
    client: (ctx) => ctx.db.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    maxConnectionSize: MAX_PAGE_SIZE,
    defaultConnectionSize: DEFAULT_PAGE_SIZE,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'error',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    nodeTypeOptions: { description: 'An object with a globally unique, opaque id.' },
    pageInfoTypeOptions: { description: 'Where a page of a connection sits in the whole list.' },
    nodeQueryOptions: {
      description: 'Any object by its global id; null when it does not exist in the caller’s workspace and mode.',
      authScopes: { authenticated: true },
    },
    nodesQueryOptions: {
      description:
        'Several objects by global id (at most 100), in the order asked; null for each id outside the caller’s scope.',
      authScopes: { authenticated: true },
      complexity: (args) => ({ field: 1, multiplier: Math.min(args.ids.length, 100) }),
      resolve: (_root, args, _ctx, _info, resolveNodes) => {
        if (args.ids.length > 100) {
          throw new GraphQLError(`nodes takes at most 100 ids; got ${args.ids.length}.`, {
            extensions: { code: 'BAD_USER_INPUT' },
          });
        }
        return resolveNodes(args.ids);
      },
    },
  },
});

// Unused at runtime, keeps the PrismaClient type import honest for the plugin's generics.
export type { PrismaClient };

// graphql-scalars' DateTime, with this API's own reading of inputs (lib/datetime.ts: more forms,
// a range, a reason for each refusal) and errors (BAD_USER_INPUT), and answers always in UTC.
builder.scalarType('DateTime', {
  description:
    'A UTC instant in ISO 8601, e.g. "2026-01-31T12:00:00.000Z" (always so in answers). Inputs may carry an offset ' +
    'instead of Z ("2026-01-31T14:00:00+02:00"), fractional seconds (kept to the millisecond) or be a date alone ' +
    '("2026-01-31", midnight UTC); a time without Z or an offset, a date that does not exist ("2026-02-30") and ' +
    'instants before 1970-01-01T00:00:00Z or after 9999-12-31T23:59:59.999Z are refused (BAD_USER_INPUT).',
  serialize: (value) => (GraphQLDateTime.serialize(value) as Date).toISOString(),
  parseValue: (value) => dateTimeInput(value),
  parseLiteral: (node) => dateTimeInput(valueFromASTUntyped(node), node),
});

/** A DateTime input, or a request error (BAD_USER_INPUT) saying what is wrong with it. */
function dateTimeInput(value: unknown, node?: ValueNode): Date {
  if (typeof value !== 'string')
    throw invalidInputValueError(
      `DateTime must be a string such as "2026-01-31T12:00:00Z"; got ${shown(value)}.`,
      node,
    );
  const parsed = parseDateTime(value);
  if ('problem' in parsed) throw invalidInputValueError(parsed.problem, node);
  return parsed.date;
}

/** A client's value in a message: JSON, cut short. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 64 ? `${json.slice(0, 64)}… (${json.length} characters)` : json;
}

// graphql-scalars' JSON: any JSON value, written inline in a document or passed as a variable.
builder.addScalarType('JSON', GraphQLJSON, {
  description:
    'Any JSON value, sent as JSON itself (an object literal in a document or a variable), never as a string of JSON. ' +
    'Metadata and answers are objects: at most 50 top-level keys and 8 KiB.',
});

/** Longer than any amount parseDecimal accepts (at most 10^15 minor units), short enough to show in a message. */
const DECIMAL_MAX_LENGTH = 40;

builder.scalarType('Decimal', {
  description:
    'An exact decimal number as a string in major units of a currency ("12.50", "-3.00", "1500" for JPY): digits, an optional leading "-" and an optional fraction; no exponent, no spaces. Never a float.',
  serialize: (value) => value,
  parseValue: (value) => decimalInput(value),
  parseLiteral: (node) => decimalInput(valueFromASTUntyped(node), node),
});

/** A Decimal input, or a request error (BAD_USER_INPUT) saying what is wrong with it. */
function decimalInput(value: unknown, node?: ValueNode): string {
  if (typeof value !== 'string' || value.length > DECIMAL_MAX_LENGTH || !/^-?\d+(\.\d+)?$/.test(value)) {
    throw invalidInputValueError(
      `Decimal must be a string such as "12.50" (digits, an optional "-" and fraction, at most ${DECIMAL_MAX_LENGTH} characters); got ${shown(value)}.`,
      node,
    );
  }
  return value;
}

builder.queryType({ description: 'Reads, always scoped to the workspace and mode of the credential.' });
builder.subscriptionType({
  description:
    'Live updates over graphql-ws (or SSE). Arguments are filters; omitted, a stream covers the caller’s whole scope. Every event is resolved with fresh data.',
});
builder.mutationType({
  description:
    'Writes. Each takes one `input` and returns a payload whose `userErrors` list expected failures; a refused mutation changes nothing.',
});
