import { GraphQLError, type ASTNode } from 'graphql';

/** Top-level error for a request without a valid credential. */
export function unauthenticatedError(reason: string | null): GraphQLError {
  return new GraphQLError(
    reason ?? 'Authentication required: send `Authorization: Bearer <secret key | access token | partner token>`.',
    { extensions: { code: 'UNAUTHENTICATED' } },
  );
}

/** Top-level error for a credential whose role may not do this. */
export function forbiddenError(role: string): GraphQLError {
  return new GraphQLError(`A ${role} credential may not do this.`, { extensions: { code: 'FORBIDDEN_FOR_ROLE' } });
}

/**
 * A value that is not of its input type (thrown by a scalar's parseValue or parseLiteral): a
 * request error with code BAD_USER_INPUT. GraphQL wraps it in an error that names the variable;
 * `http` makes Yoga answer 400 under `application/graphql-response+json` and 200 under
 * `application/json`, as the GraphQL-over-HTTP spec asks for a request that cannot execute.
 * Thrown as anything but a GraphQLError, the same mistake was an unexpected error (HTTP 500).
 */
export function invalidInputValueError(message: string, node?: ASTNode): GraphQLError {
  return new GraphQLError(message, {
    nodes: node,
    extensions: { code: 'BAD_USER_INPUT', http: { spec: true, status: 400 } },
  });
}
