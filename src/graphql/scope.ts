import { decodeGlobalID } from '@pothos/plugin-relay';
import type { Context } from '../context.js';
import type { Mode } from '../generated/prisma/enums.js';
import { isUuid, NIL_UUID } from '../lib/ids.js';
import type { Tenant } from '../domain/tenant.js';
import { unauthenticatedError } from './errors.js';

/** The caller's workspace and mode; resolvers behind an auth scope can rely on it. */
export function tenantOf(ctx: Context): Tenant {
  if (!ctx.auth) throw unauthenticatedError(ctx.authError);
  return { workspaceId: ctx.auth.workspaceId, mode: ctx.auth.mode };
}

/** The composite unique key `{ id_workspaceId_mode }` for a row id inside the caller's tenant. */
export function scopedKey(
  id: string,
  ctx: Context,
): { id_workspaceId_mode: { id: string; workspaceId: string; mode: Mode } } {
  return {
    id_workspaceId_mode: {
      id: isUuid(id) ? id : NIL_UUID,
      workspaceId: ctx.auth?.workspaceId ?? NIL_UUID,
      mode: ctx.auth?.mode ?? 'TEST',
    },
  };
}

/**
 * The row id inside a global id of one of `typenames`, or null when the id is malformed or of
 * another type — which callers answer exactly like a missing id (NOT_FOUND / null).
 */
export function rowIdFrom(globalId: string | null | undefined, ...typenames: string[]): string | null {
  if (!globalId) return null;
  try {
    const { typename, id } = decodeGlobalID(globalId);
    return typenames.includes(typename) && isUuid(id) ? id : null;
  } catch {
    return null;
  }
}

/**
 * Extra filter for rows that belong to a partner: a PARTNER credential sees only its own
 * partner's rows; other roles see the whole tenant.
 */
export function partnerFilter(ctx: Context): { partnerId?: string } {
  return ctx.auth?.role === 'PARTNER' ? { partnerId: ctx.auth.partnerId ?? NIL_UUID } : {};
}
