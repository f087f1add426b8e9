import { builder } from '../../graphql/builder.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { scopedKey, tenantOf } from '../../graphql/scope.js';
import { ReferralLinkRef } from '../link/link.graphql.js';
import { trackClick, URL_MAX, USER_AGENT_MAX, type TrackClickResult } from './click.service.js';

const TrackClickInput = builder.inputType('TrackClickInput', {
  description:
    'A visit through a referral link, reported by the company’s server (e.g. when its landing page reads `?ref=`).',
  fields: (t) => ({
    code: t.string({ required: true, description: 'The referral code, any case.' }),
    landingUrl: t.string({
      description: `The page the visitor landed on. Longer than ${URL_MAX} characters: truncated.`,
    }),
    referrerUrl: t.string({
      description: `The page that sent the visitor (their Referer). Longer than ${URL_MAX} characters: truncated.`,
    }),
    userAgent: t.string({
      description: `The visitor’s User-Agent. Longer than ${USER_AGENT_MAX} characters: truncated. A bot’s or a link preview’s (crawlers, Slackbot, facebookexternalhit, …): the click is recorded discarded (BOT). With \`ip\`, it tells one visitor’s repeat clicks apart (\`ReferralLink.uniqueClicks\`).`,
    }),
    ip: t.string({
      description:
        'The visitor’s IPv4 or IPv6 address (anything else is a VALIDATION error). Only a keyed hash of it is stored, never the address. Without it the visitor cannot be told from another: the click counts as unique.',
    }),
  }),
});

const TrackClickPayload = payloadType<TrackClickResult>(
  'TrackClickPayload',
  'The click’s id to attribute a later signup with, or why the click does not count.',
  (t) => ({
    clickId: t.string({
      nullable: true,
      description:
        'Pass it to recordConversion (`clickId`) when the visitor signs up: it attributes the signup at once, on any instance, even before the click row is written. ' +
        'Signed: an altered or invented click id attributes nothing. Null when nothing was recorded (unknown or disabled code).',
      resolve: (p) => p.clickId ?? null,
    }),
    link: t.prismaField({
      type: ReferralLinkRef,
      nullable: true,
      description: 'The link clicked; null when the code is not a link of this workspace and mode.',
      resolve: (query, p, _args, ctx) =>
        p.linkId ? ctx.db.prisma.referralLink.findUnique({ ...query, where: scopedKey(p.linkId, ctx) }) : null,
    }),
    discarded: t.boolean({
      description:
        'True when the click is never counted and can never earn a reward: unknown or disabled code (nothing recorded), or a bot’s or link preview’s user agent, a partner that is INACTIVE or BANNED, ' +
        'a program that is not ACTIVE, an enrollment that is not APPROVED (recorded, not counted, not rewardable).',
      resolve: (p) => p.discarded ?? true,
    }),
    discardReason: t.string({
      nullable: true,
      description:
        'Why the click is discarded, machine-readable: LINK_DISABLED (nothing recorded), BOT (a bot’s or link preview’s user agent; checked first), PARTNER_INACTIVE, PARTNER_BANNED, PROGRAM_DRAFT, PROGRAM_PAUSED, ' +
        'PROGRAM_ARCHIVED, ENROLLMENT_PENDING, ENROLLMENT_REJECTED. Null when the click counts, or on a userError.',
      resolve: (p) => p.discardReason ?? null,
    }),
  }),
);

builder.mutationField('trackClick', (t) =>
  t.field({
    type: TrackClickPayload,
    description:
      'Record a click through a referral link of the caller’s workspace and mode, as `GET /r/{code}` does for browsers. ' +
      'Unknown code (or one of another workspace or mode): NOT_FOUND and `discarded: true`, nothing recorded. Disabled link: `discarded: true`, nothing recorded. ' +
      'A bot’s or link preview’s user agent, inactive or banned partner, program not ACTIVE, enrollment not APPROVED: recorded, `discarded: true`. ' +
      'The click is acknowledged at once and written within a fraction of a second (in batches); `ReferralLink.clicks` and `uniqueClicks` (or `botClicks`) count it within seconds.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: TrackClickInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const payload = await withUserErrors(ctx, () => trackClick(ctx.clicks, tenantOf(ctx), input));
      return { discarded: true, ...payload };
    },
  }),
);
