// GET /export/{rewards|conversions|payouts|ledger}.csv: who may export, what each file holds,
// the period and its checks, CSV escaping, and the streaming itself — a client that goes away
// stops the reading, and 100 000 rows go out in constant memory.
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tenant } from '../src/domain/tenant.js';
import { issueAccessToken } from '../src/modules/auth/auth.service.js';
import { createPartnerToken } from '../src/modules/auth/auth.service.js';
import { createApiKey, type CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { factories, gid, uuidv7 } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// A full garbage collection on demand, to compare the server's memory before and during a stream.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let server: TestServer;
let ws: CreatedWorkspace;
let tenant: Tenant;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  ws = await server.workspace('Exports');
  tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  admin = ws.keys.test.secret;
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

interface Download {
  status: number;
  headers: Headers;
  text: string;
}

async function download(path: string, token?: string): Promise<Download> {
  const res = await fetch(`${server.url}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The records of a CSV text, read per RFC 4180 (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
    i++;
  }
  if (field !== '' || record.length > 0)
    throw new Error(`the CSV does not end with CRLF: ${JSON.stringify(text.slice(-40))}`);
  return records;
}

/** The CSV as objects keyed by its header (which it checks is the first record). */
function rowsOf(text: string): Array<Record<string, string>> {
  const [header, ...records] = parseCsv(text);
  return records.map((r) => Object.fromEntries(header!.map((name, i) => [name, r[i]!])));
}

function errorsOf(d: Download): Array<{ code: string; message: string; field: string[] | null }> {
  expect(d.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return (JSON.parse(d.text) as { errors: Array<{ code: string; message: string; field: string[] | null }> }).errors;
}

/** A program, a partner and its enrollment, a rule and `count` purchases with a reward each, at `at`. */
async function world(t: Tenant, options: { at?: Date; externalId?: string; count?: number } = {}) {
  const f = factories(prisma(), t);
  const at = options.at ?? new Date();
  const program = await f.program();
  const rule = await f.rule(program.id);
  const partner = await f.partner({ externalId: options.externalId ?? `partner-${uuidv7().slice(-8)}` });
  const conversions = await f.conversions(
    Array.from({ length: options.count ?? 1 }, () => ({
      programId: program.id,
      partnerId: partner.id,
      amount: 12_345n,
      currency: 'USD',
      occurredAt: at,
      createdAt: at,
    })),
  );
  const rewards = await f.rewards(
    conversions.map((c) => ({
      programId: program.id,
      partnerId: partner.id,
      conversionId: c.id,
      ruleId: rule.id,
      amount: 1235n,
      currency: 'USD',
      createdAt: at,
    })),
  );
  return { f, program, rule, partner, conversions, rewards };
}

describe('who may export', () => {
  it('answers 401 without a credential or with one that does not check out, as JSON saying why', async () => {
    const none = await download('/export/rewards.csv');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="refgraph"');
    expect(errorsOf(none)).toEqual([
      {
        code: 'UNAUTHENTICATED',
        message: 'Send Authorization: Bearer <secret key | access token> of role ADMIN or READ_ONLY.',
        field: null,
      },
    ]);
    const wrong = await download('/export/rewards.csv', 'rg_test_notakeyatall');
    expect(wrong.status).toBe(401);
    expect(errorsOf(wrong)[0]!.code).toBe('UNAUTHENTICATED');
    expect(errorsOf(wrong)[0]!.message).toMatch(/secret key|credential/);
  });

  it('refuses PARTNER tokens with 403, and serves ADMIN and READ_ONLY keys and access tokens', async () => {
    const { partner } = await world(tenant);
    const partnerTok = await createPartnerToken(
      prisma(),
      server.app.services.tokens,
      { ...tenant, apiKeyId: ws.keys.test.id },
      { partnerId: partner.id, ttlSeconds: 3600 },
    );
    const refused = await download('/export/rewards.csv', partnerTok.token);
    expect(refused.status).toBe(403);
    expect(errorsOf(refused)).toEqual([
      {
        code: 'FORBIDDEN_FOR_ROLE',
        message:
          'Exports need a secret key or access token of role ADMIN or READ_ONLY; this credential’s role is PARTNER.',
        field: null,
      },
    ]);

    const reader = await createApiKey(prisma(), { ...tenant, role: 'READ_ONLY', name: 'reader' });
    const tokens = await issueAccessToken(prisma(), server.app.services.tokens, {
      accessKeyId: ws.keys.test.accessKeyId,
      secret: ws.keys.test.secret,
    });
    const readerTokens = await issueAccessToken(prisma(), server.app.services.tokens, reader);
    for (const token of [admin, reader.secret, tokens.accessToken, readerTokens.accessToken]) {
      const ok = await download('/export/rewards.csv', token);
      expect(ok.status).toBe(200);
      expect(rowsOf(ok.text).some((r) => r['partnerId'] === gid('Partner', partner.id))).toBe(true);
    }
  });

  it('counts against the rate limits of GraphQL requests: per address without a valid credential', async () => {
    const limited = await startTestServer({ RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1' });
    try {
      const get = () => fetch(`${limited.url}/export/rewards.csv`);
      expect((await get()).status).toBe(401);
      const refused = await get();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('RATE_LIMITED');
    } finally {
      await limited.close();
    }
  });

  it('answers 404 for a table that does not exist and 405 for another method', async () => {
    const missing = await download('/export/partners.csv', admin);
    expect(missing.status).toBe(404);
    expect(errorsOf(missing)[0]).toEqual({
      code: 'NOT_FOUND',
      message:
        'No export at /export/partners.csv: the exports are /export/rewards.csv, /export/conversions.csv, /export/payouts.csv, /export/ledger.csv.',
      field: null,
    });
    expect((await download('/export/rewards', admin)).status).toBe(404);
    const post = await fetch(`${server.url}/export/rewards.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});

describe('what each file holds', () => {
  // One of each, at a fixed instant, with values whose formatting matters.
  const at = new Date('2026-03-10T12:34:56.789Z');
  const period = 'from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z';
  let w: Awaited<ReturnType<typeof world>>;
  let payoutId: string;
  let refundId: string;
  let clawbackId: string;
  let entryIds: string[];
  let t: Tenant;

  beforeAll(async () => {
    const own = await server.workspace('Files');
    t = { workspaceId: own.workspace.id, mode: 'LIVE' };
    w = await world(t, { at, externalId: 'acme-42' });
    const payout = await w.f.payout({
      partnerId: w.partner.id,
      amount: 1235n,
      currency: 'USD',
      status: 'PAID',
      method: 'bank_transfer',
      externalReference: 'tr_123',
      paidAt: new Date('2026-03-10T13:00:00Z'),
      createdAt: at,
    });
    payoutId = payout.id;
    const [refund] = await w.f.conversions([
      {
        type: 'REFUND',
        programId: w.program.id,
        partnerId: w.partner.id,
        amount: 500_000n,
        currency: 'JPY',
        refundOfId: w.conversions[0]!.id,
        referredExternalId: 'customer-7',
        idempotencyKey: 'refund-7',
        occurredAt: new Date(at.getTime() + 1),
      },
    ]);
    refundId = refund!.id;
    const [clawback] = await w.f.rewards([
      {
        programId: w.program.id,
        partnerId: w.partner.id,
        conversionId: refundId,
        ruleId: w.rule.id,
        amount: -1235n,
        currency: 'USD',
        status: 'APPROVED',
        sourceRewardId: w.rewards[0]!.id,
        createdAt: new Date(at.getTime() + 1),
      },
    ]);
    clawbackId = clawback!.id;
    const entries = await w.f.ledgerEntries([
      {
        partnerId: w.partner.id,
        type: 'REWARD_APPROVED',
        amount: 1235n,
        currency: 'USD',
        rewardId: w.rewards[0]!.id,
        createdAt: at,
      },
      {
        partnerId: w.partner.id,
        type: 'PAYOUT',
        amount: -1235n,
        currency: 'USD',
        payoutId,
        createdAt: new Date(at.getTime() + 1),
      },
      {
        partnerId: w.partner.id,
        type: 'CREDIT',
        amount: 1500n,
        currency: 'JPY',
        note: 'Welcome bonus',
        createdAt: new Date(at.getTime() + 2),
      },
    ]);
    entryIds = entries.map((e) => e.id);
  });

  const liveKey = async () => {
    const key = await createApiKey(prisma(), { ...t, role: 'READ_ONLY', name: 'files' });
    return key.secret;
  };

  it('rewards.csv: one header row, ids as global ids, money as Decimal strings with the currency, times in UTC', async () => {
    const d = await download(`/export/rewards.csv?${period}`, await liveKey());
    expect(d.status).toBe(200);
    expect(d.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(d.headers.get('content-disposition')).toBe(
      'attachment; filename="refgraph-live-rewards-20260310T000000Z-20260311T000000Z.csv"',
    );
    expect(d.headers.get('cache-control')).toBe('no-store');
    const [header] = d.text.split('\r\n');
    expect(header).toBe(
      'id,createdAt,updatedAt,status,kind,recipient,amount,currency,programId,partnerId,partnerExternalId,conversionId,referredExternalId,ruleId,sourceRewardId,payoutId',
    );
    const rows = rowsOf(d.text);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({
      id: gid('Reward', w.rewards[0]!.id),
      createdAt: '2026-03-10T12:34:56.789Z',
      updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      status: 'CREATED',
      kind: 'CASH',
      recipient: 'REFERRER',
      amount: '12.35',
      currency: 'USD',
      programId: gid('Program', w.program.id),
      partnerId: gid('Partner', w.partner.id),
      partnerExternalId: 'acme-42',
      conversionId: gid('Conversion', w.conversions[0]!.id),
      referredExternalId: '',
      ruleId: gid('RewardRule', w.rule.id),
      sourceRewardId: '',
      payoutId: '',
    });
    expect(rows[1]).toMatchObject({
      id: gid('Reward', clawbackId),
      status: 'APPROVED',
      amount: '-12.35',
      sourceRewardId: gid('Reward', w.rewards[0]!.id),
      referredExternalId: 'customer-7',
    });
  });

  it('conversions.csv: by occurredAt; a conversion without an amount has empty money cells', async () => {
    const [signup] = await w.f.conversions([{ type: 'SIGNUP', occurredAt: new Date(at.getTime() + 2) }]);
    const d = await download(`/export/conversions.csv?${period}`, await liveKey());
    expect(d.status).toBe(200);
    expect(d.text.split('\r\n')[0]).toBe(
      'id,occurredAt,createdAt,type,status,discardReason,amount,currency,idempotencyKey,referredExternalId,programId,partnerId,partnerExternalId,referralId,refundOfId',
    );
    const rows = rowsOf(d.text);
    expect(rows.map((r) => r['id'])).toEqual([
      gid('Conversion', w.conversions[0]!.id),
      gid('Conversion', refundId),
      gid('Conversion', signup!.id),
    ]);
    expect(rows[1]).toEqual({
      id: gid('Conversion', refundId),
      occurredAt: '2026-03-10T12:34:56.790Z',
      createdAt: expect.stringMatching(/Z$/),
      type: 'REFUND',
      status: 'ACCEPTED',
      discardReason: '',
      amount: '500000',
      currency: 'JPY',
      idempotencyKey: 'refund-7',
      referredExternalId: 'customer-7',
      programId: gid('Program', w.program.id),
      partnerId: gid('Partner', w.partner.id),
      partnerExternalId: 'acme-42',
      referralId: '',
      refundOfId: gid('Conversion', w.conversions[0]!.id),
    });
    expect(rows[2]).toMatchObject({ type: 'SIGNUP', amount: '', currency: '', programId: '', partnerId: '' });
  });

  it('payouts.csv: status, method, reference and paidAt', async () => {
    const d = await download(`/export/payouts.csv?${period}`, await liveKey());
    expect(d.status).toBe(200);
    expect(d.text).toBe(
      'id,createdAt,updatedAt,status,amount,currency,method,externalReference,paidAt,failureReason,releasedAt,partnerId,partnerExternalId\r\n' +
        `${gid('Payout', payoutId)},2026-03-10T12:34:56.789Z,${rowsOf(d.text)[0]!['updatedAt']},PAID,12.35,USD,bank_transfer,tr_123,2026-03-10T13:00:00.000Z,,,${gid('Partner', w.partner.id)},acme-42\r\n`,
    );
  });

  it('ledger.csv: signed amounts, the reward or payout each entry belongs to, the note', async () => {
    const d = await download(`/export/ledger.csv?${period}`, await liveKey());
    expect(d.status).toBe(200);
    const partnerCells = `${gid('Partner', w.partner.id)},acme-42`;
    expect(d.text).toBe(
      'id,createdAt,type,amount,currency,partnerId,partnerExternalId,rewardId,payoutId,note\r\n' +
        `${gid('LedgerEntry', entryIds[0]!)},2026-03-10T12:34:56.789Z,REWARD_APPROVED,12.35,USD,${partnerCells},${gid('Reward', w.rewards[0]!.id)},,\r\n` +
        `${gid('LedgerEntry', entryIds[1]!)},2026-03-10T12:34:56.790Z,PAYOUT,-12.35,USD,${partnerCells},,${gid('Payout', payoutId)},\r\n` +
        `${gid('LedgerEntry', entryIds[2]!)},2026-03-10T12:34:56.791Z,CREDIT,1500,JPY,${partnerCells},,,Welcome bonus\r\n`,
    );
  });

  it('an empty period is the header row alone', async () => {
    const d = await download('/export/payouts.csv?from=2020-01-01&to=2020-02-01', await liveKey());
    expect(d.status).toBe(200);
    expect(d.text).toBe(
      'id,createdAt,updatedAt,status,amount,currency,method,externalReference,paidAt,failureReason,releasedAt,partnerId,partnerExternalId\r\n',
    );
    expect(d.headers.get('content-disposition')).toBe(
      'attachment; filename="refgraph-live-payouts-20200101T000000Z-20200201T000000Z.csv"',
    );
  });
});

describe('escaping', () => {
  it('quotes commas, quotes and line breaks (RFC 4180), and makes client text that looks like a formula inert', async () => {
    const t: Tenant = { workspaceId: (await server.workspace('Escaping')).workspace.id, mode: 'TEST' };
    const key = (await createApiKey(prisma(), { ...t, role: 'ADMIN', name: 'escaping' })).secret;
    const f = factories(prisma(), t);
    const at = new Date('2026-05-01T00:00:00Z');
    const texts = [
      'plain',
      'comma, inside',
      'say "hi"',
      'two\r\nlines',
      'line\nfeed',
      '=HYPERLINK("http://evil.example","click")',
      '+41 22 000 00 00',
      '-2+3',
      '@SUM(A1:A2)',
      '\tTab',
      'ＳＵＭ＝', // a full-width = further in is harmless
      '＝1+1',
      ' =not at the start',
    ];
    const partner = await f.partner({ externalId: 'escaping' });
    const entries = await f.ledgerEntries(
      texts.map((note, i) => ({
        partnerId: partner.id,
        type: 'CREDIT' as const,
        amount: -500n - BigInt(i),
        currency: 'EUR',
        note,
        createdAt: new Date(at.getTime() + i),
      })),
    );
    const d = await download('/export/ledger.csv?from=2026-05-01&to=2026-05-02', key);
    expect(d.status).toBe(200);
    // Exactly as RFC 4180 writes them.
    expect(d.text).toContain(',"comma, inside"\r\n');
    expect(d.text).toContain(',"say ""hi"""\r\n');
    expect(d.text).toContain(',"two\r\nlines"\r\n');
    expect(d.text).toContain(',"line\nfeed"\r\n');
    expect(d.text).toContain(`,"'=HYPERLINK(""http://evil.example"",""click"")"\r\n`);
    const rows = rowsOf(d.text);
    expect(rows.map((r) => r['id'])).toEqual(entries.map((e) => gid('LedgerEntry', e.id)));
    expect(rows.map((r) => r['note'])).toEqual([
      'plain',
      'comma, inside',
      'say "hi"',
      'two\r\nlines',
      'line\nfeed',
      `'=HYPERLINK("http://evil.example","click")`,
      "'+41 22 000 00 00",
      "'-2+3",
      "'@SUM(A1:A2)",
      "'\tTab",
      'ＳＵＭ＝',
      "'＝1+1",
      ' =not at the start',
    ]);
    // Values refgraph formats itself are never prefixed: a negative amount stays a number.
    expect(rows.map((r) => r['amount'])).toEqual(texts.map((_, i) => `-${(5 + i / 100).toFixed(2)}`));
  });
});

describe('the period and the query string', () => {
  let t: Tenant;
  let key: string;
  let programs: { mine: string; other: string };
  const day = 86_400_000;

  beforeAll(async () => {
    const own = await server.workspace('Periods');
    t = { workspaceId: own.workspace.id, mode: 'TEST' };
    key = own.keys.test.secret;
    const mine = await world(t, { at: new Date('2026-04-01T00:00:00Z') });
    const f = mine.f;
    // At the bounds of [2026-04-01, 2026-04-02) and just outside, in the same program.
    for (const iso of ['2026-03-31T23:59:59.999Z', '2026-04-01T23:59:59.999Z', '2026-04-02T00:00:00Z']) {
      const [c] = await f.conversions([{ programId: mine.program.id, occurredAt: new Date(iso), idempotencyKey: iso }]);
      expect(c).toBeDefined();
    }
    const other = await world(t, { at: new Date('2026-04-01T12:00:00Z') });
    programs = { mine: gid('Program', mine.program.id), other: gid('Program', other.program.id) };
    // For the default period: 10 and 31 days ago.
    await f.conversions([
      { programId: mine.program.id, occurredAt: new Date(Date.now() - 10 * day), idempotencyKey: 'ten-days' },
      { programId: mine.program.id, occurredAt: new Date(Date.now() - 31 * day), idempotencyKey: 'a-month-ago' },
    ]);
  });

  const keys = (d: Download) => rowsOf(d.text).map((r) => r['idempotencyKey']);

  it('includes from and excludes to, so consecutive periods neither overlap nor miss a row', async () => {
    const day1 = await download(
      `/export/conversions.csv?from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z&programId=${programs.mine}`,
      key,
    );
    expect(day1.status).toBe(200);
    expect(keys(day1)).toEqual([expect.stringMatching(/^conversion-/), '2026-04-01T23:59:59.999Z']);
    const day2 = await download(
      `/export/conversions.csv?from=2026-04-02&to=2026-04-03&programId=${programs.mine}`,
      key,
    );
    expect(keys(day2)).toEqual(['2026-04-02T00:00:00Z']);
    // Offsets name the same instants.
    const shifted = await download(
      `/export/conversions.csv?from=2026-04-01T02:00:00%2B02:00&to=2026-04-02T02:00:00%2B02:00&programId=${programs.mine}`,
      key,
    );
    expect(keys(shifted)).toEqual(keys(day1));
  });

  it('filters rewards and conversions by program; without programId, every program', async () => {
    const all = await download('/export/rewards.csv?from=2026-04-01&to=2026-04-02', key);
    expect(rowsOf(all.text).map((r) => r['programId'])).toEqual([programs.mine, programs.other]);
    const other = await download(`/export/rewards.csv?from=2026-04-01&to=2026-04-02&programId=${programs.other}`, key);
    expect(rowsOf(other.text).map((r) => r['programId'])).toEqual([programs.other]);
  });

  it('defaults to the 30 days up to now; to alone ends it, from alone starts it and it runs to now', async () => {
    const d = await download(`/export/conversions.csv?programId=${programs.mine}`, key);
    expect(keys(d)).toEqual(['ten-days']);
    const named =
      /filename="refgraph-test-conversions-(\d{8}T\d{6}(?:\.\d{3})?Z)-(\d{8}T\d{6}(?:\.\d{3})?Z)\.csv"/.exec(
        d.headers.get('content-disposition') ?? '',
      );
    expect(named).not.toBeNull();
    const instant = (s: string) =>
      new Date(
        `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13)}`,
      );
    expect(instant(named![2]!).getTime() - instant(named![1]!).getTime()).toBe(30 * day);
    expect(Math.abs(instant(named![2]!).getTime() - Date.now())).toBeLessThan(60_000);

    const toAlone = await download(`/export/conversions.csv?to=2026-04-02&programId=${programs.mine}`, key);
    expect(keys(toAlone)).toEqual([
      '2026-03-31T23:59:59.999Z',
      expect.stringMatching(/^conversion-/),
      '2026-04-01T23:59:59.999Z',
    ]);
    const fromAlone = await download(
      `/export/conversions.csv?from=${new Date(Date.now() - 40 * day).toISOString()}&programId=${programs.mine}`,
      key,
    );
    expect(keys(fromAlone)).toEqual(['a-month-ago', 'ten-days']);
    // Empty values count as absent (a URL template filled with nothing).
    const empty = await download(`/export/conversions.csv?from=&to=&programId=${programs.mine}`, key);
    expect(keys(empty)).toEqual(['ten-days']);
  });

  it('answers 400 with every problem of the query string, each naming its parameter', async () => {
    const bad = async (query: string, table = 'conversions') => {
      const d = await download(`/export/${table}.csv?${query}`, key);
      expect(d.status, d.text).toBe(400);
      return errorsOf(d);
    };
    expect(await bad('from=2026-04-02&to=2026-04-01')).toEqual([
      {
        code: 'VALIDATION',
        message:
          'The period starts after it ends: from 2026-04-02T00:00:00.000Z is after to 2026-04-01T00:00:00.000Z. Give a from that is not after to.',
        field: ['from'],
      },
    ]);
    expect((await bad(`from=${new Date(Date.now() + day).toISOString()}`))[0]!.message).toContain(
      '(to defaults to now)',
    );
    expect(await bad('from=yesterday&to=2026-02-30')).toEqual([
      {
        code: 'VALIDATION',
        message:
          'Query parameter "from": DateTime must be an ISO 8601 date and time, e.g. "2026-01-31T12:00:00Z", "2026-01-31T14:00:00.250+02:00" or "2026-01-31"; got "yesterday".',
        field: ['from'],
      },
      {
        code: 'VALIDATION',
        message: 'Query parameter "to": DateTime "2026-02-30" is not a date: February 2026 has 28 days.',
        field: ['to'],
      },
    ]);
    expect((await bad('from=2026-04-01T10:00:00'))[0]!.message).toContain('has no time zone');
    expect(await bad('form=2026-04-01&to=2026-04-02&to=2026-04-03')).toEqual([
      {
        code: 'VALIDATION',
        message: 'Unknown query parameter "form": an export takes only from, to and programId.',
        field: ['form'],
      },
      { code: 'VALIDATION', message: 'Query parameter "to" is given more than once: give it once.', field: ['to'] },
    ]);
    expect(await bad(`programId=${gid('Partner', uuidv7())}`)).toEqual([
      {
        code: 'VALIDATION',
        message: expect.stringMatching(
          /^Query parameter "programId" must be the id of a Program as the API returns it/,
        ),
        field: ['programId'],
      },
    ]);
    expect((await bad('programId=not-an-id'))[0]!.field).toEqual(['programId']);
    expect(await bad(`programId=${programs.mine}`, 'payouts')).toEqual([
      {
        code: 'VALIDATION',
        message:
          'payouts.csv cannot be filtered by program: a payout pays a partner’s balance across programs. Leave programId out (filter by program in rewards.csv and conversions.csv).',
        field: ['programId'],
      },
    ]);
    expect((await bad(`programId=${programs.mine}`, 'ledger'))[0]!.message).toMatch(/^ledger\.csv cannot be filtered/);
  });
});

describe('isolation', () => {
  it('exports only the credential’s workspace and mode; a program of another one is 404', async () => {
    const a = await server.workspace('Iso A');
    const b = await server.workspace('Iso B');
    const at = new Date('2026-06-01T10:00:00Z');
    const period = 'from=2026-06-01&to=2026-06-02';
    const aTest = await world({ workspaceId: a.workspace.id, mode: 'TEST' }, { at, externalId: 'a-test' });
    const aLive = await world({ workspaceId: a.workspace.id, mode: 'LIVE' }, { at, externalId: 'a-live' });
    const bTest = await world({ workspaceId: b.workspace.id, mode: 'TEST' }, { at, externalId: 'b-test' });
    for (const [w, mode] of [
      [aTest, 'TEST'],
      [aLive, 'LIVE'],
      [bTest, 'TEST'],
    ] as const) {
      const t = { workspaceId: w.program.workspaceId, mode };
      await w.f.payout({ partnerId: w.partner.id, amount: 100n, currency: 'USD', createdAt: at });
      await w.f.ledgerEntries([
        { partnerId: w.partner.id, type: 'CREDIT', amount: 100n, currency: 'USD', createdAt: at },
      ]);
      expect(t.workspaceId).toBeDefined();
    }
    const partnersIn = async (token: string) => {
      const seen: Record<string, string[]> = {};
      for (const table of ['rewards', 'conversions', 'payouts', 'ledger']) {
        const d = await download(`/export/${table}.csv?${period}`, token);
        expect(d.status).toBe(200);
        seen[table] = rowsOf(d.text).map((r) => r['partnerExternalId']!);
      }
      return seen;
    };
    const only = (externalId: string) => ({
      rewards: [externalId],
      conversions: [externalId],
      payouts: [externalId],
      ledger: [externalId],
    });
    expect(await partnersIn(a.keys.test.secret)).toEqual(only('a-test'));
    expect(await partnersIn(a.keys.live.secret)).toEqual(only('a-live'));
    expect(await partnersIn(b.keys.test.secret)).toEqual(only('b-test'));

    // Another workspace's program, and the same workspace's program of the other mode: like a missing one.
    for (const [token, program] of [
      [a.keys.test.secret, bTest.program.id],
      [a.keys.live.secret, aTest.program.id],
      [a.keys.test.secret, uuidv7()],
    ] as const) {
      const d = await download(`/export/rewards.csv?${period}&programId=${gid('Program', program)}`, token);
      expect(d.status).toBe(404);
      expect(errorsOf(d)).toEqual([
        {
          code: 'NOT_FOUND',
          message: expect.stringMatching(/^No program with id .+ in this workspace and mode \((TEST|LIVE)\)\./),
          field: ['programId'],
        },
      ]);
    }
  });
});

// ---- Streaming -------------------------------------------------------------------------------

const BIG = 100_000;
let big: { token: string; tenant: Tenant; from: string; to: string } | null = null;

/**
 * 100 000 conversions of one program and partner, ten per millisecond (so pages end between rows
 * of the same instant), made by the database in one statement.
 */
async function bigExport() {
  if (big) return big;
  const own = await server.workspace('Big');
  const t: Tenant = { workspaceId: own.workspace.id, mode: 'TEST' };
  const f = factories(prisma(), t);
  const program = await f.program();
  const partner = await f.partner({ externalId: 'big-partner' });
  const start = '2026-01-01T00:00:00.000Z';
  // One statement: the reporting rollups' statement trigger appends its grouped deltas in the same
  // statement (src/modules/reporting/README.md, "Known cost of bulk writes").
  await server.testDb.db.sql`
    INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "referredExternalId",
                              "amount", "currency", "occurredAt", "programId", "partnerId")
    SELECT gen_random_uuid(), ${t.workspaceId}::uuid, 'TEST', 'PURCHASE', 'ACCEPTED', 'big-' || i, 'customer-' || i,
           1000 + i % 5000, 'EUR', ${start}::timestamptz + (i / 10) * interval '1 millisecond', ${program.id}::uuid, ${partner.id}::uuid
      FROM generate_series(0, ${BIG}::int - 1) AS i`;
  big = { token: own.keys.test.secret, tenant: t, from: start, to: '2026-01-02T00:00:00Z' };
  return big;
}

/** GET an export with node:http, handing each chunk to `onChunk` (which may pause the response). */
function stream(
  path: string,
  token: string,
  onChunk: (chunk: Buffer, res: http.IncomingMessage, req: http.ClientRequest) => void,
): Promise<{ status: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.on('data', (chunk: Buffer) => onChunk(chunk, res, req));
      res.on('end', () => resolve({ status: res.statusCode!, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode!, complete: false }));
      res.on('close', () => resolve({ status: res.statusCode!, complete: res.complete }));
    });
    req.on('error', reject);
  });
}

/** The server's heap and buffers after a full collection (the server runs in this process). */
function memory(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('streaming', () => {
  it('sends 100 000 rows in order, each once, in constant memory', { timeout: 300_000 }, async () => {
    const b = await bigExport();
    const path = `/export/conversions.csv?from=${b.from}&to=${b.to}`;
    // A first, shorter export warms up what is allocated once (the driver's buffers, compiled code).
    await stream(`/export/conversions.csv?from=${b.from}&to=2026-01-01T00:00:01Z`, b.token, () => {});

    const baseline = memory();
    let bytes = 0;
    let rows = -1; // the header
    let tail = '';
    let previous = '';
    let ordered = true;
    let nextSample = 1 << 20;
    let peak = 0;
    const started = performance.now();
    const result = await stream(path, b.token, (chunk) => {
      bytes += chunk.length;
      // Records end with CRLF and none of these cells is quoted: split on it, keep the partial line.
      const lines = (tail + chunk.toString('utf8')).split('\r\n');
      tail = lines.pop()!;
      for (const line of lines) {
        rows++;
        if (rows === 0) continue;
        // (occurredAt, id) strictly increasing: no row twice, none out of order.
        const comma = line.indexOf(',');
        const id = Buffer.from(line.slice(0, comma), 'base64').toString().slice('Conversion:'.length);
        const key = `${line.slice(comma + 1, comma + 25)} ${id}`;
        if (key <= previous) ordered = false;
        previous = key;
      }
      if (bytes >= nextSample) {
        nextSample += 2 << 20;
        peak = Math.max(peak, memory() - baseline);
      }
    });
    const seconds = (performance.now() - started) / 1000;
    expect(result).toEqual({ status: 200, complete: true });
    expect(tail).toBe('');
    expect(rows).toBe(BIG);
    expect(ordered).toBe(true);
    // A server that built the file (or its rows) in memory would hold at least `bytes` (30 MB)
    // more. Measured on a busy machine: 1.3–7.3 MB (a page in flight, the streams' and sockets'
    // buffers; the buffers alone swing by ±6 MB between samples on PGlite, whose results arrive
    // as buffers too), so the bound is 12 MB: noise room, and still far from the 30 MB.
    expect(bytes).toBeGreaterThan(30_000_000);
    const bound = Math.min(12 * 1024 * 1024, bytes / 2.5);
    expect(peak, `peak ${peak} bytes over ${bytes} bytes sent in ${seconds.toFixed(1)} s`).toBeLessThan(bound);
  });

  it('stops reading the database when the client goes away, and holds nothing meanwhile', {
    timeout: 60_000,
  }, async () => {
    const b = await bigExport();
    const path = `/export/conversions.csv?from=${b.from}&to=${b.to}`;
    const { db } = server.testDb;
    const statementsBefore = db.statements.count;
    const totalsBefore = server.app.exports.totals();
    let received = 0;
    let paused!: () => void;
    const pausedOnce = new Promise<void>((resolve) => {
      paused = resolve;
    });
    let destroy!: () => void;
    const done = stream(path, b.token, (chunk, res, req) => {
      received += chunk.length;
      if (received > 1 << 20 && !res.isPaused()) {
        // Stop reading after a megabyte: the socket's buffers fill and the server waits.
        res.pause();
        destroy = () => req.destroy();
        paused();
      }
    });
    await pausedOnce;
    expect(server.app.exports.active).toBe(1);
    // While a download waits on its client, the database serves everyone else (PGlite has one connection).
    const other = await server.gql<{ viewer: { role: string } }>('{ viewer { role } }', {}, b.token);
    expect(other.data?.viewer.role).toBe('ADMIN');
    if (db.kind === 'postgres') {
      // No transaction or cursor is left open between pages: no connection sits idle inside one.
      // (Not "any backend with a snapshot": the server's own background work — the event poller, a
      // key's lastUsedAt — may be mid-statement at this instant; that failed CI once.)
      const open = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND state IN ('idle in transaction', 'idle in transaction (aborted)')`,
      );
      expect(open[0]!.n).toBe(0);
    }

    destroy();
    expect((await done).complete).toBe(false);
    await server.app.exports.whenIdle();
    const statements = db.statements.count - statementsBefore;
    // One statement per page of 1000: what the socket buffers held when the client stopped reading
    // (a few MB, ~300 kB a page), not the 101 of a stream read to the end.
    expect(statements).toBeGreaterThan(0);
    expect(statements).toBeLessThan(101);
    const aborted = (totals: ReturnType<typeof server.app.exports.totals>) =>
      totals.find((x) => x.table === 'conversions' && x.outcome === 'aborted')?.count ?? 0;
    expect(aborted(server.app.exports.totals()) - aborted(totalsBefore)).toBe(1);
    // And nothing more is sent afterwards.
    const after = db.statements.count;
    await server.gql('{ viewer { role } }', {}, b.token);
    expect(db.statements.count - after).toBeLessThanOrEqual(2);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/refgraph_exports_total\{table="conversions",outcome="aborted"\} [1-9]/);
    expect(metrics).toMatch(/refgraph_exports_active 0/);
  });
});
