import type { Mode } from '../generated/prisma/enums.js';

/** The caller's tenant: every tenant-owned query filters on it. */
export interface Tenant {
  workspaceId: string;
  mode: Mode;
}
