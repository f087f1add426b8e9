// Loading, error, empty and userErrors states, the same on every page.
import type { CombinedError } from '@urql/core';
import { type ComponentChildren, createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { formatCount } from '../../lib/format.js';

/** Starts the dashboard over (back to the sign-in page when the credential is gone). */
export const StartOver = createContext<(() => void) | null>(null);

/** The session expired or was ended, the token expired or was revoked. */
export function credentialRefused(error: CombinedError): boolean {
  return (
    error.response?.status === 401 ||
    error.graphQLErrors.some((e) => ['UNAUTHENTICATED', 'CSRF_REQUIRED'].includes(String(e.extensions?.['code'])))
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A total next to a heading (or a filter), once it is known. */
export function Count({ n }: { n: number | undefined }) {
  if (n === undefined) return null;
  return <span class="count">{formatCount(n)}</span>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A request that failed as a whole (network, authentication, a top-level GraphQL error). */
export function RequestError({ error }: { error: CombinedError | undefined }) {
  const startOver = useContext(StartOver);
  if (!error) return null;
  if (startOver && credentialRefused(error))
    return (
      <div class="alert" role="alert">
        <p>
          Your session has ended (it expired, or you were signed out).{' '}
          <button type="button" class="small" onClick={startOver}>
            Sign in again
          </button>
        </p>
      </div>
    );
  const messages = error.networkError
    ? [`The server could not be reached (${error.networkError.message}).`]
    : error.graphQLErrors.map((e) => e.message);
  return (
    <div class="alert" role="alert">
      {messages.map((message) => (
        <p key={message}>{message}</p>
      ))}
    </div>
  );
}

export interface UserErrorLike {
  code: string;
  message: string;
  field?: readonly string[] | null;
}

/** A mutation's userErrors, next to its form: what was wrong and what to do. */
export function UserErrors({ errors }: { errors: readonly UserErrorLike[] | null | undefined }) {
  if (!errors || errors.length === 0) return null;
  return (
    <div class="alert" role="alert">
      <ul>
        {errors.map((error, i) => (
          <li key={i}>
            <strong>{error.code}</strong>: {error.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** A short confirmation after a mutation went through. */
export function Done({ children }: { children: ComponentChildren }) {
  return (
    <p class="done" role="status">
      {children}
    </p>
  );
}

/** Which errors to show after a mutation: the request's own failure, or its userErrors. */
export function mutationErrors(
  result: { error?: CombinedError | undefined } | null,
  userErrors: readonly UserErrorLike[] | null | undefined,
): UserErrorLike[] {
  if (result?.error) {
    return result.error.networkError
      ? [{ code: 'NETWORK', message: result.error.networkError.message }]
      : result.error.graphQLErrors.map((e) => ({
          code: String(e.extensions?.['code'] ?? 'ERROR'),
          message: e.message,
        }));
  }
  return [...(userErrors ?? [])];
}
