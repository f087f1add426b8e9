// Which credential the dashboard uses. An operator may open `/app/#token=<access token>` (a short-
// lived token from issueAccessToken): the token is moved from the fragment into sessionStorage (it
// dies with the tab) and the fragment is replaced at once, so it stays out of history and bookmarks.
// Without one, the dashboard uses the member's session (the HttpOnly cookie set by signIn).
import type { Credential } from '../lib/client.js';

const TOKEN_KEY = 'refgraph.dashboard.token';

/** Moves a `#token=` from the address into sessionStorage; returns true when there was one. */
export function takeTokenFromFragment(): boolean {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return false;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1] ?? ''));
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return true;
}

/** The credential to use now: the stored token, else the member's session. */
export function currentCredential(): Credential {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { kind: 'token', token } : { kind: 'session' };
}

/** Forgets the stored token (sign-out of a token session). */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
