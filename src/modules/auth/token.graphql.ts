import { DomainError } from '../../domain/errors.js';
import { builder } from '../../graphql/builder.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { tenantOf } from '../../graphql/scope.js';
import {
  createPartnerToken,
  issueAccessToken,
  refreshAccessToken,
  RefreshTokenReplayed,
  type AccessTokens,
} from './auth.service.js';

const IssueAccessTokenInput = builder.inputType('IssueAccessTokenInput', {
  description: 'A key pair: the public access key id and the secret key.',
  fields: (t) => ({
    accessKeyId: t.string({ required: true }),
    secret: t.string({ required: true }),
  }),
});

const RefreshAccessTokenInput = builder.inputType('RefreshAccessTokenInput', {
  fields: (t) => ({
    refreshToken: t.string({ required: true, description: 'The refresh token from the last issue or refresh.' }),
  }),
});

const AccessTokenPayload = payloadType<AccessTokens>(
  'AccessTokenPayload',
  'A short-lived access token (a JWT for `Authorization: Bearer`) and a refresh token that can be used once.',
  (t) => ({
    accessToken: t.string({ nullable: true, resolve: (p) => p.accessToken ?? null }),
    refreshToken: t.string({
      nullable: true,
      description:
        'Single use: refreshAccessToken spends it and returns a new one. A reused refresh token is refused and revokes its family.',
      resolve: (p) => p.refreshToken ?? null,
    }),
    expiresIn: t.int({
      nullable: true,
      description: 'Seconds until the access token expires.',
      resolve: (p) => p.expiresIn ?? null,
    }),
  }),
);

builder.mutationField('issueAccessToken', (t) =>
  t.field({
    type: AccessTokenPayload,
    description:
      'Exchange a key pair for an access token and a refresh token. Needs no credential. Wrong pairs give INVALID_CREDENTIALS.',
    args: { input: t.arg({ type: IssueAccessTokenInput, required: true }) },
    resolve: (_root, { input }, ctx) => withUserErrors(ctx, () => issueAccessToken(ctx.db.prisma, ctx.tokens, input)),
  }),
);

builder.mutationField('refreshAccessToken', (t) =>
  t.field({
    type: AccessTokenPayload,
    description:
      'Spend a refresh token for a new access token and a new refresh token. Needs no credential. A refresh token presented a second time revokes its whole family: the refresh tokens and every access token minted from them (their WebSockets close with 4403).',
    args: { input: t.arg({ type: RefreshAccessTokenInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        try {
          return await refreshAccessToken(ctx.db.prisma, ctx.tokens, input.refreshToken);
        } catch (error) {
          if (error instanceof RefreshTokenReplayed) {
            // The family's access tokens stop working here now, and on every instance (which also
            // closes the WebSockets opened with them).
            ctx.authenticator.revokeFamily(error.familyId);
            ctx.pubsub.publish('tokenFamilyRevoked', { familyId: error.familyId });
          }
          throw error;
        }
      }),
  }),
);

const CreatePartnerTokenInput = builder.inputType('CreatePartnerTokenInput', {
  description: 'Whose token (exactly one of `partnerId` or `partnerExternalId`) and for how long.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner the token acts for'),
    ttlSeconds: t.int({ description: 'Lifetime in seconds, 60 to 2592000 (30 days); default 3600.' }),
  }),
});

const CreatePartnerTokenPayload = payloadType<{ token: string; expiresAt: Date }>(
  'CreatePartnerTokenPayload',
  'A PARTNER token: sees only this partner’s links, referrals, rewards, balances and events, and may create its own links.',
  (t) => ({
    token: t.string({ nullable: true, resolve: (p) => p.token ?? null }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.expiresAt ?? null }),
  }),
);

builder.mutationField('createPartnerToken', (t) =>
  t.field({
    type: CreatePartnerTokenPayload,
    description:
      'Mint a token for one partner, e.g. for a partner portal or an in-product widget (like Cello’s per-user JWT). It stops working when it expires or when the key that minted it is revoked.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePartnerTokenInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        // A partner token lives as long as the key that minted it (revoking the key ends it).
        if (!ctx.auth?.apiKeyId)
          throw new DomainError(
            'FORBIDDEN_FOR_ROLE',
            'Partner tokens are minted with an API key (your backend, e.g. for a portal link): a dashboard session has none.',
          );
        return createPartnerToken(
          ctx.db.prisma,
          ctx.tokens,
          { ...tenantOf(ctx), apiKeyId: ctx.auth!.apiKeyId! },
          { ...partnerKeyFrom(input), ttlSeconds: input.ttlSeconds },
        );
      }),
  }),
);
