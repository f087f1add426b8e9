import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Database } from '../../src/db.js';
import type { Prisma, PrismaClient } from '../../src/generated/prisma/client.js';
import type { Mode } from '../../src/generated/prisma/enums.js';
import { currentRequest, withRequestId } from '../../src/lib/request-context.js';
import { formatUuid, UuidV7Generator } from '../../src/lib/uuid.js';

const ids = new UuidV7Generator();

// Test data written straight to the database (Prisma, or one multi-row INSERT for volume), for
// tests that need rows the API under test does not create itself. Every id is a time-ordered
// UUIDv7 made here, strictly increasing within the process, so "newest first" orders are
// predictable and bulk inserts need no read-back.

export interface Tenant {
  workspaceId: string;
  mode: Mode;
}

/** Time-ordered ids for test rows; `at` backdates them (never before the previous one). */
export function uuidv7(at: number = Date.now()): string {
  return formatUuid(ids.next(at).bytes);
}

/** The opaque global id of a row, as the API shows it. */
export const gid = (typename: string, id: string): string => encodeGlobalID(typename, id);

/**
 * Run `fn` and count the SQL statements it sent (every statement Prisma or raw SQL runs,
 * BEGIN/COMMIT included) — its own only: it runs as a request of its own, so background work
 * running meanwhile (the outbox poll, a lastUsedAt touch) is not counted, as in X-SQL-Statements.
 * `db` is the database the statements go to (kept in the signature for readability at call sites).
 */
export async function countStatements<T>(
  _db: Database,
  fn: () => Promise<T>,
): Promise<{ result: T; statements: number }> {
  return withRequestId(`count-${unique()}`, async () => {
    const result = await fn();
    return { result, statements: currentRequest()!.statements };
  });
}

const unique = () => uuidv7().slice(-12);

const ENUM_COLUMNS: Record<string, Record<string, string>> = {
  status: {
    Partner: 'PartnerStatus',
    Enrollment: 'EnrollmentStatus',
    Referral: 'ReferralStatus',
    Conversion: 'ConversionStatus',
    Reward: 'RewardStatus',
    Payout: 'PayoutStatus',
  },
  type: { Conversion: 'ConversionType', LedgerEntry: 'LedgerEntryType', Program: 'ProgramType' },
  mode: { '*': 'Mode' },
  recipient: { '*': 'RewardRecipient' },
  kind: { '*': 'RewardKind' },
};
const TIME_COLUMNS = new Set([
  'occurredAt',
  'createdAt',
  'updatedAt',
  'convertedAt',
  'approveAfter',
  'disabledAt',
  'paidAt',
  'archivedAt',
  'supersededAt',
]);
const BOOLEAN_COLUMNS = new Set(['discarded', 'isDefault', 'isUnique']);
const TEXT_ID_COLUMNS = new Set(['externalId', 'referredExternalId']);

function columnType(table: string, column: string): string {
  const enumType = ENUM_COLUMNS[column]?.[table] ?? ENUM_COLUMNS[column]?.['*'];
  if (enumType) return `"${enumType}"`;
  if (TIME_COLUMNS.has(column)) return 'timestamptz';
  if (BOOLEAN_COLUMNS.has(column)) return 'boolean';
  if (column === 'amount') return 'bigint';
  if ((column === 'id' || column.endsWith('Id')) && !TEXT_ID_COLUMNS.has(column)) return 'uuid';
  return 'text';
}

/**
 * Insert many rows of one table in a single statement (`INSERT … SELECT * FROM unnest(…)`),
 * the same on PostgreSQL and PGlite. Every row must have the same keys (the first row's);
 * columns left out take their database defaults, so `updatedAt` must be given.
 */
export async function bulkInsert(
  prisma: PrismaClient,
  table: string,
  rows: ReadonlyArray<Record<string, unknown>>,
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const arrays = columns.map((column) =>
    rows.map((row) => {
      const value = row[column];
      if (value === undefined || value === null) return null;
      if (value instanceof Date) return value.toISOString();
      return typeof value === 'bigint' ? value.toString() : value;
    }),
  );
  const sql = `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')})
    SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${columnType(table, c)}[]`).join(', ')})`;
  await prisma.$executeRawUnsafe(sql, ...arrays);
}

type Row<T> = Omit<T, 'workspaceId' | 'mode' | 'workspace'>;

/** Row factories bound to one tenant. Each returns what it inserted (ids included). */
export function factories(prisma: PrismaClient, tenant: Tenant) {
  const t = tenant;
  return {
    tenant,

    program: (data: Partial<Row<Prisma.ProgramUncheckedCreateInput>> = {}) =>
      prisma.program.create({
        data: { id: uuidv7(), name: `Program ${unique()}`, type: 'REFERRAL', currency: 'USD', ...data, ...t },
      }),

    /** A first-version FIXED rule (lineageId = id) unless told otherwise. */
    rule: (programId: string, data: Partial<Row<Prisma.RewardRuleUncheckedCreateInput>> = {}) => {
      const id = data.id ?? uuidv7();
      return prisma.rewardRule.create({
        data: {
          id,
          lineageId: id,
          programId,
          trigger: 'PURCHASE',
          recipient: 'REFERRER',
          kind: 'CASH',
          amountType: 'FIXED',
          fixedAmount: 1000n,
          fixedCurrency: 'USD',
          ...data,
          ...t,
        },
      });
    },

    partner: (data: Partial<Row<Prisma.PartnerUncheckedCreateInput>> = {}) =>
      prisma.partner.create({ data: { id: uuidv7(), externalId: `partner-${unique()}`, ...data, ...t } }),

    enrollment: (
      data: { programId: string; partnerId: string } & Partial<Row<Prisma.EnrollmentUncheckedCreateInput>>,
    ) => prisma.enrollment.create({ data: { id: uuidv7(), status: 'APPROVED', ...data, ...t } }),

    /** A link of an enrollment (program and partner taken from it). */
    link: (
      enrollment: { id: string; programId: string; partnerId: string },
      data: Partial<Row<Prisma.ReferralLinkUncheckedCreateInput>> = {},
    ) => {
      const code = data.code ?? `code-${unique()}`;
      return prisma.referralLink.create({
        data: {
          id: uuidv7(),
          enrollmentId: enrollment.id,
          programId: enrollment.programId,
          partnerId: enrollment.partnerId,
          code,
          codeNormalized: code.toLowerCase(),
          ...data,
          ...t,
        },
      });
    },

    /** `count` clicks through a link, all alike. */
    clicks: async (
      link: { id: string; programId: string; partnerId: string },
      count: number,
      data: Partial<Row<Prisma.ClickCreateManyInput>> = {},
    ) => {
      const rows = Array.from({ length: count }, () => ({
        id: uuidv7(),
        linkId: link.id,
        programId: link.programId,
        partnerId: link.partnerId,
        occurredAt: new Date(),
        ...data,
        ...t,
      }));
      await bulkInsert(prisma, 'Click', rows);
      return rows;
    },

    referrals: async (
      rows: Array<{ programId: string; partnerId: string } & Partial<Row<Prisma.ReferralCreateManyInput>>>,
    ) => {
      const data = rows.map((r) => ({ id: uuidv7(), externalId: `referred-${unique()}`, ...r, ...t }));
      await prisma.referral.createMany({ data });
      return data;
    },

    /** ACCEPTED conversions unless told otherwise; DISCARDED ones get a discardReason. */
    conversions: async (rows: Array<Partial<Row<Prisma.ConversionCreateManyInput>>>) => {
      const data = rows.map((c) => ({
        id: uuidv7(),
        type: 'PURCHASE' as const,
        status: 'ACCEPTED' as const,
        idempotencyKey: `conversion-${unique()}`,
        occurredAt: new Date(),
        ...c,
        ...(c.status === 'DISCARDED' && !c.discardReason ? { discardReason: 'TEST' } : {}),
        ...t,
      }));
      await prisma.conversion.createMany({ data });
      return data;
    },

    /**
     * Rewards; `ruleLineageId` defaults to the rule id (a first version), `approveAfter` to a year
     * from now so that the approval job leaves CREATED rewards alone unless a test says otherwise.
     */
    rewards: async (
      rows: Array<
        {
          programId: string;
          partnerId: string;
          conversionId: string;
          ruleId: string;
          amount: bigint;
          currency: string;
        } & Partial<Row<Prisma.RewardCreateManyInput>>
      >,
    ) => {
      const data = rows.map((w) => ({
        id: uuidv7(),
        ruleLineageId: w.ruleId,
        recipient: 'REFERRER' as const,
        kind: 'CASH' as const,
        status: 'CREATED' as const,
        approveAfter: new Date(Date.now() + 365 * 86_400_000),
        ...w,
        ...t,
      }));
      await prisma.reward.createMany({ data });
      return data;
    },

    ledgerEntries: async (
      rows: Array<
        {
          partnerId: string;
          type: Prisma.LedgerEntryCreateManyInput['type'];
          amount: bigint;
          currency: string;
        } & Partial<Row<Prisma.LedgerEntryCreateManyInput>>
      >,
    ) => {
      const data = rows.map((l) => ({ id: uuidv7(), ...l, ...t }));
      await prisma.ledgerEntry.createMany({ data });
      return data;
    },

    payout: (
      data: { partnerId: string; amount: bigint; currency: string } & Partial<Row<Prisma.PayoutUncheckedCreateInput>>,
    ) => prisma.payout.create({ data: { id: uuidv7(), ...data, ...t } }),
  };
}

export type Factories = ReturnType<typeof factories>;

export interface NetworkOptions {
  partners: number;
  /** Per partner (default 3, one of them discarded on top). */
  clicks?: number;
  /** Per partner (default 2: one PENDING, one CONVERTED with a purchase and a reward). */
  referrals?: number;
}

/**
 * A program with `partners` enrolled partners, each with a link, clicks, referrals, a purchase,
 * a reward and a manual credit — every table the dashboards read — in ten statements whatever the
 * size (100 partners: well under a second on PostgreSQL; PGlite is slower the first time only).
 */
export async function seedNetwork(prisma: PrismaClient, tenant: Tenant, options: NetworkOptions) {
  const f = factories(prisma, tenant);
  const program = await f.program({ name: `Network ${unique()}` });
  const rule = await f.rule(program.id, { fixedAmount: 500n });
  const clicks = options.clicks ?? 3;
  const referralsPerPartner = Math.max(options.referrals ?? 2, 1);
  const t = tenant;

  const now = new Date();
  const partners = Array.from({ length: options.partners }, (_, i) => ({
    id: uuidv7(),
    externalId: `net-${unique()}-${i}`,
    name: `Partner ${i}`,
    updatedAt: now,
    ...t,
  }));
  const enrollments = partners.map((p) => ({
    id: uuidv7(),
    programId: program.id,
    partnerId: p.id,
    status: 'APPROVED' as const,
    updatedAt: now,
    ...t,
  }));
  const links = enrollments.map((e) => {
    const code = `net-${unique()}`;
    return {
      id: uuidv7(),
      enrollmentId: e.id,
      programId: program.id,
      partnerId: e.partnerId,
      code,
      codeNormalized: code,
      isDefault: true,
      ...t,
    };
  });
  const clickRows = links.flatMap((l) =>
    Array.from({ length: clicks + 1 }, (_, i) => ({
      id: uuidv7(),
      linkId: l.id,
      programId: program.id,
      partnerId: l.partnerId,
      occurredAt: new Date(),
      discarded: i === clicks,
      ...t,
    })),
  );
  const referrals = links.flatMap((l) =>
    Array.from({ length: referralsPerPartner }, (_, i) => ({
      id: uuidv7(),
      programId: program.id,
      partnerId: l.partnerId,
      linkId: l.id,
      externalId: `net-ref-${unique()}`,
      status: i === 0 ? ('CONVERTED' as const) : ('PENDING' as const),
      convertedAt: i === 0 ? new Date() : null,
      ...t,
    })),
  );
  const converted = referrals.filter((r) => r.status === 'CONVERTED');
  const conversions = converted.map((r) => ({
    id: uuidv7(),
    type: 'PURCHASE' as const,
    status: 'ACCEPTED' as const,
    idempotencyKey: `net-${unique()}`,
    amount: 5000n,
    currency: 'USD',
    occurredAt: new Date(),
    programId: program.id,
    partnerId: r.partnerId,
    referralId: r.id,
    linkId: r.linkId,
    ...t,
  }));
  const rewards = conversions.map((c) => ({
    id: uuidv7(),
    programId: program.id,
    partnerId: c.partnerId,
    conversionId: c.id,
    referralId: c.referralId,
    ruleId: rule.id,
    ruleLineageId: rule.lineageId,
    recipient: 'REFERRER' as const,
    kind: 'CASH' as const,
    status: 'APPROVED' as const,
    amount: 500n,
    currency: 'USD',
    approveAfter: new Date(Date.now() + 365 * 86_400_000),
    updatedAt: now,
    ...t,
  }));
  const credits = [
    // The approved rewards' money (the ledger is what `available` sums), then a credit each.
    ...rewards.map((w) => ({
      id: uuidv7(),
      partnerId: w.partnerId,
      type: 'REWARD_APPROVED' as const,
      amount: w.amount,
      currency: w.currency,
      rewardId: w.id,
      ...t,
    })),
    ...partners.map((p) => ({
      id: uuidv7(),
      partnerId: p.id,
      type: 'CREDIT' as const,
      amount: 100n,
      currency: 'EUR',
      ...t,
    })),
  ];

  // Raw multi-row inserts: Prisma's createMany costs about a millisecond per row.
  await bulkInsert(prisma, 'Partner', partners);
  await bulkInsert(prisma, 'Enrollment', enrollments);
  await bulkInsert(prisma, 'ReferralLink', links);
  await bulkInsert(prisma, 'Click', clickRows);
  await bulkInsert(prisma, 'Referral', referrals);
  await bulkInsert(prisma, 'Conversion', conversions);
  await bulkInsert(prisma, 'Reward', rewards);
  await bulkInsert(prisma, 'LedgerEntry', credits);
  return {
    program,
    rule,
    partners,
    enrollments,
    links,
    clicks: clickRows,
    referrals,
    conversions,
    rewards,
    ledgerEntries: credits,
  };
}
