import SchemaBuilder from '@pothos/core';
import { GraphQLError } from 'graphql';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ComplexityPlugin from '@pothos/plugin-complexity';
import type { Context } from '../context.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { forbiddenError, unauthenticatedError } from './errors.js';
import { DEFAULT_PAGE_SIZE, fieldComplexity, MAX_PAGE_SIZE } from './limits.js';

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
    ID: { Input: string; Output: string | number | bigint };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ComplexityPlugin],
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
    unauthorizedError: (_parent, ctx) => (ctx.auth ? forbiddenError(ctx.auth.role) : unauthenticatedError(ctx.authError)),
  },
  prisma: {
    // The client depends on the running app's database, so it comes from the context.
    client: (ctx) => ctx.db.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    maxConnectionSize: MAX_PAGE_SIZE,
    defaultConnectionSize: DEFAULT_PAGE_SIZE,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
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
      description: 'Several objects by global id (at most 100), in the order asked; null for each id outside the caller’s scope.',
      authScopes: { authenticated: true },
      complexity: (args) => ({ field: 1, multiplier: Math.min(args.ids.length, 100) }),
      resolve: (_root, args, _ctx, _info, resolveNodes) => {
        if (args.ids.length > 100) {
          throw new GraphQLError(`nodes takes at most 100 ids; got ${args.ids.length}.`, { extensions: { code: 'BAD_USER_INPUT' } });
        }
        return resolveNodes(args.ids);
      },
    },
  },
});

// Unused at runtime, keeps the PrismaClient type import honest for the plugin's generics.
export type { PrismaClient };

builder.scalarType('DateTime', {
  description: 'A UTC instant in ISO-8601, e.g. "2026-01-31T12:00:00.000Z".',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value)) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
      throw new TypeError(`DateTime must be an ISO-8601 string such as "2026-01-31T12:00:00Z", got ${JSON.stringify(value)}.`);
    }
    return new Date(value);
  },
});

builder.scalarType('Decimal', {
  description:
    'An exact decimal number as a string in major units of a currency ("12.50", "-3.00", "1500" for JPY). Never a float.',
  serialize: (value) => value,
  parseValue: (value) => {
    if (typeof value !== 'string' || !/^-?\d+(\.\d+)?$/.test(value)) {
      throw new TypeError(`Decimal must be a string such as "12.50", got ${JSON.stringify(value)}.`);
    }
    return value;
  },
});

builder.queryType({ description: 'Reads, always scoped to the workspace and mode of the credential.' });
builder.subscriptionType({
  description:
    'Live updates over graphql-ws (or SSE). Arguments are filters; omitted, a stream covers the caller’s whole scope. Every event is resolved with fresh data.',
});
builder.mutationType({
  description: 'Writes. Each takes one `input` and returns a payload whose `userErrors` list expected failures; a refused mutation changes nothing.',
});
