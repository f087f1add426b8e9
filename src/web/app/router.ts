// Routing inside the page with the fragment (`/app/#/partners/<id>`): the server answers every
// path under /app/ with the same page, and the fragment never reaches the server.
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'overview' }
  | { page: 'pending' }
  | { page: 'partners' }
  | { page: 'partner'; id: string }
  | { page: 'payouts' }
  | { page: 'webhooks' }
  | { page: 'webhook'; id: string }
  | { page: 'api-keys' }
  | { page: 'members' }
  | { page: 'invitation'; token: string }
  | { page: 'not-found'; path: string };

export function parseRoute(hash: string): Route {
  const invitation = hash.match(/^#invitation=([^&]+)/);
  if (invitation) return { page: 'invitation', token: decodeURIComponent(invitation[1] ?? '') };
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (!first) return { page: 'overview' };
  if (first === 'pending' && parts.length === 1) return { page: 'pending' };
  if (first === 'partners') return second ? { page: 'partner', id: second } : { page: 'partners' };
  if (first === 'payouts' && parts.length === 1) return { page: 'payouts' };
  if (first === 'webhooks') return second ? { page: 'webhook', id: second } : { page: 'webhooks' };
  if (first === 'api-keys' && parts.length === 1) return { page: 'api-keys' };
  if (first === 'members' && parts.length === 1) return { page: 'members' };
  return { page: 'not-found', path };
}

/** The href of a route inside the dashboard. */
export function href(path: string): string {
  return `#${path}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
