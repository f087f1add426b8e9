import type { Partner, Prisma, PrismaClient } from '../../generated/prisma/client.js';
import type { Tenant } from '../../domain/tenant.js';
import { globalId } from '../../lib/global-id.js';
import { formatMinor } from '../../lib/money.js';
import { prismaSql } from '../../lib/sql.js';
import { partnerBalances, partnerCreditBalances, type Balance } from '../ledger/balance.service.js';

// exportPartner: everything refgraph holds about one partner, as one JSON document (README.md,
// "Erasure and export"). Read in one REPEATABLE READ transaction, so the lists and the balances
// are one instant's and add up; one statement per list, whatever the number of rows.

/** The most items a list of the export holds; past it the list says `truncated: true`. */
export const EXPORT_LIST_MAX = 10_000;

/** The version of the document's shape (`version`), raised when a field changes meaning or goes. */
export const EXPORT_VERSION = 1;

/** How `exportPartner` finds the partner: by row id or by the company's externalId (exactly one). */
export type PartnerLookup = { id: string } | { externalId: string };

/** A list of the export: oldest first, at most EXPORT_LIST_MAX items. */
export interface ExportList<T> {
  items: T[];
  /** True when the partner has more than EXPORT_LIST_MAX of these: the first ones are listed. */
  truncated: boolean;
}

export interface PartnerExportResult {
  partner: Partner;
  json: Record<string, unknown>;
}

const gid = globalId;
const gidOrNull = (typename: string, id: string | null) => (id === null ? null : gid(typename, id));
const time = (at: Date | null) => (at === null ? null : at.toISOString());
/** Money as the API shows it: a Decimal string with the currency's minor digits, and the currency. */
const money = (amount: bigint, currency: string) => ({ amount: formatMinor(amount, currency), currency });
const moneyOrNull = (amount: bigint | null, currency: string | null) =>
  amount === null || currency === null ? null : money(amount, currency);

function bounded<R, T>(rows: R[], map: (row: R) => T): ExportList<T> {
  return { items: rows.slice(0, EXPORT_LIST_MAX).map(map), truncated: rows.length > EXPORT_LIST_MAX };
}

const balanceJson = (b: Balance) => ({
  currency: b.currency,
  pending: money(b.pending, b.currency),
  available: money(b.available, b.currency),
  paid: money(b.paid, b.currency),
});

/**
 * Everything held about the partner `lookup` names in the tenant, or null when there is none:
 * the partner row (metadata and erasure included), the programs it is in and its enrollments
 * (answers included), its links with their click counts, the people it referred (ids, the
 * company's externalId for them and status: never their email or metadata), the conversions
 * attributed to it, its rewards, ledger entries, payouts and balances. Click rows themselves are
 * counted, not listed. Lists are oldest first, each at most EXPORT_LIST_MAX long (`truncated`).
 */
export async function exportPartner(
  prisma: PrismaClient,
  tenant: Tenant,
  lookup: PartnerLookup,
): Promise<PartnerExportResult | null> {
  return prisma.$transaction(async (tx) => {
    // One snapshot for every statement below (the default, READ COMMITTED, takes one per statement).
    await prismaSql(tx).sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`;
    const partner = await tx.partner.findUnique({
      where:
        'id' in lookup
          ? { id_workspaceId_mode: { id: lookup.id, ...tenant } }
          : { workspaceId_mode_externalId: { ...tenant, externalId: lookup.externalId } },
    });
    if (!partner) return null;
    return { partner, json: await document(tx, tenant, partner) };
  });
}

async function document(tx: Prisma.TransactionClient, tenant: Tenant, partner: Partner) {
  const mine = { ...tenant, partnerId: partner.id };
  const page = { orderBy: { id: 'asc' as const }, take: EXPORT_LIST_MAX + 1 };
  const enrollments = await tx.enrollment.findMany({ where: mine, ...page });
  const programs = await tx.program.findMany({
    where: { ...tenant, id: { in: [...new Set(enrollments.map((e) => e.programId))] } },
    select: { id: true, name: true, type: true },
    orderBy: { id: 'asc' },
  });
  const links = await tx.referralLink.findMany({ where: mine, ...page });
  const clickCounts = await tx.click.groupBy({
    by: ['linkId', 'discarded'],
    where: mine,
    _count: { _all: true },
    orderBy: [{ linkId: 'asc' }, { discarded: 'asc' }],
  });
  const referrals = await tx.referral.findMany({
    where: mine,
    select: {
      id: true,
      programId: true,
      linkId: true,
      externalId: true,
      status: true,
      createdAt: true,
      convertedAt: true,
    },
    ...page,
  });
  const conversions = await tx.conversion.findMany({
    where: mine,
    select: {
      id: true,
      type: true,
      status: true,
      discardReason: true,
      amount: true,
      currency: true,
      occurredAt: true,
      createdAt: true,
      programId: true,
      referralId: true,
      linkId: true,
      refundOfId: true,
      referredExternalId: true,
    },
    ...page,
  });
  const rewards = await tx.reward.findMany({ where: mine, ...page });
  const ledgerEntries = await tx.ledgerEntry.findMany({
    where: mine,
    select: {
      id: true,
      type: true,
      amount: true,
      currency: true,
      rewardId: true,
      payoutId: true,
      note: true,
      createdAt: true,
    },
    ...page,
  });
  const payouts = await tx.payout.findMany({ where: mine, ...page });
  const sqlTx = prismaSql(tx);
  const cash = (await partnerBalances(sqlTx, tenant, [partner.id])).get(partner.id) ?? [];
  const inProduct = (await partnerCreditBalances(sqlTx, tenant, [partner.id])).get(partner.id) ?? [];

  const clicksByLink = new Map<string, { counted: number; discarded: number }>();
  for (const row of clickCounts) {
    const counts = clicksByLink.get(row.linkId) ?? { counted: 0, discarded: 0 };
    counts[row.discarded ? 'discarded' : 'counted'] += row._count._all;
    clicksByLink.set(row.linkId, counts);
  }
  const clickTotals = { counted: 0, discarded: 0 };
  for (const counts of clicksByLink.values()) {
    clickTotals.counted += counts.counted;
    clickTotals.discarded += counts.discarded;
  }

  return {
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    workspaceId: gid('Workspace', tenant.workspaceId),
    mode: tenant.mode,
    listLimit: EXPORT_LIST_MAX,
    partner: {
      id: gid('Partner', partner.id),
      externalId: partner.externalId,
      name: partner.name,
      email: partner.email,
      status: partner.status,
      metadata: partner.metadata,
      erasedAt: time(partner.erasedAt),
      createdAt: time(partner.createdAt),
      updatedAt: time(partner.updatedAt),
    },
    programs: programs.map((p) => ({ id: gid('Program', p.id), name: p.name, type: p.type })),
    enrollments: bounded(enrollments, (e) => ({
      id: gid('Enrollment', e.id),
      programId: gid('Program', e.programId),
      status: e.status,
      answers: e.answers,
      appliedAt: time(e.appliedAt),
      reviewedAt: time(e.reviewedAt),
      rejectionReason: e.rejectionReason,
      createdAt: time(e.createdAt),
      updatedAt: time(e.updatedAt),
    })),
    links: bounded(links, (l) => ({
      id: gid('ReferralLink', l.id),
      programId: gid('Program', l.programId),
      code: l.code,
      destinationUrl: l.destinationUrl,
      isDefault: l.isDefault,
      disabledAt: time(l.disabledAt),
      createdAt: time(l.createdAt),
      clicks: clicksByLink.get(l.id) ?? { counted: 0, discarded: 0 },
    })),
    clicks: clickTotals,
    referrals: bounded(referrals, (r) => ({
      id: gid('Referral', r.id),
      programId: gid('Program', r.programId),
      linkId: gidOrNull('ReferralLink', r.linkId),
      externalId: r.externalId,
      status: r.status,
      createdAt: time(r.createdAt),
      convertedAt: time(r.convertedAt),
    })),
    conversions: bounded(conversions, (c) => ({
      id: gid('Conversion', c.id),
      type: c.type,
      status: c.status,
      discardReason: c.discardReason,
      amount: moneyOrNull(c.amount, c.currency),
      occurredAt: time(c.occurredAt),
      createdAt: time(c.createdAt),
      programId: gidOrNull('Program', c.programId),
      referralId: gidOrNull('Referral', c.referralId),
      referredExternalId: c.referredExternalId,
      linkId: gidOrNull('ReferralLink', c.linkId),
      refundOfId: gidOrNull('Conversion', c.refundOfId),
    })),
    rewards: bounded(rewards, (w) => ({
      id: gid('Reward', w.id),
      programId: gid('Program', w.programId),
      conversionId: gid('Conversion', w.conversionId),
      ruleId: gid('RewardRule', w.ruleId),
      recipient: w.recipient,
      kind: w.kind,
      status: w.status,
      amount: money(w.amount, w.currency),
      sourceRewardId: gidOrNull('Reward', w.sourceRewardId),
      payoutId: gidOrNull('Payout', w.payoutId),
      approveAfter: time(w.approveAfter),
      createdAt: time(w.createdAt),
      updatedAt: time(w.updatedAt),
    })),
    ledgerEntries: bounded(ledgerEntries, (l) => ({
      id: gid('LedgerEntry', l.id),
      type: l.type,
      amount: money(l.amount, l.currency),
      rewardId: gidOrNull('Reward', l.rewardId),
      payoutId: gidOrNull('Payout', l.payoutId),
      note: l.note,
      createdAt: time(l.createdAt),
    })),
    payouts: bounded(payouts, (p) => ({
      id: gid('Payout', p.id),
      status: p.status,
      amount: money(p.amount, p.currency),
      method: p.method,
      externalReference: p.externalReference,
      paidAt: time(p.paidAt),
      failureReason: p.failureReason,
      releasedAt: time(p.releasedAt),
      createdAt: time(p.createdAt),
      updatedAt: time(p.updatedAt),
    })),
    balances: { cash: cash.map(balanceJson), inProduct: inProduct.map(balanceJson) },
  };
}
