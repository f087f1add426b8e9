// Expected failures of the domain: services throw these; the GraphQL layer turns them into a
// mutation's userErrors (graphql/payload.ts). Nothing here knows of GraphQL.

import { Prisma } from '../generated/prisma/client.js';

/**
 * Stable codes of expected failures, returned in a mutation payload's `userErrors` (see the
 * contract at the end of API.graphql). Clients switch on these; never rename one.
 */
export type UserErrorCode =
  | 'NOT_FOUND'
  | 'VALIDATION'
  | 'DUPLICATE'
  | 'INVALID_TRANSITION'
  | 'NOTHING_DUE'
  | 'FORBIDDEN_FOR_ROLE'
  | 'LIMIT_EXCEEDED'
  | 'INVALID_CREDENTIALS';

export interface UserErrorShape {
  code: UserErrorCode;
  message: string;
  /** Path to the input field at fault, e.g. ["input", "fixedAmount", "currency"]. */
  field: string[] | null;
}

/** An expected failure thrown by a service; a mutation turns it into a userError. */
export class DomainError extends Error {
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly field: string[] | null = null,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  toUserError(): UserErrorShape {
    return { code: this.code, message: this.message, field: this.field };
  }
}

/** Several expected failures at once (e.g. every invalid field of an input). */
export class DomainErrors extends Error {
  constructor(readonly errors: DomainError[]) {
    super(errors.map((e) => e.message).join(' '));
    this.name = 'DomainErrors';
  }
}

/** Collects validation failures and throws them together. */
export class Validator {
  private readonly errors: DomainError[] = [];

  check(ok: boolean, field: string[], message: string, code: UserErrorCode = 'VALIDATION'): this {
    if (!ok) this.errors.push(new DomainError(code, message, field));
    return this;
  }

  add(error: DomainError): this {
    this.errors.push(error);
    return this;
  }

  throwIfAny(): void {
    if (this.errors.length === 1) throw this.errors[0];
    if (this.errors.length > 1) throw new DomainErrors(this.errors);
  }
}

export const notFound = (what: string, field: string[] | null = ['input', 'id']) =>
  new DomainError('NOT_FOUND', `${what} not found.`, field);

/**
 * Expected failures as userErrors, or null for an unexpected error (which is then masked and
 * logged). Database constraint errors are mapped here so they never leak.
 */
export function toUserErrors(error: unknown): UserErrorShape[] | null {
  if (error instanceof DomainError) return [error.toUserError()];
  if (error instanceof DomainErrors) return error.errors.map((e) => e.toUserError());
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    switch (error.code) {
      case 'P2002': {
        const target = uniqueTarget(error);
        return [
          {
            code: 'DUPLICATE',
            message: `A record with this ${target ?? 'value'} already exists.`,
            field: target ? ['input', target] : null,
          },
        ];
      }
      case 'P2025':
        return [{ code: 'NOT_FOUND', message: 'Record not found.', field: null }];
      case 'P2003':
        return [{ code: 'NOT_FOUND', message: 'A referenced record was not found.', field: null }];
      default:
        return null;
    }
  }
  return null;
}

function uniqueTarget(error: Prisma.PrismaClientKnownRequestError): string | null {
  const meta = error.meta as
    | { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: string[] } } } }
    | undefined;
  const fields =
    meta?.driverAdapterError?.cause?.constraint?.fields ??
    (Array.isArray(meta?.target) ? (meta.target as string[]) : null);
  const interesting = fields?.map((f) => f.replace(/"/g, '')).filter((f) => f !== 'workspaceId' && f !== 'mode');
  return interesting?.length ? interesting.join(', ') : null;
}
