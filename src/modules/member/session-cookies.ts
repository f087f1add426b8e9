import type { CookieStore } from '@whatwg-node/cookie-store';
import { CSRF_COOKIE, type CsrfTokens, SESSION_COOKIE } from './session-tokens.js';

/** Sets and clears the dashboard's two cookies on the response of one HTTP request. */
export interface SessionCookies {
  /** The session cookie (HttpOnly) and its CSRF cookie (readable by the page), both until `expiresAt`. */
  set(session: { token: string; expiresAt: Date }): Promise<void>;
  /** Both cookies expire now (sign-out). */
  clear(): Promise<void>;
}

/**
 * The cookies, through Yoga's cookie plugin (`request.cookieStore`, written as Set-Cookie headers
 * on the response): Path=/, SameSite=Strict, Secure when PUBLIC_URL is https, an Expires equal to
 * the session's end (the cookie store writes Expires, not Max-Age; the same instant). The session
 * token's cookie is HttpOnly; the CSRF cookie is not: the dashboard reads it and sends it back in
 * the X-CSRF-Token header, which a page of another site cannot do.
 */
export function sessionCookies(cookieStore: CookieStore, csrf: CsrfTokens, secure: boolean): SessionCookies {
  const common = { path: '/', sameSite: 'strict' as const, secure, domain: null };
  return {
    set: async ({ token, expiresAt }) => {
      const expires = expiresAt.getTime();
      await cookieStore.set({ ...common, name: SESSION_COOKIE, value: token, expires, httpOnly: true });
      await cookieStore.set({ ...common, name: CSRF_COOKIE, value: csrf.of(token), expires, httpOnly: false });
    },
    clear: async () => {
      await cookieStore.set({ ...common, name: SESSION_COOKIE, value: '', expires: 0, httpOnly: true });
      await cookieStore.set({ ...common, name: CSRF_COOKIE, value: '', expires: 0, httpOnly: false });
    },
  };
}
