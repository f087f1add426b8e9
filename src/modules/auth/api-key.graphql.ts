import { builder } from '../../graphql/builder.js';
import { ModeEnum, RoleEnum } from '../../graphql/enums.js';
import { notFound } from '../../domain/errors.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import { apiKeyListWhere, createTenantApiKey, revokeApiKey } from '../workspace/workspace.service.js';

export const ApiKeyRef = builder.prismaNode('ApiKey', {
  description: 'A secret key for servers. The secret itself is shown once, at creation; only its hash is stored.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => scopedKey(id, ctx),
  authScopes: { admin: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.expose('role', { type: RoleEnum }),
    mode: t.expose('mode', { type: ModeEnum }),
    accessKeyId: t.exposeString('accessKeyId', {
      description:
        'Public half of the key pair: with the secret it can be exchanged for an access token (issueAccessToken).',
    }),
    secretHint: t.exposeString('secretHint', {
      description: 'The first characters of the secret, to tell keys apart.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Updated at most once a minute.',
    }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

// --- Listing ------------------------------------------------------------------------------------

const ApiKeyConnection = builder.connectionObject(
  {
    type: ApiKeyRef,
    name: 'ApiKeyConnection',
    description: 'A page of API keys, newest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many keys match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'ApiKeyEdge', description: 'An API key in a page of keys.' },
);

builder.queryField('apiKeys', (t) =>
  t.prismaConnection(
    {
      type: ApiKeyRef,
      cursor: 'id',
      description:
        'The secret keys of the caller’s workspace and mode, newest first: names, roles, access key ids and secret hints, never a secret (only its hash is stored). ' +
        'Revoked keys only with `includeRevoked`. ADMIN only, like the ApiKey type.',
      authScopes: { admin: true },
      args: {
        includeRevoked: t.arg.boolean({
          defaultValue: false,
          description: 'Also list revoked keys (their `revokedAt` is set).',
        }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.apiKey.findMany({
          ...guardedQuery(query),
          where: apiKeyListWhere(tenantOf(ctx), args.includeRevoked === true),
          orderBy: { id: 'desc' },
        }),
      totalCount: (_root, args, ctx) =>
        ctx.db.prisma.apiKey.count({ where: apiKeyListWhere(tenantOf(ctx), args.includeRevoked === true) }),
    },
    ApiKeyConnection,
  ),
);

// --- Creating and revoking ------------------------------------------------------------------------

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1–100 characters, for people.' }),
    role: t.field({
      type: RoleEnum,
      required: true,
      description: 'ADMIN or READ_ONLY (PARTNER credentials are minted with createPartnerToken).',
    }),
  }),
});

const CreateApiKeyPayload = payloadType<{ apiKey: { id: string }; secret: string }>(
  'CreateApiKeyPayload',
  'The new key, and its secret: shown this once.',
  (t) => ({
    apiKey: t.prismaField({
      type: ApiKeyRef,
      nullable: true,
      resolve: (query, p, _args, ctx) =>
        p.apiKey ? ctx.db.prisma.apiKey.findUnique({ ...query, where: { id: p.apiKey.id } }) : null,
    }),
    secret: t.string({
      nullable: true,
      description: 'The secret key (`rg_test_…` / `rg_live_…`). Store it now: it cannot be shown again.',
      resolve: (p) => p.secret ?? null,
    }),
  }),
);

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreateApiKeyPayload,
    description: 'Create a secret key in the caller’s workspace and mode.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const key = await createTenantApiKey(ctx.db.prisma, tenantOf(ctx), { role: input.role, name: input.name });
        return { apiKey: { id: key.id }, secret: key.secret };
      }),
  }),
);

const RevokeApiKeyInput = builder.inputType('RevokeApiKeyInput', { fields: (t) => ({ id: t.id({ required: true }) }) });

const RevokeApiKeyPayload = payloadType<{ apiKeyId: string }>('RevokeApiKeyPayload', 'The revoked key.', (t) => ({
  apiKey: t.prismaField({
    type: ApiKeyRef,
    nullable: true,
    resolve: (query, p, _args, ctx) =>
      p.apiKeyId ? ctx.db.prisma.apiKey.findUnique({ ...query, where: { id: p.apiKeyId } }) : null,
  }),
}));

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: RevokeApiKeyPayload,
    description:
      'Revoke a key: it, and every access token issued from it, stop working at once. Revoking twice is harmless.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RevokeApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const id = rowIdFrom(String(input.id), 'ApiKey');
        const key = await revokeApiKey(ctx.db.prisma, tenantOf(ctx), id);
        if (!key) throw notFound('API key');
        // This instance stops accepting it now; every instance (this one too) drops it from its key
        // cache and closes the subscriptions opened with this key or its tokens.
        ctx.authenticator.forget(key.id);
        ctx.pubsub.publish('keyRevoked', { apiKeyId: key.id });
        return { apiKeyId: key.id };
      }),
  }),
);
