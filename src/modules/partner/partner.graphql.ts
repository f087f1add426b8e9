import { builder } from '../../graphql/builder.js';
import { PartnerStatusEnum } from '../../graphql/enums.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';

export const PartnerRef = builder.prismaNode('Partner', {
  description: 'Someone who refers: an affiliate, or a customer who refers friends.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error.
  nullable: true,
  findUnique: (id, ctx) => ({
    id_workspaceId_mode: {
      id: isUuid(id) ? id : NIL_UUID,
      workspaceId: ctx.auth?.workspaceId ?? NIL_UUID,
      mode: ctx.auth?.mode ?? 'TEST',
    },
  }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    externalId: t.exposeString('externalId', { description: 'The company’s own id for this partner; unique per workspace and mode.' }),
    name: t.exposeString('name', { nullable: true }),
    email: t.exposeString('email', { nullable: true }),
    status: t.expose('status', { type: PartnerStatusEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
