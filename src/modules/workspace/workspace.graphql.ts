import type { Auth } from '../../domain/auth.js';
import { builder } from '../../graphql/builder.js';
import { ModeEnum, RoleEnum } from '../../graphql/enums.js';
import { NIL_UUID } from '../../lib/ids.js';
import { PartnerRef } from '../partner/partner.graphql.js';

export const WorkspaceRef = builder.prismaNode('Workspace', {
  description: 'The tenant: a company running referral programs. Nothing is ever shared between workspaces.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error.
  nullable: true,
  // Only the caller's own workspace exists for them.
  findUnique: (id, ctx) => ({ id: id === ctx.auth?.workspaceId ? id : NIL_UUID }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** The caller: the credential's facts (for a sign-in's payload, the new session's). */
export interface ViewerShape {
  workspaceId: string;
  auth: Auth;
}

export const ViewerRef = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'The caller, as fixed by its credential.',
  fields: (t) => ({
    workspace: t.prismaField({
      type: WorkspaceRef,
      resolve: (query, viewer, _args, ctx) =>
        ctx.db.prisma.workspace.findUniqueOrThrow({ ...query, where: { id: viewer.workspaceId } }),
    }),
    mode: t.field({ type: ModeEnum, resolve: (viewer) => viewer.auth.mode }),
    role: t.field({ type: RoleEnum, resolve: (viewer) => viewer.auth.role }),
    partner: t.prismaField({
      type: PartnerRef,
      nullable: true,
      description: 'The partner a PARTNER credential belongs to; null for other roles.',
      resolve: (query, viewer, _args, ctx) => {
        const { auth } = viewer;
        const selection = { ...query }; // used even when the answer is null without a lookup
        if (!auth.partnerId) return null;
        return ctx.db.prisma.partner.findUnique({
          ...selection,
          where: { id_workspaceId_mode: { id: auth.partnerId, workspaceId: auth.workspaceId, mode: auth.mode } },
        });
      },
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    description: 'Who the credential belongs to: its workspace, mode and role.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ({ workspaceId: ctx.auth!.workspaceId, auth: ctx.auth! }),
  }),
);
