import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Prisma } from '../src/generated/prisma/client.js';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { evaluateFraud, DEFAULT_FRAUD_RULES, type FraudFacts } from '../src/modules/review/fraud-rules.js';
import { graphql } from './gql/index.js';
import type { RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// The fraud rules of a program (src/modules/review/README.md): each rule trips, and does not trip
// on its boundary; a flagged conversion is recorded as usual, carries its signals and opens one
// review item holding its rewards; the rules themselves are set on createProgram/updateProgram.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ REFGRAPH_SECRET: 'fraud-rules-test-secret-0123456789abcdef' });
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

const RECORD = graphql(`
  mutation FR_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        id
        status
        discardReason
        signals { type detail }
        reviewItem { id status signals { type detail } rewards { id status } }
      }
      rewards { id status }
      replayed
      userErrors { code message field }
    }
  }
`);

const PROGRAM_RULES = graphql(`
  query FR_ProgramRules($id: ID!) {
    program(id: $id) {
      id
      fraudRules { sameIpAsPartner selfReferralEmailDomain disposableEmail maxConversionsPerPartnerPerHour }
    }
  }
`);

const CREATE_PROGRAM = graphql(`
  mutation FR_CreateProgram($input: CreateProgramInput!) {
    createProgram(input: $input) {
      program { id fraudRules { sameIpAsPartner selfReferralEmailDomain disposableEmail maxConversionsPerPartnerPerHour } }
      userErrors { code message field }
    }
  }
`);

const UPDATE_PROGRAM = graphql(`
  mutation FR_UpdateProgram($input: UpdateProgramInput!) {
    updateProgram(input: $input) {
      program { id fraudRules { sameIpAsPartner selfReferralEmailDomain disposableEmail maxConversionsPerPartnerPerHour } }
      userErrors { code message field }
    }
  }
`);

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now()}-${++n}`;

/** A workspace with a program (SIGNUP and PURCHASE rules), a partner on acme.test with a link. */
async function scenario(
  program: Partial<Omit<Prisma.ProgramUncheckedCreateInput, 'workspaceId' | 'mode'>> = {},
  partner: Partial<Omit<Prisma.PartnerUncheckedCreateInput, 'workspaceId' | 'mode'>> = {},
) {
  const ws = await server.workspace();
  const tenant: Tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  const key = ws.keys.test.secret;
  const f = factories(prisma(), tenant);
  const p = await f.program({ currency: 'USD', ...program });
  const owner = await f.partner({ email: 'Owner@Acme.test', ...partner });
  const enrollment = await f.enrollment({ programId: p.id, partnerId: owner.id });
  const link = await f.link(enrollment);
  await f.rule(p.id, { trigger: 'SIGNUP', fixedAmount: 500n });
  await f.rule(p.id, { trigger: 'PURCHASE', fixedAmount: 1000n });
  const record = async (input: Partial<RecordConversionInput> = {}) => {
    const res = await server.gql(
      RECORD,
      {
        input: {
          type: 'SIGNUP',
          idempotencyKey: unique('key'),
          referredExternalId: unique('friend'),
          code: link.code,
          ...input,
        },
      },
      key,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.recordConversion;
  };
  return { ws, tenant, key, f, program: p, partner: owner, link, record };
}

const typesOf = (signals: ReadonlyArray<{ type: string }> | undefined) => (signals ?? []).map((s) => s.type);

describe('Program.fraudRules', () => {
  it('defaults: the cheap checks on, velocity off; set on create, changed partially on update (program.updated says fraudRules)', async () => {
    const ws = await server.workspace();
    const admin = ws.keys.test.secret;
    const plain = await server.gql(
      CREATE_PROGRAM,
      { input: { name: 'Plain', type: 'REFERRAL', currency: 'USD' } },
      admin,
    );
    expect(plain.data!.createProgram.program!.fraudRules).toEqual({
      sameIpAsPartner: true,
      selfReferralEmailDomain: true,
      disposableEmail: true,
      maxConversionsPerPartnerPerHour: null,
    });
    const set = await server.gql(
      CREATE_PROGRAM,
      {
        input: {
          name: 'Strict',
          type: 'AFFILIATE',
          currency: 'USD',
          fraudRules: { disposableEmail: false, maxConversionsPerPartnerPerHour: 20 },
        },
      },
      admin,
    );
    const id = set.data!.createProgram.program!.id;
    expect(set.data!.createProgram.program!.fraudRules).toEqual({
      sameIpAsPartner: true,
      selfReferralEmailDomain: true,
      disposableEmail: false,
      maxConversionsPerPartnerPerHour: 20,
    });

    const updated = await server.gql(
      UPDATE_PROGRAM,
      { input: { id, fraudRules: { sameIpAsPartner: false, maxConversionsPerPartnerPerHour: null } } },
      admin,
    );
    expect(updated.data!.updateProgram.userErrors).toEqual([]);
    expect(updated.data!.updateProgram.program!.fraudRules).toEqual({
      sameIpAsPartner: false,
      selfReferralEmailDomain: true,
      disposableEmail: false,
      maxConversionsPerPartnerPerHour: null,
    });
    const event = await prisma().event.findFirst({
      where: { workspaceId: ws.workspace.id, type: 'program.updated' },
      orderBy: { sequence: 'desc' },
    });
    expect(event!.payload).toMatchObject({ changedFields: ['fraudRules'] });
  });

  it('refuses a null boolean, a limit out of range, null fraudRules; nothing changes', async () => {
    const ws = await server.workspace();
    const admin = ws.keys.test.secret;
    const created = await server.gql(
      CREATE_PROGRAM,
      { input: { name: 'P', type: 'REFERRAL', currency: 'USD' } },
      admin,
    );
    const id = created.data!.createProgram.program!.id;
    const events = await prisma().event.count({ where: { workspaceId: ws.workspace.id } });
    const refused = await server.gql(
      UPDATE_PROGRAM,
      { input: { id, fraudRules: { disposableEmail: null, maxConversionsPerPartnerPerHour: 0 } } },
      admin,
    );
    expect(refused.data!.updateProgram.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'fraudRules', 'disposableEmail']],
      ['VALIDATION', ['input', 'fraudRules', 'maxConversionsPerPartnerPerHour']],
    ]);
    const nulled = await server.gql(UPDATE_PROGRAM, { input: { id, fraudRules: null } }, admin);
    expect(nulled.data!.updateProgram.userErrors.map((e) => e.field)).toEqual([['input', 'fraudRules']]);
    const tooMany = await server.gql(
      CREATE_PROGRAM,
      {
        input: {
          name: 'Q',
          type: 'REFERRAL',
          currency: 'USD',
          fraudRules: { maxConversionsPerPartnerPerHour: 100_001 },
        },
      },
      admin,
    );
    expect(tooMany.data!.createProgram.userErrors[0]!.message).toContain('between 1 and 100000');
    expect(await prisma().event.count({ where: { workspaceId: ws.workspace.id } })).toBe(events);
    const read = await server.gql(PROGRAM_RULES, { id }, admin);
    expect(read.data!.program!.fraudRules.disposableEmail).toBe(true);
  });

  it('READ_ONLY reads them; a PARTNER credential is refused (the rules are the company’s)', async () => {
    const s = await scenario();
    const id = gid('Program', s.program.id);
    const reader = await readOnlyKey(server, s.key);
    expect((await server.gql(PROGRAM_RULES, { id }, reader)).data!.program!.fraudRules.sameIpAsPartner).toBe(true);
    const token = await partnerToken(server, s.key, s.partner.id);
    const asPartner = await server.gql(PROGRAM_RULES, { id }, token);
    expect(asPartner.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('SELF_REFERRAL_EMAIL_DOMAIN', () => {
  it('trips on the partner’s own domain (any case); not on a subdomain, webmail, another domain, or when off', async () => {
    const s = await scenario();
    const flagged = await s.record({ referredEmail: 'colleague@ACME.test' });
    expect(flagged.conversion!.status).toBe('ACCEPTED');
    expect(flagged.conversion!.signals).toEqual([
      {
        type: 'SELF_REFERRAL_EMAIL_DOMAIN',
        detail: 'The referred email is on "acme.test", the domain of the partner’s own email address.',
      },
    ]);
    for (const email of ['someone@eu.acme.test', 'someone@acme.test.example', 'friend@other.test']) {
      const clean = await s.record({ referredEmail: email });
      expect(clean.conversion!.signals).toEqual([]);
      expect(clean.conversion!.reviewItem).toBeNull();
    }

    const webmail = await scenario({}, { email: 'owner@gmail.com' });
    expect((await webmail.record({ referredEmail: 'friend@gmail.com' })).conversion!.signals).toEqual([]);

    const off = await scenario({ fraudEmailDomain: false });
    expect((await off.record({ referredEmail: 'colleague@acme.test' })).conversion!.signals).toEqual([]);
  });

  it('uses the referral’s email when a later conversion has none', async () => {
    const s = await scenario();
    const person = unique('person');
    const signup = await s.record({ referredExternalId: person, referredEmail: 'x@acme.test' });
    expect(typesOf(signup.conversion!.signals)).toEqual(['SELF_REFERRAL_EMAIL_DOMAIN']);
    const purchase = await s.record({
      type: 'PURCHASE',
      referredExternalId: person,
      code: null,
      amount: { amount: '10.00', currency: 'USD' },
    });
    expect(typesOf(purchase.conversion!.signals)).toEqual(['SELF_REFERRAL_EMAIL_DOMAIN']);
  });
});

describe('DISPOSABLE_EMAIL', () => {
  it('trips on a domain of the maintained list; not on an ordinary domain, nor when off', async () => {
    const s = await scenario();
    const flagged = await s.record({ referredEmail: 'burner@Mailinator.com' });
    expect(flagged.conversion!.signals).toEqual([
      { type: 'DISPOSABLE_EMAIL', detail: 'The referred email is on "mailinator.com", a disposable-email domain.' },
    ]);
    expect((await s.record({ referredEmail: 'friend@example.org' })).conversion!.signals).toEqual([]);
    const off = await scenario({ fraudDisposableEmail: false });
    expect((await off.record({ referredEmail: 'burner@mailinator.com' })).conversion!.signals).toEqual([]);
  });

  it('a partner on a disposable domain is not "the same domain" (that is the disposable rule’s)', async () => {
    const s = await scenario({}, { email: 'me@mailinator.com' });
    expect(typesOf((await s.record({ referredEmail: 'you@mailinator.com' })).conversion!.signals)).toEqual([
      'DISPOSABLE_EMAIL',
    ]);
  });
});

describe('SAME_IP_AS_PARTNER', () => {
  it('trips when the referred person’s IP is the one of the partner’s own signup (hashed: ::ffff:a.b.c.d is a.b.c.d); never shows the IP', async () => {
    const s = await scenario();
    // The partner's own signup as a customer: not attributed (no code), recorded with their IP.
    const own = await s.record({ referredExternalId: s.partner.externalId, code: null, ip: '203.0.113.7' });
    expect(own.conversion!.discardReason).toBe('NO_ATTRIBUTION');
    const stored = await prisma().conversion.findFirstOrThrow({ where: { referredExternalId: s.partner.externalId } });
    expect(stored.ipHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain('203.0.113.7');

    const flagged = await s.record({ ip: '::ffff:203.0.113.7', userAgent: 'Mozilla/5.0' });
    expect(typesOf(flagged.conversion!.signals)).toEqual(['SAME_IP_AS_PARTNER']);
    const detail = flagged.conversion!.signals[0]!.detail;
    expect(detail).toContain(s.partner.externalId);
    expect(detail).not.toMatch(/203\.0\.113|ffff/);

    // One address further, no IP, or the rule off: nothing.
    expect((await s.record({ ip: '203.0.113.8' })).conversion!.signals).toEqual([]);
    expect((await s.record({})).conversion!.signals).toEqual([]);
    await prisma().program.update({ where: { id: s.program.id }, data: { fraudSameIp: false } });
    expect((await s.record({ ip: '203.0.113.7' })).conversion!.signals).toEqual([]);
  });

  it('compares within the workspace and mode only', async () => {
    const a = await scenario({}, { externalId: 'shared-partner-id' });
    const b = await scenario({}, { externalId: 'shared-partner-id' });
    await a.record({ referredExternalId: 'shared-partner-id', code: null, ip: '198.51.100.1' });
    expect((await b.record({ ip: '198.51.100.1' })).conversion!.signals).toEqual([]);
    expect(typesOf((await a.record({ ip: '198.51.100.1' })).conversion!.signals)).toEqual(['SAME_IP_AS_PARTNER']);
  });

  it('refuses an ip that is not an address (VALIDATION, nothing stored); a blank one is no ip', async () => {
    const s = await scenario();
    const key = unique('bad-ip');
    const refused = await s.record({ idempotencyKey: key, ip: 'not-an-ip' });
    expect(refused.userErrors.map((e) => [e.code, e.field])).toEqual([['VALIDATION', ['input', 'ip']]]);
    expect(await prisma().conversion.count({ where: { idempotencyKey: key } })).toBe(0);
    const blank = await s.record({ ip: '  ' });
    expect(blank.conversion!.status).toBe('ACCEPTED');
  });
});

describe('VELOCITY', () => {
  it('with a limit of 2: the third accepted conversion within the hour trips; one at exactly an hour before counts, a millisecond earlier does not', async () => {
    const s = await scenario({ fraudMaxConversionsPerHour: 2 });
    const t = Date.now() - 10 * 60_000;
    const at = (ms: number) => new Date(ms).toISOString();
    // Two in the hour up to t (the first exactly one hour before): the third, at t, is one too many.
    expect((await s.record({ occurredAt: at(t - 3_600_000) })).conversion!.signals).toEqual([]);
    expect((await s.record({ occurredAt: at(t - 1_800_000) })).conversion!.signals).toEqual([]);
    const third = await s.record({ occurredAt: at(t) });
    expect(third.conversion!.signals).toEqual([
      {
        type: 'VELOCITY',
        detail:
          'With this one, the partner has more than 2 accepted conversions in this program that occurred within an hour; the program allows 2 per hour.',
      },
    ]);

    // Another partner's program: its own count. Here the earliest is a millisecond more than an hour before.
    const u = await scenario({ fraudMaxConversionsPerHour: 2 });
    await u.record({ occurredAt: at(t - 3_600_001) });
    await u.record({ occurredAt: at(t - 1_800_000) });
    expect((await u.record({ occurredAt: at(t) })).conversion!.signals).toEqual([]);
    // Discarded conversions of the partner do not count.
    const v = await scenario({ fraudMaxConversionsPerHour: 1 });
    await v.f.conversions([
      { programId: v.program.id, partnerId: v.partner.id, status: 'DISCARDED', occurredAt: new Date(t - 60_000) },
    ]);
    expect((await v.record({ occurredAt: at(t) })).conversion!.signals).toEqual([]);
    expect(typesOf((await v.record({ occurredAt: at(t) })).conversion!.signals)).toEqual(['VELOCITY']);
  });

  it('off (null) by default: any number passes', async () => {
    const s = await scenario();
    for (let i = 0; i < 4; i++) expect((await s.record({})).conversion!.signals).toEqual([]);
  });
});

describe('a flagged conversion', () => {
  it('is recorded as usual with its signals; one OPEN review item holds its rewards; the approval job leaves them alone', async () => {
    const s = await scenario();
    const res = await s.record({ referredEmail: 'a@acme.test' });
    expect(res.userErrors).toEqual([]);
    expect(res.conversion!.status).toBe('ACCEPTED');
    expect(res.rewards.map((r) => r.status)).toEqual(['CREATED']);
    const item = res.conversion!.reviewItem!;
    expect(item).toMatchObject({
      status: 'OPEN',
      signals: res.conversion!.signals,
      rewards: [{ id: res.rewards[0]!.id, status: 'CREATED' }],
    });
    const reward = await prisma().reward.findFirstOrThrow({ where: { ...s.tenant, programId: s.program.id } });
    expect(reward).toMatchObject({ held: true, reviewItemId: expect.any(String) });

    const job = new ApprovalJob(prisma(), { intervalMs: 0 });
    await job.runOnce(new Date(Date.now() + 86_400_000));
    expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).status).toBe('CREATED');

    const events = await prisma().event.findMany({ where: { ...s.tenant }, orderBy: { sequence: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['reward.created', 'conversion.recorded', 'review.opened']);
    expect(events[2]).toMatchObject({ programId: s.program.id, partnerId: null });
    expect(events[2]!.payload).toMatchObject({
      reviewItemId: item.id,
      conversionId: res.conversion!.id,
      partnerId: gid('Partner', s.partner.id),
      rewardIds: [res.rewards[0]!.id],
      signals: [{ type: 'SELF_REFERRAL_EMAIL_DOMAIN' }],
    });
  });

  it('replayed with its idempotency key: the same result, no second item, no new event', async () => {
    const s = await scenario();
    const key = unique('flagged');
    const first = await s.record({ idempotencyKey: key, referredEmail: 'a@acme.test' });
    const events = await prisma().event.count({ where: s.tenant });
    const replays = await Promise.all(
      [1, 2, 3].map(() => s.record({ idempotencyKey: key, referredEmail: 'other@example.org', ip: '192.0.2.1' })),
    );
    for (const replay of replays) {
      expect(replay.replayed).toBe(true);
      expect(replay.conversion).toEqual(first.conversion);
      expect(replay.rewards).toEqual(first.rewards);
    }
    expect(await prisma().reviewItem.count({ where: s.tenant })).toBe(1);
    expect(await prisma().event.count({ where: s.tenant })).toBe(events);
  });

  it('a conversion that trips nothing opens nothing; a discarded one is not checked', async () => {
    const s = await scenario();
    const clean = await s.record({ referredEmail: 'friend@example.org' });
    expect(clean.conversion!.reviewItem).toBeNull();
    const discarded = await s.record({ code: 'no-such-code', referredEmail: 'x@acme.test' });
    expect(discarded.conversion).toMatchObject({ status: 'DISCARDED', signals: [], reviewItem: null });
    expect(await prisma().reviewItem.count({ where: s.tenant })).toBe(0);
  });
});

describe('through every way of attribution', () => {
  it('a coupon’s partner, and under LAST_TOUCH the partner a referral moves to, are the ones compared', async () => {
    const s = await scenario({}, { email: 'owner@coupon-corp.test' });
    const enrollment = await prisma().enrollment.findFirstOrThrow({ where: { partnerId: s.partner.id } });
    await prisma().coupon.create({
      data: {
        ...s.tenant,
        programId: s.program.id,
        partnerId: s.partner.id,
        enrollmentId: enrollment.id,
        code: 'SAVE10',
        codeNormalized: 'save10',
      },
    });
    const byCoupon = await s.record({ code: null, couponCode: 'save10', referredEmail: 'x@coupon-corp.test' });
    expect(typesOf(byCoupon.conversion!.signals)).toEqual(['SELF_REFERRAL_EMAIL_DOMAIN']);

    // LAST_TOUCH: Alice brought the person; Bob's code takes them over: Bob's domain is compared.
    const t = await scenario({ attributionModel: 'LAST_TOUCH' }, { email: 'alice@alice-corp.test' });
    const bob = await t.f.partner({ email: 'bob@bob-corp.test' });
    const bobLink = await t.f.link(await t.f.enrollment({ programId: t.program.id, partnerId: bob.id }));
    const person = unique('moved');
    await t.record({ referredExternalId: person, referredEmail: 'p@bob-corp.test' }); // Alice's: clean
    const moved = await t.record({
      type: 'PURCHASE',
      referredExternalId: person,
      code: bobLink.code,
      amount: { amount: '10.00', currency: 'USD' },
    });
    expect(moved.conversion!.status).toBe('ACCEPTED');
    expect(typesOf(moved.conversion!.signals)).toEqual(['SELF_REFERRAL_EMAIL_DOMAIN']);
    expect(moved.conversion!.signals[0]!.detail).toContain('bob-corp.test');
  });
});

describe('the cost of the rules', () => {
  const LEAN = graphql(`
    mutation FR_RecordLean($input: RecordConversionInput!) {
      recordConversion(input: $input) { conversion { id } rewards { id } userErrors { code } }
    }
  `);

  it('every rule on (with an ip, an email and a velocity limit) adds no statement, flagged or not', async () => {
    const counted = async (program: Parameters<typeof scenario>[0], input: Partial<RecordConversionInput>) => {
      const s = await scenario(program);
      const send = () =>
        server.gqlCounted(
          LEAN,
          {
            input: {
              type: 'SIGNUP',
              idempotencyKey: unique('key'),
              referredExternalId: unique('friend'),
              code: s.link.code,
              ...input,
            },
          },
          s.key,
        );
      await send(); // warm: the credential cache, prepared statements
      const { body, statements } = await send();
      expect(body.data!.recordConversion.rewards).toHaveLength(1);
      return statements;
    };
    const off = await counted(
      { fraudSameIp: false, fraudEmailDomain: false, fraudDisposableEmail: false },
      { ip: '192.0.2.1', referredEmail: 'friend@example.org' },
    );
    const on = await counted(
      { fraudMaxConversionsPerHour: 100 },
      { ip: '192.0.2.1', referredEmail: 'friend@example.org' },
    );
    const flagged = await counted(
      { fraudMaxConversionsPerHour: 100 },
      { ip: '192.0.2.1', referredEmail: 'x@acme.test' },
    );
    expect({ on, flagged }).toEqual({ on: off, flagged: off });
  });
});

describe('evaluateFraud (pure)', () => {
  const facts = (over: Partial<FraudFacts> = {}): FraudFacts => ({
    rules: { ...DEFAULT_FRAUD_RULES, maxConversionsPerHour: 3 },
    partner: { externalId: 'p', email: 'p@acme.test' },
    referredEmail: null,
    ipMatchesPartner: null,
    recentConversions: null,
    ...over,
  });

  it('lists signals in the contract’s order, and none without facts', () => {
    expect(evaluateFraud(facts())).toEqual([]);
    expect(
      typesOf(
        evaluateFraud(
          facts({
            partner: { externalId: 'p', email: 'p@acme.test' },
            referredEmail: 'q@acme.test',
            ipMatchesPartner: true,
            recentConversions: 3,
          }),
        ),
      ),
    ).toEqual(['SELF_REFERRAL_EMAIL_DOMAIN', 'SAME_IP_AS_PARTNER', 'VELOCITY']);
    expect(evaluateFraud(facts({ recentConversions: 2 }))).toEqual([]);
    expect(evaluateFraud(facts({ ipMatchesPartner: false }))).toEqual([]);
    expect(evaluateFraud(facts({ partner: { externalId: 'p', email: null }, referredEmail: 'q@acme.test' }))).toEqual(
      [],
    );
  });
});
