import { randomBytes } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FRAUD_RULES } from '../src/modules/review/fraud-rules.js';
import type { Prisma } from '../src/generated/prisma/client.js';
import { ClickIdCodec } from '../src/modules/click/click-id.js';
import { formatUuid } from '../src/lib/uuid.js';
import {
  decideAttribution,
  isSelfReferral,
  type Signal,
  type TouchFacts,
} from '../src/modules/conversion/attribution.js';
import { graphql } from './gql/index.js';
import type { RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const SECRET = 'record-conversion-test-secret-0123456789abcdef';
const DAY = 86_400_000;

let server: TestServer;
let codec: ClickIdCodec;
beforeAll(async () => {
  server = await startTestServer({ REFGRAPH_SECRET: SECRET });
  codec = new ClickIdCodec(SECRET);
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

const RECORD = graphql(`
  mutation RecordConversion($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        id
        type
        status
        discardReason
        amount { amount currency }
        idempotencyKey
        occurredAt
        program { id }
        partner { id }
        referral { id status externalId email createdAt convertedAt link { id } partner { id } program { id } }
      }
      rewards {
        id
        status
        kind
        recipient
        amount { amount currency }
        approveAfter
        partner { id }
        program { id }
        conversion { id }
        rule { id version }
      }
      replayed
      userErrors { code message field }
    }
  }
`);

const RECORD_LEAN = graphql(`
  mutation RecordConversionLean($input: RecordConversionInput!) {
    recordConversion(input: $input) { conversion { id } rewards { id } replayed userErrors { code } }
  }
`);

const TRACK = graphql(`
  mutation TrackClickForConversion($input: TrackClickInput!) {
    trackClick(input: $input) { clickId discarded userErrors { code } }
  }
`);

const CREATE_KEY = graphql(`
  mutation CreateKeyForConversions($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret userErrors { code } }
  }
`);

const PARTNER_TOKEN = graphql(`
  mutation PartnerTokenForConversions($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);

const UPDATE_RULE = graphql(`
  mutation UpdateRuleForConversions($input: UpdateRewardRuleInput!) {
    updateRewardRule(input: $input) { rewardRule { id version } userErrors { code message } }
  }
`);

let keys = 0;
const newKey = () => `evt-${Date.now()}-${++keys}`;
let people = 0;
const newPerson = () => `user-${Date.now()}-${++people}`;

/** A UUIDv7 carrying exactly this millisecond (click row ids carry the click time). */
function uuidAt(ms: number): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  return formatUuid(bytes);
}

type RuleData = Partial<Omit<Prisma.RewardRuleUncheckedCreateInput, 'workspaceId' | 'mode'>>;

interface ScenarioOptions {
  program?: Partial<Omit<Prisma.ProgramUncheckedCreateInput, 'workspaceId' | 'mode'>>;
  partner?: Partial<Omit<Prisma.PartnerUncheckedCreateInput, 'workspaceId' | 'mode'>>;
  enrollmentStatus?: 'PENDING' | 'APPROVED' | 'REJECTED';
  rules?: RuleData[];
  mode?: 'TEST' | 'LIVE';
}

/** A workspace with a program, an enrolled partner with a link, and the given rules. */
async function scenario(options: ScenarioOptions = {}) {
  const ws = await server.workspace();
  const mode = options.mode ?? 'TEST';
  const tenant: Tenant = { workspaceId: ws.workspace.id, mode };
  const key = mode === 'TEST' ? ws.keys.test.secret : ws.keys.live.secret;
  const f = factories(prisma(), tenant);
  const program = await f.program({ currency: 'USD', ...options.program });
  const partner = await f.partner({ email: 'Partner@Example.com', ...options.partner });
  const enrollment = await f.enrollment({
    programId: program.id,
    partnerId: partner.id,
    status: options.enrollmentStatus ?? 'APPROVED',
  });
  const link = await f.link(enrollment, { code: `Code-${randomBytes(4).toString('hex')}` });
  const rules = [];
  for (const data of options.rules ?? []) rules.push(await f.rule(program.id, data));
  /** Another partner in the same program, with a link. */
  const otherPartner = async (data: ScenarioOptions['partner'] = {}) => {
    const p = await f.partner(data);
    const e = await f.enrollment({ programId: program.id, partnerId: p.id });
    return { partner: p, enrollment: e, link: await f.link(e, { code: `Other-${randomBytes(4).toString('hex')}` }) };
  };
  const record = async (input: Partial<RecordConversionInput>, secret = key) => {
    const res = await server.gql(
      RECORD,
      { input: { type: 'SIGNUP', idempotencyKey: newKey(), referredExternalId: newPerson(), ...input } },
      secret,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.recordConversion;
  };
  const clickId = (options: { linkId?: string; at?: number; discarded?: boolean } = {}) =>
    codec.encode(uuidAt(options.at ?? Date.now()), options.linkId ?? link.id, options.discarded ?? false);
  const conversions = () => prisma().conversion.count({ where: tenant });
  return { ws, tenant, key, f, program, partner, enrollment, link, rules, otherPartner, record, clickId, conversions };
}

const accepted = (payload: {
  conversion?: { status: string; discardReason?: string | null } | null;
  userErrors: unknown[];
}) => {
  expect(payload.userErrors).toEqual([]);
  expect(payload.conversion).toMatchObject({ status: 'ACCEPTED', discardReason: null });
};

const discarded = (
  payload: {
    conversion?: { status: string; discardReason?: string | null } | null;
    rewards: unknown[];
    userErrors: unknown[];
  },
  reason: string,
) => {
  expect(payload.userErrors).toEqual([]);
  expect(payload.conversion).toMatchObject({ status: 'DISCARDED', discardReason: reason });
  expect(payload.rewards).toEqual([]);
};

describe('recordConversion: attribution', () => {
  it('attributes a signup by code (any case) and creates a PENDING referral', async () => {
    const s = await scenario({ rules: [{ trigger: 'SIGNUP', fixedAmount: 500n }] });
    const person = newPerson();
    const res = await s.record({
      referredExternalId: person,
      referredEmail: 'friend@example.com',
      code: s.link.code.toUpperCase(),
    });
    accepted(res);
    expect(res.conversion).toMatchObject({
      type: 'SIGNUP',
      amount: null,
      program: { id: gid('Program', s.program.id) },
      partner: { id: gid('Partner', s.partner.id) },
      referral: {
        status: 'PENDING',
        externalId: person,
        email: 'friend@example.com',
        convertedAt: null,
        link: { id: gid('ReferralLink', s.link.id) },
        partner: { id: gid('Partner', s.partner.id) },
        program: { id: gid('Program', s.program.id) },
      },
    });
    expect(res.rewards).toHaveLength(1);
    expect(res.replayed).toBe(false);
  });

  it('attributes by a click id from trackClick, recording the click on the conversion and referral', async () => {
    const s = await scenario();
    const click = await server.gql(TRACK, { input: { code: s.link.code } }, s.key);
    const clickId = click.data!.trackClick.clickId!;
    expect(clickId).toBeTruthy();
    const person = newPerson();
    const res = await s.record({ referredExternalId: person, clickId });
    accepted(res);
    expect(res.conversion?.referral?.link?.id).toBe(gid('ReferralLink', s.link.id));
    const decoded = codec.decode(clickId)!;
    const row = await prisma().conversion.findFirstOrThrow({
      where: { idempotencyKey: res.conversion!.idempotencyKey, ...s.tenant },
    });
    expect(row.clickId).toBe(decoded.clickRowId);
    expect(row.linkId).toBe(s.link.id);
    const referral = await prisma().referral.findFirstOrThrow({ where: { externalId: person, ...s.tenant } });
    expect(referral.clickId).toBe(decoded.clickRowId);
  });

  it('prefers the click id over the code, and falls back to the code when the click id attributes nothing', async () => {
    const s = await scenario();
    const other = await s.otherPartner();
    const byClick = await s.record({ clickId: s.clickId({ linkId: other.link.id }), code: s.link.code });
    expect(byClick.conversion?.partner?.id).toBe(gid('Partner', other.partner.id));
    const fallback = await s.record({ clickId: 'ck_not-a-real-click-id', code: s.link.code });
    accepted(fallback);
    expect(fallback.conversion?.partner?.id).toBe(gid('Partner', s.partner.id));
    // A click that cannot bind (here: outside the window) falls back to the code too.
    const expired = await s.record({
      clickId: s.clickId({ linkId: other.link.id, at: Date.now() - 60 * DAY }),
      code: s.link.code,
    });
    accepted(expired);
    expect(expired.conversion?.partner?.id).toBe(gid('Partner', s.partner.id));
    // When neither binds, the reason is the one of the first signal that named a link.
    discarded(await s.record({ clickId: 'garbage', code: 'unknown-code' }), 'UNKNOWN_CLICK');
    discarded(
      await s.record({ clickId: 'garbage', code: other.link.code, referredExternalId: other.partner.externalId }),
      'SELF_REFERRAL',
    );
  });

  it('without a programId or signal, an event goes to the person’s oldest referral; with a programId, to that program’s', async () => {
    const s = await scenario();
    const program2 = await s.f.program();
    const link2 = await s.f.link(await s.f.enrollment({ programId: program2.id, partnerId: s.partner.id }));
    const person = newPerson();
    await s.record({
      referredExternalId: person,
      code: link2.code,
      occurredAt: new Date(Date.now() - 2 * DAY).toISOString(),
    });
    await s.record({ referredExternalId: person, code: s.link.code });
    const plain = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1.00', currency: 'USD' },
    });
    expect(plain.conversion?.program?.id).toBe(gid('Program', program2.id));
    const scoped = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      programId: gid('Program', s.program.id),
      amount: { amount: '1.00', currency: 'USD' },
    });
    expect(scoped.conversion?.program?.id).toBe(gid('Program', s.program.id));
    // A programId where the person has no referral and no signal: nothing to attribute.
    const program3 = await s.f.program();
    const none = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      programId: gid('Program', program3.id),
      amount: { amount: '1.00', currency: 'USD' },
    });
    discarded(none, 'NO_ATTRIBUTION');
    expect(none.conversion).toMatchObject({
      program: { id: gid('Program', program3.id) },
      partner: null,
      referral: null,
    });
  });

  it('attributes later events through the existing referral, and a purchase marks it CONVERTED', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE', fixedAmount: 1000n }] });
    const person = newPerson();
    const signup = await s.record({ referredExternalId: person, code: s.link.code });
    const purchase = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '49.00', currency: 'USD' },
    });
    accepted(purchase);
    expect(purchase.conversion?.referral).toMatchObject({ id: signup.conversion!.referral!.id, status: 'CONVERTED' });
    expect(purchase.conversion?.referral?.convertedAt).toBe(purchase.conversion?.occurredAt);
    expect(purchase.rewards.map((r) => r.amount)).toEqual([{ amount: '10.00', currency: 'USD' }]);
    // With the programId too.
    const again = await s.record({
      type: 'SUBSCRIPTION',
      referredExternalId: person,
      programId: gid('Program', s.program.id),
      amount: { amount: '9.00', currency: 'USD' },
    });
    accepted(again);
    expect(again.conversion?.referral?.id).toBe(signup.conversion!.referral!.id);
  });

  it('creates a CONVERTED referral when the first event is a purchase with a code', async () => {
    const s = await scenario();
    const res = await s.record({ type: 'PURCHASE', code: s.link.code, amount: { amount: '20.00', currency: 'USD' } });
    accepted(res);
    expect(res.conversion?.referral?.status).toBe('CONVERTED');
    expect(res.conversion?.referral?.convertedAt).toBe(res.conversion?.occurredAt);
  });

  it('first touch wins: a later code or click of another partner does not move the referred person', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE', fixedAmount: 1000n }] });
    const other = await s.otherPartner();
    const person = newPerson();
    const signup = await s.record({ referredExternalId: person, code: s.link.code });
    const byCode = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      code: other.link.code,
      amount: { amount: '10.00', currency: 'USD' },
    });
    const byClick = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      clickId: s.clickId({ linkId: other.link.id }),
      amount: { amount: '10.00', currency: 'USD' },
    });
    for (const res of [byCode, byClick]) {
      accepted(res);
      expect(res.conversion?.partner?.id).toBe(gid('Partner', s.partner.id));
      expect(res.conversion?.referral?.id).toBe(signup.conversion!.referral!.id);
      expect(res.rewards[0]?.partner.id).toBe(gid('Partner', s.partner.id));
    }
    expect(await prisma().referral.count({ where: { externalId: person, ...s.tenant } })).toBe(1);
  });

  it('binds a person per program: a code of another program creates a second referral there', async () => {
    const s = await scenario();
    const program2 = await s.f.program();
    const enrollment2 = await s.f.enrollment({ programId: program2.id, partnerId: s.partner.id });
    const link2 = await s.f.link(enrollment2);
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    const res = await s.record({ referredExternalId: person, code: link2.code });
    accepted(res);
    expect(res.conversion?.program?.id).toBe(gid('Program', program2.id));
    expect(await prisma().referral.count({ where: { externalId: person, ...s.tenant } })).toBe(2);
  });

  it('an unknown code of a person already referred still goes to their referral', async () => {
    const s = await scenario();
    const person = newPerson();
    const signup = await s.record({ referredExternalId: person, code: s.link.code });
    const res = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      code: 'NOPE-NOPE',
      amount: { amount: '5.00', currency: 'USD' },
    });
    accepted(res);
    expect(res.conversion?.referral?.id).toBe(signup.conversion!.referral!.id);
  });
});

describe('recordConversion: discarded conversions', () => {
  it('NO_ATTRIBUTION: no click id, no code, no referral', async () => {
    const s = await scenario();
    const res = await s.record({});
    discarded(res, 'NO_ATTRIBUTION');
    expect(res.conversion).toMatchObject({ program: null, partner: null, referral: null });
  });

  it('UNKNOWN_CODE', async () => {
    const s = await scenario();
    discarded(await s.record({ code: 'no-such-code' }), 'UNKNOWN_CODE');
  });

  it('UNKNOWN_CLICK: malformed, forged, signed by another installation, or of an unknown link', async () => {
    const s = await scenario();
    const good = s.clickId();
    const forged = `${good.slice(0, -2)}${good.endsWith('AA') ? 'BB' : 'AA'}`;
    const foreign = new ClickIdCodec('another-installation-secret-0123456789abcdef').encode(
      uuidAt(Date.now()),
      s.link.id,
      false,
    );
    const unknownLink = s.clickId({ linkId: uuidAt(Date.now()) });
    for (const clickId of ['garbage', forged, foreign, unknownLink])
      discarded(await s.record({ clickId }), 'UNKNOWN_CLICK');
  });

  it('CLICK_DISCARDED: a click recorded as not rewardable stays so', async () => {
    const s = await scenario();
    discarded(await s.record({ clickId: s.clickId({ discarded: true }) }), 'CLICK_DISCARDED');
  });

  it('LINK_DISABLED', async () => {
    const s = await scenario();
    await prisma().referralLink.update({ where: { id: s.link.id }, data: { disabledAt: new Date() } });
    const res = await s.record({ code: s.link.code });
    discarded(res, 'LINK_DISABLED');
    // What it could be tied to is kept on the conversion.
    expect(res.conversion).toMatchObject({
      program: { id: gid('Program', s.program.id) },
      partner: { id: gid('Partner', s.partner.id) },
      referral: null,
    });
    discarded(await s.record({ clickId: s.clickId() }), 'LINK_DISABLED');
  });

  it('PARTNER_INACTIVE and PARTNER_BANNED, for new and for existing referrals', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE' }] });
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    await prisma().partner.update({ where: { id: s.partner.id }, data: { status: 'INACTIVE' } });
    discarded(await s.record({ code: s.link.code }), 'PARTNER_INACTIVE');
    discarded(
      await s.record({ type: 'PURCHASE', referredExternalId: person, amount: { amount: '1.00', currency: 'USD' } }),
      'PARTNER_INACTIVE',
    );
    await prisma().partner.update({ where: { id: s.partner.id }, data: { status: 'BANNED' } });
    discarded(await s.record({ code: s.link.code }), 'PARTNER_BANNED');
    const existing = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1.00', currency: 'USD' },
    });
    discarded(existing, 'PARTNER_BANNED');
    expect(existing.conversion?.referral?.status).toBe('PENDING');
  });

  it('PROGRAM_NOT_ACTIVE: paused, archived or draft programs', async () => {
    for (const status of ['PAUSED', 'ARCHIVED', 'DRAFT'] as const) {
      const s = await scenario({ program: { status } });
      discarded(await s.record({ code: s.link.code }), 'PROGRAM_NOT_ACTIVE');
    }
    const s = await scenario();
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    await prisma().program.update({ where: { id: s.program.id }, data: { status: 'PAUSED' } });
    discarded(
      await s.record({ type: 'PURCHASE', referredExternalId: person, amount: { amount: '1.00', currency: 'USD' } }),
      'PROGRAM_NOT_ACTIVE',
    );
  });

  it('ENROLLMENT_NOT_APPROVED', async () => {
    const s = await scenario({ enrollmentStatus: 'PENDING' });
    discarded(await s.record({ code: s.link.code }), 'ENROLLMENT_NOT_APPROVED');
    await prisma().enrollment.update({ where: { id: s.enrollment.id }, data: { status: 'APPROVED' } });
    const person = newPerson();
    accepted(await s.record({ referredExternalId: person, code: s.link.code }));
    await prisma().enrollment.update({ where: { id: s.enrollment.id }, data: { status: 'REJECTED' } });
    discarded(
      await s.record({ type: 'PURCHASE', referredExternalId: person, amount: { amount: '1.00', currency: 'USD' } }),
      'ENROLLMENT_NOT_APPROVED',
    );
  });

  it('PROGRAM_MISMATCH: a code or click of another program than the given programId', async () => {
    const s = await scenario();
    const program2 = await s.f.program();
    const res = await s.record({ code: s.link.code, programId: gid('Program', program2.id) });
    discarded(res, 'PROGRAM_MISMATCH');
    expect(res.conversion).toMatchObject({ program: { id: gid('Program', program2.id) }, partner: null });
    discarded(await s.record({ clickId: s.clickId(), programId: gid('Program', program2.id) }), 'PROGRAM_MISMATCH');
    accepted(await s.record({ code: s.link.code, programId: gid('Program', s.program.id) }));
  });

  it('ATTRIBUTION_WINDOW_EXPIRED: the window counts from the click, its last millisecond included', async () => {
    const s = await scenario({ program: { attributionWindowDays: 30 } });
    const clickedAt = Date.now() - 40 * DAY;
    const clickId = s.clickId({ at: clickedAt });
    const edge = new Date(clickedAt + 30 * DAY).toISOString();
    const late = new Date(clickedAt + 30 * DAY + 1).toISOString();
    discarded(await s.record({ clickId, occurredAt: late }), 'ATTRIBUTION_WINDOW_EXPIRED');
    accepted(await s.record({ clickId, occurredAt: edge }));
    // Defaulting occurredAt to now: 40 days after the click.
    discarded(await s.record({ clickId }), 'ATTRIBUTION_WINDOW_EXPIRED');
    // A code has no click time: no window.
    accepted(await s.record({ code: s.link.code }));
  });

  it('a bound referral keeps attributing after the window (limits are the rules’ durationDays)', async () => {
    const s = await scenario({ program: { attributionWindowDays: 1 }, rules: [{ trigger: 'PURCHASE' }] });
    const person = newPerson();
    const at = Date.now() - 10 * DAY;
    accepted(
      await s.record({
        referredExternalId: person,
        clickId: s.clickId({ at }),
        occurredAt: new Date(at + 1000).toISOString(),
      }),
    );
    const purchase = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '5.00', currency: 'USD' },
    });
    accepted(purchase);
    expect(purchase.rewards).toHaveLength(1);
  });

  it('SELF_REFERRAL by externalId: the referral is recorded REJECTED and later events stay discarded', async () => {
    const s = await scenario({
      partner: { externalId: 'self-1' },
      rules: [{ trigger: 'SIGNUP' }, { trigger: 'PURCHASE' }],
    });
    const res = await s.record({ referredExternalId: 'self-1', code: s.link.code });
    discarded(res, 'SELF_REFERRAL');
    expect(res.conversion?.referral).toMatchObject({ status: 'REJECTED', externalId: 'self-1' });
    const later = await s.record({
      type: 'PURCHASE',
      referredExternalId: 'self-1',
      amount: { amount: '5.00', currency: 'USD' },
    });
    discarded(later, 'REFERRAL_REJECTED');
    expect(later.conversion?.referral?.id).toBe(res.conversion?.referral?.id);
  });

  it('SELF_REFERRAL by email, ignoring case — also when the email only arrives with a later event', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE' }] });
    discarded(await s.record({ referredEmail: ' partner@EXAMPLE.com ', code: s.link.code }), 'SELF_REFERRAL');
    const person = newPerson();
    accepted(await s.record({ referredExternalId: person, code: s.link.code }));
    const later = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      referredEmail: 'PARTNER@example.com',
      amount: { amount: '5.00', currency: 'USD' },
    });
    discarded(later, 'SELF_REFERRAL');
    expect(later.conversion?.referral?.status).toBe('REJECTED');
  });

  it('self-referrals are accepted and rewarded when the program allows them', async () => {
    const s = await scenario({
      program: { allowSelfReferral: true },
      partner: { externalId: 'self-2' },
      rules: [{ trigger: 'SIGNUP' }],
    });
    const res = await s.record({
      referredExternalId: 'self-2',
      referredEmail: 'partner@example.com',
      code: s.link.code,
    });
    accepted(res);
    expect(res.conversion?.referral?.status).toBe('PENDING');
    expect(res.rewards).toHaveLength(1);
  });

  it('a discarded conversion is stored, with its event, and changes no referral', async () => {
    const s = await scenario();
    const res = await s.record({ code: 'unknown-code' });
    const row = await prisma().conversion.findFirstOrThrow({
      where: { idempotencyKey: res.conversion!.idempotencyKey, ...s.tenant },
    });
    expect(row).toMatchObject({ status: 'DISCARDED', discardReason: 'UNKNOWN_CODE', referralId: null });
    const event = await prisma().event.findFirstOrThrow({
      where: { ...s.tenant, type: 'conversion.recorded' },
      orderBy: { sequence: 'desc' },
    });
    expect(event.payload).toMatchObject({
      conversionId: res.conversion!.id,
      status: 'DISCARDED',
      discardReason: 'UNKNOWN_CODE',
      rewardIds: [],
    });
    expect(await prisma().referral.count({ where: s.tenant })).toBe(0);
  });
});

describe('recordConversion: rewards', () => {
  it('creates CREATED rewards with approveAfter = now + holdDays, a history row and events', async () => {
    const s = await scenario({
      program: { holdDays: 14 },
      rules: [
        { trigger: 'SIGNUP', fixedAmount: 500n },
        { trigger: 'SIGNUP', recipient: 'REFERRED', kind: 'DISCOUNT', fixedAmount: 250n },
      ],
    });
    const before = Date.now();
    const res = await s.record({ code: s.link.code });
    accepted(res);
    expect(res.rewards).toHaveLength(2);
    for (const reward of res.rewards) {
      expect(reward).toMatchObject({
        status: 'CREATED',
        partner: { id: gid('Partner', s.partner.id) },
        program: { id: gid('Program', s.program.id) },
        conversion: { id: res.conversion!.id },
      });
      const approveAfter = Date.parse(reward.approveAfter);
      expect(approveAfter).toBeGreaterThanOrEqual(before + 14 * DAY);
      expect(approveAfter).toBeLessThanOrEqual(Date.now() + 14 * DAY);
    }
    expect(res.rewards.map((r) => [r.recipient, r.kind, r.amount.amount])).toEqual(
      expect.arrayContaining([
        ['REFERRER', 'CASH', '5.00'],
        ['REFERRED', 'DISCOUNT', '2.50'],
      ]),
    );
    const history = await prisma().rewardStatusChange.findMany({ where: s.tenant });
    expect(history).toHaveLength(2);
    expect(
      history.every((h) => h.fromStatus === null && h.toStatus === 'CREATED' && h.actor === s.ws.keys.test.id),
    ).toBe(true);
    const events = await prisma().event.findMany({ where: s.tenant, orderBy: { sequence: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['reward.created', 'reward.created', 'conversion.recorded']);
    expect(events[0]!.payload).toMatchObject({
      rewardId: res.rewards.find((r) => r.id === (events[0]!.payload as { rewardId: string }).rewardId)!.id,
      conversionId: res.conversion!.id,
      programId: gid('Program', s.program.id),
      partnerId: gid('Partner', s.partner.id),
      status: 'CREATED',
    });
    expect(events[2]!.payload).toMatchObject({
      conversionId: res.conversion!.id,
      status: 'ACCEPTED',
      rewardIds: expect.arrayContaining(res.rewards.map((r) => r.id)),
    });
    expect(events.every((e) => e.programId === s.program.id && e.partnerId === s.partner.id)).toBe(true);
  });

  it('records a conversion with two rules in a bounded number of SQL statements', async () => {
    const s = await scenario({
      rules: [
        { trigger: 'PURCHASE', fixedAmount: 500n },
        {
          trigger: 'PURCHASE',
          recipient: 'REFERRED',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 100,
          maxRewardsPerReferral: 3,
        },
      ],
    });
    const send = (input: Partial<RecordConversionInput>) =>
      server.gqlCounted(
        RECORD_LEAN,
        {
          input: {
            type: 'PURCHASE',
            idempotencyKey: newKey(),
            referredExternalId: person,
            amount: { amount: '10.00', currency: 'USD' },
            ...input,
          },
        },
        s.key,
      );
    const person = newPerson();
    await send({ type: 'SIGNUP', referredExternalId: newPerson(), amount: null, code: s.link.code });
    // The key's read (not used yet: outside the transaction); BEGIN; the claim with the attribution
    // facts (program, signals, referral); the referral insert with the rules; the conversion's
    // outcome with the rewards and their history; the events' insert (numbered at COMMIT); COMMIT: 7
    // statements (on PostgreSQL, BEGIN travels with the claim, and the outcome, the events and COMMIT
    // go in one round trip: 4 round trips). The payload is answered from the rows just written, the credential from the cache.
    // Counted by the server for this request alone (X-SQL-Statements); the bounds allow one more,
    // as PGlite's count comes out one higher on the two writing paths.
    const fresh = await send({ code: s.link.code, programId: gid('Program', s.program.id) });
    expect(fresh.body.data?.recordConversion.rewards).toHaveLength(2);
    expect(fresh.statements).toBeLessThanOrEqual(8);
    // An existing referral: the referral update with the rules, then the prior-rewards query: 8.
    const repeat = await send({});
    expect(repeat.body.data?.recordConversion.rewards).toHaveLength(2);
    expect(repeat.statements).toBeLessThanOrEqual(9);
    // A replay: the key's read with the conversion's row and its rewards, no transaction: 1.
    const idempotencyKey = newKey();
    await send({ idempotencyKey });
    const replay = await send({ idempotencyKey });
    expect(replay.body.data?.recordConversion.replayed).toBe(true);
    expect(replay.statements).toBeLessThanOrEqual(1);
  });

  it('holdDays 0: due at once, still CREATED', async () => {
    const s = await scenario({ rules: [{ trigger: 'SIGNUP' }] });
    const res = await s.record({ code: s.link.code });
    expect(res.rewards[0]?.status).toBe('CREATED');
    expect(Date.parse(res.rewards[0]!.approveAfter)).toBeLessThanOrEqual(Date.now());
  });

  it('percentage rules: half-up rounding once ("12.345" → "12.35"), in the conversion currency, JPY without decimals', async () => {
    const s = await scenario({
      rules: [
        {
          trigger: 'PURCHASE',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 1000,
        },
      ],
    });
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    const usd = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '123.45', currency: 'USD' },
    });
    expect(usd.rewards.map((r) => r.amount)).toEqual([{ amount: '12.35', currency: 'USD' }]);
    const low = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '123.44', currency: 'usd' },
    });
    expect(low.rewards.map((r) => r.amount)).toEqual([{ amount: '12.34', currency: 'USD' }]);
    const jpy = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1235', currency: 'JPY' },
    });
    expect(jpy.rewards.map((r) => r.amount)).toEqual([{ amount: '124', currency: 'JPY' }]); // ¥123.5 → ¥124
    const jpyDown = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1234', currency: 'JPY' },
    });
    expect(jpyDown.rewards.map((r) => r.amount)).toEqual([{ amount: '123', currency: 'JPY' }]);
  });

  it('a percentage rule on a signup without an amount makes no reward; with an amount it does', async () => {
    const s = await scenario({
      rules: [
        {
          trigger: 'SIGNUP',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 500,
        },
      ],
    });
    const none = await s.record({ code: s.link.code });
    accepted(none);
    expect(none.rewards).toEqual([]);
    const some = await s.record({ code: s.link.code, amount: { amount: '10.00', currency: 'EUR' } });
    expect(some.rewards.map((r) => r.amount)).toEqual([{ amount: '0.50', currency: 'EUR' }]);
  });

  it('maxRewardsPerReferral counts per referral and recipient', async () => {
    const s = await scenario({
      rules: [
        { trigger: 'SUBSCRIPTION', fixedAmount: 100n, maxRewardsPerReferral: 2 },
        { trigger: 'SUBSCRIPTION', recipient: 'REFERRED', fixedAmount: 50n, maxRewardsPerReferral: 1 },
      ],
    });
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    const counts = [];
    for (let i = 0; i < 3; i++) {
      const res = await s.record({
        type: 'SUBSCRIPTION',
        referredExternalId: person,
        amount: { amount: '9.99', currency: 'USD' },
      });
      counts.push(res.rewards.map((r) => r.recipient).sort());
    }
    expect(counts).toEqual([['REFERRED', 'REFERRER'], ['REFERRER'], []]);
    // Another referred person starts from zero.
    const other = await s.record({
      type: 'SUBSCRIPTION',
      code: s.link.code,
      amount: { amount: '9.99', currency: 'USD' },
    });
    expect(other.rewards).toHaveLength(2);
  });

  it('canceled and rejected rewards do not count towards the maximum', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE', maxRewardsPerReferral: 1 }] });
    const person = newPerson();
    const first = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      code: s.link.code,
      amount: { amount: '1.00', currency: 'USD' },
    });
    expect(first.rewards).toHaveLength(1);
    await prisma().reward.updateMany({ where: s.tenant, data: { status: 'CANCELED' } });
    const second = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1.00', currency: 'USD' },
    });
    expect(second.rewards).toHaveLength(1);
  });

  it('durationDays counts from the referral’s creation (its first event’s occurredAt)', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE', durationDays: 30 }] });
    const person = newPerson();
    const signedUpAt = Date.now() - 40 * DAY;
    const signup = await s.record({
      referredExternalId: person,
      code: s.link.code,
      occurredAt: new Date(signedUpAt).toISOString(),
    });
    expect(signup.conversion?.referral?.createdAt).toBe(new Date(signedUpAt).toISOString());
    const inside = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1.00', currency: 'USD' },
      occurredAt: new Date(signedUpAt + 30 * DAY).toISOString(),
    });
    expect(inside.rewards).toHaveLength(1);
    const outside = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      amount: { amount: '1.00', currency: 'USD' },
      occurredAt: new Date(signedUpAt + 30 * DAY + 1).toISOString(),
    });
    accepted(outside);
    expect(outside.rewards).toEqual([]);
  });

  it('capPerReferral reduces the reward that crosses it to the remainder, then pays nothing', async () => {
    const s = await scenario({
      rules: [
        {
          trigger: 'PURCHASE',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 1000,
          capAmount: 2500n,
          capCurrency: 'USD',
        },
      ],
    });
    const person = newPerson();
    await s.record({ referredExternalId: person, code: s.link.code });
    const amounts = [];
    for (let i = 0; i < 4; i++) {
      const res = await s.record({
        type: 'PURCHASE',
        referredExternalId: person,
        amount: { amount: '100.00', currency: 'USD' },
      });
      amounts.push(res.rewards.map((r) => r.amount.amount));
    }
    expect(amounts).toEqual([['10.00'], ['10.00'], ['5.00'], []]);
  });

  it('applies enrollment overrides: disabled, replacement fixed amount, replacement basis points', async () => {
    const s = await scenario({
      rules: [
        { trigger: 'PURCHASE', fixedAmount: 1000n },
        {
          trigger: 'PURCHASE',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 1000,
        },
        { trigger: 'PURCHASE', recipient: 'REFERRED', fixedAmount: 300n },
      ],
    });
    const [fixed, percent, referred] = s.rules as [
      (typeof s.rules)[number],
      (typeof s.rules)[number],
      (typeof s.rules)[number],
    ];
    await prisma().rewardRuleOverride.createMany({
      data: [
        {
          ...s.tenant,
          enrollmentId: s.enrollment.id,
          ruleId: fixed.id,
          ruleLineageId: fixed.lineageId,
          fixedAmount: 2500n,
        },
        {
          ...s.tenant,
          enrollmentId: s.enrollment.id,
          ruleId: percent.id,
          ruleLineageId: percent.lineageId,
          percentageBasisPoints: 2000,
        },
        {
          ...s.tenant,
          enrollmentId: s.enrollment.id,
          ruleId: referred.id,
          ruleLineageId: referred.lineageId,
          disabled: true,
        },
      ],
    });
    const res = await s.record({ type: 'PURCHASE', code: s.link.code, amount: { amount: '50.00', currency: 'USD' } });
    expect(res.rewards.map((r) => [r.rule.id, r.amount.amount]).sort()).toEqual(
      [
        [gid('RewardRule', fixed.id), '25.00'],
        [gid('RewardRule', percent.id), '10.00'],
      ].sort(),
    );
    // Another partner's enrollment has no overrides.
    const other = await s.otherPartner();
    const plain = await s.record({
      type: 'PURCHASE',
      code: other.link.code,
      amount: { amount: '50.00', currency: 'USD' },
    });
    expect(plain.rewards.map((r) => r.amount.amount).sort()).toEqual(['10.00', '3.00', '5.00']);
  });

  it('ignores archived rules and records the rule version that produced the reward', async () => {
    const s = await scenario({
      rules: [
        { trigger: 'PURCHASE', fixedAmount: 1000n },
        { trigger: 'PURCHASE', fixedAmount: 700n, archivedAt: new Date() },
      ],
    });
    const rule = s.rules[0]!;
    const updated = await server.gql(
      UPDATE_RULE,
      { input: { id: gid('RewardRule', rule.id), fixedAmount: { amount: '12.00', currency: 'USD' } } },
      s.key,
    );
    expect(updated.data?.updateRewardRule.userErrors).toEqual([]);
    const v2 = updated.data!.updateRewardRule.rewardRule!;
    expect(v2.version).toBe(2);
    const res = await s.record({ type: 'PURCHASE', code: s.link.code, amount: { amount: '50.00', currency: 'USD' } });
    expect(res.rewards.map((r) => [r.rule, r.amount.amount])).toEqual([[{ id: v2.id, version: 2 }, '12.00']]);
    const row = await prisma().reward.findFirstOrThrow({ where: s.tenant });
    expect(row.ruleLineageId).toBe(rule.lineageId);
  });

  it('rules of other triggers and a program without rules make no rewards', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE' }] });
    const res = await s.record({ code: s.link.code });
    accepted(res);
    expect(res.rewards).toEqual([]);
  });
});

describe('recordConversion: idempotency', () => {
  it('a replay returns the first result, with no userErrors and nothing new, whatever its other fields', async () => {
    const s = await scenario({ rules: [{ trigger: 'PURCHASE' }] });
    const idempotencyKey = newKey();
    const first = await s.record({
      type: 'PURCHASE',
      idempotencyKey,
      code: s.link.code,
      amount: { amount: '10.00', currency: 'USD' },
    });
    accepted(first);
    const eventsBefore = await prisma().event.count({ where: s.tenant });
    const replays = [
      await s.record({
        type: 'PURCHASE',
        idempotencyKey,
        code: s.link.code,
        amount: { amount: '10.00', currency: 'USD' },
      }),
      await s.record({ type: 'SIGNUP', idempotencyKey, code: 'something-else' }),
      // Invalid other fields: still the first result.
      await s.record({ type: 'PURCHASE', idempotencyKey, amount: { amount: '1.001', currency: 'XXQ' } }),
      await s.record({ type: 'PURCHASE', idempotencyKey, programId: 'not-an-id' }),
    ];
    for (const replay of replays) {
      expect(replay.userErrors).toEqual([]);
      expect(replay.replayed).toBe(true);
      expect(replay.conversion).toEqual(first.conversion);
      expect(replay.rewards.map((r) => r.id)).toEqual(first.rewards.map((r) => r.id));
    }
    expect(await s.conversions()).toBe(1);
    expect(await prisma().reward.count({ where: s.tenant })).toBe(1);
    expect(await prisma().event.count({ where: s.tenant })).toBe(eventsBefore);
  });

  it('a replay answers the conversion and its rewards as they are now (from the key read), with their relations', async () => {
    const s = await scenario({
      rules: [
        { trigger: 'PURCHASE', fixedAmount: 500n },
        {
          trigger: 'PURCHASE',
          recipient: 'REFERRED',
          amountType: 'PERCENTAGE',
          fixedAmount: null,
          fixedCurrency: null,
          percentageBasisPoints: 1250,
        },
      ],
    });
    const idempotencyKey = newKey();
    const input = {
      type: 'PURCHASE' as const,
      idempotencyKey,
      code: s.link.code,
      amount: { amount: '12.34', currency: 'USD' },
      metadata: { plan: 'pro', seats: 3 },
    };
    const first = await s.record(input);
    expect(first.rewards).toHaveLength(2);
    const changed = first.rewards[1]!;
    await prisma().reward.update({
      where: { id: decodeGlobalID(changed.id).id },
      data: { status: 'APPROVED' },
    });
    const replay = await s.record(input);
    expect(replay.replayed).toBe(true);
    expect(replay.userErrors).toEqual([]);
    expect(replay.conversion).toEqual(first.conversion);
    expect(replay.rewards).toEqual(first.rewards.map((r) => (r.id === changed.id ? { ...r, status: 'APPROVED' } : r)));
  });

  it('a discarded conversion replays as discarded', async () => {
    const s = await scenario();
    const idempotencyKey = newKey();
    const first = await s.record({ idempotencyKey, code: 'unknown' });
    const replay = await s.record({ idempotencyKey, code: s.link.code });
    expect(replay.conversion).toEqual(first.conversion);
    discarded(replay, 'UNKNOWN_CODE');
  });

  it('a refused call stores nothing, so the key stays free', async () => {
    const s = await scenario();
    const idempotencyKey = newKey();
    const refused = await s.record({
      idempotencyKey,
      programId: gid('Program', uuidAt(Date.now())),
      code: s.link.code,
    });
    expect(refused.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(await s.conversions()).toBe(0);
    accepted(await s.record({ idempotencyKey, code: s.link.code }));
  });
});

describe('recordConversion: validation', () => {
  const cases: Array<[string, Partial<RecordConversionInput>, string[]]> = [
    ['REFUND type', { type: 'REFUND', amount: { amount: '1.00', currency: 'USD' } }, ['input', 'type']],
    [
      'unknown currency',
      { type: 'PURCHASE', amount: { amount: '1.00', currency: 'ABC' } },
      ['input', 'amount', 'currency'],
    ],
    [
      'too many decimals',
      { type: 'PURCHASE', amount: { amount: '1.005', currency: 'USD' } },
      ['input', 'amount', 'amount'],
    ],
    [
      'decimals in JPY',
      { type: 'PURCHASE', amount: { amount: '100.5', currency: 'JPY' } },
      ['input', 'amount', 'amount'],
    ],
    [
      'negative amount',
      { type: 'PURCHASE', amount: { amount: '-1.00', currency: 'USD' } },
      ['input', 'amount', 'amount'],
    ],
    ['PURCHASE without amount', { type: 'PURCHASE' }, ['input', 'amount']],
    ['SUBSCRIPTION without amount', { type: 'SUBSCRIPTION' }, ['input', 'amount']],
    ['empty idempotencyKey', { idempotencyKey: '' }, ['input', 'idempotencyKey']],
    ['blank idempotencyKey', { idempotencyKey: '   ' }, ['input', 'idempotencyKey']],
    ['idempotencyKey over 255', { idempotencyKey: 'k'.repeat(256) }, ['input', 'idempotencyKey']],
    ['empty referredExternalId', { referredExternalId: '  ' }, ['input', 'referredExternalId']],
    ['referredExternalId over 255', { referredExternalId: 'u'.repeat(256) }, ['input', 'referredExternalId']],
    ['malformed referredEmail', { referredEmail: 'not an email' }, ['input', 'referredEmail']],
    [
      'occurredAt over 5 minutes ahead',
      {
        // Computed when the test runs (a getter read by the spread), not when the file loads: a slow
        // run must not bring it within the 5 minutes.
        get occurredAt() {
          return new Date(Date.now() + 6 * 60_000).toISOString();
        },
      },
      ['input', 'occurredAt'],
    ],
  ];
  for (const [name, input, field] of cases) {
    it(`refuses ${name} with a VALIDATION error and stores nothing`, async () => {
      const s = await scenario();
      const res = await s.record({ code: s.link.code, ...input });
      expect(res.conversion).toBeNull();
      expect(res.rewards).toEqual([]);
      expect(res.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field })]);
      expect(res.userErrors[0]!.message.length).toBeGreaterThan(10);
      expect(await s.conversions()).toBe(0);
    });
  }

  it('accepts boundary values: 255-character key and externalId, occurredAt 4 minutes ahead, a zero purchase', async () => {
    const s = await scenario();
    accepted(
      await s.record({
        idempotencyKey: 'k'.repeat(255),
        referredExternalId: 'u'.repeat(255),
        occurredAt: new Date(Date.now() + 4 * 60_000).toISOString(),
        code: s.link.code,
      }),
    );
    accepted(await s.record({ type: 'PURCHASE', amount: { amount: '0', currency: 'USD' }, code: s.link.code }));
  });

  it('reports every invalid field at once', async () => {
    const s = await scenario();
    const res = await s.record({
      type: 'PURCHASE',
      idempotencyKey: '',
      referredExternalId: '',
      referredEmail: 'x',
      occurredAt: new Date(Date.now() + DAY).toISOString(),
    });
    expect(res.userErrors.map((e) => e.field)).toEqual([
      ['input', 'idempotencyKey'],
      ['input', 'referredExternalId'],
      ['input', 'referredEmail'],
      ['input', 'amount'],
      ['input', 'occurredAt'],
    ]);
  });

  it('refuses a programId that is malformed, of another type or unknown with NOT_FOUND', async () => {
    const s = await scenario();
    for (const programId of [
      'nope',
      gid('Partner', s.partner.id),
      gid('Program', uuidAt(Date.now())),
      gid('Program', 'not-a-uuid'),
    ]) {
      const res = await s.record({ programId, code: s.link.code });
      expect(res.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] },
      ]);
    }
    expect(await s.conversions()).toBe(0);
  });
});

describe('recordConversion: isolation', () => {
  it('codes, click ids, programIds and referrals of another workspace or mode are unknown', async () => {
    const mine = await scenario();
    const theirs = await scenario();
    const live = await scenario({ mode: 'LIVE' });
    // Put the LIVE scenario in the same workspace as `mine`.
    const liveSameWs = factories(prisma(), { workspaceId: mine.ws.workspace.id, mode: 'LIVE' });
    const liveProgram = await liveSameWs.program();
    const livePartner = await liveSameWs.partner();
    const liveLink = await liveSameWs.link(
      await liveSameWs.enrollment({ programId: liveProgram.id, partnerId: livePartner.id }),
    );

    discarded(await mine.record({ code: theirs.link.code }), 'UNKNOWN_CODE');
    discarded(await mine.record({ code: liveLink.code }), 'UNKNOWN_CODE');
    discarded(await mine.record({ code: live.link.code }), 'UNKNOWN_CODE');
    discarded(await mine.record({ clickId: mine.clickId({ linkId: theirs.link.id }) }), 'UNKNOWN_CLICK');
    discarded(await mine.record({ clickId: mine.clickId({ linkId: liveLink.id }) }), 'UNKNOWN_CLICK');
    for (const programId of [gid('Program', theirs.program.id), gid('Program', liveProgram.id)]) {
      const res = await mine.record({ programId, code: mine.link.code });
      expect(res.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    }
    // Their referred person is nobody here.
    const person = newPerson();
    accepted(await theirs.record({ referredExternalId: person, code: theirs.link.code }));
    discarded(await mine.record({ referredExternalId: person }), 'NO_ATTRIBUTION');
    // The same idempotency key is another conversion in another workspace and in the other mode.
    const idempotencyKey = newKey();
    const a = await mine.record({ idempotencyKey, code: mine.link.code });
    const b = await theirs.record({ idempotencyKey, code: theirs.link.code });
    const c = await mine.record({ idempotencyKey, code: liveLink.code }, mine.ws.keys.live.secret);
    for (const res of [a, b, c]) accepted(res);
    expect(new Set([a.conversion!.id, b.conversion!.id, c.conversion!.id]).size).toBe(3);
    expect(b.replayed || c.replayed).toBe(false);
  });
});

describe('recordConversion: roles', () => {
  it('needs an ADMIN credential', async () => {
    const s = await scenario();
    const input = {
      type: 'SIGNUP' as const,
      idempotencyKey: newKey(),
      referredExternalId: newPerson(),
      code: s.link.code,
    };
    const anonymous = await server.gql(RECORD, { input });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const reader = (await server.gql(CREATE_KEY, { input: { name: 'reader', role: 'READ_ONLY' } }, s.key)).data!
      .createApiKey.secret!;
    const refused = await server.gql(RECORD, { input }, reader);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const partnerToken = (
      await server.gql(PARTNER_TOKEN, { input: { partnerId: gid('Partner', s.partner.id) } }, s.key)
    ).data!.createPartnerToken.token!;
    const partner = await server.gql(RECORD, { input }, partnerToken);
    expect(partner.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(await s.conversions()).toBe(0);
    // The ADMIN key may.
    accepted(await s.record({ code: s.link.code }));
  });
});

describe('attribution decision (pure)', () => {
  const touch = (
    data: Partial<TouchFacts> = {},
    program: Partial<TouchFacts['program']> = {},
    partner: Partial<TouchFacts['partner']> = {},
  ): TouchFacts => ({
    source: 'code',
    linkId: 'link',
    couponId: null,
    disabled: false,
    program: {
      id: 'p1',
      status: 'ACTIVE',
      attributionWindowDays: 30,
      allowSelfReferral: false,
      holdDays: 0,
      attributionModel: 'FIRST_TOUCH',
      fraudRules: DEFAULT_FRAUD_RULES,
      ...program,
    },
    partner: { id: 'a', externalId: 'partner-a', email: 'a@example.com', status: 'ACTIVE', ...partner },
    enrollment: { id: 'e', status: 'APPROVED' },
    click: null,
    fraud: { ipMatchesPartner: null, recentConversions: null },
    ...data,
  });
  const referred = { externalId: 'friend', email: null, occurredAt: new Date('2026-03-01T00:00:00Z') };
  const decide = (signals: Signal[], programId: string | null = null) =>
    decideAttribution({ programId, signals, referral: null, referred });

  it('reports the first signal that named a link, not an earlier unknown one, nor a later one', () => {
    const banned = touch({}, {}, { status: 'BANNED' });
    expect(
      decide([
        { source: 'click', unknown: 'UNKNOWN_CLICK' },
        { source: 'code', touch: banned },
      ]),
    ).toMatchObject({ outcome: 'discard', reason: 'PARTNER_BANNED' });
    const other = touch({}, { id: 'p2' });
    expect(
      decide(
        [
          { source: 'click', touch: other },
          { source: 'code', touch: banned },
        ],
        'p1',
      ),
    ).toMatchObject({ outcome: 'discard', reason: 'PROGRAM_MISMATCH', touch: null });
    expect(
      decide([
        { source: 'click', unknown: 'UNKNOWN_CLICK' },
        { source: 'code', unknown: 'UNKNOWN_CODE' },
      ]),
    ).toMatchObject({ reason: 'UNKNOWN_CLICK' });
    expect(decide([])).toMatchObject({ reason: 'NO_ATTRIBUTION' });
  });

  it('accepts a conversion timestamped a little before its click (clock skew)', () => {
    const click = touch({
      source: 'click',
      click: { rowId: 'r', clickedAt: new Date(referred.occurredAt.getTime() + 60_000), discarded: false },
    });
    expect(decide([{ source: 'click', touch: click }])).toMatchObject({ outcome: 'new', discard: null });
  });

  it('compares externalIds exactly and emails ignoring case and spaces', () => {
    const partner = { externalId: 'User-1', email: 'Me@Example.com' };
    expect(isSelfReferral(partner, { externalId: 'User-1', email: null })).toBe(true);
    expect(isSelfReferral(partner, { externalId: 'user-1', email: null })).toBe(false);
    expect(isSelfReferral(partner, { externalId: 'x', email: ' me@example.COM ' })).toBe(true);
    expect(isSelfReferral({ externalId: 'x', email: null }, { externalId: 'y', email: 'a@b' })).toBe(false);
  });
});
