// The partner token of the portal. The company's backend mints it (createPartnerToken) and sends
// the partner to `/portal/#token=…`: the fragment never reaches a server or a proxy's log. The
// portal keeps it in sessionStorage (this tab only, gone when the tab closes) and takes it out of
// the address bar at once, so it is not left in the history, a bookmark or a screenshot.

const KEY = 'refgraph.portal.token';

/** The token from the address (kept, then removed from it), else the one this tab kept; '' when none. */
export function takePortalToken(): string {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')?.trim() ?? '';
  if (fromHash) {
    try {
      sessionStorage.setItem(KEY, fromHash);
    } catch {
      // Storage refused (a privacy mode): the token lives in memory for this page only.
    }
    history.replaceState(history.state, '', `${location.pathname}${location.search}`);
    return fromHash;
  }
  try {
    return sessionStorage.getItem(KEY) ?? '';
  } catch {
    return '';
  }
}

/** Forgets the kept token (it was refused: expired or revoked). */
export function forgetPortalToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing kept
  }
}
