import { GraphQLError } from 'graphql';

/** Top-level error for a request without a valid credential. */
export function unauthenticatedError(reason: string | null): GraphQLError {
  return new GraphQLError(
    reason ?? 'Authentication required: send `Authorization: Bearer <secret key | access token | partner token>`.',
    { extensions: { code: 'UNAUTHENTICATED', http: { status: 200 } } },
  );
}

/** Top-level error for a credential whose role may not do this. */
export function forbiddenError(role: string): GraphQLError {
  return new GraphQLError(`A ${role} credential may not do this.`, { extensions: { code: 'FORBIDDEN_FOR_ROLE' } });
}
