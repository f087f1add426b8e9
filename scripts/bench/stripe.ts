// Stripe webhook deliveries under load, against direct recordConversion calls, through the same
// server process (its own), on the same throw-away database, at the same concurrency, in the same
// run — rounds alternate (direct, Stripe, direct, Stripe …) so that both see the same machine:
//   - direct: the recordConversion mutation over HTTP: a PURCHASE of a new person with a code;
//   - Stripe: POST /integrations/stripe/{id} of a signed checkout.session.completed (payment mode,
//     `metadata.ref` = the code) for a new customer: signature verified with the `stripe` package,
//     the event claimed in the integration's log, recordConversion, the log finished with the
//     payment's links, the integration's sweep;
//   - Stripe replay: the same event delivered again (answered from the log).
// The ratio Stripe / direct is the price of the integration per conversion.
//
//   npm run bench -- --suite stripe --concurrency 20
//
// Also runs alone: `npx tsx scripts/bench/stripe.ts` (BENCH_CONCURRENCY, BENCH_DURATION, BENCH_QUICK=1).
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { openDatabase } from '../../src/db.js';
import { SecretBox } from '../../src/lib/secret-box.js';
import { uuidv7 } from '../../src/lib/uuid.js';
import { connectStripe } from '../../src/modules/integration/stripe.service.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import {
  createThrowawayDatabase,
  httpClient,
  type LoadResult,
  runAlone,
  runLoad,
  startServerProcess,
  withClient,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
} from './harness.js';

const SUITE = 'stripe';
const ROUNDS = 2;

const RECORD = `mutation Bench($input: RecordConversionInput!) {
  recordConversion(input: $input) { conversion { id status } rewards { id } replayed userErrors { code message } }
}`;

interface Fixture {
  programGlobalId: string;
  code: string;
  apiSecret: string;
  integrationId: string;
  signingSecret: string;
}

async function createFixture(url: string, installationSecret: string): Promise<Fixture> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2, migrate: false });
  try {
    const { encodeGlobalID } = await import('@pothos/plugin-relay');
    const prisma = db.prisma;
    const ws = await createWorkspace(prisma, 'Benchmark');
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const program = await prisma.program.create({
      data: { ...tenant, name: 'Bench program', type: 'AFFILIATE', currency: 'USD' },
    });
    for (const data of [
      { amountType: 'FIXED' as const, fixedAmount: 1000n, fixedCurrency: 'USD' },
      { amountType: 'PERCENTAGE' as const, percentageBasisPoints: 1000 },
    ]) {
      const id = uuidv7();
      await prisma.rewardRule.create({
        data: { ...tenant, id, lineageId: id, programId: program.id, trigger: 'PURCHASE', kind: 'CASH', ...data },
      });
    }
    const partner = await prisma.partner.create({ data: { ...tenant, externalId: 'bench-partner' } });
    const enrollment = await prisma.enrollment.create({
      data: { ...tenant, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
    });
    const code = `bench${randomBytes(4).toString('hex')}`;
    await prisma.referralLink.create({
      data: {
        ...tenant,
        enrollmentId: enrollment.id,
        programId: program.id,
        partnerId: partner.id,
        code,
        codeNormalized: code,
      },
    });
    const signingSecret = `whsec_${randomBytes(24).toString('base64url')}`;
    // The server seals with the same installation secret (REFGRAPH_SECRET) and purpose.
    const box = new SecretBox(installationSecret, 'payment-provider-signing-secrets');
    const integration = await connectStripe(prisma, tenant, { programId: program.id, signingSecret }, box);
    return {
      programGlobalId: encodeGlobalID('Program', program.id),
      code,
      apiSecret: ws.keys.test.secret,
      integrationId: integration.id,
      signingSecret,
    };
  } finally {
    await db.close();
  }
}

/** A checkout.session.completed (payment mode, 49.99 USD) of a new customer, as Stripe sends it (trimmed). */
function checkoutEvent(i: string, code: string): string {
  const now = Math.floor(Date.now() / 1000);
  return JSON.stringify({
    id: `evt_bench_${i}`,
    object: 'event',
    api_version: '2026-11-18.endive',
    created: now,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'checkout.session.completed',
    data: {
      object: {
        id: `cs_test_bench_${i}`,
        object: 'checkout.session',
        amount_subtotal: 4999,
        amount_total: 4999,
        client_reference_id: null,
        created: now,
        currency: 'usd',
        customer: `cus_bench_${i}`,
        customer_creation: 'always',
        customer_details: { email: `buyer-${i}@example.com`, name: 'Bench Buyer', tax_exempt: 'none', tax_ids: [] },
        customer_email: null,
        discounts: [],
        invoice: null,
        livemode: false,
        metadata: { ref: code },
        mode: 'payment',
        payment_intent: `pi_bench_${i}`,
        payment_status: 'paid',
        status: 'complete',
        subscription: null,
        total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      },
    },
  });
}

export const stripeSuite: BenchSuite = {
  name: SUITE,
  description:
    'Stripe webhook deliveries (signed checkout.session.completed → a PURCHASE) vs direct recordConversion calls, same server and run',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`${SUITE}: throw-away database ${database.name}`);
    const installationSecret = randomBytes(32).toString('base64url');
    const results: BenchResult[] = [];
    const run = randomBytes(3).toString('hex');
    let n = 0;
    try {
      const fx = await createFixture(database.url, installationSecret);
      const server = await startServerProcess({
        DATABASE_URL: database.url,
        REFGRAPH_SECRET: installationSecret,
        APPROVAL_JOB_INTERVAL_MS: '0',
      });
      const client = httpClient(server.url, options.concurrency);
      const direct = async () => {
        const i = n++;
        const input = {
          type: 'PURCHASE',
          idempotencyKey: `order-${run}-${i}`,
          referredExternalId: `buyer-${run}-${i}`,
          referredEmail: `buyer-${run}-${i}@example.com`,
          code: fx.code,
          programId: fx.programGlobalId,
          amount: { amount: '49.99', currency: 'USD' },
        };
        const res = await client.request('POST', '/graphql', JSON.stringify({ query: RECORD, variables: { input } }), {
          authorization: `Bearer ${fx.apiSecret}`,
        });
        const payload = res.status === 200 ? JSON.parse(res.body).data?.recordConversion : null;
        return payload?.conversion?.status === 'ACCEPTED' && payload.rewards.length === 2;
      };
      const delivered: string[] = [];
      const deliver = async (payload: string) => {
        const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: fx.signingSecret });
        const res = await client.request('POST', `/integrations/stripe/${fx.integrationId}`, payload, {
          'content-type': 'application/json',
          'stripe-signature': header,
        });
        return res.status === 200 && JSON.parse(res.body).outcome === 'RECORDED';
      };
      const viaStripe = async () => {
        const payload = checkoutEvent(`${run}_${n++}`, fx.code);
        const ok = await deliver(payload);
        if (ok && delivered.length < 1000) delivered.push(payload);
        return ok;
      };
      const measure = async (op: () => Promise<boolean>) => {
        const cpu0 = server.cpuMs();
        const n0 = n;
        const result = await runLoad(op, {
          concurrency: options.concurrency,
          durationMs: options.durationMs / ROUNDS,
          warmupMs: options.warmupMs,
        });
        return { result, cpuMs: server.cpuMs() - cpu0, started: n - n0 };
      };
      try {
        type Sum = {
          ops: number;
          errors: number;
          seconds: number;
          cpuMs: number;
          started: number;
          p50: number[];
          p99: number[];
          firstError?: string;
        };
        const empty = (): Sum => ({ ops: 0, errors: 0, seconds: 0, cpuMs: 0, started: 0, p50: [], p99: [] });
        const sums = { direct: empty(), stripe: empty() };
        const add = (sum: Sum, m: { result: LoadResult; cpuMs: number; started: number }) => {
          sum.ops += m.result.ops;
          sum.errors += m.result.errors;
          sum.seconds += m.result.durationS;
          sum.cpuMs += m.cpuMs;
          sum.started += m.started;
          sum.p50.push(m.result.p50Ms);
          sum.p99.push(m.result.p99Ms);
          sum.firstError ??= m.result.firstError;
        };
        for (let round = 1; round <= ROUNDS; round++) {
          log(`${SUITE}: round ${round}/${ROUNDS}: direct recordConversion…`);
          add(sums.direct, await measure(direct));
          log(`${SUITE}: round ${round}/${ROUNDS}: Stripe deliveries…`);
          add(sums.stripe, await measure(viaStripe));
        }
        log(`${SUITE}: Stripe redeliveries of recorded events…`);
        let r = 0;
        const replay = await measure(async () => {
          n++;
          return deliver(delivered[r++ % delivered.length]!);
        });

        const rate = (s: Sum) => s.ops / s.seconds;
        const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
        const row = (scenario: string, unit: string, s: Sum, notes: string): BenchResult => {
          if (s.errors > 0) log(`  ${scenario}: ${s.errors} errors, first: ${s.firstError}`);
          return {
            suite: SUITE,
            scenario,
            unit,
            ops: s.ops,
            errors: s.errors,
            durationS: s.seconds,
            opsPerSec: rate(s),
            p50Ms: median(s.p50),
            p99Ms: median(s.p99),
            concurrency: options.concurrency,
            vsBaseline: rate(s) / rate(sums.direct),
            notes,
          };
        };
        const cpu = (s: Sum) => `server CPU ${(s.cpuMs / s.started).toFixed(2)} ms per operation (warm-ups included)`;
        results.push(
          row('recordConversion (direct, GraphQL)', 'conversion', sums.direct, `baseline; ${cpu(sums.direct)}`),
        );
        results.push(
          row(
            'Stripe delivery → PURCHASE',
            'delivery',
            sums.stripe,
            `${(rate(sums.stripe) / rate(sums.direct)).toFixed(2)}× direct recordConversion; ${cpu(sums.stripe)}`,
          ),
        );
        const replaySum = empty();
        add(replaySum, replay);
        results.push(row('Stripe redelivery (answered from the log)', 'delivery', replaySum, cpu(replaySum)));
      } finally {
        client.close();
        await server.stop();
      }
      await withClient(database.url, async (c) => {
        const counts = (
          await c.query<{ conversions: string; deliveries: string; logged: string }>(
            `SELECT (SELECT count(*) FROM "Conversion") AS conversions,
                    (SELECT count(*) FROM "Conversion" WHERE "idempotencyKey" LIKE 'stripe:%') AS deliveries,
                    (SELECT count(*) FROM "StripeEventLog") AS logged`,
          )
        ).rows[0]!;
        log(
          `${SUITE}: stored ${counts.conversions} conversions, ${counts.deliveries} of them from Stripe, ${counts.logged} logged Stripe events (warm-ups included)`,
        );
      });
    } finally {
      await database.drop();
    }
    return results;
  },
};

if (process.argv[1]?.endsWith('stripe.ts')) runAlone(stripeSuite, { concurrency: 20 });
